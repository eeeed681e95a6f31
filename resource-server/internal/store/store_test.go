package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresEnv names the database the PostgreSQL half of the suite uses.
const PostgresEnv = "UMAWIDE_TEST_DATABASE_URL"

// backend opens a fresh, empty store for one test; calling open again opens
// the same database anew (a restart).
type backend func(t *testing.T) (open func() Store)

func sqliteBackend(t *testing.T) func() Store {
	path := filepath.Join(t.TempDir(), "data", "incoming.db")
	return func() Store {
		s, err := OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// postgresBackend gives each test its own schema in the database of
// UMAWIDE_TEST_DATABASE_URL (the user must be allowed to create schemas).
func postgresBackend(t *testing.T) func() Store {
	base := os.Getenv(PostgresEnv)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	t.Cleanup(admin.Close)
	schema := "rs_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return func() Store {
		s, err := OpenPostgres(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteBackend) }

func TestPostgres(t *testing.T) {
	if os.Getenv(PostgresEnv) == "" {
		t.Skipf("PostgreSQL backend NOT tested: set %s (e.g. postgres://umawide:umawide@127.0.0.1:5432/umawide_test) to run the store suite against PostgreSQL", PostgresEnv)
	}
	runSuite(t, postgresBackend)
}

func runSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() Store)
	}{
		{"insert and get", testInsertGet},
		{"empty body", testEmptyBody},
		{"list newest first and per owner", testList},
		{"get is per owner", testGetPerOwner},
		{"list and get key on the owner id, not the name", testOwnerID},
		{"single-use grant_id", testReplay},
		{"concurrent use of one grant_id stores one message", testConcurrentReplay},
		{"prune used grants", testPrune},
		{"invalid messages refused", testInvalid},
		{"duplicate id refused", testDuplicateID},
		{"messages survive a reopen", testReopen},
		{"ping", func(t *testing.T, open func() Store) {
			if err := open().Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b(t)) })
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func msg(owner string, body []byte, at time.Time) Message {
	sum := sha256.Sum256(body)
	return Message{
		ID: NewID(), OwnerID: "id-" + owner, Owner: owner,
		SenderEmail: "alice@foo.example", SenderIss: "https://cp.foo.example", SenderSub: "0a1b",
		ContentType: "text/plain; charset=utf-8", FileName: "note.txt",
		Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ReceivedAt: at, Body: body,
	}
}

func testInsertGet(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	body := make([]byte, 70000)
	_, _ = rand.Read(body)
	m := msg("bob", body, t0)
	if err := s.Insert(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "id-bob", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := m
	want.ReceivedAt = t0.Truncate(time.Microsecond)
	if !bytes.Equal(got.Body, want.Body) {
		t.Fatal("body differs")
	}
	got.Body, want.Body = nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !got.ReceivedAt.Equal(want.ReceivedAt) || got.ReceivedAt.Location() != time.UTC {
		t.Fatalf("received_at %v, want %v in UTC", got.ReceivedAt, want.ReceivedAt)
	}
}

func testEmptyBody(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	m := msg("bob", nil, t0)
	if err := s.Insert(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "id-bob", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body == nil || len(got.Body) != 0 || got.Size != 0 {
		t.Fatalf("empty body read back as %v (size %d)", got.Body, got.Size)
	}
}

func testList(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		m := msg("bob", []byte{byte(i)}, t0.Add(time.Duration(i)*time.Second))
		if err := s.Insert(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Same instant: the later insert is newer.
	same := msg("bob", []byte("same"), t0.Add(4*time.Second))
	if err := s.Insert(ctx, same, nil); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, same.ID)
	if err := s.Insert(ctx, msg("carol", []byte("x"), t0.Add(time.Hour)), nil); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "id-bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 6 {
		t.Fatalf("bob has %d messages, want 6", len(list))
	}
	for i, m := range list {
		if want := ids[len(ids)-1-i]; m.ID != want {
			t.Fatalf("position %d: %s, want %s (newest first)", i, m.ID, want)
		}
		if m.Body != nil {
			t.Fatal("List returned a body")
		}
		if m.Owner != "bob" {
			t.Fatalf("List(bob) returned a message of %s", m.Owner)
		}
	}
	list, err = s.List(ctx, "id-bob", 2)
	if err != nil || len(list) != 2 || list[0].ID != same.ID {
		t.Fatalf("limit 2: %v %v", list, err)
	}
	list, err = s.List(ctx, "id-nobody", 10)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("empty list = %#v, %v; want a non-nil empty slice", list, err)
	}
}

