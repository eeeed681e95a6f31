package uma

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func request(auth ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://rs.example/", nil)
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		auth []string
		want string
	}{
		{[]string{"Bearer abc"}, "abc"},
		{[]string{"bearer   abc"}, "abc"},
		{[]string{"BEARER a.b-c_d~e+f/g=="}, "a.b-c_d~e+f/g=="},
	} {
		if tok, err := BearerToken(request(tc.auth...)); err != nil || tok != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.auth, tok, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name   string
		auth   []string
		code   string
		status int
	}{
		{"no header", nil, "", 401},
		{"another scheme", []string{"Basic cnFwOnNlY3JldA=="}, "", 401},
		{"scheme only", []string{"Bearer"}, ErrInvalidToken, 401},
		{"another scheme, oversized", []string{"Basic " + strings.Repeat("a", MaxAuthorizationBytes)}, "", 401},
		{"two headers", []string{"Bearer a", "Bearer b"}, ErrInvalidRequest, 400},
		{"empty token", []string{"Bearer "}, ErrInvalidToken, 401},
		{"space inside", []string{"Bearer a b"}, ErrInvalidToken, 401},
		{"'=' inside", []string{"Bearer a=b"}, ErrInvalidToken, 401},
		{"only '='", []string{"Bearer ="}, ErrInvalidToken, 401},
		{"tab", []string{"Bearer a\tb"}, ErrInvalidToken, 401},
		{"comma", []string{"Bearer a,b"}, ErrInvalidToken, 401},
		{"non-ASCII", []string{"Bearer é"}, ErrInvalidToken, 401},
		{"oversized", []string{"Bearer " + strings.Repeat("a", MaxAuthorizationBytes)}, ErrInvalidToken, 401},
	} {
		tok, err := BearerToken(request(tc.auth...))
		var be *BearerError
		if !errors.As(err, &be) || tok != "" {
			t.Errorf("%s: %q, %v", tc.name, tok, err)
			continue
		}
		if be.Code != tc.code || be.Missing() != (tc.code == "") || be.Status() != tc.status || be.Description == "" {
			t.Errorf("%s: %+v (status %d), want code %q status %d", tc.name, be, be.Status(), tc.code, tc.status)
		}
	}
}

// FuzzBearerToken: whatever Authorization headers come in, BearerToken
// either refuses with a *BearerError or returns one token68 credential of
// bounded length taken from the only header, of scheme Bearer. A newline in
// the input separates header lines.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def-ghi_jkl", "bearer x==", "Bearer  x", "Bearer a b", "Basic x", "Bearer ", "Bearer a=b", "Bearer x\nBearer y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		lines := strings.Split(v, "\n")
		tok, err := BearerToken(request(lines...))
		if err != nil {
			var be *BearerError
			if tok != "" || !errors.As(err, &be) {
				t.Fatalf("refusal %v with token %q", err, tok)
			}
			return
		}
		if len(lines) != 1 || tok == "" || !isToken68(tok) || len(v) > MaxAuthorizationBytes || !strings.HasSuffix(v, tok) {
			t.Fatalf("accepted %q from %q", tok, v)
		}
		if scheme, _, _ := strings.Cut(v, " "); !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("accepted scheme %q", scheme)
		}
	})
}
