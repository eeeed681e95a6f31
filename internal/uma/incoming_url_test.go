package uma

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCanonicalIncomingURL(t *testing.T) {
	long := "https://rs.bar.example/incoming/" + strings.Repeat("a", 255)
	for _, tc := range []struct {
		in, want string
	}{
		{"http://127.0.0.1:8082/incoming/bob", "http://127.0.0.1:8082/incoming/bob"},
		{"https://rs.bar.example/incoming/bob", "https://rs.bar.example/incoming/bob"},
		// scheme and host lower-case; the owner keeps its case
		{"HTTPS://RS.Bar.Example/incoming/Bob", "https://rs.bar.example/incoming/Bob"},
		// default ports dropped, others kept, zero padding removed
		{"http://rs.bar.example:80/incoming/bob", "http://rs.bar.example/incoming/bob"},
		{"https://rs.bar.example:443/incoming/bob", "https://rs.bar.example/incoming/bob"},
		{"http://rs.bar.example:443/incoming/bob", "http://rs.bar.example:443/incoming/bob"},
		{"https://rs.bar.example:80/incoming/bob", "https://rs.bar.example:80/incoming/bob"},
		{"https://rs.bar.example:08443/incoming/bob", "https://rs.bar.example:8443/incoming/bob"},
		{"http://rs.bar.example:0080/incoming/bob", "http://rs.bar.example/incoming/bob"},
		// one trailing slash dropped
		{"http://127.0.0.1:8082/incoming/bob/", "http://127.0.0.1:8082/incoming/bob"},
		// IPv6 literals
		{"http://[::1]:8082/incoming/bob", "http://[::1]:8082/incoming/bob"},
		{"http://[FE80::1]/incoming/bob", "http://[fe80::1]/incoming/bob"},
		{"https://[::1]:443/incoming/bob", "https://[::1]/incoming/bob"},
		// percent-encoding of the owner: decoded where it need not be
		// encoded, upper-case hex where it must
		{"http://h/incoming/b%6fb", "http://h/incoming/bob"},
		{"http://h/incoming/a%20b", "http://h/incoming/a%20b"},
		{"http://h/incoming/a%c3%a9", "http://h/incoming/a%C3%A9"},
		{"http://h/incoming/bob@bar.example", "http://h/incoming/bob@bar.example"},
		{"http://h/incoming/bob%40bar.example", "http://h/incoming/bob@bar.example"},
		{"http://h/incoming/a%3Bb", "http://h/incoming/a%3Bb"},
		{long, long},
	} {
		got, err := CanonicalIncomingURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalIncomingURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		again, err := CanonicalIncomingURL(got)
		if err != nil || again != got {
			t.Errorf("CanonicalIncomingURL(%q) = %q, %v; not idempotent", got, again, err)
		}
	}
}