func testGetPerOwner(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	m := msg("bob", []byte("secret"), t0)
	if err := s.Insert(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "id-carol", m.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("carol reading bob's message: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "id-bob", NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := s.Get(ctx, "id-bob", "' OR 1=1 --"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
}

func testReplay(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	used := &UsedGrant{GrantID: "jti-" + randomHex(8), ExpiresAt: t0.Add(time.Hour)}
	if ok, err := s.GrantUsed(ctx, used.GrantID); err != nil || ok {
		t.Fatalf("fresh jti used=%v err=%v", ok, err)
	}
	first := msg("bob", []byte("one"), t0)
	if err := s.Insert(ctx, first, used); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.GrantUsed(ctx, used.GrantID); err != nil || !ok {
		t.Fatalf("spent jti used=%v err=%v", ok, err)
	}
	second := msg("bob", []byte("two"), t0.Add(time.Second))
	if err := s.Insert(ctx, second, used); !errors.Is(err, ErrReplay) {
		t.Fatalf("second insert with the same jti: %v, want ErrReplay", err)
	}
	if _, err := s.Get(ctx, "id-bob", second.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused message was stored (%v)", err)
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if len(list) != 1 {
		t.Fatalf("%d messages, want 1", len(list))
	}
	// Messages without a jti are not limited.
	for range 2 {
		if err := s.Insert(ctx, msg("bob", []byte("free"), t0), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentReplay(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	used := &UsedGrant{GrantID: "jti-" + randomHex(8), ExpiresAt: t0.Add(time.Hour)}
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.Insert(ctx, msg("bob", []byte{byte(i)}, t0), used) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrReplay):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if ok != 1 || len(list) != 1 {
		t.Fatalf("%d inserts succeeded, %d messages stored; want exactly one", ok, len(list))
	}
}

func testPrune(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	old := &UsedGrant{GrantID: "old-" + randomHex(4), ExpiresAt: t0}
	live := &UsedGrant{GrantID: "live-" + randomHex(4), ExpiresAt: t0.Add(2 * time.Hour)}
	if err := s.Insert(ctx, msg("bob", []byte("a"), t0), old); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, msg("bob", []byte("b"), t0), live); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneUsedGrants(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	if ok, _ := s.GrantUsed(ctx, old.GrantID); ok {
		t.Fatal("expired jti still recorded")
	}
	if ok, _ := s.GrantUsed(ctx, live.GrantID); !ok {
		t.Fatal("live jti was pruned")
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if len(list) != 2 {
		t.Fatalf("pruning tokens touched messages: %d left", len(list))
	}
}

func testInvalid(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	long := string(bytes.Repeat([]byte("a"), 400))
	cases := map[string]func(m *Message){
		"bad id":        func(m *Message) { m.ID = "../x" },
		"no owner":      func(m *Message) { m.Owner = "" },
		"no owner id":   func(m *Message) { m.OwnerID = "" },
		"long email":    func(m *Message) { m.SenderEmail = long },
		"no type":       func(m *Message) { m.ContentType = "" },
		"long name":     func(m *Message) { m.FileName = long },
		"size mismatch": func(m *Message) { m.Size++ },
		"bad sha256":    func(m *Message) { m.SHA256 = "XYZ" },
		"no time":       func(m *Message) { m.ReceivedAt = time.Time{} },
	}
	for name, mutate := range cases {
		m := msg("bob", []byte("x"), t0)
		mutate(&m)
		if err := s.Insert(ctx, m, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := s.Insert(ctx, msg("bob", []byte("x"), t0), &UsedGrant{GrantID: ""}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty jti: %v, want ErrInvalid", err)
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if len(list) != 0 {
		t.Fatalf("%d invalid messages stored", len(list))
	}
}

func testDuplicateID(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	m := msg("bob", []byte("x"), t0)
	if err := s.Insert(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	used := &UsedGrant{GrantID: "dup-" + randomHex(4), ExpiresAt: t0.Add(time.Hour)}
	if err := s.Insert(ctx, m, used); err == nil {
		t.Fatal("second message with the same id stored")
	}
	// The failed transaction did not spend the jti.
	if ok, _ := s.GrantUsed(ctx, used.GrantID); ok {
		t.Fatal("jti recorded although its message was not stored")
	}
}

func testReopen(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	m := msg("bob", []byte("durable"), t0)
	used := &UsedGrant{GrantID: "re-" + randomHex(4), ExpiresAt: t0.Add(time.Hour)}
	if err := s.Insert(ctx, m, used); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open()
	got, err := s2.Get(ctx, "id-bob", m.ID)
	if err != nil || string(got.Body) != "durable" {
		t.Fatalf("after reopen: %v %q", err, got.Body)
	}
	if err := s2.Insert(ctx, msg("bob", []byte("again"), t0), used); !errors.Is(err, ErrReplay) {
		t.Fatalf("jti forgotten after reopen: %v", err)
	}
}

func TestSQLitePathChecks(t *testing.T) {
	for _, p := range []string{"", "file:x.db", "x.db?mode=memory"} {
		if _, err := OpenSQLite(context.Background(), p); err == nil {
			t.Errorf("OpenSQLite(%q) accepted", p)
		}
	}
	path := filepath.Join(t.TempDir(), "d", "x.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("database file mode %v, want private", fi.Mode().Perm())
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !ValidID(id) || seen[id] {
			t.Fatalf("id %q invalid or repeated", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "short", "../../../../etc/passwd00", "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAA"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func BenchmarkInsert1KiBSQLite(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 1024)
	_, _ = rand.Read(body)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Insert(ctx, msg("bob", body, time.Now()), &UsedGrant{GrantID: NewID(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkInsert1KiBSQLiteParallel stores 1 KiB messages, each with its
// RPT's jti, from 8 goroutines per GOMAXPROCS: concurrent requests, as the
// Resource Server sees them under load.
func BenchmarkInsert1KiBSQLiteParallel(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 1024)
	_, _ = rand.Read(body)
	ctx := context.Background()
	b.SetBytes(1024)
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Insert(ctx, msg("bob", body, time.Now()), &UsedGrant{GrantID: NewID(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// cpuTime is this process's user+system CPU time (kernel time in write and
// fsync included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// testOwnerID: messages follow the owner's user id; a new user who got the
// old name (another id) sees none of them.
func testOwnerID(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	old := msg("bob", []byte("for the first bob"), t0)
	old.OwnerID = "11111111-aaaa"
	if err := s.Insert(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(ctx, "22222222-bbbb", 0); err != nil || len(list) != 0 {
		t.Fatalf("the new bob's list: %v %v", list, err)
	}
	if _, err := s.Get(ctx, "22222222-bbbb", old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the new bob's get: %v", err)
	}
	if list, _ := s.List(ctx, "bob", 0); len(list) != 0 {
		t.Fatalf("listed by the username: %v", list)
	}
	got, err := s.Get(ctx, "11111111-aaaa", old.ID)
	if err != nil || got.Owner != "bob" || got.OwnerID != "11111111-aaaa" {
		t.Fatalf("the first bob's get: %+v %v", got, err)
	}
}
