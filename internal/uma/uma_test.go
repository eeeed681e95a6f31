package uma

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestTicketDigest(t *testing.T) {
	// Independent computation: SHA-256 of "abc" is a well-known vector.
	got := TicketDigest("abc")
	want := "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
	if got != want {
		t.Fatalf("TicketDigest(abc) = %q, want %q", got, want)
	}
	if !ValidTicketDigest(got) {
		t.Fatalf("ValidTicketDigest(%q) = false", got)
	}
}

func TestValidTicketDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	good := base64.RawURLEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{good, true},
		{"", false},
		{good[:42], false},
		{good + "A", false},
		{good[:42] + "=", false},
		{strings.Replace(good, good[:1], "+", 1), false},
		{strings.Replace(good, good[:1], "/", 1), false},
		// 43 characters whose last one carries non-zero padding bits.
		{good[:42] + "B", good[42] == 'B'},
	} {
		if got := ValidTicketDigest(tc.in); got != tc.want {
			t.Errorf("ValidTicketDigest(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPushedClaimsRoundTrip(t *testing.T) {
	p := PushedClaims{}
	p.Set(ClaimClaimsToken, "a.b.c")
	p.Set(ClaimContentSHA256, strings.Repeat("ab", 32))
	enc, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(enc, "+/=") {
		t.Fatalf("encoding %q is not unpadded BASE64URL", enc)
	}
	got, err := DecodePushedClaims(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip: got %v, want %v", got, p)
	}
	if got.Get(ClaimClaimsToken) != "a.b.c" {
		t.Fatalf("Get = %q", got.Get(ClaimClaimsToken))
	}
}

func TestDecodePushedClaimsRefusals(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	many := "{"
	for i := 0; i <= MaxPushedClaimKeys; i++ {
		if i > 0 {
			many += ","
		}
		many += `"k` + string(rune('a'+i)) + `":["v"]`
	}
	many += "}"
	for name, in := range map[string]string{
		"not base64":       "!!!",
		"raw JWT":          "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2ln",
		"not an object":    b64(`["a"]`),
		"scalar value":     b64(`{"k":"v"}`),
		"number in array":  b64(`{"k":[1]}`),
		"null value":       b64(`{"k":null}`),
		"empty array":      b64(`{"k":[]}`),
		"too many values":  b64(`{"k":["1","2","3","4","5"]}`),
		"trailing data":    b64(`{"k":["v"]} {}`),
		"too many keys":    b64(many),
		"oversized":        strings.Repeat("A", MaxPushedClaimsEncoded+1),
		"standard base64+": base64.StdEncoding.EncodeToString([]byte(`{"k":[">>>?"]}`)),
	} {
		if _, err := DecodePushedClaims(in); !errors.Is(err, ErrPushedClaims) {
			t.Errorf("%s: err = %v, want ErrPushedClaims", name, err)
		}
	}
}

func TestChallengeStringParses(t *testing.T) {
	c := Challenge{Realm: "bar", ASURI: "http://kc/realms/bar", Ticket: `ey"J\h`}
	h := http.Header{}
	h.Set("WWW-Authenticate", c.String())
	got, err := ParseChallenge(h)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("got %+v, want %+v", got, c)
	}
	if want := `UMA realm="bar", as_uri="http://kc/realms/bar", ticket="ey\"J\\h"`; c.String() != want {
		t.Fatalf("String() = %s, want %s", c.String(), want)
	}
}

func TestParseWWWAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []AuthChallenge
	}{
		{"uma", []string{`UMA realm="bar", as_uri="https://as/realms/bar", ticket="t1"`},
			[]AuthChallenge{{Scheme: "UMA", Params: map[string]string{"realm": "bar", "as_uri": "https://as/realms/bar", "ticket": "t1"}}}},
		{"any order, tokens, case", []string{`uma TICKET=t1,as_uri="x" ,  Realm=bar`},
			[]AuthChallenge{{Scheme: "uma", Params: map[string]string{"realm": "bar", "as_uri": "x", "ticket": "t1"}}}},
		{"several challenges one line", []string{`Bearer realm="r", error="invalid_token", UMA realm="bar", as_uri="a", ticket="t"`},
			[]AuthChallenge{
				{Scheme: "Bearer", Params: map[string]string{"realm": "r", "error": "invalid_token"}},
				{Scheme: "UMA", Params: map[string]string{"realm": "bar", "as_uri": "a", "ticket": "t"}}}},
		{"several lines", []string{`Basic`, `UMA as_uri="a", ticket="t"`},
			[]AuthChallenge{{Scheme: "Basic", Params: map[string]string{}}, {Scheme: "UMA", Params: map[string]string{"as_uri": "a", "ticket": "t"}}}},
		{"token68", []string{`Negotiate abc+/==, UMA as_uri=a, ticket=t`},
			[]AuthChallenge{{Scheme: "Negotiate", Params: map[string]string{}, Token68: "abc+/=="}, {Scheme: "UMA", Params: map[string]string{"as_uri": "a", "ticket": "t"}}}},
		{"escapes and commas in quotes", []string{`UMA as_uri="a,b", ticket="x\"y\\z, ticket=w"`},
			[]AuthChallenge{{Scheme: "UMA", Params: map[string]string{"as_uri": "a,b", "ticket": `x"y\z, ticket=w`}}}},
		{"empty elements", []string{`, UMA ,, Basic realm=x,`},
			[]AuthChallenge{{Scheme: "UMA", Params: map[string]string{}}, {Scheme: "Basic", Params: map[string]string{"realm": "x"}}}},
		{"white space around =", []string{`UMA as_uri = "a" , ticket= t`},
			[]AuthChallenge{{Scheme: "UMA", Params: map[string]string{"as_uri": "a", "ticket": "t"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWWWAuthenticate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseChallengeRefusals(t *testing.T) {
	for _, in := range []string{
		``,
		`Bearer realm="x"`,
		`UMA as_uri="a"`,
		`UMA ticket="t"`,
		`UMA as_uri="a", ticket="t", ticket="u"`,
		`UMA as_uri="a, ticket="t"`,
		`UMA as_uri="a\`,
		`UMA as_uri=, ticket=t`,
		`UMA as_uri="a" ticket="t"`,
		"UMA as_uri=\"a\x00\", ticket=t",
		`=x`,
		`UMA ` + strings.Repeat("a", MaxChallengeHeaderBytes),
	} {
		h := http.Header{}
		if in != "" {
			h.Set("WWW-Authenticate", in)
		}
		if c, err := ParseChallenge(h); !errors.Is(err, ErrChallenge) {
			t.Errorf("ParseChallenge(%q) = %+v, %v; want ErrChallenge", in, c, err)
		}
	}
}

func TestErrorWriteAndParse(t *testing.T) {
	rec := httptest.NewRecorder()
	NewError(http.StatusForbidden, ErrRequestDenied, "domain %s not trusted", "evil.example").Write(rec)
	if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	e := ParseError(rec.Code, rec.Body.Bytes())
	if e.Code != ErrRequestDenied || e.Description != "domain evil.example not trusted" || e.StatusCode != 403 {
		t.Fatalf("parsed %+v", e)
	}
	if e := ParseError(502, []byte("<html>bad gateway</html>")); e.Code != "Bad Gateway" || e.StatusCode != 502 {
		t.Fatalf("non-JSON body parsed as %+v", e)
	}
}

func TestParseChallengeLineByLine(t *testing.T) {
	good := `UMA realm="bar", as_uri="https://as/realms/bar", ticket="t1"`
	want := Challenge{Realm: "bar", ASURI: "https://as/realms/bar", Ticket: "t1"}
	for name, lines := range map[string][]string{
		"malformed other scheme first": {`Bearer realm=x y`, good},
		"malformed other scheme after": {good, `Digest nonce="unterminated`},
		"malformed UMA line first":     {`UMA as_uri="a" ticket="t0"`, good},
		"several challenges per line":  {`Basic realm="r"`, `Bearer error="invalid_token", ` + good},
	} {
		got, err := ParseChallenge(http.Header{"Www-Authenticate": lines})
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
	// The first UMA challenge wins, also when it is incomplete.
	h := http.Header{"Www-Authenticate": {`UMA as_uri="a"`, good}}
	if _, err := ParseChallenge(h); !errors.Is(err, ErrChallenge) {
		t.Errorf("incomplete first UMA challenge accepted: %v", err)
	}
	// Only malformed lines: the first line's error.
	h = http.Header{"Www-Authenticate": {`UMA as_uri="a`, `=x`}}
	if _, err := ParseChallenge(h); !errors.Is(err, ErrChallenge) || !strings.Contains(err.Error(), "unterminated quoted string") {
		t.Errorf("malformed lines: %v", err)
	}
	// The size bound counts every line.
	half := strings.Repeat("a", MaxChallengeHeaderBytes/2)
	h = http.Header{"Www-Authenticate": {`Basic realm="` + half + `"`, `Basic realm="` + half + `"`, good}}
	if _, err := ParseChallenge(h); !errors.Is(err, ErrChallenge) || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("oversized header accepted: %v", err)
	}
}

func TestParseWWWAuthenticateRefusals(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("UMA ")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("p" + strconv.Itoa(i) + `="v"`)
		}
		return b.String()
	}
	for _, in := range []string{
		`UMA as_uri=https://as.example/realms/bar, ticket=t`, // a URL is no token
		`UMA as_uri=a\b, ticket=c`,                           // no quoted-pair outside quotes
		`UMA as_uri=a=b, ticket=c`,
		`UMA abc== , as_uri="a"`, // token68 and parameters are exclusive
		"UMA as_uri=\"a\"\r\n, ticket=\"b\"",
		`U(MA as_uri="a"`,
		many(MaxChallengeParams + 1),
		strings.Repeat("Basic, ", MaxChallenges) + "Basic",
	} {
		if cs, err := ParseWWWAuthenticate([]string{in}); !errors.Is(err, ErrChallenge) {
			t.Errorf("ParseWWWAuthenticate(%.60q) = %#v, %v; want ErrChallenge", in, cs, err)
		}
	}
	if _, err := ParseWWWAuthenticate([]string{many(MaxChallengeParams)}); err != nil {
		t.Errorf("%d parameters refused: %v", MaxChallengeParams, err)
	}
}

func TestErrorOfARequest(t *testing.T) {
	e := ParseError(403, []byte(`{"error":"access_denied","error_description":"not_authorized"}`))
	e.Method, e.URL = http.MethodPost, "http://kc.test/realms/bar/protocol/openid-connect/token"
	if got := e.Error(); got != `POST http://kc.test/realms/bar/protocol/openid-connect/token: 403 {"error":"access_denied","error_description":"not_authorized"}` {
		t.Fatalf("Error() = %s", got)
	}
	if e.Code != ErrAccessDenied || e.Description != "not_authorized" {
		t.Fatalf("parsed %+v", e)
	}
}
