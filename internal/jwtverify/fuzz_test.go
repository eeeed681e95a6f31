package jwtverify

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/jwk"
)

// FuzzVerify feeds arbitrary compact tokens (bearer tokens, RPTs and claims
// tokens are outside input) to a verifier that trusts one ES256 and one RS256
// key. Whatever it accepts has an allowed asymmetric alg, a signature that
// verifies under that alg with the key its kid names, the configured iss and
// an exp; a token that only changes under a valid signature, alg none, an
// HMAC keyed with a public key: all refused. Seed corpus:
// testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	es, rs := newSigner(f, "ES256"), newSigner(f, "RS256")
	keys := StaticKeys{{Kid: es.kid, Alg: "ES256", Public: es.public}, {Kid: rs.kid, Alg: "RS256", Public: rs.public}}
	v, err := New(Config{Issuer: iss, Audience: "claims-provider", Keys: keys, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	claims := jwt.MapClaims{"iss": iss, "aud": "claims-provider", "sub": "u1", "iat": 1_800_000_000, "exp": 1_800_000_060}
	good := es.sign(f, claims)
	f.Add(good)
	f.Add(rs.sign(f, claims))
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(b64(`{"alg":"none","kid":"`+es.kid+`"}`) + "." + parts[1] + ".")
	der, _ := x509.MarshalPKIXPublicKey(rs.public)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = rs.kid
	hsRaw, _ := hs.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	f.Add(hsRaw)
	f.Add(b64(`{"alg":"ES256","kid":"`+rs.kid+`"}`) + "." + parts[1] + "." + parts[2])
	f.Fuzz(func(t *testing.T, raw string) {
		var got jwt.MapClaims
		if err := v.Verify(context.Background(), raw, &got); err != nil {
			return
		}
		p := strings.Split(raw, ".")
		if len(p) != 3 {
			t.Fatalf("accepted %q", raw)
		}
		header, err := base64.RawURLEncoding.DecodeString(p[0])
		if err != nil {
			t.Fatalf("accepted a header that is not BASE64URL: %q", raw)
		}
		tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
		if err != nil {
			t.Fatalf("accepted %q (header %s): %v", raw, header, err)
		}
		alg, _ := tok.Header["alg"].(string)
		kid, _ := tok.Header["kid"].(string)
		var key jwk.Key
		for _, k := range keys {
			if k.Kid == kid {
				key = k
			}
		}
		if alg != key.Alg {
			t.Fatalf("accepted alg %q for the %q key %q", alg, key.Alg, kid)
		}
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		if err != nil {
			t.Fatalf("accepted a signature that is not BASE64URL: %q", raw)
		}
		if err := jwt.GetSigningMethod(alg).Verify(p[0]+"."+p[1], sig, key.Public); err != nil {
			t.Fatalf("accepted %q whose signature does not verify: %v", raw, err)
		}
		if got["iss"] != iss || got["exp"] == nil {
			t.Fatalf("accepted claims %v", got)
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
