package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
		// Large objects belong to the database, not the schema.
		_, _ = admin.Exec(context.Background(), "SELECT lo_unlink(body_oid) FROM "+schema+".messages WHERE body_oid IS NOT NULL")
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
		{"large bodies stream in and out", testLargeBody},
		{"a refused or discarded body leaves nothing", testRefusedLeavesNothing},
		{"delete", testDelete},
		{"quota", testQuota},
		{"concurrent pushes cannot overshoot the quota", testConcurrentQuota},
		{"usage counted for a database from before quotas", testUsageBackfill},
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
	m := Message{
		ID: NewID(), OwnerID: "id-" + owner, Owner: owner,
		SenderEmail: "alice@foo.example", SenderIss: "https://cp.foo.example", SenderSub: "0a1b",
		ContentType: "text/plain; charset=utf-8", FileName: "note.txt",
		Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ReceivedAt: at,
	}
	testBodies.Store(m.ID, body)
	return m
}

// testBodies: the body msg made each message for (by id), which insert
// writes into a Body.
var testBodies sync.Map

// insert stores m with the body msg made it for, without a quota.
func insert(ctx context.Context, s Store, m Message, used *UsedGrant) error {
	return insertQuota(ctx, s, m, used, 0)
}

func insertQuota(ctx context.Context, s Store, m Message, used *UsedGrant, quota int64) error {
	v, _ := testBodies.Load(m.ID)
	body, _ := v.([]byte)
	b, err := BodyOf(ctx, s, body)
	if err != nil {
		return err
	}
	return s.Insert(ctx, m, b, used, quota)
}

