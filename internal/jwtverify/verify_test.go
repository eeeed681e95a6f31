package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/jwk"
)

const iss = "https://as.example/realms/bar"

type signer struct {
	kid    string
	alg    jwt.SigningMethod
	priv   crypto.Signer
	public crypto.PublicKey
}

func newSigner(t testing.TB, kind string) signer {
	t.Helper()
	var s signer
	switch kind {
	case "ES256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s = signer{alg: jwt.SigningMethodES256, priv: k, public: &k.PublicKey}
	case "RS256", "PS256":
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		s = signer{alg: jwt.GetSigningMethod(kind), priv: k, public: &k.PublicKey}
	case "EdDSA":
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		s = signer{alg: jwt.SigningMethodEdDSA, priv: priv, public: pub}
	}
	s.kid, _ = jwk.Thumbprint(s.public)
	return s
}

func (s signer) jwk(t testing.TB) jwk.JWK {
	j, err := jwk.FromPublic(s.public, s.kid, s.alg.Alg())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (s signer) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.alg, claims)
	tok.Header["kid"] = s.kid
	raw, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss, "aud": []string{"claims-provider", "x"}, "sub": "u1",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

// jwksServer serves the current keys and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jwk.JWK
	fetches atomic.Int32
}

func newJWKS(t *testing.T, keys ...jwk.JWK) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jwk.Set{Keys: s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...jwk.JWK) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256", "PS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, alg)
			srv := newJWKS(t, s.jwk(t))
			v, err := New(Config{Issuer: iss, Audience: "claims-provider", Keys: NewRemoteKeySet(srv.URL, KeySetOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			var got jwt.MapClaims
			if err := v.Verify(ctx, s.sign(t, goodClaims()), &got); err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if got["sub"] != "u1" {
				t.Fatalf("claims = %v", got)
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	ctx := context.Background()
	es := newSigner(t, "ES256")
	rs := newSigner(t, "RS256")
	other := newSigner(t, "ES256")
	srv := newJWKS(t, es.jwk(t), rs.jwk(t))
	v, err := New(Config{Issuer: iss, Audience: "claims-provider", Keys: NewRemoteKeySet(srv.URL, KeySetOptions{}), Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims()
		edit(c)
		return c
	}
	// alg "none" and HS256 keyed with the RSA public key (algorithm confusion).
	unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
	hs.Header["kid"] = rs.kid
	pubDER, _ := json.Marshal(rs.jwk(t))
	confused, _ := hs.SignedString(pubDER)
	// A valid signature by a key the set does not hold, under a known kid.
	forged := other
	forged.kid = es.kid
	// The RSA key's kid used with ES256.
	mixed := es
	mixed.kid = rs.kid
	good := es.sign(t, goodClaims())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+iss+`","aud":"claims-provider","sub":"admin","exp":9999999999,"iat":1}`)) + "." + parts[2]

	for name, raw := range map[string]string{
		"wrong issuer":       es.sign(t, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"wrong audience":     es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = "someone-else" })),
		"expired":            es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
		"no exp":             es.sign(t, with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"iat in the future":  es.sign(t, with(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })),
		"not yet valid":      es.sign(t, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })),
		"alg none":           unsigned,
		"HS256 confusion":    confused,
		"unknown key":        other.sign(t, goodClaims()),
		"forged under kid":   forged.sign(t, goodClaims()),
		"kid of another key": mixed.sign(t, goodClaims()),
		"tampered payload":   tampered,
		"garbage":            "a.b.c",
		"oversized":          good + strings.Repeat("A", DefaultMaxTokenBytes),
	} {
		t.Run(name, func(t *testing.T) {
			err := v.Verify(ctx, raw, &jwt.MapClaims{})
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestConfigRefusesWeakAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "HS256", "HS512", ""} {
		algs := []string{alg}
		if alg == "" {
			continue
		}
		if _, err := New(Config{Issuer: iss, Keys: StaticKeys{}, Algorithms: algs}); err == nil {
			t.Errorf("algorithm %q accepted", alg)
		}
	}
	if _, err := New(Config{Issuer: iss}); err == nil {
		t.Error("config without keys accepted")
	}
}

// Rotation: a token signed by a new key is accepted after one refetch, and a
// flood of unknown kids causes at most one fetch per interval.
func TestRemoteKeySetRefetchAndRateLimit(t *testing.T) {
	ctx := context.Background()
	old, next := newSigner(t, "ES256"), newSigner(t, "ES256")
	srv := newJWKS(t, old.jwk(t))
	now := time.Now()
	clock := func() time.Time { return now }
	ks := NewRemoteKeySet(srv.URL, KeySetOptions{MinRefreshInterval: 10 * time.Second, Now: clock})
	v, _ := New(Config{Issuer: iss, Keys: ks, Now: clock})
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	if err := v.Verify(ctx, old.sign(t, claims()), &jwt.MapClaims{}); err != nil {
		t.Fatal(err)
	}
	srv.set(old.jwk(t), next.jwk(t))
	now = now.Add(11 * time.Second)
	if err := v.Verify(ctx, next.sign(t, claims()), &jwt.MapClaims{}); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	for i := 0; i < 50; i++ {
		_ = v.Verify(ctx, newSigner(t, "ES256").sign(t, claims()), &jwt.MapClaims{})
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("unknown kids caused %d fetches within the interval, want none", n-2)
	}
	now = now.Add(11 * time.Second)
	_ = v.Verify(ctx, newSigner(t, "ES256").sign(t, claims()), &jwt.MapClaims{})
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after the interval, want 3", n)
	}
	// Keys already held stay usable while the endpoint is down.
	srv.Close()
	now = now.Add(time.Hour)
	if err := v.Verify(ctx, old.sign(t, claims()), &jwt.MapClaims{}); err != nil {
		t.Fatalf("cached key unusable while the JWKS endpoint is down: %v", err)
	}
}

