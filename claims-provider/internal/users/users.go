// Package users looks people up in the AuthN realm through Keycloak's admin
// REST API (internal/keycloak/admin), with the Claims Provider's own service-account token:
// client credentials, cached and renewed before expiry, never fetched per
// request. The service account needs realm-management's query-users and
// view-users roles and nothing else.
package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/admin"
	"github.com/umawide/umawide/internal/keycloak/token"
	"github.com/umawide/umawide/internal/tokensource"
)

// Refusals of a lookup. The three user outcomes are told apart here (logs,
// metrics); the HTTP layer answers them alike.
var (
	ErrNotFound  = errors.New("users: no user with this email")
	ErrDisabled  = errors.New("users: the user is disabled")
	ErrAmbiguous = errors.New("users: more than one user with this email")
	// ErrUnavailable: Keycloak did not answer, or refused the service
	// account (missing roles, wrong secret): nothing the caller can fix.
	ErrUnavailable = errors.New("users: Keycloak unavailable")
)

// User is a person as the realm holds them.
type User struct {
	ID            string
	Username      string
	Email         string
	EmailVerified bool
	FirstName     string
	LastName      string
}

// Config of a Directory.
type Config struct {
	// BaseURL of Keycloak, e.g. http://127.0.0.1:8080 (no /realms/...).
	BaseURL string
	// Realm to look users up in.
	Realm string
	// ClientID and ClientSecret of the service account.
	ClientID, ClientSecret string
	// Timeout of one call to Keycloak; default 5 seconds.
	Timeout time.Duration
	// MaxResponseBytes bounds a Keycloak answer; default 1 MiB.
	MaxResponseBytes int64
	// Transport for outgoing calls; default httpclient.Transport() (idle
	// connections kept for concurrent lookups).
	Transport http.RoundTripper
	// CacheTTL keeps a user found (enabled, with that email) this long, so
	// that claims tokens for one sender do not ask Keycloak each time; 0
	// asks Keycloak for every lookup. Refusals (unknown, disabled,
	// ambiguous) and failures are never kept.
	CacheTTL time.Duration
	// CacheSize bounds the users kept; default 10,000 (the cache is emptied
	// when full).
	CacheSize int
}

// Directory finds users by email.
type Directory struct {
	admin *admin.Client
	realm string

	ttl     time.Duration
	size    int
	now     func() time.Time
	mu      sync.Mutex
	found   map[string]cachedUser // lower-cased email -> user
	lookups atomic.Int64          // asked of Keycloak
	hits    atomic.Int64          // answered from the cache
}

type cachedUser struct {
	u     User
	until time.Time
}

// New makes a Directory; nothing is fetched until the first call.
func New(cfg Config) (*Directory, error) {
	if cfg.BaseURL == "" || cfg.Realm == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("users: Keycloak URL, realm, client id and secret are required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.Transport == nil {
		cfg.Transport = httpclient.Transport()
	}
	if cfg.CacheTTL < 0 {
		return nil, errors.New("users: negative cache TTL")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	// A redirect is an answer, not a place to send the token to.
	hc := &http.Client{Transport: cfg.Transport, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := strings.TrimRight(cfg.BaseURL, "/")
	tokens := tokensource.New(token.ClientCredentialsFetch(hc, token.Endpoint(base+"/realms/"+url.PathEscape(cfg.Realm)),
		cfg.ClientID, cfg.ClientSecret), tokensource.Options{})
	d := &Directory{
		admin: admin.New(admin.Config{KeycloakURL: base, Token: tokens, HTTP: keycloak.HTTP{Client: hc, MaxResponse: cfg.MaxResponseBytes}}),
		realm: cfg.Realm,
		ttl:   cfg.CacheTTL, size: cfg.CacheSize, now: time.Now, found: map[string]cachedUser{},
	}
	return d, nil
}

// MaxEmailLength bounds the address looked up (RFC 5321 path limit).
const MaxEmailLength = 254

// ByEmail finds the one enabled user whose email is exactly email (compared
// case-insensitively, as Keycloak stores emails in lower case). Service
// accounts are no people: they are not found. With a CacheTTL, a user found
// is answered from memory for that long.
func (d *Directory) ByEmail(ctx context.Context, email string) (User, error) {
	if email == "" || len(email) > MaxEmailLength {
		return User{}, fmt.Errorf("%w: email of %d bytes", ErrNotFound, len(email))
	}
	if d.ttl <= 0 {
		d.lookups.Add(1)
		return d.lookup(ctx, email)
	}
	key := strings.ToLower(email)
	d.mu.Lock()
	c, ok := d.found[key]
	d.mu.Unlock()
	if ok && d.now().Before(c.until) {
		d.hits.Add(1)
		return c.u, nil
	}
	d.lookups.Add(1)
	u, err := d.lookup(ctx, email)
	if err != nil {
		if ok {
			d.mu.Lock()
			if cur, still := d.found[key]; still && cur.until == c.until {
				delete(d.found, key) // a refusal replaces what was known
			}
			d.mu.Unlock()
		}
		return u, err
	}
	d.mu.Lock()
	if len(d.found) >= d.size {
		clear(d.found)
	}
	d.found[key] = cachedUser{u: u, until: d.now().Add(d.ttl)}
	d.mu.Unlock()
	return u, nil
}

// Stats says how many lookups went to Keycloak and how many the cache
// answered.
func (d *Directory) Stats() (keycloak, cached int64) { return d.lookups.Load(), d.hits.Load() }

// lookup asks Keycloak.
func (d *Directory) lookup(ctx context.Context, email string) (User, error) {
	// Two are enough to know the answer is ambiguous.
	found, err := d.admin.Users(ctx, d.realm, admin.UserQuery{Email: email, Exact: true, Full: true, Max: 2})
	if err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(found) > 1 {
		return User{}, ErrAmbiguous
	}
	if len(found) == 0 {
		return User{}, ErrNotFound
	}
	u := found[0]
	if !strings.EqualFold(u.Email, email) || u.ID == "" {
		// Not what an exact query answers: refuse rather than guess.
		return User{}, fmt.Errorf("%w: Keycloak answered a user with another email", ErrNotFound)
	}
	if u.ServiceAccountClientID != "" || strings.HasPrefix(u.Username, "service-account-") {
		return User{}, fmt.Errorf("%w: a service account", ErrNotFound)
	}
	if !u.Enabled {
		return User{}, ErrDisabled
	}
	return User{
		ID:            u.ID,
		Username:      u.Username,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		FirstName:     u.FirstName,
		LastName:      u.LastName,
	}, nil
}

// Ready checks that Keycloak answers the admin API with the service
// account's token (cached): the token is obtained, and a user count query
// (query-users) succeeds.
func (d *Directory) Ready(ctx context.Context) error {
	if _, err := d.admin.UserCount(ctx, d.realm, admin.UserQuery{Max: 1}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
