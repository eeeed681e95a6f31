// Package issuer mints claims tokens (docs/PROTOCOL.md step 6): a compact JWS
// signed with the Claims Provider's current key, binding a user's claims as
// the AuthN server holds them to one permission ticket (ticket_digest) and one
// authorization server (aud).
package issuer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/claims-provider/internal/keys"
)

// Lifetimes of a claims token.
const (
	DefaultLifetime = 120 * time.Second
	MaxLifetime     = 300 * time.Second
)

// Claims is the payload of a claims token. Its JSON member names are the
// contract's; aud is a single string.
type Claims struct {
	Issuer        string `json:"iss"`
	Subject       string `json:"sub"`
	Audience      string `json:"aud"`
	IssuedAt      int64  `json:"iat"`
	ExpiresAt     int64  `json:"exp"`
	ID            string `json:"jti"`
	TicketDigest  string `json:"ticket_digest"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
}

// jwt.Claims, so that golang-jwt can sign (and tests parse) the struct.
var _ jwt.Claims = (*Claims)(nil)

func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *Claims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *Claims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// User is what the token says about the person: as the AuthN server holds it.
type User struct {
	ID            string
	Email         string
	EmailVerified bool
	FirstName     string
	LastName      string
}

// FullName is "first last" as Keycloak's full-name mapper builds it: either
// part alone when the other is empty, "" when both are.
func (u User) FullName() string {
	return strings.TrimSpace(strings.TrimSpace(u.FirstName) + " " + strings.TrimSpace(u.LastName))
}

// Request is one claims token to mint.
type Request struct {
	User         User
	TicketDigest string // validated by the caller (uma.ValidTicketDigest)
	Audience     string // validated by the caller
}

// Signer is the current signing key.
type Signer interface {
	Current() *keys.Key
}

// Issuer mints claims tokens.
type Issuer struct {
	iss      string
	lifetime time.Duration
	keys     Signer
	now      func() time.Time
}

// Options of an Issuer.
type Options struct {
	// Lifetime of a token; default DefaultLifetime, at most MaxLifetime.
	Lifetime time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// New checks the configuration and makes an Issuer.
func New(iss string, signer Signer, opts Options) (*Issuer, error) {
	if iss == "" || signer == nil {
		return nil, errors.New("issuer: issuer URL and signer are required")
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.Lifetime < time.Second || opts.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("issuer: lifetime %v out of range (1s to %v)", opts.Lifetime, MaxLifetime)
	}
	if opts.Lifetime%time.Second != 0 {
		return nil, fmt.Errorf("issuer: lifetime %v is not whole seconds", opts.Lifetime)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Issuer{iss: iss, lifetime: opts.Lifetime, keys: signer, now: opts.Now}, nil
}

// Lifetime is the lifetime of the tokens it mints.
func (i *Issuer) Lifetime() time.Duration { return i.lifetime }

// Token is a minted claims token.
type Token struct {
	Raw       string
	Kid, Alg  string
	Claims    Claims
	ExpiresIn int64 // seconds
}

// Issue signs a claims token for r with the current key.
func (i *Issuer) Issue(r Request) (*Token, error) {
	if r.User.ID == "" || r.User.Email == "" || r.TicketDigest == "" || r.Audience == "" {
		return nil, errors.New("issuer: user id, email, ticket digest and audience are required")
	}
	key := i.keys.Current()
	if key == nil {
		return nil, errors.New("issuer: no signing key")
	}
	method := jwt.GetSigningMethod(key.Alg)
	if method == nil || !keys.ValidAlg(key.Alg) {
		return nil, fmt.Errorf("issuer: signing algorithm %q not supported", key.Alg)
	}
	jti, err := newJTI()
	if err != nil {
		return nil, err
	}
	now := i.now().Unix()
	c := Claims{
		Issuer:        i.iss,
		Subject:       r.User.ID,
		Audience:      r.Audience,
		IssuedAt:      now,
		ExpiresAt:     now + int64(i.lifetime/time.Second),
		ID:            jti,
		TicketDigest:  r.TicketDigest,
		Email:         r.User.Email,
		EmailVerified: r.User.EmailVerified,
		Name:          r.User.FullName(),
		GivenName:     strings.TrimSpace(r.User.FirstName),
		FamilyName:    strings.TrimSpace(r.User.LastName),
	}
	tok := jwt.NewWithClaims(method, &c)
	tok.Header["kid"] = key.Kid
	raw, err := tok.SignedString(key.Private)
	if err != nil {
		return nil, fmt.Errorf("issuer: signing with %s key %s: %w", key.Alg, key.Kid, err)
	}
	return &Token{Raw: raw, Kid: key.Kid, Alg: key.Alg, Claims: c, ExpiresIn: c.ExpiresAt - c.IssuedAt}, nil
}

// newJTI is 128 random bits, BASE64URL.
func newJTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issuer: jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
