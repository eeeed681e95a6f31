package attacks

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// pushedClaims: the client decides what it pushes at step 7; nothing it
// pushes may decide what the RPT says about the sender, and malformed
// pushes get no RPT or only the vetted claims.
func (s *suite) pushedClaims(t *testing.T) {
	// valid is a fresh ticket and a real claims token for Alice bound to it.
	valid := func(t *testing.T) (string, string) {
		ticket := s.Ticket(t, "bob")
		return ticket, s.claimsToken(t, ticket, e2etest.AliceEmail, "")
	}
	senderOf := func(t *testing.T, rpt string) map[string][]string {
		cl := permissionClaims(t, rpt)
		return map[string][]string{uma.ClaimSenderEmail: cl[uma.ClaimSenderEmail], uma.ClaimSenderIss: cl[uma.ClaimSenderIss]}
	}
	wantSender := map[string][]string{uma.ClaimSenderEmail: {e2etest.AliceEmail}, uma.ClaimSenderIss: {s.CPURL}}

	t.Run("sender_email, sender_iss, sender_sub pushed beside a valid token are overwritten", func(t *testing.T) {
		c := newContent("pushed sender claims")
		ticket, ct := valid(t)
		p := map[string][]string{uma.ClaimClaimsToken: {ct},
			uma.ClaimSenderEmail: {"ceo@bar.example"}, uma.ClaimSenderIss: {s.partner.Issuer}, uma.ClaimSenderSub: {"ceo"}}
		for k, v := range c.meta() {
			p[k] = []string{v}
		}
		p[uma.ClaimIncomingURI] = []string{s.IncomingURI("bob")}
		rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, e2etest.PushedClaims(p)))
		if te != nil {
			t.Fatal(te)
		}
		if got := senderOf(t, rpt); !maps.EqualFunc(got, wantSender, slices.Equal) {
			t.Errorf("RPT sender %v, want %v", got, wantSender)
		}
		if sub := permissionClaims(t, rpt)[uma.ClaimSenderSub]; len(sub) != 1 || sub[0] == "ceo" {
			t.Errorf("sender_sub %v", sub)
		}
		m := created(t, s.post(t, "bob", rpt, c))
		if m.SenderEmail != e2etest.AliceEmail || m.SenderIss != s.CPURL || m.SenderSub == "ceo" {
			t.Errorf("stored sender %s %s %s", m.SenderEmail, m.SenderIss, m.SenderSub)
		}
	})

	// bound is the honest binding and Incoming URL of c plus extra, as
	// pushed claims next to ct.
	bound := func(ct string, c content, extra map[string][]string) map[string][]string {
		p := map[string][]string{uma.ClaimClaimsToken: {ct}, uma.ClaimIncomingURI: {s.IncomingURI("bob")},
			uma.ClaimContentSHA256: {c.sha256()}, uma.ClaimContentLength: {fmt.Sprint(len(c.body))}}
		maps.Copy(p, extra)
		return p
	}

	t.Run("several values for the sender claims", func(t *testing.T) {
		ticket, ct := valid(t)
		rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, e2etest.PushedClaims(bound(ct, newContent("several"), map[string][]string{
			uma.ClaimSenderEmail: {"ceo@bar.example", e2etest.AliceEmail}, uma.ClaimSenderIss: {s.CPURL, s.partner.Issuer}}))))
		if te != nil {
			t.Fatal(te)
		}
		if got := senderOf(t, rpt); !maps.EqualFunc(got, wantSender, slices.Equal) {
			t.Errorf("RPT sender %v, want %v", got, wantSender)
		}
	})

	// Issue 12: a malformed binding no longer gets an unbound RPT.
	t.Run("malformed content binding", func(t *testing.T) {
		sum := newContent("x").sha256()
		for _, meta := range []map[string][]string{
			{uma.ClaimContentSHA256: {strings.ToUpper(sum)}},
			{uma.ClaimContentLength: {"01"}},
			{uma.ClaimContentLength: {"-1"}},
			{uma.ClaimContentLength: {"1e3"}},
			{uma.ClaimContentLength: {"99999999999999999999"}},
			{uma.ClaimContentSHA256: {sum, newContent("y").sha256()}},
		} {
			ticket, ct := valid(t)
			s.unchanged(t, func() {
				s.expectDenied(t, "content_binding_missing", e2etest.GrantForm(ticket, e2etest.PushedClaims(bound(ct, newContent("x"), meta))))
			})
		}
	})

	t.Run("malformed content type and file name and foreign claims are not in the RPT", func(t *testing.T) {
		policys := []string{uma.ClaimContentLength, uma.ClaimContentSHA256, uma.ClaimGrantID, "grant_mac", uma.ClaimIncomingURI,
			uma.ClaimSenderEmail, uma.ClaimSenderIss, uma.ClaimSenderSub}
		for _, meta := range []map[string][]string{
			{uma.ClaimContentType: {"text/plain\r\nX-Evil: yes"}, uma.ClaimFileName: {"../../etc/passwd"},
				"owner": {"carol"}, "rsid": {"x"}, "scopes": {"create"}, "iss": {s.partner.Issuer}, "sub": {"x"},
				uma.ClaimGrantID: {"AAAAAAAAAAAAAAAAAAAAAA"}, "grant_mac": {"forged"}},
			{uma.ClaimFileName: {"a\u202etxt.exe"}},
			{uma.ClaimFileName: {".."}},
			{uma.ClaimContentType: {"text/plain", "text/html"}},
			{uma.ClaimFileName: {"a/b"}},
		} {
			ticket, ct := valid(t)
			rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, e2etest.PushedClaims(bound(ct, newContent("x"), meta))))
			if te != nil {
				t.Fatal(te)
			}
			cl := permissionClaims(t, rpt)
			if got := slices.Sorted(maps.Keys(cl)); !slices.Equal(got, policys) {
				t.Errorf("pushed %v: RPT claims %v, want only the policy's %v", meta, cl, policys)
			}
			if g := cl[uma.ClaimGrantID]; len(g) != 1 || g[0] == "AAAAAAAAAAAAAAAAAAAAAA" {
				t.Errorf("grant_id %v: the pushed one survived", g)
			}
		}
	})

	// Malformed pushes: the policy or Keycloak itself refuses them.
	denied := func(t *testing.T, reason string, form func(ticket, ct string) string) {
		t.Helper()
		ticket, ct := valid(t)
		s.unchanged(t, func() { s.expectDenied(t, reason, e2etest.GrantForm(ticket, form(ticket, ct))) })
	}
	t.Run("claims_token twice", func(t *testing.T) {
		denied(t, "no_claims_token", func(ticket, ct string) string {
			forged := s.attacker.SignES256(map[string]any{"alg": "ES256", "kid": "k"}, s.claims(s.attacker.Issuer, "ceo@bar.example", ticket))
			return e2etest.PushedClaims(map[string][]string{uma.ClaimClaimsToken: {ct, forged}})
		})
	})
	t.Run("claims_token key twice in the JSON", func(t *testing.T) {
		denied(t, "claim_token_malformed", func(ticket, ct string) string {
			forged := s.attacker.SignES256(map[string]any{"alg": "ES256", "kid": "k"}, s.claims(s.attacker.Issuer, "ceo@bar.example", ticket))
			return base64.RawURLEncoding.EncodeToString([]byte(`{"claims_token":["` + ct + `"],"claims_token":["` + forged + `"]}`))
		})
	})
	t.Run("not an array of strings, nested arrays, too many keys, too long", func(t *testing.T) {
		denied(t, "claim_token_malformed", func(_, ct string) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"claims_token":["` + ct + `"],"content_length":[25]}`))
		})
		denied(t, "claim_token_malformed", func(_, ct string) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"claims_token":["` + ct + `"],"x":[` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `]}`))
		})
		denied(t, "claim_token_malformed", func(_, ct string) string {
			p := map[string][]string{uma.ClaimClaimsToken: {ct}}
			for i := 0; i < 40; i++ {
				p[fmt.Sprintf("k%d", i)] = []string{"v"}
			}
			return e2etest.PushedClaims(p)
		})
		denied(t, "claim_token_too_large", func(_, ct string) string {
			return e2etest.PushedClaims(map[string][]string{uma.ClaimClaimsToken: {ct}, "padding": {strings.Repeat("A", 17000)}})
		})
	})
	t.Run("form fields twice", func(t *testing.T) {
		ticket, ct := valid(t)
		f := e2etest.GrantForm(ticket, s.pushedBound(ct))
		f.Add(uma.FormClaimToken, e2etest.Pushed(ct, map[string]string{uma.ClaimSenderEmail: "ceo@bar.example"}))
		s.unchanged(t, func() { s.expectDenied(t, "no_claim_token", f) })
		ticket, ct = valid(t)
		f = e2etest.GrantForm(ticket, s.pushedBound(ct))
		f.Add(uma.FormTicket, s.Ticket(t, "bob"))
		s.unchanged(t, func() { s.expectShapeRefused(t, f) })
	})
	t.Run("a permission asked for without a ticket", func(t *testing.T) {
		ticket, ct := valid(t)
		claims, err := kctest.Claims(ticket)
		if err != nil {
			t.Fatal(err)
		}
		rsid, _ := claims["permissions"].([]any)[0].(map[string]any)["rsid"].(string)
		f := e2etest.GrantForm(ticket, s.pushedBound(ct))
		f.Del(uma.FormTicket)
		f.Set(uma.FormAudience, "resource-server")
		f.Set("permission", rsid+"#"+uma.ScopeCreate)
		s.unchanged(t, func() { s.expectShapeRefused(t, f) })
		// The same with the ticket: a permission beside it is refused too.
		f.Set(uma.FormTicket, ticket)
		f.Del(uma.FormAudience)
		s.unchanged(t, func() { s.expectShapeRefused(t, f) })
	})
	t.Run("an RPT upgrade (rpt) merging a spent content binding", func(t *testing.T) {
		a, b := newContent("upgrade A"), newContent("upgrade B, longer")
		rptA, _ := s.rptFor(t, "bob", a, e2etest.AliceEmail)
		created(t, s.post(t, "bob", rptA, a))
		ticket, ct := valid(t)
		f := e2etest.GrantForm(ticket, s.PushedFor("bob", ct, b.meta()))
		f.Set("rpt", rptA)
		s.unchanged(t, func() { s.expectShapeRefused(t, f) })
	})
	t.Run("submit_request true: a pending request for the owner, no RPT", func(t *testing.T) {
		ticket, ct := valid(t)
		f := e2etest.GrantForm(ticket, s.pushedBound(ct+"x"))
		f.Set(uma.FormSubmitRequest, "true")
		s.unchanged(t, func() {
			_, te := s.Grant(t, "", f)
			if te == nil || te.StatusCode != http.StatusForbidden || !strings.Contains(te.Body, "request_submitted") {
				t.Fatalf("grant: %v, want 403 access_denied request_submitted", te)
			}
		})
	})

	// Keycloak refuses these itself, before any policy runs.
	keycloakRefuses := func(t *testing.T, form map[string][]string, status int, code string) {
		t.Helper()
		s.unchanged(t, func() {
			_, te := s.Grant(t, "", form)
			if te == nil || te.StatusCode != status || !strings.Contains(te.Body, `"`+code+`"`) {
				t.Fatalf("grant: %v, want %d %s", te, status, code)
			}
		})
	}
	t.Run("claims token pushed raw, not as pushed claims", func(t *testing.T) {
		ticket, ct := valid(t)
		keycloakRefuses(t, e2etest.GrantForm(ticket, ct), http.StatusBadRequest, "invalid_request")
	})
	t.Run("claim_token_format omitted: Keycloak takes claim_token for one of its ID tokens", func(t *testing.T) {
		ticket, ct := valid(t)
		f := e2etest.GrantForm(ticket, s.pushedBound(ct))
		f.Del(uma.FormClaimTokenFormat)
		keycloakRefuses(t, f, http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("a pushed claim that is no array: Keycloak fails with 500 before any policy (keycloak/extension/README.md)", func(t *testing.T) {
		ticket, ct := valid(t)
		keycloakRefuses(t, e2etest.GrantForm(ticket, e2etest.PushedClaims(map[string]any{uma.ClaimClaimsToken: ct})), http.StatusInternalServerError, "server_error")
	})
}
