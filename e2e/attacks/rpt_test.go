package attacks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// stockRealmRPT is an RPT of another realm (a copy of bar with the stock
// client policy, which believes whatever is pushed) for bob's Incoming
// there, its permission claiming the sender ceo@bar.example.
func (s *suite) stockRealmRPT(t *testing.T) string {
	t.Helper()
	realm := kctest.ImportStockBar(t, s.KC)
	issuer := s.KC.IssuerURL(realm)
	api := kctest.ProtectionAPI(issuer, "resource-server", "resource-server-secret")
	ticket := kctest.Ticket(t, api, kctest.RegisterIncoming(t, api, uma.IncomingResourceName("bob"), "bob", true).ID)
	tok, err := kctest.PostToken(e2etest.Timeout(t, time.Minute), issuer, "rqp-client", e2etest.RQPSecret,
		e2etest.GrantForm(ticket, e2etest.PushedClaims(map[string][]string{uma.ClaimSenderEmail: {"ceo@bar.example"}, uma.ClaimSenderIss: {s.CPURL}})))
	if err != nil {
		t.Fatal(err)
	}
	if got := permissionClaims(t, tok.AccessToken)[uma.ClaimSenderEmail]; len(got) != 1 || got[0] != "ceo@bar.example" {
		t.Fatalf("the stock realm's RPT says sender %v", got)
	}
	return tok.AccessToken
}