func TestCanonicalIncomingURLRefusals(t *testing.T) {
	for _, in := range []string{
		"",
		"bob",
		"/incoming/bob",
		"//rs.bar.example/incoming/bob",
		"ftp://rs.bar.example/incoming/bob",
		"javascript:alert(1)//incoming/bob",
		"http:/incoming/bob",
		"http:rs.bar.example/incoming/bob",
		"http:///incoming/bob",
		"http://:8080/incoming/bob",
		// userinfo, query, fragment (even empty)
		"http://alice@rs.bar.example/incoming/bob",
		"http://alice:pw@rs.bar.example/incoming/bob",
		"http://rs.bar.example@evil.example/incoming/bob",
		"http://rs.bar.example/incoming/bob?x=1",
		"http://rs.bar.example/incoming/bob?",
		"http://rs.bar.example/incoming/bob#f",
		"http://rs.bar.example/incoming/bob#",
		// other paths
		"http://rs.bar.example",
		"http://rs.bar.example/",
		"http://rs.bar.example/incoming",
		"http://rs.bar.example/incoming/",
		"http://rs.bar.example/incoming//",
		"http://rs.bar.example/Incoming/bob",
		"http://rs.bar.example/incoming/bob//",
		"http://rs.bar.example/incoming/bob/messages",
		"http://rs.bar.example/prefix/incoming/bob",
		"http://rs.bar.example//incoming/bob",
		"http://rs.bar.example/x/../incoming/bob",
		"http://rs.bar.example/incoming/./bob",
		"http://rs.bar.example/incoming/..",
		"http://rs.bar.example/incoming/.",
		"http://rs.bar.example/incoming/%2e%2e",
		"http://rs.bar.example/incoming/%2E",
		"http://rs.bar.example/incoming/a%2fb",
		"http://rs.bar.example/incoming/a%5cb",
		"http://rs.bar.example/incoming/a\\b",
		"http://rs.bar.example/incoming/a%00b",
		"http://rs.bar.example/incoming/a%0ab",
		"http://rs.bar.example/incoming/a%ff",
		"http://rs.bar.example/incoming/a%zz",
		"http://rs.bar.example/incoming/a%",
		"http://rs.bar.example/incoming/" + strings.Repeat("a", 256),
		// characters that no URL sent over the wire has
		"http://rs.bar.example/incoming/bo b",
		" http://rs.bar.example/incoming/bob",
		"http://rs.bar.example/incoming/bob\n",
		"http://rs.bar.example/incoming/bób",
		"http://rs.bär.example/incoming/bob",
		// hosts and ports
		"http://rs_bar.example/incoming/bob",
		"http://rs.bar.example:/incoming/bob",
		"http://rs.bar.example:0/incoming/bob",
		"http://rs.bar.example:65536/incoming/bob",
		"http://rs.bar.example:123456/incoming/bob",
		"http://rs.bar.example:+80/incoming/bob",
		"http://rs.bar.example:8o/incoming/bob",
		"http://[::1/incoming/bob",
		"http://[fe80::1%25en0]/incoming/bob",
		"http://[]/incoming/bob",
		"http://[::1]x/incoming/bob",
		"http://::1/incoming/bob",
		"http://rs.bar.example/incoming/" + strings.Repeat("a", MaxIncomingURL),
	} {
		got, err := CanonicalIncomingURL(in)
		if err == nil {
			t.Errorf("CanonicalIncomingURL(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrIncomingURL) {
			t.Errorf("CanonicalIncomingURL(%q): %v does not wrap ErrIncomingURL", in, err)
		}
	}
}

// FuzzCanonicalIncomingURL: never panics; refusals wrap ErrIncomingURL;
// what it accepts canonicalises to itself, stays within MaxIncomingURL, is
// an absolute http(s) URL without userinfo, query or fragment whose path is
// /incoming/{one segment}, and has the scheme, host and owner of the input.
// Seed corpus: testdata/fuzz/FuzzCanonicalIncomingURL (run by go test).
func FuzzCanonicalIncomingURL(f *testing.F) {
	f.Add("http://127.0.0.1:8082/incoming/bob")
	f.Add("HTTPS://RS.example:443/incoming/b%6fb/")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := CanonicalIncomingURL(raw)
		if err != nil {
			if !errors.Is(err, ErrIncomingURL) {
				t.Fatalf("error %v does not wrap ErrIncomingURL", err)
			}
			return
		}
		if len(c) > MaxIncomingURL {
			t.Fatalf("%q: canonical form of %d characters", raw, len(c))
		}
		again, err := CanonicalIncomingURL(c)
		if err != nil || again != c {
			t.Fatalf("%q -> %q -> %q, %v: not idempotent", raw, c, again, err)
		}
		u, err := url.Parse(c)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", raw, c, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
			u.Fragment != "" || u.Host == "" || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("%q -> %q: %#v", raw, c, u)
		}
		owner, ok := strings.CutPrefix(u.Path, "/incoming/")
		if !ok || owner == "" || strings.Contains(owner, "/") || owner == "." || owner == ".." {
			t.Fatalf("%q -> %q: path %q", raw, c, u.Path)
		}
		in, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", raw, err)
		}
		if !strings.EqualFold(in.Scheme, u.Scheme) || !strings.EqualFold(in.Hostname(), u.Hostname()) ||
			strings.TrimSuffix(in.Path, "/") != u.Path {
			t.Fatalf("%q -> %q changed scheme, host or owner", raw, c)
		}
	})
}
