package rpt_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
)

const (
	issuer = "http://kc.test/realms/bar"
	rid    = "rid-bob"
	sum    = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func newVerifier(t testing.TB, s *rpttest.Signer) *rpt.Verifier {
	v, err := rpt.New(rpt.Config{Issuer: issuer, Audience: "resource-server", Keys: s.Keys()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuthorize(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	raw := s.RPT([]rpttest.Perm{
		{RSID: "other", Claims: map[string][]string{"sender_email": {"eve@x"}}},
		{RSID: rid, Claims: map[string][]string{
			"sender_email": {"alice@foo.example"}, "sender_iss": {"https://cp.foo.example"}, "sender_sub": {"a11ce"},
			"content_sha256": {strings.ToUpper(sum)}, "content_length": {"4"}, "content_type": {"text/plain"}, "file_name": {"t.txt"},
		}},
	}, jwt.MapClaims{"jti": "the-jti"})
	g, err := v.Authorize(context.Background(), raw, rid)
	if err != nil {
		t.Fatal(err)
	}
	if g.JTI != "the-jti" || g.ExpiresAt.Before(time.Now()) {
		t.Errorf("jti %q exp %v", g.JTI, g.ExpiresAt)
	}
	if g.Sender != (rpt.Sender{Email: "alice@foo.example", Iss: "https://cp.foo.example", Sub: "a11ce"}) {
		t.Errorf("sender %+v", g.Sender)
	}
	if !g.Content.Bound() || g.Content.SHA256 != sum || g.Content.Length != 4 || g.Content.ContentType != "text/plain" || g.Content.FileName != "t.txt" {
		t.Errorf("binding %+v", g.Content)
	}

	// Unbound: no content claims, no single use.
	g, err = v.Authorize(context.Background(), s.RPT([]rpttest.Perm{{RSID: rid}}, nil), rid)
	if err != nil || g.Content.Bound() || g.Content.Length != -1 {
		t.Fatalf("unbound grant %+v %v", g, err)
	}
	// Only a length bound is a binding too.
	g, err = v.Authorize(context.Background(), s.RPT([]rpttest.Perm{{RSID: rid, Claims: map[string][]string{"content_length": {"0"}}}}, nil), rid)
	if err != nil || !g.Content.Bound() || g.Content.Length != 0 {
		t.Fatalf("length-bound grant %+v %v", g, err)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := rpttest.New(issuer)
	other := rpttest.New(issuer)
	other.Kid = s.Kid // same kid, different key: a forgery
	v := newVerifier(t, s)
	ok := []rpttest.Perm{{RSID: rid}}
	bound := func(k, val string) []rpttest.Perm {
		return []rpttest.Perm{{RSID: rid, Claims: map[string][]string{k: {val}}}}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, s.Base())
	hs.Header["kid"] = s.Kid
	hsRaw, _ := hs.SignedString([]byte("secret"))
	rs := jwt.NewWithClaims(jwt.SigningMethodRS256, s.Base())
	rs.Header["kid"] = s.Kid
	rsRaw, _ := rs.SignedString(rsaKey)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, s.Base()).SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"forged signature", other.RPT(ok, nil), rpt.ErrInvalid},
		{"alg none", none, rpt.ErrInvalid},
		{"HMAC", hsRaw, rpt.ErrInvalid},
		{"RSA key not in the set", rsRaw, rpt.ErrInvalid},
		{"expired", s.RPT(ok, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), rpt.ErrInvalid},
		{"no exp", s.RPT(ok, jwt.MapClaims{"exp": nil}), rpt.ErrInvalid},
		{"other issuer", s.RPT(ok, jwt.MapClaims{"iss": "http://kc.test/realms/foo"}), rpt.ErrInvalid},
		{"other audience", s.RPT(ok, jwt.MapClaims{"aud": "account"}), rpt.ErrInvalid},
		{"ID token", s.RPT(ok, jwt.MapClaims{"typ": "ID"}), rpt.ErrInvalid},
		{"garbage", "not.a.jwt", rpt.ErrInvalid},
		{"huge", strings.Repeat("a", 20000), rpt.ErrInvalid},
		{"no authorization", s.Reader("bob", "incoming-app", jwt.MapClaims{"aud": "resource-server"}), rpt.ErrInsufficient},
		{"other resource", s.RPT([]rpttest.Perm{{RSID: "rid-carol"}}, nil), rpt.ErrInsufficient},
		{"no scope create", s.RPT([]rpttest.Perm{{RSID: rid, Scopes: []string{"read"}}}, nil), rpt.ErrInsufficient},
		{"two permissions for it", s.RPT([]rpttest.Perm{{RSID: rid}, {RSID: rid}}, nil), rpt.ErrInsufficient},
		{"sha256 not hex", s.RPT(bound("content_sha256", strings.Repeat("z", 64)), nil), rpt.ErrInvalid},
		{"sha256 short", s.RPT(bound("content_sha256", "abcd"), nil), rpt.ErrInvalid},
		{"negative length", s.RPT(bound("content_length", "-1"), nil), rpt.ErrInvalid},
		{"signed length", s.RPT(bound("content_length", "+4"), nil), rpt.ErrInvalid},
		{"length not a number", s.RPT(bound("content_length", "1e3"), nil), rpt.ErrInvalid},
		{"two values", s.RPT([]rpttest.Perm{{RSID: rid, Claims: map[string][]string{"content_sha256": {sum, sum}}}}, nil), rpt.ErrInvalid},
		{"control character", s.RPT(bound("sender_email", "a@b\r\nX: y"), nil), rpt.ErrInvalid},
		{"bound without jti", s.RPT(bound("content_sha256", sum), jwt.MapClaims{"jti": nil}), rpt.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Authorize(context.Background(), tc.raw, rid)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReader(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	r, err := v.Reader(context.Background(), s.Reader("bob", "incoming-app", nil))
	if err != nil || r.Username != "bob" || r.ClientID != "incoming-app" {
		t.Fatalf("%+v %v", r, err)
	}
	for name, raw := range map[string]string{
		"ID token":     s.Reader("bob", "incoming-app", jwt.MapClaims{"typ": "ID"}),
		"no username":  s.Reader("bob", "incoming-app", jwt.MapClaims{"preferred_username": nil}),
		"expired":      s.Reader("bob", "incoming-app", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}),
		"other realm":  s.Reader("bob", "incoming-app", jwt.MapClaims{"iss": "http://kc.test/realms/foo"}),
		"forged":       rpttest.New(issuer).Reader("bob", "incoming-app", nil),
		"empty string": "",
	} {
		if _, err := v.Reader(context.Background(), raw); !errors.Is(err, rpt.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	s := rpttest.New(issuer)
	v := newVerifier(b, s)
	raw := s.RPT([]rpttest.Perm{{RSID: rid, Claims: map[string][]string{"content_sha256": {sum}, "content_length": {"4"}, "sender_email": {"alice@foo.example"}}}}, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := v.Authorize(ctx, raw, rid); err != nil {
			b.Fatal(err)
		}
	}
}
