package attacks

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
)

// cpRequest posts to the real Claims Provider with full control of the
// request.
func (s *suite) cpRequest(t *testing.T, hdr http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPost, s.CPURL+"/claims/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	return e2etest.Do(t, req)
}

// claimsProviderRequests: who may ask the Claims Provider for whose claims
// (seed step 5), and requests it must not parse its way into answering.
func (s *suite) claimsProviderRequests(t *testing.T) {
	ticket := s.Ticket(t, "bob")
	form := func(email string) url.Values {
		f := url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {s.asURI}}
		if email != "" {
			f.Set(uma.FormEmail, email)
		}
		return f
	}
	login := s.aliceLogin(t, "openid claims-provider")
	noAud := s.aliceLogin(t, "openid")
	expect := func(t *testing.T, a answer, status int, code string) {
		t.Helper()
		if a.Status != status || a.Err.Code != code {
			t.Errorf("got %s, want %d %s", a, status, code)
		}
		if status == http.StatusOK || a.Status == http.StatusOK {
			return
		}
		if strings.Contains(string(a.Body), "claims_token") {
			t.Errorf("a refusal carries a claims token: %s", a)
		}
	}

	t.Run("Alice's own login: her email only", func(t *testing.T) {
		expect(t, s.CPDo(t, login.AccessToken, form("")), 200, "")
		expect(t, s.CPDo(t, login.AccessToken, form("ALICE@foo.example")), 200, "")
		expect(t, s.CPDo(t, login.AccessToken, form("bob@bar.example")), 403, "access_denied")
		expect(t, s.CPDo(t, login.AccessToken, form(s.Outsider)), 403, "access_denied")
	})
	t.Run("tokens that are not an access token for the Claims Provider", func(t *testing.T) {
		for name, tok := range map[string]string{
			"without the claims-provider audience": noAud.AccessToken,
			"Alice's ID token":                     login.IDToken,
			"Alice's refresh token":                login.RefreshToken,
		} {
			t.Run(name, func(t *testing.T) { expect(t, s.CPDo(t, tok, form("")), 401, "invalid_token") })
		}
		other, err := kctest.ClientCredentials(e2etest.Timeout(t, time.Minute), s.asURI, "rqp-client", e2etest.RQPSecret, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Run("a token of Bob's realm", func(t *testing.T) {
			expect(t, s.CPDo(t, other.AccessToken, form(e2etest.AliceEmail)), 401, "invalid_token")
		})
		cpOwn, err := kctest.ClientCredentials(e2etest.Timeout(t, time.Minute), s.KC.IssuerURL("foo"), "claims-provider", "claims-provider-secret", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Run("the Claims Provider's own service-account token", func(t *testing.T) {
			expect(t, s.CPDo(t, cpOwn.AccessToken, form(e2etest.AliceEmail)), 401, "invalid_token")
		})
		t.Run("a claims token as bearer", func(t *testing.T) {
			expect(t, s.CPDo(t, s.claimsToken(t, ticket, e2etest.AliceEmail, ""), form(e2etest.AliceEmail)), 401, "invalid_token")
		})
		parts := strings.Split(login.AccessToken, ".")
		claims, _ := kctest.Claims(login.AccessToken)
		claims["email"] = "bob@bar.example"
		t.Run("Alice's token with another email under her signature", func(t *testing.T) {
			expect(t, s.CPDo(t, parts[0]+"."+testclaimsprovider.Part(claims)+"."+parts[2], form("")), 401, "invalid_token")
		})
		t.Run("Alice's claims re-signed with alg none and HS256", func(t *testing.T) {
			expect(t, s.CPDo(t, testclaimsprovider.Unsigned(map[string]any{"alg": "none"}, claims), form("")), 401, "invalid_token")
			expect(t, s.CPDo(t, testclaimsprovider.SignHS256(map[string]any{"alg": "HS256"}, claims, []byte("claims-provider-secret")), form("")), 401, "invalid_token")
		})
	})
	t.Run("the client-credentials variant", func(t *testing.T) {
		cc := s.aliceClientToken(t)
		expect(t, s.CPDo(t, cc, form("")), 400, "invalid_request")
		expect(t, s.CPDo(t, cc, form("bob@bar.example")), 403, "access_denied")
		expect(t, s.CPDo(t, cc, form("nobody-"+e2etest.RandomHex(3)+"@foo.example")), 403, "access_denied")
		// A service account is no person: its username at the domain finds nobody.
		expect(t, s.CPDo(t, cc, form("service-account-rqp-client@foo.example")), 403, "access_denied")
	})
	t.Run("malformed requests", func(t *testing.T) {
		cc := "Bearer " + s.aliceClientToken(t)
		formCT := "application/x-www-form-urlencoded"
		good := form(e2etest.AliceEmail).Encode()
		for _, tc := range []struct {
			name   string
			hdr    http.Header
			body   string
			status int
			code   string
		}{
			{"no Authorization", http.Header{"Content-Type": {formCT}}, good, 401, "invalid_token"},
			{"Basic credentials", http.Header{"Content-Type": {formCT}, "Authorization": {"Basic cnFwLWNsaWVudDpycXAtY2xpZW50LXNlY3JldA=="}}, good, 401, "invalid_token"},
			{"two Authorization headers", http.Header{"Content-Type": {formCT}, "Authorization": {cc, cc}}, good, 400, "invalid_request"},
			{"an Authorization header over 16 KiB", http.Header{"Content-Type": {formCT}, "Authorization": {cc + strings.Repeat("A", 17<<10)}}, good, 401, "invalid_token"},
			{"access_token in the body too", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, good + "&access_token=x", 400, "invalid_request"},
			{"ticket_digest twice", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, good + "&ticket_digest=" + uma.TicketDigest("x"), 400, "invalid_request"},
			{"email twice", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, good + "&email=dave%40foo.example", 400, "invalid_request"},
			{"ticket_digest not 43 characters", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, strings.Replace(good, "ticket_digest=", "ticket_digest=A", 1), 400, "invalid_request"},
			{"audience with user info", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {"http://" + "alice@" + strings.TrimPrefix(s.asURI, "http://")}, uma.FormEmail: {e2etest.AliceEmail}}.Encode(), 400, "invalid_request"},
			{"audience with a query", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {s.asURI + "?x=1"}, uma.FormEmail: {e2etest.AliceEmail}}.Encode(), 400, "invalid_request"},
			{"audience javascript:", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {"javascript:alert(1)"}, uma.FormEmail: {e2etest.AliceEmail}}.Encode(), 400, "invalid_request"},
			{"a JSON body", http.Header{"Content-Type": {"application/json"}, "Authorization": {cc}}, `{"ticket_digest":"` + uma.TicketDigest(ticket) + `","audience":"` + s.asURI + `","email":"alice@foo.example"}`, 400, "invalid_request"},
			{"a body over 64 KiB", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, good + "&pad=" + strings.Repeat("A", 65<<10), 413, "request_too_large"},
			{"a malformed form", http.Header{"Content-Type": {formCT}, "Authorization": {cc}}, good + "&%zz", 400, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) { expect(t, s.cpRequest(t, tc.hdr, tc.body), tc.status, tc.code) })
		}
		t.Run("headers over the server's limit", func(t *testing.T) {
			a := s.cpRequest(t, http.Header{"Content-Type": {formCT}, "Authorization": {cc}, "X-Pad": {strings.Repeat("A", 40<<10)}}, good)
			if a.Status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("got %s, want 431", a)
			}
		})
	})
}
