// Package jwtverify verifies JWTs locally: golang-jwt/jwt/v5 with an
// algorithm allowlist, issuer, audience and expiry checks, and keys from a JWKS
// cache that refetches on an unknown kid (rate-limited). The Claims Provider
// verifies its callers' access tokens with it, the Resource Server RPTs.
package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/jwk"
)

// KeySource finds the public key for a token's kid and alg.
type KeySource interface {
	Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error)
}

// ErrUnknownKey says no key fits the token's kid and alg.
var ErrUnknownKey = errors.New("jwtverify: no key for this kid and alg")

// StaticKeys is a fixed key set.
type StaticKeys []jwk.Key

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid, alg string) (crypto.PublicKey, error) {
	return selectKey(s, kid, alg)
}

// selectKey picks the key with this kid whose type fits alg; a token without
// kid is accepted only where exactly one key fits.
func selectKey(keys []jwk.Key, kid, alg string) (crypto.PublicKey, error) {
	var found crypto.PublicKey
	n := 0
	for _, k := range keys {
		if kid != "" && k.Kid != kid {
			continue
		}
		if k.Alg != "" && k.Alg != alg {
			continue
		}
		if !fits(k.Public, alg) {
			continue
		}
		found = k.Public
		n++
	}
	if n == 1 || (n > 1 && kid != "") {
		return found, nil
	}
	return nil, fmt.Errorf("%w (kid %q, alg %s)", ErrUnknownKey, kid, alg)
}

// fits reports whether a key type and curve go with an algorithm.
func fits(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// KeySetOptions tune a RemoteKeySet; zero values take the defaults.
type KeySetOptions struct {
	// HTTPClient fetches the set; default an httpclient.New client with a
	// 5 s timeout.
	HTTPClient *http.Client
	// MaxAge: keys older than this are refreshed on use; default 10 minutes.
	MaxAge time.Duration
	// MinRefreshInterval rate-limits refetches (an unknown kid cannot make us
	// hammer the JWKS endpoint); default 10 seconds.
	MinRefreshInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RemoteKeySet is a cached JWKS document at a URL.
type RemoteKeySet struct {
	url  string
	opts KeySetOptions

	fetchMu sync.Mutex // one fetch at a time; waiters then read the result
	mu      sync.Mutex
	keys    []jwk.Key
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
	failed  bool      // the last attempt failed
}

// NewRemoteKeySet makes a cache for the JWKS at url; nothing is fetched yet.
func NewRemoteKeySet(url string, opts KeySetOptions) *RemoteKeySet {
	if opts.HTTPClient == nil {
		opts.HTTPClient = httpclient.New(5 * time.Second)
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 10 * time.Minute
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RemoteKeySet{url: url, opts: opts}
}

// URL is where the set is fetched from.
func (r *RemoteKeySet) URL() string { return r.url }

// Key implements KeySource: cached keys while fresh; a refetch (at most one per
// MinRefreshInterval) when the kid is unknown or the set is older than MaxAge.
// When a refresh fails, keys already held stay usable.
func (r *RemoteKeySet) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	keys, fetched := r.snapshot()
	now := r.opts.Now()
	if k, err := selectKey(keys, kid, alg); err == nil && now.Sub(fetched) < r.opts.MaxAge {
		return k, nil
	}
	refreshErr := r.refresh(ctx, false)
	keys, _ = r.snapshot()
	k, err := selectKey(keys, kid, alg)
	if err != nil && refreshErr != nil {
		if r.lastFetchFailed() {
			// Not "this key is unknown" but "we could not ask": a caller
			// may answer 503 rather than 401.
			return nil, fmt.Errorf("%w: %w; fetching %s: %v", ErrKeySetUnavailable, err, r.url, refreshErr)
		}
		return nil, fmt.Errorf("%w; fetching %s: %v", err, r.url, refreshErr)
	}
	return k, err
}

// ErrKeySetUnavailable says no key fits and the last attempt to fetch the set
// failed (also while refetches are rate-limited after that failure): the key
// may exist, the JWKS endpoint did not answer.
var ErrKeySetUnavailable = errors.New("jwtverify: JWKS endpoint unavailable")

func (r *RemoteKeySet) lastFetchFailed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Refresh fetches the set now (readiness checks, tests), ignoring the rate limit.
func (r *RemoteKeySet) Refresh(ctx context.Context) error { return r.refresh(ctx, true) }

func (r *RemoteKeySet) snapshot() ([]jwk.Key, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys, r.fetched
}

// ErrRateLimited says a refetch was skipped because the last one was too recent.
var ErrRateLimited = errors.New("jwtverify: JWKS refetch rate-limited")

func (r *RemoteKeySet) refresh(ctx context.Context, force bool) error {
	started := r.opts.Now()
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	tried := r.tried
	r.mu.Unlock()
	if tried.After(started) {
		return nil // a fetch that began after we asked has just finished
	}
	if !force && !tried.IsZero() && started.Sub(tried) < r.opts.MinRefreshInterval {
		return ErrRateLimited
	}
	r.mu.Lock()
	r.tried = r.opts.Now()
	r.mu.Unlock()
	keys, err := r.fetch(ctx)
	r.mu.Lock()
	r.failed = err != nil
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.keys, r.fetched = keys, r.opts.Now()
	r.mu.Unlock()
	return nil
}

func (r *RemoteKeySet) fetch(ctx context.Context) ([]jwk.Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, jwk.MaxSetBytes+1))
	if err != nil {
		return nil, err
	}
	return jwk.ParseSet(data)
}
