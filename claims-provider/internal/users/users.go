// Package users looks people up in the AuthN realm through Keycloak's admin
// REST API (gocloak), with the Claims Provider's own service-account token:
// client credentials, cached and renewed before expiry, never fetched per
// request. The service account needs realm-management's query-users and
// view-users roles and nothing else.
package users

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Nerzal/gocloak/v13"
	"github.com/go-resty/resty/v2"

	"github.com/umawide/umawide/internal/httpclient"
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
	gc     *gocloak.GoCloak
	realm  string
	tokens *tokensource.Cache

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
	gc := gocloak.NewClient(cfg.BaseURL)
	gc.RestyClient().
		SetTimeout(cfg.Timeout).
		SetRedirectPolicy(resty.NoRedirectPolicy()).
		SetTransport(&limitTransport{base: cfg.Transport, max: cfg.MaxResponseBytes})
	if cfg.CacheTTL < 0 {
		return nil, errors.New("users: negative cache TTL")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	d := &Directory{gc: gc, realm: cfg.Realm, ttl: cfg.CacheTTL, size: cfg.CacheSize, now: time.Now, found: map[string]cachedUser{}}
	clientID, secret, realm := cfg.ClientID, cfg.ClientSecret, cfg.Realm
	d.tokens = tokensource.New(func(ctx context.Context) (string, time.Duration, error) {
		jwt, err := gc.LoginClient(ctx, clientID, secret, realm)
		if err != nil {
			return "", 0, fmt.Errorf("service-account token of %s: %w", clientID, err)
		}
		if jwt.AccessToken == "" {
			return "", 0, fmt.Errorf("service-account token of %s: empty answer", clientID)
		}
		return jwt.AccessToken, time.Duration(jwt.ExpiresIn) * time.Second, nil
	}, tokensource.Options{})
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
	var found []*gocloak.User
	err := d.withToken(ctx, func(tok string) error {
		var err error
		// Two are enough to know the answer is ambiguous.
		found, err = d.gc.GetUsers(ctx, tok, d.realm, gocloak.GetUsersParams{
			Email:               gocloak.StringP(email),
			Exact:               gocloak.BoolP(true),
			BriefRepresentation: gocloak.BoolP(false),
			Max:                 gocloak.IntP(2),
		})
		return err
	})
	if err != nil {
		return User{}, err
	}
	if len(found) > 1 {
		return User{}, ErrAmbiguous
	}
	if len(found) == 0 || found[0] == nil {
		return User{}, ErrNotFound
	}
	u := found[0]
	if !strings.EqualFold(str(u.Email), email) || str(u.ID) == "" {
		// Not what an exact query answers: refuse rather than guess.
		return User{}, fmt.Errorf("%w: Keycloak answered a user with another email", ErrNotFound)
	}
	if str(u.ServiceAccountClientID) != "" || strings.HasPrefix(str(u.Username), "service-account-") {
		return User{}, fmt.Errorf("%w: a service account", ErrNotFound)
	}
	if u.Enabled == nil || !*u.Enabled {
		return User{}, ErrDisabled
	}
	return User{
		ID:            str(u.ID),
		Username:      str(u.Username),
		Email:         str(u.Email),
		EmailVerified: u.EmailVerified != nil && *u.EmailVerified,
		FirstName:     str(u.FirstName),
		LastName:      str(u.LastName),
	}, nil
}

// Ready checks that Keycloak answers the admin API with the service
// account's token (cached): the token is obtained, and a user count query
// (query-users) succeeds.
func (d *Directory) Ready(ctx context.Context) error {
	return d.withToken(ctx, func(tok string) error {
		_, err := d.gc.GetUserCount(ctx, tok, d.realm, gocloak.GetUsersParams{Max: gocloak.IntP(1)})
		return err
	})
}

// withToken runs call with the cached service-account token; when Keycloak
// answers 401 (the token was revoked, or Keycloak restarted with new keys) it
// drops the token and tries once more with a fresh one. Every failure wraps
// ErrUnavailable.
func (d *Directory) withToken(ctx context.Context, call func(tok string) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := d.tokens.Token(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		err = call(tok)
		if err == nil {
			return nil
		}
		var apiErr *gocloak.APIError
		if attempt == 0 && errors.As(err, &apiErr) && apiErr.Code == http.StatusUnauthorized {
			d.tokens.Invalidate()
			continue
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// limitTransport caps every response body: a larger answer fails the call.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

// ErrResponseTooLarge fails a read beyond the cap.
var ErrResponseTooLarge = errors.New("users: Keycloak response too large")

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the cap from a larger one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