// get reads a message and its whole content.
func get(ctx context.Context, s Store, ownerID, id string) (Message, []byte, error) {
	m, c, err := s.Get(ctx, ownerID, id)
	if err != nil {
		return m, nil, err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return m, b, err
}

func testInsertGet(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	body := make([]byte, 70000)
	_, _ = rand.Read(body)
	m := msg("bob", body, t0)
	if err := insert(ctx, s, m, nil); err != nil {
		t.Fatal(err)
	}
	got, gotBody, err := get(ctx, s, "id-bob", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := m
	want.ReceivedAt = t0.Truncate(time.Microsecond)
	if !bytes.Equal(gotBody, body) {
		t.Fatal("body differs")
	}
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
	if err := insert(ctx, s, m, nil); err != nil {
		t.Fatal(err)
	}
	got, body, err := get(ctx, s, "id-bob", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 0 || got.Size != 0 {
		t.Fatalf("empty body read back as %v (size %d)", body, got.Size)
	}
}

func testList(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		m := msg("bob", []byte{byte(i)}, t0.Add(time.Duration(i)*time.Second))
		if err := insert(ctx, s, m, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Same instant: the later insert is newer.
	same := msg("bob", []byte("same"), t0.Add(4*time.Second))
	if err := insert(ctx, s, same, nil); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, same.ID)
	if err := insert(ctx, s, msg("carol", []byte("x"), t0.Add(time.Hour)), nil); err != nil {
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
	if err := insert(ctx, s, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "id-carol", m.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("carol reading bob's message: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get(ctx, "id-bob", NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, _, err := s.Get(ctx, "id-bob", "' OR 1=1 --"); !errors.Is(err, ErrNotFound) {
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
	if err := insert(ctx, s, first, used); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.GrantUsed(ctx, used.GrantID); err != nil || !ok {
		t.Fatalf("spent jti used=%v err=%v", ok, err)
	}
	second := msg("bob", []byte("two"), t0.Add(time.Second))
	if err := insert(ctx, s, second, used); !errors.Is(err, ErrReplay) {
		t.Fatalf("second insert with the same jti: %v, want ErrReplay", err)
	}
	if _, _, err := s.Get(ctx, "id-bob", second.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused message was stored (%v)", err)
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if len(list) != 1 {
		t.Fatalf("%d messages, want 1", len(list))
	}
	// Messages without a jti are not limited.
	for range 2 {
		if err := insert(ctx, s, msg("bob", []byte("free"), t0), nil); err != nil {
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
		wg.Go(func() { errs[i] = insert(ctx, s, msg("bob", []byte{byte(i)}, t0), used) })
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
	if err := insert(ctx, s, msg("bob", []byte("a"), t0), old); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, s, msg("bob", []byte("b"), t0), live); err != nil {
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
		if err := insert(ctx, s, m, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := insert(ctx, s, msg("bob", []byte("x"), t0), &UsedGrant{GrantID: ""}); !errors.Is(err, ErrInvalid) {
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
	if err := insert(ctx, s, m, nil); err != nil {
		t.Fatal(err)
	}
	used := &UsedGrant{GrantID: "dup-" + randomHex(4), ExpiresAt: t0.Add(time.Hour)}
	if err := insert(ctx, s, m, used); err == nil {
		t.Fatal("second message with the same id stored")
	}
	// The failed transaction did not spend the jti.
	if ok, _ := s.GrantUsed(ctx, used.GrantID); ok {
		t.Fatal("jti recorded although its message was not stored")
	}
	// A large message under a taken id leaves the first one's content as
	// it was.
	large := msg("bob", bigBody(InlineMax+10), t0)
	if err := insert(ctx, s, large, nil); err != nil {
		t.Fatal(err)
	}
	other := large
	other.SenderSub = "other"
	otherBody := bigBody(InlineMax + 10)
	sum := sha256.Sum256(otherBody)
	other.SHA256 = hex.EncodeToString(sum[:])
	b, _ := BodyOf(ctx, s, otherBody)
	if err := s.Insert(ctx, other, b, nil, 0); err == nil {
		t.Fatal("second large message with the same id stored")
	}
	v, _ := testBodies.Load(large.ID)
	if _, got, err := get(ctx, s, "id-bob", large.ID); err != nil || !bytes.Equal(got, v.([]byte)) {
		t.Fatalf("the first message's content after a duplicate id: %v, equal %v", err, bytes.Equal(got, v.([]byte)))
	}
}

func testReopen(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	m := msg("bob", []byte("durable"), t0)
	used := &UsedGrant{GrantID: "re-" + randomHex(4), ExpiresAt: t0.Add(time.Hour)}
	if err := insert(ctx, s, m, used); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open()
	_, body, err := get(ctx, s2, "id-bob", m.ID)
	if err != nil || string(body) != "durable" {
		t.Fatalf("after reopen: %v %q", err, body)
	}
	if err := insert(ctx, s2, msg("bob", []byte("again"), t0), used); !errors.Is(err, ErrReplay) {
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

// benchInsert stores body as a new message with its own grant_id (not
// through msg: its map of bodies would grow with b.N).
func benchInsert(ctx context.Context, s Store, body []byte) error {
	m := msg("bob", nil, time.Now())
	testBodies.Delete(m.ID)
	sum := sha256.Sum256(body)
	m.Size, m.SHA256 = int64(len(body)), hex.EncodeToString(sum[:])
	b, err := BodyOf(ctx, s, body)
	if err != nil {
		return err
	}
	return s.Insert(ctx, m, b, &UsedGrant{GrantID: NewID(), ExpiresAt: time.Now().Add(time.Hour)}, 0)
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
		if err := benchInsert(ctx, s, body); err != nil {
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
			if err := benchInsert(ctx, s, body); err != nil {
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
	if err := insert(ctx, s, old, nil); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(ctx, "22222222-bbbb", 0); err != nil || len(list) != 0 {
		t.Fatalf("the new bob's list: %v %v", list, err)
	}
	if _, _, err := s.Get(ctx, "22222222-bbbb", old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the new bob's get: %v", err)
	}
	if list, _ := s.List(ctx, "bob", 0); len(list) != 0 {
		t.Fatalf("listed by the username: %v", list)
	}
	got, _, err := get(ctx, s, "11111111-aaaa", old.ID)
	if err != nil || got.Owner != "bob" || got.OwnerID != "11111111-aaaa" {
		t.Fatalf("the first bob's get: %+v %v", got, err)
	}
}

// contentObjects counts what holds spilled bodies: files (temporary ones
// included) in a SQLite store's content directory, large objects in a
// PostgreSQL database.
func contentObjects(t *testing.T, s Store) int {
	t.Helper()
	switch s := s.(type) {
	case *SQLite:
		entries, err := os.ReadDir(s.dir)
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	case *Postgres:
		var n int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_largeobject_metadata`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("unknown store %T", s)
	return 0
}

// bigBody is n pseudo-random bytes (not all one value, so that a chunk put
// in the wrong place shows).
func bigBody(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func testLargeBody(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	before := contentObjects(t, s)
	for _, n := range []int{InlineMax, InlineMax + 1, 3<<20 + 17} {
		body := bigBody(n)
		m := msg("bob", body, t0)
		if err := insert(ctx, s, m, &UsedGrant{GrantID: NewID(), ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, c, err := s.Get(ctx, "id-bob", m.ID)
		if err != nil || got.Size != int64(n) {
			t.Fatalf("%d bytes: get %v size %d", n, err, got.Size)
		}
		all, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(all, body) {
			t.Fatalf("%d bytes read back: %v, equal %v", n, err, bytes.Equal(all, body))
		}
		// Range reads seek.
		off := int64(n / 3)
		if _, err := c.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 100)
		if _, err := io.ReadFull(c, part); err != nil || !bytes.Equal(part, body[off:off+100]) {
			t.Fatalf("%d bytes: read at %d: %v", n, off, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Only the two bodies beyond InlineMax have content objects.
	if got := contentObjects(t, s) - before; got != 2 {
		t.Fatalf("%d content objects, want 2 (bodies up to %d bytes stay in their row)", got, InlineMax)
	}
	if u, err := s.Usage(ctx, "id-bob"); err != nil || u != InlineMax+InlineMax+1+3<<20+17 {
		t.Fatalf("usage %d %v", u, err)
	}
}

func testRefusedLeavesNothing(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	before := contentObjects(t, s)
	nothing := func(what string) {
		t.Helper()
		if got := contentObjects(t, s); got != before {
			t.Fatalf("%s: %d content objects left, want %d", what, got, before)
		}
		if list, _ := s.List(ctx, "id-bob", 0); len(list) != 0 {
			t.Fatalf("%s: %d messages stored", what, len(list))
		}
		if u, _ := s.Usage(ctx, "id-bob"); u != 0 {
			t.Fatalf("%s: usage %d", what, u)
		}
	}
	body := bigBody(InlineMax*3 + 5)
	used := &UsedGrant{GrantID: NewID(), ExpiresAt: t0.Add(time.Hour)}

	// Discarded halfway (a cut connection, a wrong hash found at the end).
	b := s.NewBody(ctx)
	if _, err := b.Write(body[:InlineMax*2]); err != nil {
		t.Fatal(err)
	}
	if _, isSQLite := s.(*SQLite); isSQLite && contentObjects(t, s) == before {
		// (PostgreSQL's large object is invisible outside its transaction.)
		t.Fatal("a body beyond InlineMax is not spilled while it arrives")
	}
	if err := b.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, ErrBodyUsed) {
		t.Fatalf("write after discard: %v", err)
	}
	nothing("discarded")

	// Refused by Insert: the metadata disagrees with the body.
	m := msg("bob", body, t0)
	bad := m
	bad.SHA256 = strings.Repeat("0", 64)
	b, _ = BodyOf(ctx, s, body)
	if err := s.Insert(ctx, bad, b, used, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong digest: %v", err)
	}
	nothing("wrong digest")

	// Refused by the quota.
	if err := insertQuota(ctx, s, m, used, int64(len(body)-1)); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	nothing("over quota")
	if ok, _ := s.GrantUsed(ctx, used.GrantID); ok {
		t.Fatal("a refused insert spent the grant")
	}

	// The honest retry with the same grant.
	if err := insertQuota(ctx, s, m, used, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	// And its replay, with a large body, leaves nothing more.
	n := contentObjects(t, s)
	if err := insert(ctx, s, msg("bob", bigBody(InlineMax+9), t0), used); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if got := contentObjects(t, s); got != n {
		t.Fatalf("replay left %d content objects, want %d", got, n)
	}
}

func testDelete(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	before := contentObjects(t, s)
	small, large := msg("bob", []byte("small"), t0), msg("bob", bigBody(InlineMax+100), t0)
	for _, m := range []Message{small, large} {
		if err := insert(ctx, s, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ owner, id string }{{"id-carol", small.ID}, {"id-bob", NewID()}, {"id-bob", "../x"}} {
		if err := s.Delete(ctx, tc.owner, tc.id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Delete(%s, %s): %v, want ErrNotFound", tc.owner, tc.id, err)
		}
	}
	for _, m := range []Message{small, large} {
		if err := s.Delete(ctx, "id-bob", m.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, "id-bob", m.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if err := s.Delete(ctx, "id-bob", m.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	}
	if got := contentObjects(t, s); got != before {
		t.Fatalf("%d content objects after deleting everything, want %d", got, before)
	}
	if u, err := s.Usage(ctx, "id-bob"); err != nil || u != 0 {
		t.Fatalf("usage after delete %d %v", u, err)
	}
	if list, _ := s.List(ctx, "id-bob", 0); len(list) != 0 {
		t.Fatalf("%d listed after delete", len(list))
	}
}

func testQuota(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	const quota = 100
	if err := insertQuota(ctx, s, msg("bob", make([]byte, 60), t0), nil, quota); err != nil {
		t.Fatal(err)
	}
	over := msg("bob", make([]byte, 41), t0)
	if err := insertQuota(ctx, s, over, nil, quota); !errors.Is(err, ErrQuota) {
		t.Fatalf("beyond the quota: %v", err)
	}
	// Another owner has a quota of their own; the exact fit is admitted.
	if err := insertQuota(ctx, s, msg("carol", make([]byte, 100), t0), nil, quota); err != nil {
		t.Fatal(err)
	}
	if err := insertQuota(ctx, s, msg("bob", make([]byte, 40), t0), nil, quota); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(ctx, "id-bob"); u != 100 {
		t.Fatalf("usage %d, want 100", u)
	}
	// 0 is no quota.
	if err := insertQuota(ctx, s, over, nil, 0); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentQuota(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	const n, size, quota = 12, 10, 55
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = insertQuota(ctx, s, msg("bob", bytes.Repeat([]byte{byte(i)}, size), t0), nil, quota) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrQuota):
			t.Errorf("unexpected error: %v", err)
		}
	}
	list, _ := s.List(ctx, "id-bob", 0)
	if ok != quota/size || len(list) != ok {
		t.Fatalf("%d inserts admitted, %d stored; want %d", ok, len(list), quota/size)
	}
}

// TestSQLiteOrphansCleaned: what a crash can leave in the content directory
// (a temporary file; a file named by its id but whose row never committed; the file
// of a deleted row) is removed when the store opens, and the content of
// stored messages is kept.
func TestSQLiteOrphansCleaned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "rs.db")
	ctx := context.Background()
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	body := bigBody(InlineMax + 1)
	kept := msg("bob", body, t0)
	if err := insert(ctx, s, kept, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	dir := path + ContentDirSuffix
	orphans := []string{tmpPrefix + "123", NewID()}
	for _, name := range orphans {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != kept.ID {
		t.Fatalf("content directory after the clean-up: %v, want only %s", entries, kept.ID)
	}
	if _, got, err := get(ctx, s, "id-bob", kept.ID); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("kept message: %v", err)
	}
}

// testUsageBackfill: a database whose messages were stored before
// owner_usage existed gets each owner's usage counted when it opens.
func testUsageBackfill(t *testing.T, open func() Store) {
	s := open()
	ctx := context.Background()
	for _, m := range []Message{msg("bob", make([]byte, 10), t0), msg("bob", bigBody(InlineMax+1), t0), msg("carol", make([]byte, 7), t0)} {
		if err := insert(ctx, s, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	switch s := s.(type) {
	case *SQLite:
		_, err = s.w.ExecContext(ctx, `DROP TABLE owner_usage`)
	case *Postgres:
		_, err = s.pool.Exec(ctx, `DROP TABLE owner_usage`)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	for owner, want := range map[string]int64{"id-bob": 10 + InlineMax + 1, "id-carol": 7, "id-nobody": 0} {
		if got, err := s.Usage(ctx, owner); err != nil || got != want {
			t.Errorf("usage of %s after the upgrade: %d %v, want %d", owner, got, err, want)
		}
	}
}
