package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/users"
	"github.com/umawide/umawide/internal/uma"
)

var digest = uma.TicketDigest("ticket")

const as = "http://127.0.0.1:8080/realms/bar"

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestParseForm(t *testing.T) {
	r, bad := ParseForm(form("ticket_digest", digest, "audience", as, "email", "Alice@Foo.Example", "extra", "ignored"))
	if bad != nil {
		t.Fatal(bad)
	}
	if r != (Request{TicketDigest: digest, Audience: as, Email: "alice@foo.example"}) {
		t.Fatalf("request = %+v", r)
	}
	if r, bad := ParseForm(form("ticket_digest", digest, "audience", "https://as.bar.example/realms/bar")); bad != nil || r.Email != "" {
		t.Fatalf("without email: %+v, %v", r, bad)
	}

	cases := map[string]url.Values{
		"no ticket_digest":         form("audience", as),
		"short ticket_digest":      form("ticket_digest", digest[:42], "audience", as),
		"long ticket_digest":       form("ticket_digest", digest+"A", "audience", as),
		"padded ticket_digest":     form("ticket_digest", digest[:42]+"=", "audience", as),
		"base64 std ticket_digest": form("ticket_digest", strings.Repeat("+", 43), "audience", as),
		"raw ticket":               form("ticket_digest", "eyJhbGciOiJSUzI1NiJ9.eyJ0aWNrZXQiOnRydWV9.c2ln", "audience", as),
		"two ticket_digests":       form("ticket_digest", digest, "ticket_digest", digest, "audience", as),
		"no audience":              form("ticket_digest", digest),
		"empty audience":           form("ticket_digest", digest, "audience", ""),
		"two audiences":            form("ticket_digest", digest, "audience", as, "audience", as),
		"relative audience":        form("ticket_digest", digest, "audience", "/realms/bar"),
		"ftp audience":             form("ticket_digest", digest, "audience", "ftp://as.example/"),
		"javascript audience":      form("ticket_digest", digest, "audience", "javascript:alert(1)"),
		"audience with user":       form("ticket_digest", digest, "audience", "https://u:p@as.example/"),
		"audience with query":      form("ticket_digest", digest, "audience", "https://as.example/?a=b"),
		"audience with empty ?":    form("ticket_digest", digest, "audience", "https://as.example/?"),
		"audience with fragment":   form("ticket_digest", digest, "audience", "https://as.example/#x"),
		"audience with space":      form("ticket_digest", digest, "audience", "https://as.example/a b"),
		"audience with newline":    form("ticket_digest", digest, "audience", "https://as.example/\nX"),
		"audience without host":    form("ticket_digest", digest, "audience", "https:///realms/bar"),
		"audience too long":        form("ticket_digest", digest, "audience", "https://as.example/"+strings.Repeat("a", MaxAudienceLength)),
		"email without @":          form("ticket_digest", digest, "audience", as, "email", "alice"),
		"email two @":              form("ticket_digest", digest, "audience", as, "email", "a@b@foo.example"),
		"email with name":          form("ticket_digest", digest, "audience", as, "email", "Alice <alice@foo.example>"),
		"email too long":           form("ticket_digest", digest, "audience", as, "email", strings.Repeat("a", 60)+"@"+strings.Repeat("b", 200)+".example"),
		"email local too long":     form("ticket_digest", digest, "audience", as, "email", strings.Repeat("a", 65)+"@foo.example"),
		"email trailing dot":       form("ticket_digest", digest, "audience", as, "email", "alice@foo.example."),
		"two emails":               form("ticket_digest", digest, "audience", as, "email", "alice@foo.example", "email", "bob@foo.example"),
		"access_token in body":     form("ticket_digest", digest, "audience", as, "access_token", "x"),
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			_, bad := ParseForm(f)
			if bad == nil || bad.Status != http.StatusBadRequest || bad.Code != uma.ErrInvalidRequest || bad.Description == "" {
				t.Fatalf("refusal = %v, want 400 invalid_request", bad)
			}
		})
	}
}

// fakes

type fakeAuth struct {
	c   caller.Caller
	err error
}

func (f fakeAuth) Authenticate(context.Context, string) (caller.Caller, error) { return f.c, f.err }

type fakeDir struct {
	users map[string]users.User
	err   error
	calls int
}

func (f *fakeDir) ByEmail(_ context.Context, email string) (users.User, error) {
	f.calls++
	if f.err != nil {
		return users.User{}, f.err
	}
	u, ok := f.users[email]
	if !ok {
		return users.User{}, users.ErrNotFound
	}
	return u, nil
}

