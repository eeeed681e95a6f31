package integration

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/uma"
)

var grantIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// TestClaimsTokenPolicy drives seed steps 7-8 against Keycloak with the
// extension: one grant that must succeed, and every refusal of issue 3.
func TestClaimsTokenPolicy(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := barCopy(t, kc, cp, false)
	ctx := testCtx(t)

	meta := map[string]string{
		uma.ClaimContentSHA256: contentSHA256,
		uma.ClaimContentLength: contentLength,
		uma.ClaimContentType:   "text/plain; charset=utf-8",
		uma.ClaimFileName:      "hello.txt",
	}

	// granted remembers a ticket that got an RPT and its claims token.
	var grantedTicket string
	var grantedClaims map[string]any

	t.Run("valid claims token gives an RPT with sender, content binding, Incoming URL and grant id", func(t *testing.T) {
		ticket := f.ticket(t)
		claims := f.claims(cp, ticket)
		rpt, err := f.grant(ctx, ticket, pushed(t, cp.signES256(esHeader(ecKID), claims), meta))
		if err != nil {
			t.Fatalf("uma-ticket grant: %v", err)
		}
		perms := rptPermissions(t, rpt.AccessToken)
		if len(perms) != 1 {
			t.Fatalf("RPT permissions = %v, want one", perms)
		}
		p := perms[0]
		if p.RSID != f.resourceID || !slices.Equal(p.Scopes, []string{uma.ScopeCreate}) {
			t.Errorf("permission = %v, want bob's Incoming %s with scope create", p, f.resourceID)
		}
		want := map[string][]string{
			uma.ClaimSenderEmail: {"alice@foo.example"},
			uma.ClaimSenderIss:   {cp.issuer},
			uma.ClaimSenderSub:   {"alice-user-id"},
			claimIncomingURI:     {incomingURI},
		}
		for k, v := range meta {
			want[k] = []string{v}
		}
		for k, v := range want {
			if !slices.Equal(p.Claims[k], v) {
				t.Errorf("claim %s = %v, want %v", k, p.Claims[k], v)
			}
		}
		if _, ok := p.Claims[uma.ClaimClaimsToken]; ok {
			t.Errorf("the RPT still carries the raw claims_token")
		}
		if id := p.Claims[claimGrantID]; len(id) != 1 || !grantIDPattern.MatchString(id[0]) {
			t.Errorf("grant_id = %v, want one 22-character BASE64URL value", id)
		}
		if len(p.Claims) != len(want)+2 {
			t.Errorf("claims = %v, want exactly %v, grant_id and grant_mac", p.Claims, want)
		}
		one := map[string]string{}
		for k, v := range p.Claims {
			if len(v) == 1 {
				one[k] = v[0]
			}
		}
		if err := grantmac.Verify([]byte(resourceServerSecret), p.RSID, one); err != nil {
			t.Errorf("grant_mac does not verify with the resource server's secret: %v (claims %v)", err, p.Claims)
		}
		grantedTicket, grantedClaims = ticket, claims
	})

	t.Run("JWKS is fetched once and then cached", func(t *testing.T) {
		before := cp.jwksFetches.Load()
		ticket := f.ticket(t)
		if _, err := f.grant(ctx, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)); err != nil {
			t.Fatalf("uma-ticket grant: %v", err)
		}
		if before != 1 || cp.jwksFetches.Load() != 1 {
			t.Fatalf("JWKS fetched %d then %d times, want once", before, cp.jwksFetches.Load())
		}
	})

	t.Run("RS256 token and email case are accepted, malformed optional metadata and pushed sender claims are dropped", func(t *testing.T) {
		ticket := f.ticket(t)
		claims := f.claims(cp, ticket)
		claims["email"] = "Alice@FOO.example"
		rpt, err := f.grant(ctx, ticket, pushed(t, cp.signRS256(map[string]any{"alg": "RS256", "kid": rsaKID}, claims), map[string]string{
			uma.ClaimContentType: "text/plain\r\nX-Evil: yes",
			uma.ClaimFileName:    "../../etc/passwd",
			uma.ClaimSenderEmail: "mallory@evil.example",
			claimGrantID:         "chosen-by-the-client",
		}))
		if err != nil {
			t.Fatalf("uma-ticket grant: %v", err)
		}
		p := rptPermissions(t, rpt.AccessToken)[0]
		want := map[string][]string{
			uma.ClaimSenderEmail:   {"alice@foo.example"},
			uma.ClaimSenderIss:     {cp.issuer},
			uma.ClaimSenderSub:     {"alice-user-id"},
			uma.ClaimContentSHA256: {contentSHA256},
			uma.ClaimContentLength: {contentLength},
			claimIncomingURI:       {incomingURI},
		}
		if len(p.Claims) != len(want)+2 {
			t.Fatalf("claims = %v, want only %v, grant_id and grant_mac", p.Claims, want)
		}
		for k, v := range want {
			if !slices.Equal(p.Claims[k], v) {
				t.Errorf("claim %s = %v, want %v", k, p.Claims[k], v)
			}
		}
		if id := p.Claims[claimGrantID]; len(id) != 1 || id[0] == "chosen-by-the-client" {
			t.Errorf("grant_id = %v, want the policy's own", id)
		}
	})

	// Issue 12 changed this: a malformed content binding was dropped (an RPT
	// "granted without it"); now the binding is required.
	t.Run("content binding missing or malformed is refused", func(t *testing.T) {
		for _, m := range []map[string]string{
			{uma.ClaimContentSHA256: omit},
			{uma.ClaimContentLength: omit},
			{uma.ClaimContentSHA256: strings.ToUpper(contentSHA256)},
			{uma.ClaimContentLength: "-1"},
		} {
			ticket := f.ticket(t)
			f.expectDenied(t, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), m), "content_binding_missing")
		}
	})

	t.Run("incoming_uri missing, invalid, or not the ticket's is refused", func(t *testing.T) {
		for _, c := range []struct{ value, reason string }{
			{omit, "incoming_uri_missing"},
			{"/incoming/bob", "incoming_uri_invalid"},
			{incomingURI + "?x=1", "incoming_uri_invalid"},
			{"https://other.example/incoming/hr", "incoming_uri_mismatch"},
			{"https://rs.bar.example/incoming/bob/", "incoming_uri_mismatch"},
		} {
			ticket := f.ticket(t)
			f.expectDenied(t, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)),
				map[string]string{claimIncomingURI: c.value}), c.reason)
		}
		// A Resource Server that pushes no incoming_uri gets tickets no RPT comes from.
		ticket := f.ticketFor(t, f.resourceID, nil)
		f.expectDenied(t, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil), "incoming_uri_mismatch")
	})

	// signed returns a fresh ticket and the claim_token for claims changed by edit.
	signed := func(t *testing.T, edit func(c map[string]any)) (string, string) {
		ticket := f.ticket(t)
		c := f.claims(cp, ticket)
		edit(c)
		return ticket, pushed(t, cp.signES256(esHeader(ecKID), c), nil)
	}

	t.Run("bad signature", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := cp.signES256(esHeader(ecKID), f.claims(cp, ticket))
		dot := strings.LastIndexByte(jws, '.')
		sig, _ := base64.RawURLEncoding.DecodeString(jws[dot+1:])
		sig[10] ^= 0xff
		f.expectDenied(t, ticket, pushed(t, jws[:dot+1]+b64(sig), nil), "bad_signature")
	})

	t.Run("payload changed under a good signature", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := strings.Split(cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), ".")
		evil := f.claims(cp, ticket)
		evil["email"] = "mallory@foo.example"
		f.expectDenied(t, ticket, pushed(t, jws[0]+"."+part(evil)+"."+jws[2], nil), "bad_signature")
	})

	t.Run("alg none", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := part(map[string]any{"alg": "none", "kid": ecKID}) + "." + part(f.claims(cp, ticket)) + "."
		f.expectDenied(t, ticket, pushed(t, jws, nil), "alg_not_allowed")
	})

	t.Run("HS256 signed with the public key", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := signHS256(map[string]any{"alg": "HS256", "kid": rsaKID}, f.claims(cp, ticket), cp.rsaPublicPEM())
		f.expectDenied(t, ticket, pushed(t, jws, nil), "alg_not_allowed")
	})

	t.Run("unknown kid", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := cp.signES256(esHeader("not-a-known-kid"), f.claims(cp, ticket))
		f.expectDenied(t, ticket, pushed(t, jws, nil), "unknown_kid")
	})

	t.Run("untrusted issuer", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) { c["iss"] = "https://claims.evil.example" })
		f.expectDenied(t, ticket, ct, "untrusted_issuer")
	})

	t.Run("expired", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) {
			now := time.Now().Unix()
			c["iat"], c["exp"] = now-300, now-120
		})
		f.expectDenied(t, ticket, ct, "expired")
	})

	t.Run("iat in the future", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) {
			now := time.Now().Unix()
			c["iat"], c["exp"] = now+120, now+180
		})
		f.expectDenied(t, ticket, ct, "iat_in_future")
	})

	t.Run("lifetime over the maximum", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) {
			now := time.Now().Unix()
			c["iat"], c["exp"] = now, now+301
		})
		f.expectDenied(t, ticket, ct, "lifetime_too_long")
	})

	t.Run("wrong aud", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) { c["aud"] = kc.IssuerURL("bar") })
		f.expectDenied(t, ticket, ct, "audience_mismatch")
	})

	t.Run("missing jti", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) { delete(c, "jti") })
		f.expectDenied(t, ticket, ct, "jti_missing")
	})

	t.Run("replayed jti", func(t *testing.T) {
		if grantedClaims == nil {
			t.Skip("needs the granted token of the first subtest")
		}
		// Same jti, bound to a fresh ticket and signed anew: only the jti repeats.
		ticket, ct := signed(t, func(c map[string]any) { c["jti"] = grantedClaims["jti"] })
		f.expectDenied(t, ticket, ct, "jti_replayed")
	})

	t.Run("wrong ticket_digest", func(t *testing.T) {
		other := f.ticket(t)
		ticket, ct := signed(t, func(c map[string]any) { c["ticket_digest"] = uma.TicketDigest(other) })
		f.expectDenied(t, ticket, ct, "ticket_digest_mismatch")
	})

	t.Run("ticket reused after a granted RPT", func(t *testing.T) {
		if grantedTicket == "" {
			t.Skip("needs the granted ticket of the first subtest")
		}
		// A fresh, valid token (new jti) for the ticket that already got an RPT.
		jws := cp.signES256(esHeader(ecKID), f.claims(cp, grantedTicket))
		f.expectDenied(t, grantedTicket, pushed(t, jws, nil), "ticket_reused")
	})

	t.Run("one ticket, concurrent grants: exactly one RPT", func(t *testing.T) {
		ticket := f.ticket(t)
		const n = 6
		cts := make([]string, n)
		for i := range cts {
			cts[i] = pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)
		}
		type result struct {
			ok     bool
			status int
		}
		results := make(chan result, n)
		var wg sync.WaitGroup
		for _, ct := range cts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.grant(ctx, ticket, ct)
				var te *keycloak.Error
				switch {
				case err == nil:
					results <- result{ok: true}
				case errors.As(err, &te):
					results <- result{status: te.StatusCode}
				default:
					results <- result{status: -1}
				}
			}()
		}
		wg.Wait()
		close(results)
		granted := 0
		for r := range results {
			if r.ok {
				granted++
			} else if r.status != http.StatusForbidden {
				t.Errorf("a concurrent grant answered %d, want 403", r.status)
			}
		}
		if granted != 1 {
			t.Fatalf("%d of %d concurrent grants with one ticket got an RPT, want exactly 1", granted, n)
		}
	})

	t.Run("email_verified false", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) { c["email_verified"] = false })
		f.expectDenied(t, ticket, ct, "email_not_verified")
	})

	t.Run("email domain the issuer is not trusted for", func(t *testing.T) {
		ticket, ct := signed(t, func(c map[string]any) { c["email"] = "alice@bar.example" })
		f.expectDenied(t, ticket, ct, "email_domain_not_trusted")
	})

	t.Run("claim_token not BASE64URL JSON", func(t *testing.T) {
		ticket := f.ticket(t)
		valid := cp.signES256(esHeader(ecKID), f.claims(cp, ticket))
		json := `{"claims_token":["` + valid + `"]}`
		// Standard base64 alphabet: Keycloak's own decoder tolerates it, the policy does not.
		std := base64.StdEncoding.EncodeToString([]byte(json + "  \n>>>???"))
		if !strings.ContainsAny(std, "+/") {
			t.Fatalf("test input %q should use the standard alphabet", std)
		}
		f.expectDenied(t, ticket, std, "claim_token_malformed")
		// A duplicated key: Keycloak's parser keeps the last, the policy refuses the ambiguity.
		dup := base64.RawURLEncoding.EncodeToString([]byte(`{"claims_token":["x.y.z"],"claims_token":["` + valid + `"]}`))
		f.expectDenied(t, ticket, dup, "claim_token_malformed")
		// Not an array of strings (Keycloak does not look inside the arrays).
		nonString := base64.RawURLEncoding.EncodeToString([]byte(`{"claims_token":["` + valid + `"],"content_length":[25]}`))
		f.expectDenied(t, ticket, nonString, "claim_token_malformed")
	})

	t.Run("claim_token that Keycloak itself cannot parse never gives an RPT", func(t *testing.T) {
		// Keycloak parses claim_token before any policy runs and refuses these
		// itself with 400 invalid_request "Invalid claims", so the policy never
		// sees them (docs/PROTOCOL.md step 8 says 403 for a denial; see the
		// extension's README).
		ticket := f.ticket(t)
		for _, ct := range []string{"%%% not base64 %%%", b64([]byte("not json")), b64([]byte(`["claims_token"]`))} {
			tok, err := f.grant(ctx, ticket, ct)
			if err == nil {
				t.Fatalf("claim_token %q: got an RPT %.30s", ct, tok.AccessToken)
			}
			te, ok := err.(*keycloak.Error)
			if !ok || te.StatusCode != http.StatusBadRequest || !strings.Contains(te.Body, `"invalid_request"`) {
				t.Fatalf("claim_token %q: %v, want Keycloak's 400 invalid_request", ct, err)
			}
		}
	})

	t.Run("no claims_token key", func(t *testing.T) {
		ticket := f.ticket(t)
		ct, err := uma.PushedClaims{uma.ClaimContentType: {"text/plain"}, uma.ClaimSenderEmail: {"alice@foo.example"}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		f.expectDenied(t, ticket, ct, "no_claims_token")
	})

	t.Run("oversized claim token", func(t *testing.T) {
		ticket := f.ticket(t)
		jws := cp.signES256(esHeader(ecKID), f.claims(cp, ticket))
		// A valid token padded with junk metadata past maxClaimTokenLength (16384).
		raw := `{"claims_token":["` + jws + `"],"junk":["` + strings.Repeat("A", 17000) + `"]}`
		ct := base64.RawURLEncoding.EncodeToString([]byte(raw))
		if kc.AtLeast("26.6") {
			// Measured on 26.7.3 (26.6 untried): Keycloak bounds OIDC
			// parameters itself and refuses this one before any policy runs.
			tok, err := f.grant(ctx, ticket, ct)
			if err == nil {
				t.Fatalf("oversized claim_token: got an RPT %.30s", tok.AccessToken)
			}
			te, ok := err.(*keycloak.Error)
			if !ok || te.StatusCode != http.StatusBadRequest || !strings.Contains(te.Body, `"invalid_request"`) {
				t.Fatalf("oversized claim_token: %v, want Keycloak %s's 400 invalid_request", err, kc.Version)
			}
			return
		}
		f.expectDenied(t, ticket, ct, "claim_token_too_large")
	})

	t.Run("oversized claims token", func(t *testing.T) {
		// Over maxClaimsTokenLength (8192) while the claim_token stays under its own bound.
		ticket, ct := signed(t, func(c map[string]any) { c["name"] = strings.Repeat("A", 6300) })
		f.expectDenied(t, ticket, ct, "claims_token_too_large")
	})

	t.Run("claims token without a ticket", func(t *testing.T) {
		// The client asks for the permission directly, pushing a claims
		// token but no ticket: the extension's grant type refuses the form
		// before any evaluation (the policy would deny no_ticket).
		ticket := f.ticket(t)
		ct := pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)
		f.expectShapeRefused(t, url.Values{
			uma.FormGrantType:        {uma.GrantTypeUMATicket},
			uma.FormAudience:         {"resource-server"},
			"permission":             {f.resourceID + "#create"},
			uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
			uma.FormClaimToken:       {ct},
			uma.FormSubmitRequest:    {"false"},
		})
	})
}
