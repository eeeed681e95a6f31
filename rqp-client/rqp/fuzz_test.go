package rqp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// FuzzCheckClaimsToken feeds arbitrary Claims Provider answers to step 6.
// What the client accepts and pushes at step 7 is a claims token of bounded
// size, of the right token_type, bound to this ticket's digest and addressed
// to this AS. Seed corpus: testdata/fuzz/FuzzCheckClaimsToken.
func FuzzCheckClaimsToken(f *testing.F) {
	digest, audience := uma.TicketDigest("ticket"), "https://as.bar.example/realms/bar"
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"ticket_digest":"` + digest + `","aud":"` + audience + `"}`))
	good, _ := json.Marshal(map[string]any{"claims_token": "eyJhbGciOiJFUzI1NiJ9." + payload + ".c2ln", "token_type": uma.TokenTypeClaimsToken, "expires_in": 120})
	f.Add(string(good))
	f.Add(strings.Replace(string(good), "claims-token", "bearer", 1))
	f.Add(`{"claims_token":"a.b.c","token_type":"` + uma.TokenTypeClaimsToken + `"}`)
	f.Fuzz(func(t *testing.T, body string) {
		a := &answer{resp: &http.Response{StatusCode: http.StatusOK}, body: []byte(body)}
		ca, claims, se := checkClaimsToken(context.Background(), "https://cp.foo.example/claims/token", a, digest, audience)
		if se != nil {
			if se.Step != StepClaimsToken || se.Kind != KindProtocol {
				t.Fatalf("refusal %+v", se)
			}
			return
		}
		if ca.TokenType != uma.TokenTypeClaimsToken || ca.ClaimsToken == "" || len(ca.ClaimsToken) > maxClaimsTokenBytes {
			t.Fatalf("accepted %+v", ca)
		}
		if claimString(claims, "ticket_digest") != digest || !audContains(claims, audience) {
			t.Fatalf("accepted claims %v", claims)
		}
	})
}

// FuzzEmailDomain: the domain discovery connects to is a lower-case DNS name
// with a dot and a non-numeric top-level label: never an IP address, a port,
// a path or user info smuggled into https://{domain}/.
func FuzzEmailDomain(f *testing.F) {
	for _, s := range []string{"alice@foo.example", "alice@FOO.example.", "a@b@evil.example", "a@127.0.0.1", "a@evil.example:8443", "a@evil.example/x", "a@[::1]", "a@xn--fo-2kb.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		d, err := emailDomain(email)
		if err != nil {
			return
		}
		if d != strings.ToLower(d) || !strings.Contains(d, ".") || strings.ContainsAny(d, ":/@[]?#%\\ ") || !validDomain(d) {
			t.Fatalf("emailDomain(%q) = %q", email, d)
		}
		u, err := checkURL("https://"+d+uma.DiscoveryPath, false)
		if err != nil || u.Host != d || u.Path != uma.DiscoveryPath {
			t.Fatalf("https://%s%s parses to %v, %v", d, uma.DiscoveryPath, u, err)
		}
	})
}
