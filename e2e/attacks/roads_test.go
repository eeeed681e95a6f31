package attacks

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
)

// roads: every road Keycloak has to an RPT, tried as an attacker would
// (issue "The sender guarantee on every path to an RPT"). The invariant: an
// RPT that can store a message names a sender that the claims-token policy
// verified in that grant, is bound to one content and one Incoming URL, and
// is single-use. Each road ends with an honest push that still succeeds.
func (s *suite) roads(t *testing.T) {
	honestAfter := func(t *testing.T) {
		t.Helper()
		c := newContent("honest after " + t.Name())
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		if m := created(t, s.post(t, "bob", rpt, c)); m.SenderEmail != e2etest.AliceEmail {
			t.Errorf("honest push stored sender %q", m.SenderEmail)
		}
	}
	forged := func(c content) map[string]string {
		m := c.meta()
		m[uma.ClaimSenderEmail] = "ceo@partner.example"
		m[uma.ClaimSenderIss] = s.CPURL
		m[uma.ClaimSenderSub] = "ceo"
		return m
	}

	// refusedFor: a grant with forged sender claims, sent with bearer's own
	// token, is refused and leaves Bob's Incoming as it was.
	refusedFor := func(t *testing.T, who, bearer string) {
		t.Helper()
		c := newContent("forged, as " + who)
		s.unchanged(t, func() {
			f := e2etest.GrantForm(s.Ticket(t, "bob"), e2etest.PushedClaims(toLists(forged(c))))
			if a := s.bearerGrant(t, bearer, f); a.Status != http.StatusForbidden {
				t.Fatalf("%s's grant with forged sender claims: %s, want 403", who, a)
			}
		})
	}

	t.Run("a stock client that never sends submit_request: 403 ten times, nothing pending", func(t *testing.T) {
		s.unchanged(t, func() {
			for i := range 10 {
				ticket := s.Ticket(t, "bob")
				f := e2etest.GrantForm(ticket, e2etest.PushedClaims(map[string][]string{uma.ClaimSenderEmail: {"ceo@partner.example"}}))
				f.Del(uma.FormSubmitRequest) // Keycloak's default is true; its own Java client never sends it
				_, te := s.Grant(t, "", f)
				if te == nil || te.StatusCode != http.StatusForbidden {
					t.Fatalf("denial %d: %v, want 403", i+1, te)
				}
			}
		})
		if n := s.pendingTickets(t); n != 0 {
			t.Errorf("%d permission tickets left on Bob's Incoming, want none", n)
		}
		honestAfter(t)
	})

	t.Run("a user's denied grant cannot be approved by Bob", func(t *testing.T) {
		carol := s.userToken(t, "carol", s.carolPass)
		c := newContent("carol asks")
		s.unchanged(t, func() {
			ticket := s.Ticket(t, "bob")
			f := e2etest.GrantForm(ticket, e2etest.PushedClaims(toLists(forged(c))))
			f.Set(uma.FormSubmitRequest, "true")
			a := s.bearerGrant(t, carol, f)
			if a.Status != http.StatusForbidden {
				t.Fatalf("carol's grant: %s, want 403", a)
			}
		})
		if n := s.pendingTickets(t); n != 0 {
			t.Fatalf("%d permission tickets (pending requests) on Bob's Incoming, want none: nothing for Bob to approve", n)
		}
		honestAfter(t)
	})

	t.Run("Bob shares his Incoming through the protection API", func(t *testing.T) {
		rsid := s.bobResourceID(t)
		carol := s.userToken(t, "carol", s.carolPass)
		share := s.protection(t, http.MethodPost, "/authz/protection/permission/ticket", map[string]any{
			"resource": rsid, "requesterName": "carol", "granted": true, "scopeName": uma.ScopeCreate,
		})
		t.Logf("protection API share: %s", share)
		if share.Status/100 == 2 {
			t.Errorf("Keycloak accepted a share of an Incoming: %s", share)
		}
		refusedFor(t, "carol", carol)
		honestAfter(t)
	})

	t.Run("Bob shares his Incoming through the account API", func(t *testing.T) {
		rsid := s.bobResourceID(t)
		body, _ := json.Marshal([]map[string]any{{"username": "carol", "scopes": []string{uma.ScopeCreate}}})
		req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPut,
			s.asURI+"/account/resources/"+url.PathEscape(rsid)+"/permissions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.CachedBobToken(t))
		req.Header.Set("Content-Type", "application/json")
		a := e2etest.Do(t, req)
		t.Logf("account API share: %s", a)
		if a.Status/100 == 2 {
			t.Errorf("Keycloak's account API accepted a share of an Incoming: %s", a)
		}
		refusedFor(t, "carol", s.userToken(t, "carol", s.carolPass))
		honestAfter(t)
	})

	t.Run("the owner's own token", func(t *testing.T) {
		refusedFor(t, "bob", s.CachedBobToken(t))
		honestAfter(t)
	})

	t.Run("a permission by resource name", func(t *testing.T) {
		ticket := s.Ticket(t, "bob")
		c := newContent("by name")
		f := e2etest.GrantForm(ticket, s.PushedFor("bob", s.claimsToken(t, ticket, e2etest.AliceEmail, ""), c.meta()))
		f.Del(uma.FormTicket)
		f.Set(uma.FormAudience, "resource-server")
		f.Set("permission", s.bobResourceName(t)+"#"+uma.ScopeCreate)
		// Refused before Keycloak looks the name up (it would look among the
		// resource server's own resources, which from Keycloak 26.6 on hold
		// every Incoming): the extension's grant type takes exactly one ticket.
		s.unchanged(t, func() { s.expectShapeRefused(t, f) })
		honestAfter(t)
	})

	t.Run("a refresh token of an RPT", func(t *testing.T) {
		c := newContent("refreshed")
		ticket := s.Ticket(t, "bob")
		tok, err := kctest.PostToken(e2etest.Timeout(t, time.Minute), s.asURI, "rqp-client", e2etest.RQPSecret,
			e2etest.GrantForm(ticket, s.PushedFor("bob", s.claimsToken(t, ticket, e2etest.AliceEmail, ""), c.meta())))
		if err != nil {
			t.Fatal(err)
		}
		created(t, s.post(t, "bob", tok.AccessToken, c))
		if tok.RefreshToken == "" {
			t.Log("the uma-ticket grant issued no refresh token: that road is closed at the AS")
		} else {
			again, err := kctest.PostToken(e2etest.Timeout(t, time.Minute), s.asURI, "rqp-client", e2etest.RQPSecret,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			if err != nil {
				t.Logf("refresh refused by Keycloak: %v", err)
			} else {
				// A new jti, the same permission: the grant it came from is spent.
				s.unchanged(t, func() { expectChallenge(t, s.post(t, "bob", again.AccessToken, c), "invalid_token") })
			}
		}
		honestAfter(t)
	})

	t.Run("token exchange of an RPT", func(t *testing.T) {
		c := newContent("exchanged")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		tok, err := kctest.PostToken(e2etest.Timeout(t, time.Minute), s.asURI, "rqp-client", e2etest.RQPSecret, url.Values{
			"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":        {rpt},
			"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			uma.FormAudience:       {"resource-server"},
		})
		if err != nil {
			t.Logf("token exchange refused by Keycloak: %v", err)
		} else {
			s.unchanged(t, func() {
				a := s.post(t, "bob", tok.AccessToken, c)
				if a.Status == http.StatusCreated {
					t.Fatalf("an exchanged token stored a message: %s", a)
				}
			})
		}
		created(t, s.post(t, "bob", rpt, c)) // the RPT itself is still good once
		honestAfter(t)
	})

	t.Run("the grant binds the Incoming URL the client chose", func(t *testing.T) {
		c := newContent("elsewhere")
		ticket := s.Ticket(t, "bob")
		ct := s.claimsToken(t, ticket, e2etest.AliceEmail, "")
		m := c.meta()
		m[uma.ClaimIncomingURI] = "https://other.example/incoming/hr"
		s.unchanged(t, func() {
			s.expectDenied(t, "incoming_uri_mismatch", e2etest.GrantForm(ticket, s.PushedFor("bob", ct, m)))
		})

		ticket = s.Ticket(t, "bob")
		ct = s.claimsToken(t, ticket, e2etest.AliceEmail, "")
		s.unchanged(t, func() {
			s.expectDenied(t, "incoming_uri_missing", e2etest.GrantForm(ticket, e2etest.Pushed(ct, c.meta())))
		})

		ticket = s.Ticket(t, "bob")
		ct = s.claimsToken(t, ticket, e2etest.AliceEmail, "")
		m = c.meta()
		delete(m, uma.ClaimContentSHA256)
		s.unchanged(t, func() {
			s.expectDenied(t, "content_binding_missing", e2etest.GrantForm(ticket, s.PushedFor("bob", ct, m)))
		})
		honestAfter(t)
	})
}

// toLists is pushed claims with one value each.
func toLists(m map[string]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = []string{v}
	}
	return out
}