var alice = users.User{ID: "alice-id", Username: "alice", Email: "alice@foo.example", EmailVerified: true, FirstName: "Alice", LastName: "Liddell"}

func newProvider(t *testing.T, auth Authenticator, dir Directory) *Provider {
	t.Helper()
	ks, err := keys.Open(filepath.Join(t.TempDir(), "k"), keys.ES256, keys.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New("http://127.0.0.1:8081", ks, issuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(auth, dir, iss, Config{OnBehalfClients: []string{"rqp-client"}, Domains: []string{"Foo.Example"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	userCaller   = caller.Caller{Kind: caller.User, Subject: "alice-id", ClientID: "rqp-client", Email: "alice@foo.example"}
	clientCaller = caller.Caller{Kind: caller.Client, Subject: "sa-id", ClientID: "rqp-client"}
)

func TestIssueBothVariants(t *testing.T) {
	dir := &fakeDir{users: map[string]users.User{alice.Email: alice}}
	p := newProvider(t, fakeAuth{}, dir)
	for name, tc := range map[string]struct {
		c caller.Caller
		r Request
	}{
		"user token, no email field":   {userCaller, Request{TicketDigest: digest, Audience: as}},
		"user token, same email field": {userCaller, Request{TicketDigest: digest, Audience: as, Email: "alice@foo.example"}},
		"client token with email":      {clientCaller, Request{TicketDigest: digest, Audience: as, Email: "alice@foo.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			tok, u, bad := p.Issue(context.Background(), tc.c, tc.r)
			if bad != nil {
				t.Fatal(bad)
			}
			c := tok.Claims
			if u.ID != alice.ID || c.Subject != alice.ID || c.Email != alice.Email || !c.EmailVerified || c.Audience != as || c.TicketDigest != digest || c.Name != "Alice Liddell" {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestIssueRefusals(t *testing.T) {
	other := users.User{ID: "other-id", Email: "alice@foo.example", EmailVerified: true}
	cases := []struct {
		name   string
		c      caller.Caller
		r      Request
		dir    *fakeDir
		status int
		code   string
		reason string
	}{
		{"email mismatch with a user token", userCaller, Request{TicketDigest: digest, Audience: as, Email: "bob@foo.example"}, nil,
			403, uma.ErrAccessDenied, ReasonEmailMismatch},
		{"user token without email", caller.Caller{Kind: caller.User, Subject: "x", ClientID: "rqp-client"}, Request{TicketDigest: digest, Audience: as}, nil,
			403, uma.ErrInsufficientScope, ReasonTokenWithoutEmail},
		{"client not allowed", caller.Caller{Kind: caller.Client, Subject: "sa", ClientID: "other-client"}, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, nil,
			403, uma.ErrInsufficientScope, ReasonClientNotAllowed},
		{"client without email", clientCaller, Request{TicketDigest: digest, Audience: as}, nil,
			400, uma.ErrInvalidRequest, ReasonEmailRequired},
		{"domain not served (client)", clientCaller, Request{TicketDigest: digest, Audience: as, Email: "bob@bar.example"}, nil,
			403, uma.ErrAccessDenied, ReasonDomainNotServed},
		{"domain not served (user)", caller.Caller{Kind: caller.User, Subject: "x", ClientID: "c", Email: "x@foo.example.evil"}, Request{TicketDigest: digest, Audience: as}, nil,
			403, uma.ErrAccessDenied, ReasonDomainNotServed},
		{"unknown user", clientCaller, Request{TicketDigest: digest, Audience: as, Email: "nobody@foo.example"}, nil,
			403, uma.ErrAccessDenied, ReasonUserUnknown},
		{"disabled user", clientCaller, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, &fakeDir{err: fmt.Errorf("x: %w", users.ErrDisabled)},
			403, uma.ErrAccessDenied, ReasonUserDisabled},
		{"ambiguous user", clientCaller, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, &fakeDir{err: users.ErrAmbiguous},
			403, uma.ErrAccessDenied, ReasonUserAmbiguous},
		{"user token of another person", userCaller, Request{TicketDigest: digest, Audience: as}, &fakeDir{users: map[string]users.User{alice.Email: other}},
			403, uma.ErrAccessDenied, ReasonUserNotSubject},
		{"keycloak unavailable", clientCaller, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, &fakeDir{err: fmt.Errorf("%w: dial", users.ErrUnavailable)},
			503, uma.ErrUnavailable, ReasonKeycloakUnavailable},
		{"unexpected directory error", clientCaller, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, &fakeDir{err: errors.New("boom")},
			500, uma.ErrServerError, ReasonInternal},
		{"no kind", caller.Caller{}, Request{TicketDigest: digest, Audience: as, Email: alice.Email}, nil,
			401, uma.ErrInvalidToken, ReasonInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == nil {
				dir = &fakeDir{users: map[string]users.User{alice.Email: alice}}
			}
			p := newProvider(t, fakeAuth{}, dir)
			tok, _, bad := p.Issue(context.Background(), tc.c, tc.r)
			if bad == nil {
				t.Fatalf("issued %v", tok.Claims)
			}
			if bad.Status != tc.status || bad.Code != tc.code || bad.Reason != tc.reason || bad.Description == "" {
				t.Fatalf("refusal = %+v, want %d %s %s", bad, tc.status, tc.code, tc.reason)
			}
			if e := bad.UMA(); e.StatusCode != tc.status || e.Code != tc.code || e.Description != bad.Description {
				t.Fatalf("UMA error = %+v", e)
			}
		})
	}
}

// Unknown, disabled, ambiguous and someone else's: one answer, so the caller
// cannot probe the directory.
func TestUserRefusalsLookAlike(t *testing.T) {
	var seen []string
	for _, err := range []error{users.ErrNotFound, users.ErrDisabled, users.ErrAmbiguous} {
		p := newProvider(t, fakeAuth{}, &fakeDir{err: err})
		_, _, bad := p.Issue(context.Background(), clientCaller, Request{TicketDigest: digest, Audience: as, Email: alice.Email})
		seen = append(seen, fmt.Sprint(bad.Status, bad.Code, bad.Description))
	}
	p := newProvider(t, fakeAuth{}, &fakeDir{users: map[string]users.User{alice.Email: {ID: "someone-else", Email: alice.Email}}})
	_, _, bad := p.Issue(context.Background(), userCaller, Request{TicketDigest: digest, Audience: as})
	seen = append(seen, fmt.Sprint(bad.Status, bad.Code, bad.Description))
	for _, s := range seen[1:] {
		if s != seen[0] {
			t.Fatalf("answers differ: %q", seen)
		}
	}
}

func TestRefusedBeforeLookup(t *testing.T) {
	dir := &fakeDir{users: map[string]users.User{alice.Email: alice}}
	p := newProvider(t, fakeAuth{}, dir)
	for _, tc := range []struct {
		c caller.Caller
		r Request
	}{
		{userCaller, Request{TicketDigest: digest, Audience: as, Email: "bob@foo.example"}},
		{caller.Caller{Kind: caller.Client, ClientID: "nope"}, Request{TicketDigest: digest, Audience: as, Email: alice.Email}},
		{clientCaller, Request{TicketDigest: digest, Audience: as, Email: "bob@bar.example"}},
	} {
		if _, _, bad := p.Issue(context.Background(), tc.c, tc.r); bad == nil {
			t.Fatalf("%+v issued", tc)
		}
	}
	if dir.calls != 0 {
		t.Fatalf("%d directory lookups for requests refused before, want 0", dir.calls)
	}
}

func TestAuthenticateMapsErrors(t *testing.T) {
	dir := &fakeDir{}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: expired", caller.ErrInvalidToken), 401, uma.ErrInvalidToken},
		{fmt.Errorf("%w: dial", caller.ErrUnavailable), 503, uma.ErrUnavailable},
		{errors.New("anything else"), 401, uma.ErrInvalidToken},
	} {
		p := newProvider(t, fakeAuth{err: tc.err}, dir)
		_, bad := p.Authenticate(context.Background(), "x")
		if bad == nil || bad.Status != tc.status || bad.Code != tc.code {
			t.Errorf("%v: refusal %v, want %d %s", tc.err, bad, tc.status, tc.code)
		}
	}
	p := newProvider(t, fakeAuth{c: userCaller}, dir)
	if c, bad := p.Authenticate(context.Background(), "x"); bad != nil || c != userCaller {
		t.Fatalf("Authenticate = %+v, %v", c, bad)
	}
}

func TestNewChecksConfig(t *testing.T) {
	p := newProvider(t, fakeAuth{}, &fakeDir{})
	if d := p.Domains(); len(d) != 1 || d[0] != "foo.example" {
		t.Fatalf("domains = %v, want lower-cased", d)
	}
	if _, err := New(fakeAuth{}, &fakeDir{}, p.iss, Config{}); err == nil {
		t.Error("no domains accepted")
	}
	if _, err := New(nil, &fakeDir{}, p.iss, Config{Domains: []string{"x"}}); err == nil {
		t.Error("nil authenticator accepted")
	}
}