// An unreachable JWKS endpoint is told apart from an unknown key, also while
// refetches are rate-limited after the failure; once the endpoint answers
// again, an unknown kid is just that.
func TestKeySetUnavailable(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, "ES256")
	srv := newJWKS(t, s.jwk(t))
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	claims := jwt.MapClaims{"iss": iss, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}

	v, _ := New(Config{Issuer: iss, Keys: NewRemoteKeySet(downURL, KeySetOptions{Now: clock}), Now: clock})
	for i := range 2 { // the second is rate-limited
		err := v.Verify(ctx, s.sign(t, claims), &jwt.MapClaims{})
		if !errors.Is(err, ErrKeySetUnavailable) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("attempt %d: err = %v, want ErrKeySetUnavailable", i, err)
		}
	}

	ks := NewRemoteKeySet(srv.URL, KeySetOptions{Now: clock})
	v, _ = New(Config{Issuer: iss, Keys: ks, Now: clock})
	if err := v.Verify(ctx, s.sign(t, claims), &jwt.MapClaims{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	err := v.Verify(ctx, newSigner(t, "ES256").sign(t, claims), &jwt.MapClaims{})
	if !errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrKeySetUnavailable) {
		t.Fatalf("unknown kid with the endpoint up: %v, want ErrUnknownKey only", err)
	}
	srv.Close()
	now = now.Add(time.Minute)
	err = v.Verify(ctx, newSigner(t, "ES256").sign(t, claims), &jwt.MapClaims{})
	if !errors.Is(err, ErrKeySetUnavailable) {
		t.Fatalf("unknown kid with the endpoint down: %v, want ErrKeySetUnavailable", err)
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	s := newSigner(b, "RS256")
	v, _ := New(Config{Issuer: iss, Keys: StaticKeys{{Kid: s.kid, Public: s.public}}})
	raw := s.sign(b, goodClaims())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ctx, raw, &jwt.MapClaims{}); err != nil {
			b.Fatal(err)
		}
	}
}
