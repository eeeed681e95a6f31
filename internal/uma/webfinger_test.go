package uma

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bob@bar.example", "bob@bar.example"},
		{"acct:bob@bar.example", "bob@bar.example"},
		{"ACCT:Bob@Bar.EXAMPLE", "bob@bar.example"},
		{"b.o-b_1@x-1.bar.example", "b.o-b_1@x-1.bar.example"},
	} {
		a, err := ParseAddress(tc.in)
		if err != nil || a.String() != tc.want || a.AcctURI() != "acct:"+tc.want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "bob", "@bar.example", "bob@", "bob@bar", "bob@evil@bar.example", "bob@bar.example.",
		"bob@-bar.example", "bob@bar-.example", "bob@bar..example", "bob@bar_x.example", "b ob@bar.example",
		"bob\x00@bar.example", "b/ob@bar.example", "b%6fb@bar.example", "bob@bär.example", "bob@[127.0.0.1]",
		"bob@bar.example:443", "mailto:bob@bar.example", strings.Repeat("b", 65) + "@bar.example",
		"bob@" + strings.Repeat("a", 250) + ".example",
	} {
		if a, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) = %v, want an error", in, a)
		}
	}
}

func TestJRDLink(t *testing.T) {
	j := JRD{Links: []JRDLink{{Rel: RelIncoming, Href: "https://rs/incoming/bob"}, {Rel: RelIncoming, Href: "second"}}}
	if j.Link(RelIncoming) != "https://rs/incoming/bob" || j.Link(RelUMAAS) != "" {
		t.Fatal(j)
	}
}
