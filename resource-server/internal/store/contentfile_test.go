//go:build linux

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chunkReader returns body in reads of varying, odd lengths (as a socket
// does), never aligned to anything.
type chunkReader struct {
	b []byte
	i int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.i++
	n := min(len(p), len(r.b), 1+(r.i*7919)%(300<<10))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// receiveInsert receives body (as the server does: Receive with a small
// first buffer), checks that it spilled to a content file, inserts it and
// reads it back; it returns the spill for the caller's checks.
func receiveInsert(t *testing.T, s *SQLite, body []byte) *fileSpill {
	t.Helper()
	ctx := context.Background()
	b := s.NewBody(ctx)
	defer b.Discard()
	if n, err := b.Receive(&chunkReader{b: body}, make([]byte, 16<<10)); err != nil || n != int64(len(body)) {
		t.Fatalf("%d bytes: received %d, %v", len(body), n, err)
	}
	sp, ok := b.sp.(*fileSpill)
	if !ok {
		t.Fatalf("%d bytes: spilled to %T, want a content file", len(body), b.sp)
	}
	m := msg("bob", body, t0)
	if err := s.Insert(ctx, m, b, &UsedGrant{GrantID: NewID(), ExpiresAt: t0.Add(time.Hour)}, 0); err != nil {
		t.Fatalf("%d bytes: %v", len(body), err)
	}
	_, got, err := get(ctx, s, "id-bob", m.ID)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%d bytes read back: %v, equal %v", len(body), err, bytes.Equal(got, body))
	}
	return sp
}

func openTestSQLite(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "data", "rs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// contentSizes: past the inline bound, one aligned buffer, more buffers
// than the ring holds with an unaligned tail, an aligned size that is not a
// whole number of buffers.
var contentSizes = []int{InlineMax + 1, spillBufferSize, spillBufferSize*(spillBuffers+2) + 4097, 5 * directAlign * 64}

// TestContentFileDirect: where the filesystem takes O_DIRECT, a spilled
// body is written with it (unaligned tail included) and reads back byte for
// byte, whatever the read sizes.
func TestContentFileDirect(t *testing.T) {
	s := openTestSQLite(t)
	probe, err := os.CreateTemp(s.dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	perr := setDirectIO(probe, true)
	probe.Close()
	os.Remove(probe.Name())
	if perr != nil {
		t.Skipf("the test directory's filesystem refuses O_DIRECT (%v); TestContentFileFallback covers that", perr)
	}
	var directWrites int
	var mu sync.Mutex
	writeFile = func(f *os.File, p []byte, off int64) (int, error) {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Error(err)
		}
		if flags&unix.O_DIRECT != 0 {
			mu.Lock()
			directWrites++
			mu.Unlock()
			if len(p)%directAlign != 0 || off%directAlign != 0 {
				t.Errorf("an O_DIRECT write of %d bytes at %d", len(p), off)
			}
		}
		return f.WriteAt(p, off)
	}
	defer func() { writeFile = (*os.File).WriteAt }()
	for _, n := range contentSizes {
		directWrites = 0
		receiveInsert(t, s, bigBody(n))
		if directWrites == 0 && n >= spillBufferSize {
			t.Fatalf("%d bytes: no write with O_DIRECT", n)
		}
	}
	// The written, not-yet-named body goes through Write too (BodyOf).
	body := bigBody(spillBufferSize + 1)
	m := msg("bob", body, t0)
	if err := insert(context.Background(), s, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, got, err := get(context.Background(), s, "id-bob", m.ID); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("written body: %v", err)
	}
}

// TestContentFileFallback: where O_DIRECT is refused (EINVAL, as tmpfs
// does), the content file is written through the page cache, by the same
// writer goroutine, and the body stored as well; likewise when a filesystem
// takes O_DIRECT but refuses a direct write (a stricter alignment).
func TestContentFileFallback(t *testing.T) {
	t.Run("refused at open", func(t *testing.T) {
		setDirect = func(f *os.File, on bool) error {
			if on {
				return &os.PathError{Op: "fcntl O_DIRECT", Path: f.Name(), Err: syscall.EINVAL}
			}
			return setDirectIO(f, on)
		}
		defer func() { setDirect = setDirectIO }()
		s := openTestSQLite(t)
		for _, n := range contentSizes {
			if sp := receiveInsert(t, s, bigBody(n)); sp.direct {
				t.Fatalf("%d bytes: O_DIRECT although refused", n)
			}
		}
	})
	t.Run("refused at a write", func(t *testing.T) {
		var mu sync.Mutex
		var refused, after int
		setDirect = func(f *os.File, on bool) error { return nil }
		writeFile = func(f *os.File, p []byte, off int64) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if refused == 0 {
				refused++
				return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EINVAL}
			}
			after++
			return f.WriteAt(p, off)
		}
		defer func() { setDirect, writeFile = setDirectIO, (*os.File).WriteAt }()
		s := openTestSQLite(t)
		if sp := receiveInsert(t, s, bigBody(spillBufferSize*3+5)); sp.direct || refused != 1 || after < 4 {
			t.Fatalf("after a refused direct write: direct %v, refused %d, writes after %d", sp.direct, refused, after)
		}
	})
}

