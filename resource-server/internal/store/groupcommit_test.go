package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// held opens a SQLite store whose committer stops before its first batch
// until release is called, so that inserts pile up in the queue; it then
// waits until n inserts are queued behind the held one.
type held struct {
	s       *SQLite
	path    string
	gate    chan struct{}
	once    sync.Once
	entered chan struct{}
	sizes   []int
	mu      sync.Mutex
}

func openHeld(t *testing.T) *held {
	t.Helper()
	h := &held{path: filepath.Join(t.TempDir(), "gc.db"), gate: make(chan struct{}), entered: make(chan struct{})}
	s, err := OpenSQLite(context.Background(), h.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.release(); s.Close() })
	first := true
	s.beforeBatch = func(n int) {
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		wait := first
		first = false
		h.mu.Unlock()
		if wait {
			close(h.entered)
			<-h.gate
		}
	}
	h.s = s
	return h
}

func (h *held) release() { h.once.Do(func() { close(h.gate) }) }

// waitQueued waits until n inserts wait in the queue.
func (h *held) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.s.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d inserts queued, want %d", len(h.s.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *held) batchSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.sizes...)
}

// Concurrent inserts are committed together: one transaction for all that
// waited, each insert answered only after that commit, every message and
// every jti durable (read back after a reopen).
func TestGroupCommitConcurrentInsertsDurable(t *testing.T) {
	h := openHeld(t)
	ctx := context.Background()
	const n = 40
	msgs := make([]Message, n+1)
	used := make([]*UsedGrant, n+1)
	for i := range msgs {
		msgs[i] = msg("bob", []byte{byte(i), 'x'}, t0.Add(time.Duration(i)*time.Millisecond))
		used[i] = &UsedGrant{GrantID: "gc-" + randomHex(6), ExpiresAt: t0.Add(time.Hour)}
	}
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = insert(ctx, h.s, msgs[0], used[0]) })
	<-h.entered // the committer holds the first insert's batch
	for i := 1; i <= n; i++ {
		wg.Go(func() { errs[i] = insert(ctx, h.s, msgs[i], used[i]) })
	}
	h.waitQueued(t, n)
	h.release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if got := h.batchSizes(); len(got) != 2 || got[0] != 1 || got[1] != n {
		t.Fatalf("batch sizes %v, want [1 %d]", got, n)
	}
	if b := h.s.Batches(); b != 2 {
		t.Fatalf("%d commits for %d inserts, want 2", b, n+1)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSQLite(ctx, h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	list, err := s2.List(ctx, "id-bob", 0)
	if err != nil || len(list) != n+1 {
		t.Fatalf("after reopen: %d messages (%v), want %d", len(list), err, n+1)
	}
	for i := range msgs {
		if ok, err := s2.GrantUsed(ctx, used[i].GrantID); err != nil || !ok {
			t.Fatalf("jti %d not recorded after reopen (%v)", i, err)
		}
	}
}

// In one batch, a jti is accepted once: of inserts sharing a jti exactly one
// stores its message; an insert that fails (replay, duplicate id) rolls back
// alone, the others in its batch are stored.
func TestGroupCommitEachJTIOnce(t *testing.T) {
	h := openHeld(t)
	ctx := context.Background()
	shared := &UsedGrant{GrantID: "shared-" + randomHex(6), ExpiresAt: t0.Add(time.Hour)}
	dupID := msg("bob", []byte("first with this id"), t0)
	type ins struct {
		m    Message
		used *UsedGrant
	}
	var list []ins
	for i := range 8 {
		list = append(list, ins{msg("bob", []byte{'s', byte(i)}, t0), shared})
	}
	for i := range 5 {
		list = append(list, ins{msg("bob", []byte{'f', byte(i)}, t0), &UsedGrant{GrantID: "own-" + randomHex(6), ExpiresAt: t0.Add(time.Hour)}})
	}
	// Another message under the same id (its body the first's: insert
	// finds bodies by id).
	again := dupID
	again.SenderSub = "other"
	dupJTI := &UsedGrant{GrantID: "dup-" + randomHex(6), ExpiresAt: t0.Add(time.Hour)}
	list = append(list, ins{again, dupJTI})

	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { firstErr = insert(ctx, h.s, dupID, nil) })
	<-h.entered
	errs := make([]error, len(list))
	for i, in := range list {
		wg.Go(func() { errs[i] = insert(ctx, h.s, in.m, in.used) })
	}
	h.waitQueued(t, len(list))
	h.release()
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if got := h.batchSizes(); len(got) != 2 || got[1] != len(list) {
		t.Fatalf("batch sizes %v, want the %d inserts in one batch", got, len(list))
	}
	ok, replays := 0, 0
	for i := range 8 {
		switch {
		case errs[i] == nil:
			ok++
		case errors.Is(errs[i], ErrReplay):
			replays++
		default:
			t.Errorf("shared jti insert %d: %v", i, errs[i])
		}
	}
	if ok != 1 || replays != 7 {
		t.Fatalf("shared jti: %d stored, %d replays; want 1 and 7", ok, replays)
	}
	for i := 8; i < 13; i++ {
		if errs[i] != nil {
			t.Fatalf("insert %d with its own jti failed beside the others: %v", i, errs[i])
		}
	}
	if errs[13] == nil || errors.Is(errs[13], ErrReplay) {
		t.Fatalf("duplicate id: %v, want a constraint error", errs[13])
	}
	if used, _ := h.s.GrantUsed(ctx, dupJTI.GrantID); used {
		t.Fatal("the jti of the refused duplicate was recorded: its savepoint was not rolled back")
	}
	all, _ := h.s.List(ctx, "id-bob", 0)
	if len(all) != 1+1+5 { // the first, one with the shared jti, five with their own
		t.Fatalf("%d messages stored, want 7", len(all))
	}
}

