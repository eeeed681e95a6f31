package provider

import (
	"net/url"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// FuzzParseForm parses arbitrary form bodies of POST /claims/token. What
// ParseForm accepts came once per field, has a well-formed ticket digest,
// an absolute http(s) audience without user info, query or fragment, and an
// email (when given) that is one lower-case ASCII address with one @ and a
// dotted, non-empty domain: so the email the Claims Provider looks up and
// the domain it checks are the ones the Keycloak lookup and the AS see.
// Seed corpus: testdata/fuzz/FuzzParseForm.
func FuzzParseForm(f *testing.F) {
	f.Add("ticket_digest=" + digest + "&audience=" + url.QueryEscape(as) + "&email=Alice%40Foo.Example")
	f.Add("ticket_digest=" + digest + "&audience=" + url.QueryEscape(as) + "&email=a%40b%40c")
	f.Add("ticket_digest=" + digest + "&audience=http%3A%2F%2Fu%40h%2F&email=%22a%22%40b")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the server answers 400 before ParseForm
		}
		r, bad := ParseForm(form)
		if bad != nil {
			if bad.Status != 400 || bad.Code != uma.ErrInvalidRequest {
				t.Fatalf("refusal %+v", bad)
			}
			return
		}
		for _, k := range []string{uma.FormTicketDigest, uma.FormAudience, uma.FormEmail} {
			if len(form[k]) > 1 {
				t.Fatalf("accepted %s given %d times", k, len(form[k]))
			}
		}
		if _, ok := form["access_token"]; ok {
			t.Fatal("accepted access_token in the body")
		}
		if !uma.ValidTicketDigest(r.TicketDigest) || r.TicketDigest != form.Get(uma.FormTicketDigest) {
			t.Fatalf("ticket_digest %q", r.TicketDigest)
		}
		if r.Audience != form.Get(uma.FormAudience) || ValidAudience(r.Audience) != nil {
			t.Fatalf("audience %q", r.Audience)
		}
		u, err := url.Parse(r.Audience)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("audience %q parses to %+v", r.Audience, u)
		}
		if r.Email == "" {
			return
		}
		if r.Email != strings.ToLower(form.Get(uma.FormEmail)) || strings.ToLower(r.Email) != r.Email {
			t.Fatalf("email %q from %q", r.Email, form.Get(uma.FormEmail))
		}
		if strings.Count(r.Email, "@") != 1 || len(r.Email) > MaxEmailLength {
			t.Fatalf("email %q", r.Email)
		}
		local, domain, _ := strings.Cut(r.Email, "@")
		if local == "" || domain == "" || domain != Domain(r.Email) || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
			t.Fatalf("email %q: local %q, domain %q", r.Email, local, domain)
		}
		for i := 0; i < len(r.Email); i++ {
			if c := r.Email[i]; c <= 0x20 || c >= 0x7f || strings.IndexByte(`"(),:;<>[\]`, c) >= 0 {
				t.Fatalf("email %q has byte %q", r.Email, c)
			}
		}
	})
}