// TestContentFileWriteError: a failed write of the writer goroutine is
// returned by the next Receive (or at Insert when it comes last), the body
// leaves no file and no row, and an honest retry is stored.
func TestContentFileWriteError(t *testing.T) {
	s := openTestSQLite(t)
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	writeFile = func(f *os.File, p []byte, off int64) (int, error) {
		if failing.Load() {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EIO}
		}
		return f.WriteAt(p, off)
	}
	defer func() { writeFile = (*os.File).WriteAt }()

	body := bigBody(spillBufferSize*(spillBuffers+3) + 1)
	b := s.NewBody(ctx)
	_, err := b.Receive(&chunkReader{b: body}, make([]byte, 16<<10))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("receiving onto a failing disk: %v", err)
	}
	if err := b.Discard(); err != nil {
		t.Fatal(err)
	}
	if n := contentObjects(t, s); n != 0 {
		t.Fatalf("%d files left after a failed write", n)
	}

	// A failure in the last buffer shows at Insert.
	small := bigBody(InlineMax + 100)
	m := msg("bob", small, t0)
	used := &UsedGrant{GrantID: NewID(), ExpiresAt: t0.Add(time.Hour)}
	b = s.NewBody(ctx)
	if _, err := b.Receive(&chunkReader{b: small}, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, m, b, used, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("insert after a failed last write: %v", err)
	}
	b.Discard()
	if n := contentObjects(t, s); n != 0 {
		t.Fatalf("%d files left after a failed last write", n)
	}
	if list, _ := s.List(ctx, "id-bob", 0); len(list) != 0 {
		t.Fatalf("%d messages stored", len(list))
	}
	if ok, _ := s.GrantUsed(ctx, used.GrantID); ok {
		t.Fatal("a failed write spent the grant")
	}

	failing.Store(false)
	b, _ = BodyOf(ctx, s, small)
	if err := s.Insert(ctx, m, b, used, 0); err != nil {
		t.Fatalf("the retry: %v", err)
	}
}

// TestContentFileNoLeak: Discard and Insert end the writer goroutine (and a
// discarded body's file is gone), halfway through or at the end.
func TestContentFileNoLeak(t *testing.T) {
	s := openTestSQLite(t)
	ctx := context.Background()
	base := runtime.NumGoroutine()
	var spills []*fileSpill
	var bodies []*Body
	var msgs []Message
	for i := range 8 {
		body := bigBody(spillBufferSize*2 + i*4099)
		b := s.NewBody(ctx)
		if _, err := b.Receive(&chunkReader{b: body}, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		spills = append(spills, b.sp.(*fileSpill))
		bodies = append(bodies, b)
		msgs = append(msgs, msg("bob", body, t0))
	}
	if n := runtime.NumGoroutine(); n < base+len(bodies) {
		t.Fatalf("%d goroutines with %d bodies being written, %d before: no writer goroutines?", n, len(bodies), base)
	}
	for i, b := range bodies {
		if i%2 == 0 {
			if err := b.Discard(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.Insert(ctx, msgs[i], b, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, sp := range spills {
		if n := sp.running.Load(); n != 0 {
			t.Fatalf("body %d: %d writer goroutines still run after Discard or Insert", i, n)
		}
		if _, err := os.Stat(sp.name); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("body %d: temporary file %s: %v", i, sp.name, err)
		}
	}
	if n := contentObjects(t, s); n != len(bodies)/2 {
		t.Fatalf("%d content files, want %d (the inserted ones)", n, len(bodies)/2)
	}
	// The writers have returned (running counts down in their last
	// deferred call); let the scheduler retire them before counting.
	n := runtime.NumGoroutine()
	for i := 0; i < 1000 && n > base; i++ {
		runtime.Gosched()
		n = runtime.NumGoroutine()
	}
	if n > base {
		t.Fatalf("%d goroutines after every body ended, %d before", n, base)
	}
}

// TestContentFileHashAnyTime: the body's SHA-256, hashed on the spill's
// goroutine, is that of every byte given so far whenever it is asked for,
// also between writes that end inside a buffer, and at the end.
func TestContentFileHashAnyTime(t *testing.T) {
	s := openTestSQLite(t)
	ctx := context.Background()
	body := bigBody(spillBufferSize*(spillBuffers+1) + 777)
	b := s.NewBody(ctx)
	defer b.Discard()
	cuts := []int{100, InlineMax + 1, InlineMax + 5, spillBufferSize - 1, spillBufferSize, spillBufferSize + 3, 3*spillBufferSize + 1000, len(body)}
	at := 0
	for _, cut := range cuts {
		if _, err := b.Write(body[at:cut]); err != nil {
			t.Fatal(err)
		}
		at = cut
		if got, want := b.SHA256(), hex.EncodeToString(sha256Of(body[:at])); got != want {
			t.Fatalf("after %d bytes: sha256 %s, want %s", at, got, want)
		}
	}
	if !b.spillHashes {
		t.Fatal("the content file does not hash on its own goroutine")
	}
	m := msg("bob", body, t0)
	if err := s.Insert(ctx, m, b, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, got, err := get(ctx, s, "id-bob", m.ID); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back: %v", err)
	}
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