// An insert whose context ended before its batch is written is not stored.
func TestGroupCommitCancelledBeforeBatch(t *testing.T) {
	h := openHeld(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _ = insert(ctx, h.s, msg("bob", []byte("a"), t0), nil) })
	<-h.entered
	cctx, cancel := context.WithCancel(ctx)
	gone := msg("bob", []byte("gone"), t0)
	var goneErr error
	wg.Go(func() {
		goneErr = insert(cctx, h.s, gone, &UsedGrant{GrantID: "gone-" + randomHex(4), ExpiresAt: t0.Add(time.Hour)})
	})
	h.waitQueued(t, 1)
	cancel()
	h.release()
	wg.Wait()
	if !errors.Is(goneErr, context.Canceled) {
		t.Fatalf("cancelled insert: %v", goneErr)
	}
	if _, _, err := h.s.Get(ctx, "id-bob", gone.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the cancelled insert was stored (%v)", err)
	}
}

// Close writes what was handed over and refuses what comes after.
func TestGroupCommitClose(t *testing.T) {
	h := openHeld(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	const n = 10
	errs := make([]error, n)
	wg.Go(func() { _ = insert(ctx, h.s, msg("bob", []byte("a"), t0), nil) })
	<-h.entered
	for i := range n {
		wg.Go(func() { errs[i] = insert(ctx, h.s, msg("bob", []byte{byte(i)}, t0), nil) })
	}
	h.waitQueued(t, n)
	closed := make(chan error, 1)
	go func() { closed <- h.s.Close() }()
	time.Sleep(20 * time.Millisecond) // Close waits for the held batch
	h.release()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("insert %d handed over before Close: %v", i, err)
		}
	}
	if err := insert(ctx, h.s, msg("bob", []byte("late"), t0), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("insert after Close: %v, want ErrClosed", err)
	}
	s2, err := OpenSQLite(ctx, h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if all, _ := s2.List(ctx, "id-bob", 0); len(all) != n+1 {
		t.Fatalf("%d messages after Close, want %d", len(all), n+1)
	}
}
