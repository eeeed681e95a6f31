package keycloak

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// tokens counts fetches: token-1, token-2, ...
type tokens struct{ n, invalidated atomic.Int32 }

func (s *tokens) Token(context.Context) (string, error) {
	return fmt.Sprintf("token-%d", s.n.Add(1)), nil
}
func (s *tokens) Invalidate() { s.invalidated.Add(1) }

func TestDoRenewsARefusedTokenOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer token-2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	ts := &tokens{}
	var out struct{ OK bool }
	if err := Do(context.Background(), nil, Call{Method: http.MethodGet, URL: srv.URL, Bearer: ts, Out: &out}); err != nil || !out.OK {
		t.Fatalf("after one refusal: %v %+v", err, out)
	}
	if ts.invalidated.Load() != 1 || calls.Load() != 2 {
		t.Fatalf("%d invalidations, %d calls; want 1 and 2", ts.invalidated.Load(), calls.Load())
	}
	// Refused again and again: reported after the one renewal.
	calls.Store(0)
	err := Do(context.Background(), nil, Call{Method: http.MethodGet, URL: srv.URL, Bearer: &tokens{}, Refused: func(int, []byte) bool { return true }, Want: http.StatusTeapot})
	var e *Error
	if !errors.As(err, &e) || calls.Load() != 2 {
		t.Fatalf("refused twice: %v after %d calls, want an *Error after 2", err, calls.Load())
	}
}

func TestDoRefusalsAndFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/denied":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"access_denied","error_description":"not_authorized"}`)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/huge":
			fmt.Fprint(w, `"`+strings.Repeat("a", 100)+`"`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	err := Do(ctx, nil, Call{Method: http.MethodPost, URL: srv.URL + "/denied?email=x", Form: map[string][]string{"a": {"b"}}})
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 403 || e.Code != "access_denied" || e.Description != "not_authorized" ||
		!strings.Contains(e.Body, "access_denied") || strings.Contains(e.URL, "email") || errors.Is(err, ErrUnreachable) {
		t.Fatalf("403: %v (%+v)", err, e)
	}
	if err := Do(ctx, nil, Call{Method: http.MethodGet, URL: srv.URL + "/down"}); !errors.Is(err, ErrUnreachable) || !errors.As(err, &e) || e.StatusCode != 503 {
		t.Fatalf("503: %v, want ErrUnreachable with the *Error", err)
	}
	if err := Do(ctx, nil, Call{Method: http.MethodGet, URL: srv.URL + "/huge", Max: 50}); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("answer over the bound: %v", err)
	}
	srv.Close()
	if err := Do(ctx, nil, Call{Method: http.MethodGet, URL: srv.URL}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("closed server: %v", err)
	}
}
