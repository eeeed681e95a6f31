// Package tokensource keeps a service's own access token (the Resource
// Server's PAT, the Claims Provider's service-account token): fetched once,
// shared by concurrent callers, renewed before it expires, never fetched per
// request. Where the token comes from is the Fetch's business (client
// credentials at Keycloak: token.ClientCredentialsFetch in
// internal/keycloak/token).
package tokensource

import (
	"context"
	"sync"
	"time"
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
