package rqp_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

func push(t *testing.T, c *rqp.Client, s *umafake.Stack, progress func(rqp.Event)) error {
	t.Helper()
	_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte(t.Name()), "a.txt"),
		Email: umafake.AliceEmail, Progress: progress})
	return err
}

// With client credentials, later pushes reuse the client's token (step 3
// "cached"); concurrent first pushes wait for one fetch.
func TestClientCredentialsTokenCached(t *testing.T) {
	s := umafake.New(t)
	c := newClient(t, config(s, nil))
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { errs[i] = push(t, c, s, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count("kc.token"); n != 1 {
		t.Fatalf("5 concurrent pushes fetched %d client-credentials tokens, want 1", n)
	}
	var step3 rqp.Event
	if err := push(t, c, s, func(ev rqp.Event) {
		if ev.Step == rqp.StepAccessToken {
			step3 = ev
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n := s.Count("kc.token"); n != 1 || step3.Status != "cached" || !step3.OK {
		t.Fatalf("later push: %d token requests, step 3 %+v; want the cached token", n, step3)
	}
	assertNoSecrets(t, "step 3 detail", step3.Detail)
	if len(s.StoredMessages()) != 6 {
		t.Fatalf("%d stored", len(s.StoredMessages()))
	}
}

// A cached token the Claims Provider refuses (401) is dropped, a new one is
// fetched and step 5 asked once more; a refusal of the fresh token fails.
func TestCachedTokenRefused(t *testing.T) {
	s := umafake.New(t)
	c := newClient(t, config(s, nil))
	if err := push(t, c, s, nil); err != nil {
		t.Fatal(err)
	}
	refusals := 1
	s.Hook("cp.token", func(w http.ResponseWriter, r *http.Request) bool {
		if refusals > 0 {
			refusals--
			umafake.Error(w, 401, "invalid_token", "the access token is invalid")
			return true
		}
		return false
	})
	var statuses []string
	if err := push(t, c, s, func(ev rqp.Event) {
		if ev.Step == rqp.StepAccessToken {
			statuses = append(statuses, ev.Status)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n := s.Count("kc.token"); n != 2 || fmt.Sprint(statuses) != "[cached 200 OK]" {
		t.Fatalf("%d token requests, step 3 statuses %v; want the cached token, then a fresh one", n, statuses)
	}
	// The fresh token is cached in turn.
	if err := push(t, c, s, nil); err != nil || s.Count("kc.token") != 2 {
		t.Fatalf("next push: %v, %d token requests", err, s.Count("kc.token"))
	}
	// A fresh token refused too is an error, asked once.
	refusals = 2
	before := s.Count("cp.token")
	err := push(t, c, s, nil)
	if se, ok := err.(*rqp.StepError); !ok || se.Step != rqp.StepClaimsRequest || se.StatusCode != 401 {
		t.Fatalf("err = %v", err)
	}
	if n := s.Count("cp.token") - before; n != 2 {
		t.Fatalf("the Claims Provider was asked %d times, want 2", n)
	}
}

// A person's token is never kept: every push with Login logs in again.
func TestLoginTokenNotCached(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.AuthN.Login = &rqp.Login{OpenURL: browser("alice", umafake.AlicePassword), Timeout: 10 * time.Second}
	cfg.ClaimsProvider = rqp.ClaimsProvider{DiscoveryBaseURL: s.CP.URL}
	c := newClient(t, cfg)
	for range 2 {
		if _, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), "")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count("kc.token"); n != 2 {
		t.Fatalf("two pushes with a login made %d token requests, want 2", n)
	}
}