// rptMisuse: RPTs where they do not belong, altered, expired, spent, or
// carrying content other than the one they were granted for (seed step 9).
func (s *suite) rptMisuse(t *testing.T, short shortRPT) {
	t.Run("another owner's RPT at Bob's Incoming", func(t *testing.T) {
		c := newContent("for carol")
		rpt, _ := s.rptFor(t, "carol", c, e2etest.AliceEmail)
		s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", rpt, c), "insufficient_scope") })
		if m := created(t, s.post(t, "carol", rpt, c)); m.Owner != "carol" {
			t.Errorf("stored for %s", m.Owner)
		}
	})

	t.Run("tokens that are no RPT for this Incoming", func(t *testing.T) {
		c := newContent("not an RPT")
		other, err := kctest.ClientCredentials(e2etest.Timeout(t, time.Minute), s.asURI, "rqp-client", e2etest.RQPSecret, "")
		if err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{
			"Bob's own access token":                           s.CachedBobToken(t),
			"rqp-client's own token of this realm":             other.AccessToken,
			"the permission ticket":                            s.Ticket(t, "bob"),
			"Alice's access token of realm foo":                s.aliceClientToken(t),
			"a claims token":                                   s.claimsToken(t, s.Ticket(t, "bob"), e2etest.AliceEmail, ""),
			"an RPT of another realm believing pushed senders": s.stockRealmRPT(t),
		} {
			t.Run(name, func(t *testing.T) {
				s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", tok, c), "invalid_token") })
			})
		}
	})

	t.Run("a tampered RPT", func(t *testing.T) {
		c := newContent("tampered")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		parts := strings.Split(rpt, ".")
		claims, err := kctest.Claims(rpt)
		if err != nil {
			t.Fatal(err)
		}
		perm := claims["authorization"].(map[string]any)["permissions"].([]any)[0].(map[string]any)
		perm["claims"].(map[string]any)[uma.ClaimSenderEmail] = []string{"ceo@bar.example"}
		header := map[string]any{"alg": "RS256", "typ": "JWT"}
		s.unchanged(t, func() {
			for name, tok := range map[string]string{
				"payload changed under the signature": parts[0] + "." + testclaimsprovider.Part(claims) + "." + parts[2],
				"re-signed with alg none":             testclaimsprovider.Unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims),
				"re-signed with HS256":                testclaimsprovider.SignHS256(map[string]any{"alg": "HS256", "typ": "JWT"}, claims, []byte("resource-server-secret")),
				"re-signed with another RSA key":      s.attacker.SignRS256(header, claims),
				"signature of another token":          parts[0] + "." + parts[1] + "." + strings.Split(s.CachedBobToken(t), ".")[2],
				"truncated":                           parts[0] + "." + parts[1],
			} {
				t.Run(name, func(t *testing.T) { expectChallenge(t, s.post(t, "bob", tok, c), "invalid_token") })
			}
		})
		created(t, s.post(t, "bob", rpt, c)) // the genuine one still works: nothing above spent it
	})

	t.Run("a content-bound RPT used twice", func(t *testing.T) {
		c := newContent("only once")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		created(t, s.post(t, "bob", rpt, c))
		s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", rpt, c), "invalid_token") })
	})

	t.Run("content other than the one bound", func(t *testing.T) {
		c := newContent("the bound content")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		s.unchanged(t, func() {
			same := c
			same.body = []byte("THE BOUND CONTENT")
			expectError(t, s.post(t, "bob", rpt, same), 403, "insufficient_scope")
			longer := c
			longer.body = append([]byte(nil), c.body...)
			longer.body = append(longer.body, '!')
			expectError(t, s.post(t, "bob", rpt, longer), 403, "insufficient_scope")
			html := c
			html.typ = "text/html"
			expectError(t, s.post(t, "bob", rpt, html), 403, "insufficient_scope")
			renamed := c
			renamed.fileName = "invoice.pdf"
			expectError(t, s.post(t, "bob", rpt, renamed), 403, "insufficient_scope")
			// A body shorter than its Content-Length (the bound length): the
			// connection ends first, nothing is stored.
			hdr := c.header()
			hdr.Set("Authorization", "Bearer "+rpt)
			hdr.Set("Content-Length", fmt.Sprint(len(c.body)))
			expectError(t, s.raw(t, http.MethodPost, "/incoming/bob", hdr, c.body[:5]), 400, "invalid_request")
			// A chunked body of other content.
			req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPost, s.RSURL+"/incoming/bob", io.NopCloser(strings.NewReader("THE BOUND CONTENT")))
			req.ContentLength = -1
			req.Header = c.header()
			req.Header.Set("Authorization", "Bearer "+rpt)
			expectError(t, e2etest.Do(t, req), 403, "insufficient_scope")
		})
		created(t, s.post(t, "bob", rpt, c)) // refusals do not spend the RPT
	})

	t.Run("the RPT elsewhere than the Authorization header", func(t *testing.T) {
		c := newContent("query")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		s.unchanged(t, func() {
			req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPost, s.RSURL+"/incoming/bob?access_token="+url.QueryEscape(rpt), bytes.NewReader(c.body))
			req.Header = c.header()
			expectChallenge(t, e2etest.Do(t, req), "")
			form := url.Values{"access_token": {rpt}}.Encode()
			expectChallenge(t, s.RSDo(t, http.MethodPost, "/incoming/bob", "", []byte(form), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}), "")
			hdr := c.header()
			hdr["Authorization"] = []string{"Bearer " + rpt, "Bearer " + rpt}
			expectChallenge(t, s.RSDo(t, http.MethodPost, "/incoming/bob", "", c.body, hdr), "invalid_token")
			// Another scheme is no bearer credential (RFC 6750 3.1): the
			// challenge of a request without one.
			hdr["Authorization"] = []string{"Basic " + rpt}
			expectChallenge(t, s.RSDo(t, http.MethodPost, "/incoming/bob", "", c.body, hdr), "")
			hdr["Authorization"] = []string{"Bearer " + rpt + strings.Repeat("A", 17<<10)}
			expectChallenge(t, s.RSDo(t, http.MethodPost, "/incoming/bob", "", c.body, hdr), "invalid_token")
			hdr["Authorization"] = []string{"Bearer " + rpt}
			hdr.Set("X-Pad", strings.Repeat("A", 100<<10))
			if a := s.RSDo(t, http.MethodPost, "/incoming/bob", "", c.body, hdr); a.Status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("100 KiB of headers: %s, want 431", a)
			}
		})
	})

	t.Run("Host header naming another AS: Keycloak's issuer follows it, the Resource Server does not", func(t *testing.T) {
		// Keycloak without a fixed hostname (start-dev here) derives a realm's
		// issuer, hence the audience the policy expects, from the request.
		c := newContent("host header")
		ticket := s.Ticket(t, "bob")
		evil := strings.Replace(s.asURI, "127.0.0.1", "as.evil.example", 1)
		form := e2etest.GrantForm(ticket, s.PushedFor("bob", s.claimsToken(t, ticket, e2etest.AliceEmail, evil), c.meta()))
		req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPost, s.asURI+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rqp-client", e2etest.RQPSecret)
		u, _ := url.Parse(evil)
		req.Host = u.Host
		a := e2etest.Do(t, req)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if a.Status != http.StatusOK || json.Unmarshal(a.Body, &tok) != nil {
			// A Keycloak with a fixed hostname refuses at the AS already.
			if a.Status != http.StatusForbidden {
				t.Fatalf("grant with Host %s: %s", u.Host, a)
			}
			return
		}
		claims, _ := kctest.Claims(tok.AccessToken)
		t.Logf("Keycloak granted an RPT with iss %v", claims["iss"])
		s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", tok.AccessToken, c), "invalid_token") })
	})

	t.Run("stored HTML cannot run in the Resource Server's origin", func(t *testing.T) {
		c := content{body: []byte(`<html><script>fetch("/incoming/bob/messages")</script></html>`), typ: "text/html; charset=utf-8", fileName: "invoice.html"}
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		m := created(t, s.post(t, "bob", rpt, c))
		_, h := s.BobGet(t, s.CachedBobToken(t), "/messages/"+m.ID)
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("an HTML message is served with %v", h)
		}
	})

	t.Run("an expired RPT", func(t *testing.T) {
		wait := time.Until(short.exp.Add(31 * time.Second)) // the Resource Server's leeway is 30 s
		t.Logf("waiting %s for the RPT of %s to expire", wait.Round(time.Second), shortClient)
		time.Sleep(wait)
		s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", short.rpt, short.content), "invalid_token") })
	})
}

// shortRPT is a content-bound RPT of rqp-short (it expires within seconds),
// taken at the start and tried last.
type shortRPT struct {
	rpt     string
	exp     time.Time
	content content
}

func (s *suite) shortRPT(t *testing.T) shortRPT {
	c := newContent("expires soon")
	ticket := s.Ticket(t, "bob")
	rpt, te := s.Grant(t, shortClient, e2etest.GrantForm(ticket, s.PushedFor("bob", s.claimsToken(t, ticket, e2etest.AliceEmail, ""), c.meta())))
	if te != nil {
		t.Fatal(te)
	}
	claims, _ := kctest.Claims(rpt)
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	if exp-iat != shortLife {
		t.Fatalf("RPT of %s lives %v s, want %d", shortClient, exp-iat, shortLife)
	}
	return shortRPT{rpt: rpt, exp: time.Unix(int64(exp), 0), content: c}
}
