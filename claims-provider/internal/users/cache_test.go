package users

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

func (f *fakeKeycloak) cachedDir(t *testing.T, ttl time.Duration, size int) (*Directory, *time.Time) {
	t.Helper()
	d, err := New(Config{BaseURL: f.URL, Realm: "foo", ClientID: "claims-provider", ClientSecret: "s3cret",
		Timeout: 2 * time.Second, CacheTTL: ttl, CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	d.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return d, &now
}

// A user found is answered from the cache until the TTL passes, for the
// address in any case; then Keycloak is asked again.
func TestCacheKeepsAUserFound(t *testing.T) {
	f := newFake(t)
	f.users = ok(aliceRep())
	d, now := f.cachedDir(t, 30*time.Second, 0)
	ctx := context.Background()
	for _, e := range []string{"alice@foo.example", "Alice@Foo.Example", "alice@foo.example"} {
		u, err := d.ByEmail(ctx, e)
		if err != nil || u.ID != "a1" {
			t.Fatalf("ByEmail(%s) = %+v, %v", e, u, err)
		}
	}
	if n := f.userCalls.Load(); n != 1 {
		t.Fatalf("%d Keycloak queries for 3 lookups within the TTL, want 1", n)
	}
	if k, c := d.Stats(); k != 1 || c != 2 {
		t.Fatalf("stats keycloak=%d cache=%d, want 1 and 2", k, c)
	}
	*now = now.Add(31 * time.Second)
	// Keycloak now says the user is disabled: after the TTL that is the answer,
	// and the refusal is not kept.
	disabled := aliceRep()
	disabled["enabled"] = false
	f.users = ok(disabled)
	if _, err := d.ByEmail(ctx, "alice@foo.example"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("after the TTL: %v, want ErrDisabled", err)
	}
	if _, err := d.ByEmail(ctx, "alice@foo.example"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("again: %v, want ErrDisabled", err)
	}
	if n := f.userCalls.Load(); n != 3 {
		t.Fatalf("%d Keycloak queries, want 3 (refusals are not cached)", n)
	}
}

// Refusals and failures are never kept: a user created after an "unknown"
// answer is found at once.
func TestCacheKeepsNoRefusal(t *testing.T) {
	f := newFake(t)
	d, _ := f.cachedDir(t, time.Minute, 0)
	ctx := context.Background()
	if _, err := d.ByEmail(ctx, "alice@foo.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%v, want ErrNotFound", err)
	}
	f.users = func(*http.Request) (int, any) { return 500, map[string]string{"error": "x"} }
	if _, err := d.ByEmail(ctx, "alice@foo.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
	f.users = ok(aliceRep())
	if u, err := d.ByEmail(ctx, "alice@foo.example"); err != nil || u.ID != "a1" {
		t.Fatalf("%+v %v", u, err)
	}
	if n := f.userCalls.Load(); n != 3 {
		t.Fatalf("%d Keycloak queries, want 3", n)
	}
}

// TTL 0 asks Keycloak every time; the cache is bounded.
func TestCacheOffAndBounded(t *testing.T) {
	f := newFake(t)
	f.users = ok(aliceRep())
	off, _ := f.cachedDir(t, 0, 0)
	for range 3 {
		if _, err := off.ByEmail(context.Background(), "alice@foo.example"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.userCalls.Load(); n != 3 {
		t.Fatalf("TTL 0: %d Keycloak queries for 3 lookups, want 3", n)
	}
	if k, c := off.Stats(); k != 3 || c != 0 {
		t.Fatalf("stats %d %d", k, c)
	}
	d, _ := f.cachedDir(t, time.Minute, 2)
	d.found["x@foo.example"] = cachedUser{until: d.now().Add(time.Minute)}
	d.found["y@foo.example"] = cachedUser{until: d.now().Add(time.Minute)}
	if _, err := d.ByEmail(context.Background(), "alice@foo.example"); err != nil {
		t.Fatal(err)
	}
	if len(d.found) > 2 {
		t.Fatalf("%d users kept, bound 2", len(d.found))
	}
	if _, err := New(Config{BaseURL: f.URL, Realm: "foo", ClientID: "c", ClientSecret: "s", CacheTTL: -time.Second}); err == nil {
		t.Fatal("negative TTL accepted")
	}
}
