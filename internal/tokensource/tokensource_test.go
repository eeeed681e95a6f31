package tokensource

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheRenewsBeforeExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	var fetches atomic.Int32
	fail := false
	c := New(func(context.Context) (string, time.Duration, error) {
		if fail {
			return "", 0, errors.New("down")
		}
		n := fetches.Add(1)
		return fmt.Sprintf("t%d", n), 300 * time.Second, nil
	}, Options{Now: func() time.Time { return now }})
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Token(ctx) }()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("50 concurrent callers caused %d fetches, want 1", n)
	}
	// Renewal at lifetime - max(30s, lifetime/5) = 240 s.
	now = now.Add(239 * time.Second)
	if tok, _ := c.Token(ctx); tok != "t1" {
		t.Fatalf("token before renewal = %s", tok)
	}
	now = now.Add(2 * time.Second)
	if tok, _ := c.Token(ctx); tok != "t2" {
		t.Fatalf("token after renewal point = %s, want t2", tok)
	}
	// A failed renewal keeps the still-valid token; an expired one is an error.
	fail = true
	now = now.Add(250 * time.Second)
	if tok, err := c.Token(ctx); tok != "t2" || err != nil {
		t.Fatalf("failed renewal: %s, %v; want the old token", tok, err)
	}
	now = now.Add(100 * time.Second)
	if _, err := c.Token(ctx); err == nil {
		t.Fatal("expired token handed out")
	}
	fail = false
	c.Invalidate()
	if tok, _ := c.Token(ctx); tok != "t3" {
		t.Fatalf("after Invalidate: %s, want t3", tok)
	}
}
