package e2etest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
)

// The flow's steps one by one, by hand, for tests that need to stop between
// them or to change what a step sends.

// Answer is an HTTP answer with its JSON error body, if any.
type Answer = testhttp.Response

// Do sends req and reads the answer.
func Do(t testing.TB, req *http.Request) Answer {
	t.Helper()
	return testhttp.Do(t, nil, req)
}

// RSDo sends a request to the Resource Server; bearer, when set, goes into
// Authorization.
func (w *World) RSDo(t testing.TB, method, path, bearer string, body []byte, hdr http.Header) Answer {
	t.Helper()
	return testhttp.Send(t, Timeout(t, time.Minute), method, w.RSURL+path, bearer, body, hdr)
}

// Ticket is steps 1-2: a POST to owner's Incoming without a token, and the
// ticket of the UMA challenge (whose as_uri must be this world's realm).
func (w *World) Ticket(t testing.TB, owner string) string {
	t.Helper()
	a := w.RSDo(t, http.MethodPost, "/incoming/"+owner, "", []byte("x"), nil)
	if a.Status != http.StatusUnauthorized {
		t.Fatalf("POST /incoming/%s without token: %s", owner, a)
	}
	ch, err := uma.ParseChallenge(a.Header)
	if err != nil {
		t.Fatal(err)
	}
	if ch.ASURI != w.KC.IssuerURL(w.Realm) {
		t.Fatalf("as_uri %s, want %s", ch.ASURI, w.KC.IssuerURL(w.Realm))
	}
	return ch.Ticket
}

// ClientToken is steps 3-4 in the client-credentials variant: rqp-client's own
// token at realm foo with the Claims Provider in aud.
func (w *World) ClientToken(t testing.TB) string {
	t.Helper()
	tok, err := kctest.ClientCredentials(Timeout(t, time.Minute), w.KC.IssuerURL("foo"), "rqp-client", RQPSecret, uma.ClaimsProviderScope)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// CPDo posts a claims-token request (step 5) to the Claims Provider.
func (w *World) CPDo(t testing.TB, bearer string, form url.Values) Answer {
	t.Helper()
	return testhttp.Send(t, Timeout(t, time.Minute), http.MethodPost, w.CPURL+uma.ClaimsTokenPath, bearer,
		[]byte(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

// ClaimsToken is steps 5-6: a claims token for email from the Claims
// Provider (with bearer, rqp-client's own token of foo), bound to ticket,
// for audience (default this world's AS).
func (w *World) ClaimsToken(t testing.TB, bearer, ticket, email, audience string) string {
	t.Helper()
	if audience == "" {
		audience = w.KC.IssuerURL(w.Realm)
	}
	a := w.CPDo(t, bearer, url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {audience}, uma.FormEmail: {email}})
	var tok uma.ClaimsTokenResponse
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &tok) != nil || tok.ClaimsToken == "" {
		t.Fatalf("claims token for %s: %s", email, a)
	}
	return tok.ClaimsToken
}

// PushedClaims is claim_token: BASE64URL of the JSON of claims as given (no
// bounds: tests may push what no client would).
func PushedClaims(claims any) string {
	data, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// Pushed is the claim_token of a claims token and extra claims (one value
// each).
func Pushed(claimsToken string, extra map[string]string) string {
	p := map[string][]string{uma.ClaimClaimsToken: {claimsToken}}
	for k, v := range extra {
		p[k] = []string{v}
	}
	return PushedClaims(p)
}

// IncomingURI is the canonical URL of owner's Incoming at this world's
// Resource Server (uma.CanonicalIncomingURL): the incoming_uri it puts on
// its permission tickets, and the one an honest client pushes. The Resource
// Server's public URL is its listen address, which RSURL is.
func (w *World) IncomingURI(owner string) string {
	u, err := uma.CanonicalIncomingURL(w.RSURL + uma.IncomingPath(owner))
	if err != nil {
		panic("e2etest: " + err.Error())
	}
	return u
}

// PushedFor is the claim_token an honest client sends to owner's Incoming
// at this world's Resource Server: the claims token, incoming_uri, and extra
// claims (one value each; an incoming_uri among them replaces the honest
// one).
func (w *World) PushedFor(owner, claimsToken string, extra map[string]string) string {
	p := map[string]string{uma.ClaimIncomingURI: w.IncomingURI(owner)}
	for k, v := range extra {
		p[k] = v
	}
	return Pushed(claimsToken, p)
}

// GrantForm is the uma-ticket grant form of step 7.
func GrantForm(ticket, claimToken string) url.Values {
	return url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ticket},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {claimToken},
		uma.FormSubmitRequest:    {"false"},
	}
}

// Grant is step 7 as client (rqp-client when empty) at this world's AS: the
// RPT, or Keycloak's refusal.
func (w *World) Grant(t testing.TB, client string, form url.Values) (string, *keycloak.Error) {
	t.Helper()
	if client == "" {
		client = "rqp-client"
	}
	tok, err := kctest.PostToken(Timeout(t, time.Minute), w.KC.IssuerURL(w.Realm), client, RQPSecret, form)
	if err == nil {
		return tok.AccessToken, nil
	}
	var te *keycloak.Error
	if !errors.As(err, &te) {
		t.Fatal(err)
	}
	return "", te
}

// ForgetBobToken drops Bob's cached token (after a Keycloak restart its
// keys, hence his token, are no longer valid).
func (w *World) ForgetBobToken() {
	w.bobMu.Lock()
	w.bobTok = ""
	w.bobMu.Unlock()
}
