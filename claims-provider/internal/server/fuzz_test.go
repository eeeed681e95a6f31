package server

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/internal/uma"
)

// Placeholders in the Authorization input of FuzzClaimsTokenRequest: the
// fuzzer cannot forge a signature, so these stand for a freshly signed user
// token (Alice's) and client token (rqp-client's own), to let it explore what
// follows authentication.
const (
	userTokenPlaceholder   = "$USER"
	clientTokenPlaceholder = "$CLIENT"
)

// FuzzClaimsTokenRequest sends arbitrary POST /claims/token requests (the
// Authorization header, Content-Type and body as sent on the wire) to the
// handler. Whatever comes in: no panic and no 500; a refusal is JSON
// {error, error_description} with a known status (and a Bearer challenge on
// 401); a 200 only for an authenticated caller, and its claims token is
// Alice's, bound to exactly the ticket_digest and audience of the body.
// Seed corpus: testdata/fuzz/FuzzClaimsTokenRequest.
func FuzzClaimsTokenRequest(f *testing.F) {
	good := url.Values{uma.FormTicketDigest: {digest}, uma.FormAudience: {asURI}}.Encode()
	f.Add("Bearer "+userTokenPlaceholder, "application/x-www-form-urlencoded", good)
	f.Add("Bearer "+clientTokenPlaceholder, "application/x-www-form-urlencoded", good+"&email=alice%40foo.example")
	f.Add("Bearer "+clientTokenPlaceholder, "application/x-www-form-urlencoded; charset=utf-8", good+"&email=ALICE%40FOO.EXAMPLE&x=1")
	f.Add("bearer "+userTokenPlaceholder, "application/x-www-form-urlencoded", good+"&email=bob%40bar.example")
	f.Add("Basic YTpi", "application/json", `{"ticket_digest":"x"}`)
	f.Add("Bearer a.b.c", "application/x-www-form-urlencoded", "ticket_digest=;audience=%zz")
	fx := newFixture(f)
	user, client := fx.realm.token(f, nil), fx.realm.token(f, clientToken)
	h := fx.srv.Handler()
	f.Fuzz(func(t *testing.T, auth, contentType, body string) {
		authenticated := strings.Contains(auth, userTokenPlaceholder) || strings.Contains(auth, clientTokenPlaceholder)
		auth = strings.ReplaceAll(auth, userTokenPlaceholder, user)
		auth = strings.ReplaceAll(auth, clientTokenPlaceholder, client)
		req, ok := wireRequest(auth, contentType, body)
		if !ok {
			return // not a request Go's server would hand to the handler
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !authenticated {
				t.Fatalf("200 without a valid token (Authorization %q)", auth)
			}
			checkIssued(t, rec.Body.Bytes(), body)
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" || e["error_description"] == "" {
				t.Fatalf("%d with body %q", rec.Code, rec.Body.Bytes())
			}
			if strings.Contains(rec.Body.String(), "claims_token") {
				t.Fatalf("a refusal carries a claims token: %s", rec.Body.Bytes())
			}
			if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `Bearer realm="`+Realm+`"`) {
				t.Fatalf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
		default:
			t.Fatalf("status %d for Authorization %q, Content-Type %q, body %q: %s", rec.Code, auth, contentType, body, rec.Body.Bytes())
		}
	})
}

// wireRequest builds the request as Go's HTTP server would parse it from
// the wire; ok is false when it would not (malformed header values).
func wireRequest(auth, contentType, body string) (*http.Request, bool) {
	var b strings.Builder
	b.WriteString("POST " + PathClaimsToken + " HTTP/1.1\r\nHost: cp.test\r\n")
	if auth != "" {
		b.WriteString("Authorization: " + auth + "\r\n")
	}
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "192.0.2.1:1234"
	return req, true
}

// checkIssued: the answer's claims token is Alice's (the only person the
// fixture's directory knows), for exactly the ticket_digest and audience the
// body asked for.
func checkIssued(t *testing.T, answer []byte, body string) {
	t.Helper()
	var resp uma.ClaimsTokenResponse
	if err := json.Unmarshal(answer, &resp); err != nil || resp.TokenType != uma.TokenTypeClaimsToken {
		t.Fatalf("200 with %q", answer)
	}
	parts := strings.Split(resp.ClaimsToken, ".")
	if len(parts) != 3 {
		t.Fatalf("claims token %q", resp.ClaimsToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c issuer.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatalf("200 for a body that is no form: %q", body)
	}
	if c.Subject != "alice-id" || c.Email != "alice@foo.example" || !c.EmailVerified || c.Issuer != cpIss ||
		len(form["ticket_digest"]) != 1 || c.TicketDigest != form.Get(uma.FormTicketDigest) ||
		len(form["audience"]) != 1 || c.Audience != form.Get(uma.FormAudience) {
		t.Fatalf("issued %+v for the form %v", c, form)
	}
}
