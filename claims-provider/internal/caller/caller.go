// Package caller authenticates who calls the Claims Provider: the bearer
// access token of the AuthN realm, verified locally (signature by a key of
// the realm's JWKS, iss, exp, aud containing the Claims Provider, algorithm
// allowlist), then classified as a user's token or a client's own
// (client-credentials) token.
//
// Classification. Keycloak writes the session note client_id into a token
// only in the client-credentials grant (the service_account client scope maps
// it to the claim client_id), and the subject of such a token is the client's
// service-account user, named service-account-<client id>. So:
//
//   - a token with a client_id claim is a client token: client_id must equal
//     azp and, where preferred_username is present, it must be
//     service-account-<client id>; anything else is refused as inconsistent;
//   - a token without client_id is a user token: it must carry sub and azp,
//     and the user's email comes from its email claim.
//
// A misconfigured realm cannot turn one into the other to the caller's gain:
// a client token is only honoured for clients on the on-behalf allow list, and
// a user token is only honoured when Keycloak's user with the token's email
// has the token's sub as id (checked by the provider after the lookup).
package caller

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/jwtverify"
)

// Kind of caller.
type Kind int

const (
	// User: a person's token (Alice logged in; authorization code + PKCE).
	User Kind = iota + 1
	// Client: a client's own token (client credentials; Alice not involved).
	Client
)

func (k Kind) String() string {
	switch k {
	case User:
		return "user"
	case Client:
		return "client"
	}
	return "unknown"
}

// Caller is an authenticated caller.
type Caller struct {
	Kind Kind
	// Subject is the token's sub (the user's id for a user token, the
	// service account's for a client token).
	Subject string
	// ClientID is the client the token was issued to (azp).
	ClientID string
	// Email is the user token's email claim, lower-cased ("" for clients).
	Email string
}

// AccessClaims are the members of a Keycloak access token read here.
type AccessClaims struct {
	jwt.RegisteredClaims
	Typ               string `json:"typ"`
	Azp               string `json:"azp"`
	ClientID          string `json:"client_id"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// Errors of Authenticate.
var (
	// ErrInvalidToken: answer 401 invalid_token.
	ErrInvalidToken = errors.New("caller: invalid access token")
	// ErrUnavailable: the realm's keys could not be fetched; answer 503.
	ErrUnavailable = errors.New("caller: AuthN realm keys unavailable")
)

// MaxIDLength bounds sub, azp and client_id.
const MaxIDLength = 255

// Authenticator verifies and classifies access tokens.
//
// A token that verified is remembered (by its SHA-256) until its exp, so
// that a client's cached client-credentials token, presented for every
// claims token, is verified once: what it says cannot change before it
// expires, and a token that failed is never remembered.
type Authenticator struct {
	v   *jwtverify.Verifier
	now func() time.Time

	mu   sync.Mutex
	seen map[[sha256.Size]byte]verified
}

type verified struct {
	c   Caller
	exp time.Time
}

// maxSeen bounds the remembered tokens (emptied when full).
const maxSeen = 10000

// New wraps a verifier configured with the realm's issuer, the Claims
// Provider's audience and the algorithm allowlist.
func New(v *jwtverify.Verifier) *Authenticator {
	return &Authenticator{v: v, now: time.Now, seen: map[[sha256.Size]byte]verified{}}
}

// Authenticate verifies raw and tells who calls.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Caller, error) {
	key := sha256.Sum256([]byte(raw))
	a.mu.Lock()
	hit, ok := a.seen[key]
	a.mu.Unlock()
	if ok && a.now().Before(hit.exp) {
		return hit.c, nil
	}
	var c AccessClaims
	if err := a.v.Verify(ctx, raw, &c); err != nil {
		if errors.Is(err, jwtverify.ErrKeySetUnavailable) {
			return Caller{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	who, err := Classify(c)
	if err != nil || c.ExpiresAt == nil {
		return who, err
	}
	a.mu.Lock()
	if len(a.seen) >= maxSeen {
		clear(a.seen)
	}
	a.seen[key] = verified{c: who, exp: c.ExpiresAt.Time}
	a.mu.Unlock()
	return who, nil
}

// Classify applies the rules of the package documentation to verified claims.
func Classify(c AccessClaims) (Caller, error) {
	if !strings.EqualFold(c.Typ, "Bearer") {
		return Caller{}, fmt.Errorf("%w: typ %q is not an access token", ErrInvalidToken, c.Typ)
	}
	if c.Azp == "" || len(c.Azp) > MaxIDLength || c.Subject == "" || len(c.Subject) > MaxIDLength || len(c.ClientID) > MaxIDLength {
		return Caller{}, fmt.Errorf("%w: sub and azp required", ErrInvalidToken)
	}
	if c.ClientID != "" {
		if c.ClientID != c.Azp {
			return Caller{}, fmt.Errorf("%w: client_id %q differs from azp %q", ErrInvalidToken, c.ClientID, c.Azp)
		}
		if c.PreferredUsername != "" && c.PreferredUsername != "service-account-"+strings.ToLower(c.ClientID) {
			return Caller{}, fmt.Errorf("%w: client token of %q for user %q", ErrInvalidToken, c.ClientID, c.PreferredUsername)
		}
		return Caller{Kind: Client, Subject: c.Subject, ClientID: c.Azp}, nil
	}
	if strings.HasPrefix(c.PreferredUsername, "service-account-") {
		return Caller{}, fmt.Errorf("%w: service-account token without client_id", ErrInvalidToken)
	}
	return Caller{Kind: User, Subject: c.Subject, ClientID: c.Azp, Email: strings.ToLower(c.Email)}, nil
}
