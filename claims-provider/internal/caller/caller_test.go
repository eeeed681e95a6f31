package caller

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/jwtverify"
)

const iss = "http://kc.example/realms/foo"

// userClaims and clientClaims are shaped like Keycloak 26's access tokens.
func userClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": iss, "aud": []string{"claims-provider", "account"}, "sub": "user-1", "typ": "Bearer",
		"azp": "rqp-client", "preferred_username": "alice", "email": "Alice@Foo.Example", "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func clientClaims() jwt.MapClaims {
	c := userClaims()
	delete(c, "email")
	delete(c, "email_verified")
	c["sub"], c["preferred_username"], c["client_id"] = "sa-1", "service-account-rqp-client", "rqp-client"
	return c
}

type fixture struct {
	key *ecdsa.PrivateKey
	kid string
	a   *Authenticator
}

func newFixture(t *testing.T) *fixture {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kid, _ := jwk.Thumbprint(&key.PublicKey)
	v, err := jwtverify.New(jwtverify.Config{
		Issuer: iss, Audience: "claims-provider",
		Keys: jwtverify.StaticKeys{{Kid: kid, Public: &key.PublicKey}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{key: key, kid: kid, a: New(v)}
}

func (f *fixture) sign(t *testing.T, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = f.kid
	raw, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestClassifiesKeycloakTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	got, err := f.a.Authenticate(ctx, f.sign(t, userClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Caller{Kind: User, Subject: "user-1", ClientID: "rqp-client", Email: "alice@foo.example"}); got != want {
		t.Fatalf("user token: %+v, want %+v", got, want)
	}
	got, err = f.a.Authenticate(ctx, f.sign(t, clientClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Caller{Kind: Client, Subject: "sa-1", ClientID: "rqp-client"}); got != want {
		t.Fatalf("client token: %+v, want %+v", got, want)
	}
	// A client token without the profile scope (no preferred_username) is still one.
	c := clientClaims()
	delete(c, "preferred_username")
	if got, err := f.a.Authenticate(ctx, f.sign(t, c)); err != nil || got.Kind != Client {
		t.Fatalf("client token without preferred_username: %+v, %v", got, err)
	}
	// A user token without email is a user token; the provider refuses it.
	c = userClaims()
	delete(c, "email")
	if got, err := f.a.Authenticate(ctx, f.sign(t, c)); err != nil || got.Kind != User || got.Email != "" {
		t.Fatalf("user token without email: %+v, %v", got, err)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	edit := func(base func() jwt.MapClaims, e func(jwt.MapClaims)) jwt.MapClaims {
		c := base()
		e(c)
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := jwt.NewWithClaims(jwt.SigningMethodES256, userClaims())
	foreign.Header["kid"] = f.kid
	forged, _ := foreign.SignedString(other)

	for name, raw := range map[string]string{
		"wrong audience":          f.sign(t, edit(userClaims, func(c jwt.MapClaims) { c["aud"] = "account" })),
		"no audience":             f.sign(t, edit(userClaims, func(c jwt.MapClaims) { delete(c, "aud") })),
		"expired":                 f.sign(t, edit(userClaims, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"other realm":             f.sign(t, edit(userClaims, func(c jwt.MapClaims) { c["iss"] = "http://kc.example/realms/bar" })),
		"ID token":                f.sign(t, edit(userClaims, func(c jwt.MapClaims) { c["typ"] = "ID" })),
		"refresh token":           f.sign(t, edit(userClaims, func(c jwt.MapClaims) { c["typ"] = "Refresh" })),
		"no typ":                  f.sign(t, edit(userClaims, func(c jwt.MapClaims) { delete(c, "typ") })),
		"no azp":                  f.sign(t, edit(userClaims, func(c jwt.MapClaims) { delete(c, "azp") })),
		"no sub":                  f.sign(t, edit(userClaims, func(c jwt.MapClaims) { delete(c, "sub") })),
		"client_id is not azp":    f.sign(t, edit(clientClaims, func(c jwt.MapClaims) { c["client_id"] = "other" })),
		"client token of a user":  f.sign(t, edit(clientClaims, func(c jwt.MapClaims) { c["preferred_username"] = "alice" })),
		"service account, no cid": f.sign(t, edit(clientClaims, func(c jwt.MapClaims) { delete(c, "client_id") })),
		"signed by another key":   forged,
		"not a JWT":               "not-a-jwt",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.a.Authenticate(context.Background(), raw)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestUnavailableKeys(t *testing.T) {
	f := newFixture(t)
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	v, err := jwtverify.New(jwtverify.Config{Issuer: iss, Audience: "claims-provider",
		Keys: jwtverify.NewRemoteKeySet(url, jwtverify.KeySetOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(v).Authenticate(context.Background(), f.sign(t, userClaims()))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestKindString(t *testing.T) {
	if User.String() != "user" || Client.String() != "client" || Kind(0).String() != "unknown" {
		t.Fatal("Kind.String")
	}
}

// countingKeys counts key look-ups (each verification makes one).
type countingKeys struct {
	jwtverify.StaticKeys
	n int
}

func (c *countingKeys) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	c.n++
	return c.StaticKeys.Key(ctx, kid, alg)
}

// A token that verified is not verified again until its exp; after it, it
// is (and refused as expired); a refused token is never remembered.
func TestVerifiedTokensRemembered(t *testing.T) {
	f := newFixture(t)
	keys := &countingKeys{StaticKeys: jwtverify.StaticKeys{{Kid: f.kid, Public: &f.key.PublicKey}}}
	now := time.Now()
	v, err := jwtverify.New(jwtverify.Config{Issuer: iss, Audience: "claims-provider", Keys: keys, Leeway: time.Second,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a := New(v)
	a.now = func() time.Time { return now }
	c := clientClaims()
	c["exp"] = now.Add(time.Minute).Unix()
	raw := f.sign(t, c)
	for range 3 {
		who, err := a.Authenticate(context.Background(), raw)
		if err != nil || who.Kind != Client || who.ClientID != "rqp-client" {
			t.Fatalf("%+v %v", who, err)
		}
	}
	if keys.n != 1 {
		t.Fatalf("%d verifications for 3 uses of one token, want 1", keys.n)
	}
	now = now.Add(2 * time.Minute)
	if _, err := a.Authenticate(context.Background(), raw); !errors.Is(err, ErrInvalidToken) || keys.n != 2 {
		t.Fatalf("after exp: %v (%d verifications), want a fresh verification refusing it", err, keys.n)
	}
	bad := raw[:len(raw)-4] + "AAAA"
	for range 2 {
		if _, err := a.Authenticate(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("tampered token: %v", err)
		}
	}
	if keys.n != 4 {
		t.Fatalf("%d verifications; a refused token must be verified each time", keys.n)
	}
}
