package web

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// session is one logged-in owner. The tokens never leave the server: the
// browser holds only the session's random id.
type session struct {
	owner   string // preferred_username: the Incoming the page shows
	sub     string // the owner's user id (the ID token's and access token's sub)
	access  string // the access token every API call carries
	idToken string // id_token_hint of the logout at Keycloak
	csrf    string // the per-session token every form carries
	expires time.Time
}

// login is one login in progress, between the redirect to Keycloak and the
// callback: state, nonce and the PKCE verifier, sealed in the browser's
// login cookie (loginSealer).
type login struct {
	state, nonce, verifier string
}

// bounded is a map with an expiry per entry and a bound on its size: a
// full map first forgets its expired entries, then refuses new ones (the
// page then answers 503), so no client can grow it without limit.
type bounded[T any] struct {
	mu  sync.Mutex
	m   map[string]entry[T]
	max int
}

type entry[T any] struct {
	v   T
	exp time.Time
}

func newBounded[T any](max int) *bounded[T] {
	return &bounded[T]{m: make(map[string]entry[T]), max: max}
}

// put stores v under a new random key until exp; false when full.
func (b *bounded[T]) put(now time.Time, v T, exp time.Time) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) >= b.max {
		for k, e := range b.m {
			if !now.Before(e.exp) {
				delete(b.m, k)
			}
		}
		if len(b.m) >= b.max {
			return "", false
		}
	}
	key := randomString(32)
	b.m[key] = entry[T]{v, exp}
	return key, true
}

// get returns the entry under key unless it expired (an expired one is
// forgotten).
func (b *bounded[T]) get(now time.Time, key string) (T, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var zero T
	e, ok := b.m[key]
	if !ok {
		return zero, false
	}
	if !now.Before(e.exp) {
		delete(b.m, key)
		return zero, false
	}
	return e.v, true
}

// delWhere forgets every entry whose value matches.
func (b *bounded[T]) delWhere(match func(T) bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, e := range b.m {
		if match(e.v) {
			delete(b.m, k)
			n++
		}
	}
	return n
}

func (b *bounded[T]) del(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

func (b *bounded[T]) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// randomString is n random bytes, BASE64URL without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
