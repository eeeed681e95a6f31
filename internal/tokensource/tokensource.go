// Package tokensource keeps a service's own access token (the Resource
// Server's PAT, the Claims Provider's service-account token): fetched once,
// shared by concurrent callers, renewed before it expires, never fetched per
// request.
package tokensource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
)

// Fetch obtains a token and its lifetime.
type Fetch func(ctx context.Context) (token string, lifetime time.Duration, err error)

// Options tune a Cache; zero values take the defaults.
type Options struct {
	// RenewBefore: a token is renewed when less than this is left, or less
	// than a fifth of its lifetime, whichever is larger; default 30 seconds.
	RenewBefore time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Cache hands out one cached token.
type Cache struct {
	fetch Fetch
	opts  Options

	mu      sync.Mutex // held while fetching: callers wait for one fetch
	token   string
	renewAt time.Time
	expires time.Time
}

// New makes a Cache; nothing is fetched until the first Token call.
func New(fetch Fetch, opts Options) *Cache {
	if opts.RenewBefore == 0 {
		opts.RenewBefore = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{fetch: fetch, opts: opts}
}

// Token returns the cached token, fetching a new one when there is none or
// it is due for renewal. If renewal fails while the old token is still valid,
// the old one is returned.
func (c *Cache) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if c.token != "" && now.Before(c.renewAt) {
		return c.token, nil
	}
	tok, life, err := c.fetch(ctx)
	if err != nil {
		if c.token != "" && now.Before(c.expires) {
			return c.token, nil
		}
		return "", err
	}
	if life <= 0 {
		life = time.Minute
	}
	early := max(c.opts.RenewBefore, life/5)
	if early >= life {
		early = life / 2
	}
	c.token, c.expires, c.renewAt = tok, now.Add(life), now.Add(life-early)
	return tok, nil
}

// Invalidate drops the cached token: call it when the server refused the
// token (401), for example after a restart that rotated its keys.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}

// Error is a token endpoint's refusal.
type Error struct {
	StatusCode  int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("token endpoint: %d %s: %s", e.StatusCode, e.Code, e.Description)
}

// ErrUnreachable wraps transport failures: the token endpoint did not answer.
var ErrUnreachable = errors.New("token endpoint unreachable")

// ClientCredentials fetches with the OAuth 2.0 client-credentials grant,
// authenticating with HTTP basic (RFC 6749 2.3.1). hc nil means an
// httpclient.New client with a 10-second timeout.
func ClientCredentials(tokenURL, clientID, secret string, hc *http.Client) Fetch {
	if hc == nil {
		hc = httpclient.New(10 * time.Second)
	}
	return func(ctx context.Context) (string, time.Duration, error) {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		resp, err := hc.Do(req)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", 0, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		if resp.StatusCode != http.StatusOK {
			e := &Error{StatusCode: resp.StatusCode}
			_ = json.Unmarshal(body, e)
			return "", 0, e
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
			return "", 0, fmt.Errorf("token endpoint: malformed answer: %v", err)
		}
		return tok.AccessToken, time.Duration(tok.ExpiresIn) * time.Second, nil
	}
}
