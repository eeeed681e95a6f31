// Package rpttest signs realm-like tokens for unit tests of the Resource
// Server: RPTs and readers' access tokens, with a key the tests control.
package rpttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/uma"
)

// Signer is a realm's signing key.
type Signer struct {
	Issuer string
	Kid    string
	key    *ecdsa.PrivateKey
}

// New makes a fresh ES256 key for issuer.
func New(issuer string) *Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Signer{Issuer: issuer, Kid: "test-" + rand.Text()[:8], key: k}
}

// Keys is the verification key set.
func (s *Signer) Keys() jwtverify.StaticKeys {
	return jwtverify.StaticKeys{{Kid: s.Kid, Alg: "ES256", Public: &s.key.PublicKey}}
}

// JWK is the public key as a JWK (for a fake JWKS endpoint).
func (s *Signer) JWK() jwk.JWK {
	j, err := jwk.FromPublic(&s.key.PublicKey, s.Kid, "ES256")
	if err != nil {
		panic(err)
	}
	return j
}

// Sign signs claims as given (ES256, kid set).
func (s *Signer) Sign(claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = s.Kid
	raw, err := t.SignedString(s.key)
	if err != nil {
		panic(err)
	}
	return raw
}

// Base are the claims every realm access token has, valid for five minutes.
func (s *Signer) Base() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": s.Issuer, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": "jti-" + rand.Text(), "typ": "Bearer", "sub": "0b0b0b0b", "azp": "rqp-client",
		"aud": "resource-server",
	}
}

// Perm is one RPT permission.
type Perm struct {
	RSID   string
	Scopes []string
	Claims map[string][]string
}

// RPT signs an RPT with the given permissions; extra claims override Base.
func (s *Signer) RPT(perms []Perm, extra jwt.MapClaims) string {
	c := s.Base()
	var list []any
	for _, p := range perms {
		scopes := p.Scopes
		if scopes == nil {
			scopes = []string{uma.ScopeCreate}
		}
		m := map[string]any{"rsid": p.RSID, "rsname": "incoming:x", "scopes": scopes}
		if p.Claims != nil {
			m["claims"] = Attest(p.RSID, p.Claims)
		}
		list = append(list, m)
	}
	c["authorization"] = map[string]any{"permissions": list}
	maps.Copy(c, extra)
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		}
	}
	return s.Sign(c)
}

// MACKey is the grant_mac key of the unit tests (the Resource Server's
// client secret in a real deployment).
var MACKey = []byte("resource-server-secret")

// Attest adds grant_mac, as the claims-token policy would, to claims that
// carry a grant_id and no grant_mac key; a grant_mac key with no values is
// removed (an unattested permission), one with values is kept as given.
func Attest(rsid string, claims map[string][]string) map[string][]string {
	out := maps.Clone(claims)
	if v, ok := out[grantmac.Claim]; ok {
		if len(v) == 0 {
			delete(out, grantmac.Claim)
		}
		return out
	}
	if _, ok := out[uma.ClaimGrantID]; !ok {
		return out
	}
	return grantmac.Attest(MACKey, rsid, out)
}

// Sender of the permissions GrantClaims makes.
const (
	SenderEmail = "alice@foo.example"
	SenderIss   = "https://cp.foo.example"
	SenderSub   = "a11ce"
)

// NewGrantID is a fresh grant_id of the claims-token policy's shape
// (BASE64URL of 16 random bytes).
func NewGrantID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// GrantClaims are the permission claims the claims-token policy writes on
// a grant for body pushed to incomingURL: the sender (SenderEmail,
// SenderIss, SenderSub), content_sha256, content_length, incoming_uri and a
// fresh grant_id. Tests change or delete entries to make dishonest ones.
func GrantClaims(incomingURL string, body []byte) map[string][]string {
	sum := sha256.Sum256(body)
	return map[string][]string{
		uma.ClaimSenderEmail:   {SenderEmail},
		uma.ClaimSenderIss:     {SenderIss},
		uma.ClaimSenderSub:     {SenderSub},
		uma.ClaimContentSHA256: {hex.EncodeToString(sum[:])},
		uma.ClaimContentLength: {strconv.Itoa(len(body))},
		uma.ClaimIncomingURI:   {incomingURL},
		uma.ClaimGrantID:       {NewGrantID()},
	}
}

// UserID is the Keycloak user id the unit tests give a username: readers'
// tokens carry it as sub, and the tests' owner registries resolve the
// username to it.
func UserID(username string) string { return "uid-" + username }

// Reader signs an access token of user (sub UserID(user)) for client azp.
func (s *Signer) Reader(user, azp string, extra jwt.MapClaims) string {
	c := s.Base()
	c["sub"] = UserID(user)
	c["preferred_username"] = user
	c["azp"] = azp
	c["aud"] = "account"
	maps.Copy(c, extra)
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		}
	}
	return s.Sign(c)
}
