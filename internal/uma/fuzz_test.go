package uma

import (
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// FuzzParseWWWAuthenticate: the parsers never panic and stay within their
// bounds; whatever challenges ParseWWWAuthenticate accepts render to a
// header that parses to the same challenges; whatever UMA challenge
// ParseChallenge accepts survives a round trip through Challenge.String, and
// it agrees with the strict parse. A newline in the input separates header
// lines. Seed corpus: testdata/fuzz/FuzzParseWWWAuthenticate (realistic and
// tricky headers; run as a test by go test).
func FuzzParseWWWAuthenticate(f *testing.F) {
	f.Add(`UMA realm="bar", as_uri="http://127.0.0.1:8080/realms/bar", ticket="eyJhbGciOiJIUzUxMiJ9.e30.sig"`)
	f.Add(`Bearer error="invalid_token", UMA ticket=t, as_uri=a`)
	f.Add(`Negotiate abc==, UMA as_uri="a\"b", ticket="\\"`)
	f.Add("Bearer realm=x y\nUMA as_uri=\"a\", ticket=\"t\"")
	f.Fuzz(func(t *testing.T, v string) {
		values := strings.Split(v, "\n")
		cs, strictErr := ParseWWWAuthenticate(values)
		if strictErr == nil {
			if len(cs) > MaxChallenges {
				t.Fatalf("%d challenges accepted", len(cs))
			}
			for _, c := range cs {
				if c.Scheme == "" || len(c.Params) > MaxChallengeParams || (c.Token68 != "" && len(c.Params) > 0) {
					t.Fatalf("accepted challenge %#v", c)
				}
			}
			rendered := render(cs)
			again, err := ParseWWWAuthenticate([]string{rendered})
			if err != nil || !reflect.DeepEqual(again, cs) {
				t.Fatalf("rendered %q parses to %#v, %v; want %#v", rendered, again, err, cs)
			}
		}
		h := http.Header{"Www-Authenticate": values}
		c, err := ParseChallenge(h)
		if strictErr == nil {
			// Every line parses: ParseChallenge must find the first UMA
			// challenge the strict parse found.
			var first *AuthChallenge
			for i := range cs {
				if strings.EqualFold(cs[i].Scheme, "UMA") {
					first = &cs[i]
					break
				}
			}
			switch {
			case first == nil && err == nil:
				t.Fatalf("ParseChallenge found %+v where the strict parse found no UMA challenge", c)
			case first != nil && first.Params["as_uri"] != "" && first.Params["ticket"] != "" &&
				(err != nil || c.ASURI != first.Params["as_uri"] || c.Ticket != first.Params["ticket"] || c.Realm != first.Params["realm"]):
				t.Fatalf("ParseChallenge = %+v, %v; the strict parse found %#v", c, err, *first)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrChallenge) {
				t.Fatalf("error %v does not wrap ErrChallenge", err)
			}
			return
		}
		if c.ASURI == "" || c.Ticket == "" {
			t.Fatalf("accepted %+v without as_uri or ticket", c)
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

// render writes challenges as one header value: parameters in sorted order,
// every value a quoted string.
func render(cs []AuthChallenge) string {
	var parts []string
	for _, c := range cs {
		s := c.Scheme
		if c.Token68 != "" {
			s += " " + c.Token68
		}
		keys := make([]string, 0, len(c.Params))
		for k := range c.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i == 0 {
				s += " "
			} else {
				s += ", "
			}
			s += k + "=" + quote(c.Params[k])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// FuzzDecodePushedClaims: decoding never panics, refusals wrap
// ErrPushedClaims, what it accepts stays within the bounds (keys, values per
// key) and encodes and decodes to the very same claims. Seed corpus:
// testdata/fuzz/FuzzDecodePushedClaims (run as a test by go test).
func FuzzDecodePushedClaims(f *testing.F) {
	f.Add("eyJrIjpbInYiXX0")
	f.Add("eyJjbGFpbXNfdG9rZW4iOlsiYS5iLmMiXX0=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePushedClaims(s)
		if err != nil {
			if !errors.Is(err, ErrPushedClaims) {
				t.Fatalf("error %v does not wrap ErrPushedClaims", err)
			}
			return
		}
		if len(p) > MaxPushedClaimKeys || len(s) > MaxPushedClaimsEncoded {
			t.Fatalf("accepted %d keys from %d characters", len(p), len(s))
		}
		for k, v := range p {
			if len(v) == 0 || len(v) > MaxPushedClaimValues {
				t.Fatalf("accepted %d values for %q", len(v), k)
			}
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", s, err)
		}
		p2, err := DecodePushedClaims(enc)
		if err != nil || !reflect.DeepEqual(p2, p) {
			t.Fatalf("round trip of %q: %v %v, want %v", s, p2, err, p)
		}
	})
}

// quote renders s as a quoted-string, as Challenge.String does.
func quote(s string) string {
	var b strings.Builder
	writeQuoted(&b, s)
	return b.String()
}
