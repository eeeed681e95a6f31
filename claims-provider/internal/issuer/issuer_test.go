package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/uma"
)

const (
	iss = "https://cp.foo.example"
	as  = "https://as.bar.example/realms/bar"
)

func openKeys(t testing.TB, alg string, rsaBits int) *keys.Store {
	t.Helper()
	s, err := keys.Open(filepath.Join(t.TempDir(), "k"), alg, keys.Options{
		RSABits: rsaBits,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifierFor(t *testing.T, s *keys.Store, now func() time.Time) *jwtverify.Verifier {
	t.Helper()
	set, err := s.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(set)
	parsed, err := jwk.ParseSet(data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtverify.New(jwtverify.Config{Issuer: iss, Audience: as, Keys: jwtverify.StaticKeys(parsed), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var alice = User{ID: "0b7e-alice", Email: "alice@foo.example", EmailVerified: true, FirstName: "Alice", LastName: "Liddell"}

func TestIssueEveryAlgorithm(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	digest := uma.TicketDigest("a-ticket")
	for _, alg := range keys.Algorithms {
		t.Run(alg, func(t *testing.T) {
			s := openKeys(t, alg, 2048)
			i, err := New(iss, s, Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := i.Issue(Request{User: alice, TicketDigest: digest, Audience: as})
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 120 || tok.Kid != s.Current().Kid || tok.Alg != alg {
				t.Fatalf("token expires_in=%d kid=%s alg=%s", tok.ExpiresIn, tok.Kid, tok.Alg)
			}

			// Header: alg, kid (the thumbprint), typ JWT; nothing else.
			header := decodeSegment(t, tok.Raw, 0)
			want := map[string]any{"alg": alg, "kid": s.Current().Kid, "typ": "JWT"}
			if !maps.EqualFunc(header, want, func(a, b any) bool { return a == b }) {
				t.Fatalf("header = %v, want %v", header, want)
			}
			tp, _ := jwk.Thumbprint(s.Current().Public())
			if header["kid"] != tp {
				t.Fatalf("kid %v is not the thumbprint %s", header["kid"], tp)
			}

			// Payload: exactly the contract's members, aud a single string.
			payload := decodeSegment(t, tok.Raw, 1)
			names := slices.Sorted(maps.Keys(payload))
			wantNames := []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "jti", "name", "sub", "ticket_digest"}
			if !slices.Equal(names, wantNames) {
				t.Fatalf("claims %v, want %v", names, wantNames)
			}
			checks := map[string]any{
				"iss": iss, "sub": alice.ID, "aud": as, "ticket_digest": digest,
				"email": alice.Email, "email_verified": true, "name": "Alice Liddell",
				"given_name": "Alice", "family_name": "Liddell",
				"iat": float64(now.Unix()), "exp": float64(now.Unix() + 120),
			}
			for k, v := range checks {
				if payload[k] != v {
					t.Errorf("%s = %v (%T), want %v", k, payload[k], payload[k], v)
				}
			}
			if jti, _ := payload["jti"].(string); len(jti) < 22 {
				t.Errorf("jti %q too short", jti)
			}

			// It verifies against the published JWKS.
			var got Claims
			if err := verifierFor(t, s, clock).Verify(context.Background(), tok.Raw, &got); err != nil {
				t.Fatalf("token does not verify against the JWKS: %v", err)
			}
			if got != tok.Claims {
				t.Fatalf("verified claims %+v, want %+v", got, tok.Claims)
			}
			// And not after it expired, nor for another audience.
			later := func() time.Time { return now.Add(121*time.Second + time.Minute) }
			if err := verifierFor(t, s, later).Verify(context.Background(), tok.Raw, &Claims{}); !errors.Is(err, jwtverify.ErrInvalidToken) {
				t.Fatalf("expired token verified: %v", err)
			}
		})
	}
}

func decodeSegment(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFreshJTI(t *testing.T) {
	i, err := New(iss, openKeys(t, keys.ES256, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 200 {
		tok, err := i.Issue(Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as})
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok.Claims.ID] {
			t.Fatalf("jti %s repeated", tok.Claims.ID)
		}
		seen[tok.Claims.ID] = true
	}
}

func TestNamesWhereKnown(t *testing.T) {
	i, err := New(iss, openKeys(t, keys.EdDSA, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		first, last, name string
		absent            []string
	}{
		{"Alice", "", "Alice", []string{"family_name"}},
		{"", "Liddell", "Liddell", []string{"given_name"}},
		{"", "", "", []string{"name", "given_name", "family_name"}},
	}
	for _, c := range cases {
		u := alice
		u.FirstName, u.LastName = c.first, c.last
		u.EmailVerified = false
		tok, err := i.Issue(Request{User: u, TicketDigest: uma.TicketDigest("t"), Audience: as})
		if err != nil {
			t.Fatal(err)
		}
		p := decodeSegment(t, tok.Raw, 1)
		if c.name != "" && p["name"] != c.name {
			t.Errorf("%q %q: name = %v, want %q", c.first, c.last, p["name"], c.name)
		}
		for _, k := range c.absent {
			if _, ok := p[k]; ok {
				t.Errorf("%q %q: %s present: %v", c.first, c.last, k, p[k])
			}
		}
		// email_verified is always present, false included.
		if v, ok := p["email_verified"]; !ok || v != false {
			t.Errorf("email_verified = %v, %v; want false present", v, ok)
		}
	}
}

func TestLifetimeBounds(t *testing.T) {
	s := openKeys(t, keys.ES256, 0)
	for _, d := range []time.Duration{-time.Second, 500 * time.Millisecond, MaxLifetime + time.Second, 90500 * time.Millisecond} {
		if _, err := New(iss, s, Options{Lifetime: d}); err == nil {
			t.Errorf("lifetime %v accepted", d)
		}
	}
	i, err := New(iss, s, Options{Lifetime: MaxLifetime})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := i.Issue(Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims.ExpiresAt-tok.Claims.IssuedAt != 300 || tok.ExpiresIn != 300 {
		t.Fatalf("exp-iat = %d, want 300", tok.Claims.ExpiresAt-tok.Claims.IssuedAt)
	}
	if _, err := New("", s, Options{}); err == nil {
		t.Error("empty issuer accepted")
	}
}

func TestIssueRefusesIncompleteRequests(t *testing.T) {
	i, err := New(iss, openKeys(t, keys.ES256, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := uma.TicketDigest("t")
	noID, noEmail := alice, alice
	noID.ID, noEmail.Email = "", ""
	for _, r := range []Request{
		{User: noID, TicketDigest: d, Audience: as},
		{User: noEmail, TicketDigest: d, Audience: as},
		{User: alice, Audience: as},
		{User: alice, TicketDigest: d},
	} {
		if _, err := i.Issue(r); err == nil {
			t.Errorf("Issue(%+v) succeeded", r)
		}
	}
}

func TestRotationSignsWithNewKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "k")
	quiet := keys.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := keys.Open(dir, keys.ES256, quiet)
	if err != nil {
		t.Fatal(err)
	}
	i, err := New(iss, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := i.Issue(Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as})
	if err != nil {
		t.Fatal(err)
	}
	kid, err := keys.Rotate(dir, keys.ES256, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	after, err := i.Issue(Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as})
	if err != nil {
		t.Fatal(err)
	}
	if after.Kid != kid || before.Kid == kid {
		t.Fatalf("kids before %s after %s, want the rotated %s after", before.Kid, after.Kid, kid)
	}
	// Both verify against the JWKS served during the grace period.
	v := verifierFor(t, s, time.Now)
	for _, tok := range []*Token{before, after} {
		if err := v.Verify(context.Background(), tok.Raw, &Claims{}); err != nil {
			t.Errorf("token of key %s does not verify after rotation: %v", tok.Kid, err)
		}
	}
}

// BenchmarkIssue measures minting one claims token per algorithm (signing
// dominates). Run: go test -bench Issue -cpu 1 ./claims-provider/internal/issuer
func BenchmarkIssue(b *testing.B) {
	cases := []struct {
		name    string
		alg     string
		rsaBits int
	}{
		{"ES256", keys.ES256, 0},
		{"RS256-3072", keys.RS256, 3072},
		{"RS256-2048", keys.RS256, 2048},
		{"PS256-3072", keys.PS256, 3072},
		{"EdDSA", keys.EdDSA, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			i, err := New(iss, openKeys(b, c.alg, c.rsaBits), Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := i.Issue(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}

// A token signed by the Claims Provider carries no extra header a verifier
// could be tricked with (jwk, jku, x5u, crit).
func TestNoDangerousHeaders(t *testing.T) {
	i, err := New(iss, openKeys(t, keys.ES256, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := i.Issue(Request{User: alice, TicketDigest: uma.TicketDigest("t"), Audience: as})
	if err != nil {
		t.Fatal(err)
	}
	h := decodeSegment(t, tok.Raw, 0)
	for _, k := range []string{"jwk", "jku", "x5u", "x5c", "crit"} {
		if _, ok := h[k]; ok {
			t.Errorf("header %s present", k)
		}
	}
}
