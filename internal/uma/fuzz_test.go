package uma

import (
	"net/http"
	"testing"
)

// FuzzParseWWWAuthenticate: the parser never panics, and whatever UMA
// challenge it accepts survives a round trip through Challenge.String.
// Seed corpus: testdata/fuzz/FuzzParseWWWAuthenticate (run as a test by go test).
func FuzzParseWWWAuthenticate(f *testing.F) {
	f.Add(`UMA realm="bar", as_uri="http://127.0.0.1:8080/realms/bar", ticket="eyJhbGciOiJIUzUxMiJ9.e30.sig"`)
	f.Add(`Bearer error="invalid_token", UMA ticket=t, as_uri=a`)
	f.Add(`Negotiate abc==, UMA as_uri="a\"b", ticket="\\"`)
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Www-Authenticate": {v}}
		c, err := ParseChallenge(h)
		if err != nil {
			return
		}
		h2 := http.Header{"Www-Authenticate": {c.String()}}
		c2, err := ParseChallenge(h2)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", c.String(), err)
		}
		if c2 != c {
			t.Fatalf("round trip changed %+v into %+v", c, c2)
		}
	})
}

// FuzzDecodePushedClaims: decoding never panics and what it accepts encodes
// and decodes to the same claims.
func FuzzDecodePushedClaims(f *testing.F) {
	f.Add("eyJrIjpbInYiXX0")
	f.Add("eyJjbGFpbXNfdG9rZW4iOlsiYS5iLmMiXX0=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePushedClaims(s)
		if err != nil {
			return
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", s, err)
		}
		p2, err := DecodePushedClaims(enc)
		if err != nil || len(p2) != len(p) {
			t.Fatalf("round trip of %q: %v %v", s, p2, err)
		}
	})
}