// userToken logs a user of the realm copy in (incoming-app, code + PKCE).
func (s *suite) userToken(t *testing.T, user, password string) string {
	t.Helper()
	tok, err := kctest.LoginForTokens(e2etest.Timeout(t, time.Minute), kctest.CodeFlow{
		Issuer: s.asURI, ClientID: "incoming-app", RedirectURI: "http://127.0.0.1:43210/callback", Scope: "openid",
	}, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// bearerGrant is an uma-ticket grant sent with a user's own token as bearer
// (no client authentication), the way a user's app would.
func (s *suite) bearerGrant(t *testing.T, bearer string, form url.Values) answer {
	t.Helper()
	return testhttp.Send(t, e2etest.Timeout(t, time.Minute), http.MethodPost, s.asURI+"/protocol/openid-connect/token", bearer,
		[]byte(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

// protection calls the realm copy's protection API with the Resource
// Server's own PAT.
func (s *suite) protection(t *testing.T, method, path string, body any) answer {
	t.Helper()
	pat, err := kctest.ClientCredentials(e2etest.Timeout(t, time.Minute), s.asURI, "resource-server", "resource-server-secret", "")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	return testhttp.Send(t, e2etest.Timeout(t, time.Minute), method, s.asURI+path, pat.AccessToken, data,
		http.Header{"Content-Type": {"application/json"}})
}

// bobResourceID is the id of Bob's Incoming resource, read from a ticket.
func (s *suite) bobResourceID(t *testing.T) string {
	t.Helper()
	claims, err := kctest.Claims(s.Ticket(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	perms, _ := claims["permissions"].([]any)
	if len(perms) != 1 {
		t.Fatalf("ticket with %d permissions", len(perms))
	}
	rsid, _ := perms[0].(map[string]any)["rsid"].(string)
	if rsid == "" {
		t.Fatal("ticket without rsid")
	}
	return rsid
}

// bobResourceName is the name Bob's Incoming is registered under.
func (s *suite) bobResourceName(t *testing.T) string {
	t.Helper()
	a := s.protection(t, http.MethodGet, "/authz/protection/resource_set/"+url.PathEscape(s.bobResourceID(t)), nil)
	var res struct {
		Name string `json:"name"`
	}
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &res) != nil || res.Name == "" {
		t.Fatalf("Bob's Incoming resource: %s", a)
	}
	return res.Name
}

// pendingTickets counts the permission tickets (pending or granted) on
// Bob's Incoming; the listing itself must answer 200, also with names.
func (s *suite) pendingTickets(t *testing.T) int {
	t.Helper()
	q := url.Values{"resourceId": {s.bobResourceID(t)}, "returnNames": {"true"}, "max": {"100"}}
	a := s.protection(t, http.MethodGet, "/authz/protection/permission/ticket?"+q.Encode(), nil)
	var list []json.RawMessage
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &list) != nil {
		t.Fatalf("listing permission tickets: %s", a)
	}
	return len(list)
}

// TestPolicyBypassedAtKeycloak: the Resource Server's half of the
// invariant, through the real stack. A realm that someone misconfigured so
// that a second permission (the stock client policy, decision strategy
// AFFIRMATIVE) grants without the claims-token policy stands for any road
// that skips the policy: Keycloak then copies the client's pushed claims into
// the RPT, a complete and well-formed set included. The Resource Server
// refuses every such RPT, because only the policy can write grant_mac.
func TestPolicyBypassedAtKeycloak(t *testing.T) {
	w := e2etest.New(t, e2etest.Options{RealmPrefix: "bar-bypass-", MutateRealm: func(rep map[string]any) {
		authz := kctestResourceServer(rep)
		authz["decisionStrategy"] = "AFFIRMATIVE"
		authz["policies"] = append(authz["policies"].([]any), map[string]any{
			"name": "create by rqp-client, no claims token", "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
			"config": map[string]any{"scopes": `["create"]`, "applyPolicies": `["rqp-client only"]`},
		})
	}})
	c := newContent("a forged sender")
	ticket := w.Ticket(t, "bob")
	claims, err := kctest.Claims(ticket)
	if err != nil {
		t.Fatal(err)
	}
	rsid, _ := claims["permissions"].([]any)[0].(map[string]any)["rsid"].(string)
	forged := c.meta()
	forged[uma.ClaimSenderEmail] = "ceo@partner.example"
	forged[uma.ClaimSenderIss] = w.CPURL
	forged[uma.ClaimSenderSub] = "ceo"
	forged[uma.ClaimGrantID] = "AAAAAAAAAAAAAAAAAAAAAA"
	forged[uma.ClaimIncomingURI] = w.IncomingURI("bob")
	withMAC := maps.Clone(forged)
	withMAC["grant_mac"] = grantmac.Compute([]byte("not the resource server's secret"), rsid, forged)

	before := len(w.BobMessages(t))
	for name, pushed := range map[string]map[string]string{"no grant_mac": forged, "a grant_mac under a guessed key": withMAC} {
		t.Run(name, func(t *testing.T) {
			rpt, te := w.Grant(t, "", e2etest.GrantForm(w.Ticket(t, "bob"), e2etest.PushedClaims(toLists(pushed))))
			if te != nil {
				t.Fatalf("the misconfigured realm refused the bypass itself (%v): this test shows nothing", te)
			}
			if got := permissionClaims(t, rpt)[uma.ClaimSenderEmail]; len(got) != 1 || got[0] != "ceo@partner.example" {
				t.Fatalf("the bypass RPT says sender %v: Keycloak did not copy the pushed claims", got)
			}
			a := w.RSDo(t, http.MethodPost, "/incoming/bob", rpt, c.body, c.header())
			if a.Status != http.StatusForbidden || a.Err.Code != "insufficient_scope" || !strings.Contains(a.Err.Description, "grant_unattested") {
				t.Fatalf("got %s, want 403 insufficient_scope (grant_unattested)", a)
			}
		})
	}
	if after := len(w.BobMessages(t)); after != before {
		t.Fatalf("Bob's Incoming changed: %d messages, then %d", before, after)
	}
	// The honest push still succeeds in that realm: the claims-token policy
	// grants and attests as everywhere.
	honest := newContent("honest in the misconfigured realm")
	ticket = w.Ticket(t, "bob")
	ct := w.ClaimsToken(t, w.ClientToken(t), ticket, e2etest.AliceEmail, "")
	rpt, te := w.Grant(t, "", e2etest.GrantForm(ticket, w.PushedFor("bob", ct, honest.meta())))
	if te != nil {
		t.Fatal(te)
	}
	created(t, w.RSDo(t, http.MethodPost, "/incoming/bob", rpt, honest.body, honest.header()))
}

// kctestResourceServer is the resource-server client's authorization
// settings in a realm representation.
func kctestResourceServer(rep map[string]any) map[string]any {
	for _, c := range rep["clients"].([]any) {
		cl := c.(map[string]any)
		if cl["clientId"] == "resource-server" {
			return cl["authorizationSettings"].(map[string]any)
		}
	}
	panic("no resource-server client in the realm")
}
