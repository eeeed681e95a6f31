package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeycloak serves the token endpoint and the users query of realm foo.
type fakeKeycloak struct {
	*httptest.Server
	tokenCalls, userCalls atomic.Int32
	// users answers a users query (nil: an empty list).
	users func(r *http.Request) (int, any)
	// tokenStatus, when set, is the token endpoint's answer status.
	tokenStatus int
	lastQuery   atomic.Value
}

func newFake(t *testing.T) *fakeKeycloak {
	f := &fakeKeycloak{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /realms/foo/protocol/openid-connect/token", func(w http.ResponseWriter, r *http.Request) {
		n := f.tokenCalls.Add(1)
		_ = r.ParseForm()
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if f.tokenStatus != 0 || id != "claims-provider" || secret != "s3cret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(max(f.tokenStatus, http.StatusUnauthorized))
			fmt.Fprint(w, `{"error":"unauthorized_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","expires_in":300,"token_type":"Bearer"}`, n)
	})
	mux.HandleFunc("GET /admin/realms/foo/users", func(w http.ResponseWriter, r *http.Request) {
		f.userCalls.Add(1)
		f.lastQuery.Store(r.URL.Query())
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer token-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		status, body := http.StatusOK, any([]any{})
		if f.users != nil {
			status, body = f.users(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("GET /admin/realms/foo/users/count", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer token-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "3")
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeKeycloak) dir(t *testing.T) *Directory {
	d, err := New(Config{BaseURL: f.URL, Realm: "foo", ClientID: "claims-provider", ClientSecret: "s3cret", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func aliceRep() map[string]any {
	return map[string]any{
		"id": "a1", "username": "alice", "enabled": true, "email": "alice@foo.example",
		"emailVerified": true, "firstName": "Alice", "lastName": "Liddell",
	}
}

func ok(reps ...map[string]any) func(*http.Request) (int, any) {
	return func(*http.Request) (int, any) { return http.StatusOK, reps }
}

func TestByEmailFindsTheUser(t *testing.T) {
	f := newFake(t)
	f.users = ok(aliceRep())
	d := f.dir(t)
	ctx := context.Background()
	for range 3 {
		u, err := d.ByEmail(ctx, "alice@foo.example")
		if err != nil {
			t.Fatal(err)
		}
		want := User{ID: "a1", Username: "alice", Email: "alice@foo.example", EmailVerified: true, FirstName: "Alice", LastName: "Liddell"}
		if u != want {
			t.Fatalf("user = %+v, want %+v", u, want)
		}
	}
	// One token for all lookups: cached, not fetched per request.
	if n := f.tokenCalls.Load(); n != 1 {
		t.Fatalf("%d token fetches for 3 lookups, want 1", n)
	}
	q := f.lastQuery.Load().(url.Values)
	if q["email"][0] != "alice@foo.example" || q["exact"][0] != "true" || q["max"][0] != "2" || q["briefRepresentation"][0] != "false" {
		t.Fatalf("query = %v, want exact email, max 2, full representation", q)
	}
}

func TestByEmailRefusals(t *testing.T) {
	disabled := aliceRep()
	disabled["enabled"] = false
	noEnabled := aliceRep()
	delete(noEnabled, "enabled")
	other := aliceRep()
	other["id"], other["username"] = "a2", "alice2"
	wrongEmail := aliceRep()
	wrongEmail["email"] = "alice@foo.example.evil"
	sa := aliceRep()
	sa["serviceAccountClientId"] = "rqp-client"
	saName := aliceRep()
	saName["username"] = "service-account-rqp-client"
	noID := aliceRep()
	delete(noID, "id")

	cases := []struct {
		name  string
		users func(*http.Request) (int, any)
		want  error
	}{
		{"unknown", ok(), ErrNotFound},
		{"disabled", ok(disabled), ErrDisabled},
		{"enabled missing", ok(noEnabled), ErrDisabled},
		{"ambiguous", ok(aliceRep(), other), ErrAmbiguous},
		{"answer for another email", ok(wrongEmail), ErrNotFound},
		{"service account by link", ok(sa), ErrNotFound},
		{"service account by name", ok(saName), ErrNotFound},
		{"no id", ok(noID), ErrNotFound},
		{"server error", func(*http.Request) (int, any) { return 500, map[string]string{"error": "x"} }, ErrUnavailable},
		{"forbidden (roles missing)", func(*http.Request) (int, any) { return 403, map[string]string{"error": "HTTP 403 Forbidden"} }, ErrUnavailable},
		{"not JSON list", func(*http.Request) (int, any) { return 200, map[string]string{"x": "y"} }, ErrUnavailable},
		{"huge answer", func(*http.Request) (int, any) {
			return 200, []map[string]any{{"id": "a1", "email": "alice@foo.example", "firstName": strings.Repeat("A", 2<<20)}}
		}, ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t)
			f.users = c.users
			_, err := f.dir(t).ByEmail(context.Background(), "alice@foo.example")
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestByEmailBoundsTheAddress(t *testing.T) {
	f := newFake(t)
	f.users = ok(aliceRep())
	d := f.dir(t)
	for _, e := range []string{"", strings.Repeat("a", 250) + "@foo.example"} {
		if _, err := d.ByEmail(context.Background(), e); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByEmail(%d bytes) = %v, want ErrNotFound", len(e), err)
		}
	}
	if n := f.userCalls.Load(); n != 0 {
		t.Fatalf("%d calls to Keycloak for refused addresses", n)
	}
}

func TestRetriesOnceWithAFreshTokenAfter401(t *testing.T) {
	f := newFake(t)
	var calls atomic.Int32
	f.users = func(r *http.Request) (int, any) {
		if calls.Add(1) == 1 {
			return http.StatusUnauthorized, map[string]string{"error": "HTTP 401 Unauthorized"}
		}
		if r.Header.Get("Authorization") != "Bearer token-2" {
			return http.StatusUnauthorized, nil
		}
		return http.StatusOK, []any{aliceRep()}
	}
	u, err := f.dir(t).ByEmail(context.Background(), "alice@foo.example")
	if err != nil || u.ID != "a1" {
		t.Fatalf("ByEmail after a 401 = %+v, %v", u, err)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Fatalf("%d token fetches, want 2 (one renewal after the 401)", n)
	}

	// Two 401s in a row: no loop, Keycloak is unusable.
	f2 := newFake(t)
	f2.users = func(*http.Request) (int, any) { return http.StatusUnauthorized, nil }
	if _, err := f2.dir(t).ByEmail(context.Background(), "alice@foo.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if n := f2.userCalls.Load(); n != 2 {
		t.Fatalf("%d user queries, want 2", n)
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		f := newFake(t)
		d, err := New(Config{BaseURL: f.URL, Realm: "foo", ClientID: "claims-provider", ClientSecret: "wrong"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.ByEmail(context.Background(), "alice@foo.example"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if err := d.Ready(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ready = %v, want ErrUnavailable", err)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		d, err := New(Config{BaseURL: "http://" + addr, Realm: "foo", ClientID: "claims-provider", ClientSecret: "s3cret", Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.ByEmail(context.Background(), "alice@foo.example"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if err := d.Ready(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ready = %v, want ErrUnavailable", err)
		}
	})
	t.Run("slow server", func(t *testing.T) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer slow.Close()
		defer close(release)
		d, err := New(Config{BaseURL: slow.URL, Realm: "foo", ClientID: "claims-provider", ClientSecret: "s3cret", Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := d.ByEmail(context.Background(), "alice@foo.example"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("lookup took %v despite a 200ms timeout", time.Since(start))
		}
	})
}

func TestReady(t *testing.T) {
	f := newFake(t)
	if err := f.dir(t).Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRequired(t *testing.T) {
	for _, c := range []Config{
		{Realm: "foo", ClientID: "c", ClientSecret: "s"},
		{BaseURL: "http://x", ClientID: "c", ClientSecret: "s"},
		{BaseURL: "http://x", Realm: "foo", ClientSecret: "s"},
		{BaseURL: "http://x", Realm: "foo", ClientID: "c"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
