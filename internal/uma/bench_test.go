package uma

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkParseChallenge parses the Resource Server's 401 challenge as the
// RqP client does at step 2: a ticket of Keycloak's size (a signed JWT of
// about 1,000 characters), behind a Bearer challenge on its own line as a
// proxy might add one.
func BenchmarkParseChallenge(b *testing.B) {
	ticket := "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIiwia2lkIiA6ICJrMSJ9." + strings.Repeat("eyJleHAiOjE3NjQxNTY4MDB9", 36) + ".c2lnbmF0dXJl"
	want := Challenge{Realm: "bar", ASURI: "http://127.0.0.1:8080/realms/bar", Ticket: ticket}
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"uma-only", []string{want.String()}},
		{"after-bearer", []string{`Bearer realm="proxy", error="invalid_token"`, want.String()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := http.Header{}
			for _, l := range tc.lines {
				h.Add("WWW-Authenticate", l)
			}
			b.SetBytes(int64(len(want.String())))
			b.ReportAllocs()
			for b.Loop() {
				got, err := ParseChallenge(h)
				if err != nil || got != want {
					b.Fatalf("ParseChallenge = %+v, %v", got, err)
				}
			}
		})
	}
}
