package integration

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the test's own look at the Resource Server's database

	"github.com/umawide/umawide/internal/pgtest"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// content is a body generated on the fly from a seed: the same bytes each
// time it is opened, never held in memory nor stored by the test.
type content struct {
	seed uint64
	size int64
}

// open returns a reader of the content; onRead, when set, is called with
// the offset before each read (to act at a point of the stream).
func (c content) open(onRead func(off int64)) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], c.seed)
	return &genReader{rng: rand.NewChaCha8(key), left: c.size, onRead: onRead}
}

type genReader struct {
	rng    *rand.ChaCha8
	off    int64
	left   int64
	onRead func(off int64)
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.onRead != nil {
		g.onRead(g.off)
	}
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.off += int64(n)
	g.left -= int64(n)
	return n, nil
}

// digest is the content's SHA-256 in hex.
func (c content) digest(t *testing.T) string {
	h := sha256.New()
	_, err := io.CopyBuffer(h, c.open(nil), make([]byte, 1<<20))
	must(t, err == nil, "%v", err)
	return hex.EncodeToString(h.Sum(nil))
}

// claims binds an RPT to the content (seed step 7's content metadata).
func (c content) claims(digest string) uma.PushedClaims {
	return uma.PushedClaims{
		uma.ClaimContentSHA256: {digest},
		uma.ClaimContentLength: {strconv.FormatInt(c.size, 10)},
	}
}

// rptFor is an RPT from the real Keycloak for pushing c to bob at base.
func (r *realmEnv) rptFor(t *testing.T, base string, c content, digest string) string {
	t.Helper()
	return r.rpt(t, challenge(t, base, "bob").Ticket, c.claims(digest))
}

// push sends body (of length n; -1: chunked) to bob with tok; an error is a
// transport error (a cut connection).
func push(ctx context.Context, base, tok string, body io.Reader, n int64) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/incoming/bob", body)
	if err != nil {
		return response{}, err
	}
	req.ContentLength = n
	req.Header.Set("Authorization", "Bearer "+tok)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return response{res.StatusCode, res.Header, data}, err
}

// readBack streams a message's content and returns its SHA-256 and size.
func readBack(t *testing.T, base, token, id string) (string, int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/incoming/bob/messages/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	must(t, err == nil, "%v", err)
	defer res.Body.Close()
	must(t, res.StatusCode == 200, "GET %s: %d", id, res.StatusCode)
	h := sha256.New()
	n, err := io.CopyBuffer(h, res.Body, make([]byte, 1<<20))
	must(t, err == nil, "reading back: %v", err)
	return hex.EncodeToString(h.Sum(nil)), n
}

func messageID(t *testing.T, r response) string {
	t.Helper()
	var m uma.Message
	must(t, r.status == http.StatusCreated && json.Unmarshal(r.body, &m) == nil, "POST: %d %s", r.status, r.body)
	return m.ID
}

// TestPush2GiB: a 2 GiB body, generated on the fly, through the real
// Keycloak's RPT to the Resource Server's binary, stored and read back byte
// for byte, while the server's peak RSS stays under 100 MiB. On PostgreSQL
// the body is 512 MiB (still five times the RSS bound): writing 2 GiB of
// large object pages took over two minutes on the project's 2 cores, with
// the same flat memory (24 MiB peak).
func TestPush2GiB(t *testing.T) {
	r := newRealm(t)
	eachBackend(t, func(t *testing.T, b backend) { push2GiB(t, r, b) })
}

func push2GiB(t *testing.T, r *realmEnv, b backend) {
	p := b.process(t, r, "-max-body", strconv.Itoa(3<<30))
	p.start()
	c := content{seed: uint64(time.Now().UnixNano()), size: 2 << 30}
	if b.name == "postgres" {
		c.size = 512 << 20
	}
	t0 := time.Now()
	digest := c.digest(t)
	hashed := time.Since(t0)
	tok := r.rptFor(t, p.base, c, digest)

	t0 = time.Now()
	resp, err := push(ctxT(t), p.base, tok, c.open(nil), c.size)
	must(t, err == nil, "push: %v\n%s", err, p.logs())
	id := messageID(t, resp)
	pushed := time.Since(t0)

	t0 = time.Now()
	got, n := readBack(t, p.base, r.login(t, "bob", bobPassword), id)
	readTime := time.Since(t0)
	must(t, got == digest && n == c.size, "read back %d bytes with SHA-256 %s, want %d bytes %s", n, got, c.size, digest)

	rss := p.peakRSS()
	t.Logf("%d MiB on %s: client hash %v, push (server: stream, hash, fsync, commit) %v, read back and hash %v; server peak RSS (VmHWM) %.1f MiB",
		c.size>>20, b.name, hashed.Round(time.Millisecond), pushed.Round(time.Millisecond), readTime.Round(time.Millisecond), float64(rss)/(1<<20))
	must(t, rss < 100<<20, "peak RSS %d bytes, want under 100 MiB", rss)
	s := b.read(t, p)
	s.clean(t, "after the push")
	must(t, len(s.fileRows) == 1 && s.grants == 1, "after the push: %d messages, %d grants", len(s.fileRows), s.grants)
}

// diskState is what the Resource Server's data holds: messages whose
// content is stored apart (content key -> size) and inline (a count), spent
// grants, and the content stored apart (key -> size). SQLite: the key is the
// file name in the content directory (the message id; temporary files
// count); PostgreSQL: the large object's oid.
type diskState struct {
	fileRows map[string]int64
	inline   int
	grants   int
	files    map[string]int64
}

// backend runs the Resource Server's binary on one store and reads what it
// stored, from outside.
type backend struct {
	name string
	// process prepares the Resource Server on a fresh store.
	process func(t *testing.T, r *realmEnv, extra ...string) *rsProcess
	read    func(t *testing.T, p *rsProcess) diskState
}

var backends = []backend{
	{name: "sqlite", process: newRSProcess, read: func(t *testing.T, p *rsProcess) diskState { return readDisk(t, p.db) }},
	{name: "postgres", process: func(t *testing.T, r *realmEnv, extra ...string) *rsProcess {
		base := os.Getenv(pgtest.DatabaseEnv)
		if base == "" {
			t.Skipf("PostgreSQL store NOT tested: %s is not set (make test starts a private PostgreSQL)", pgtest.DatabaseEnv)
		}
		db := pgtest.FreshDatabase(t, base, "umawide_rs16_")
		p := newRSProcess(t, r, extra...)
		p.db = db
		p.env = append(p.env, "RESOURCE_SERVER_DATABASE_URL="+db)
		return p
	}, read: readPostgres},
}

// readPostgres reads the store of a Resource Server on PostgreSQL (p.db is
// its database URL): large objects are per database, and the database is
// the test's own.
func readPostgres(t *testing.T, p *rsProcess) diskState {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, p.db)
	must(t, err == nil, "%v", err)
	defer conn.Close(ctx)
	s := diskState{fileRows: map[string]int64{}, files: map[string]int64{}}
	rows, err := conn.Query(ctx, `SELECT size, body_oid FROM messages`)
	must(t, err == nil, "%v", err)
	for rows.Next() {
		var size int64
		var oid *uint32
		must(t, rows.Scan(&size, &oid) == nil, "scan")
		if oid != nil {
			s.fileRows[strconv.FormatUint(uint64(*oid), 10)] = size
		} else {
			s.inline++
		}
	}
	must(t, rows.Err() == nil, "%v", rows.Err())
	must(t, conn.QueryRow(ctx, `SELECT count(*) FROM used_grants`).Scan(&s.grants) == nil, "used_grants")
	rows, err = conn.Query(ctx, `SELECT m.oid, coalesce((SELECT sum(length(l.data)) FROM pg_largeobject l WHERE l.loid = m.oid), 0)
		FROM pg_largeobject_metadata m`)
	must(t, err == nil, "%v", err)
	for rows.Next() {
		var oid uint32
		var size int64
		must(t, rows.Scan(&oid, &size) == nil, "scan")
		s.files[strconv.FormatUint(uint64(oid), 10)] = size
	}
	must(t, rows.Err() == nil, "%v", rows.Err())
	return s
}

// eachBackend runs f as a subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func readDisk(t *testing.T, db string) diskState {
	t.Helper()
	d, err := sql.Open("sqlite", db)
	must(t, err == nil, "%v", err)
	defer d.Close()
	s := diskState{fileRows: map[string]int64{}, files: map[string]int64{}}
	rows, err := d.Query(`SELECT id, size, body_file FROM messages`)
	must(t, err == nil, "%v", err)
	for rows.Next() {
		var id string
		var size int64
		var inFile bool
		must(t, rows.Scan(&id, &size, &inFile) == nil, "scan")
		if inFile {
			s.fileRows[id] = size
		} else {
			s.inline++
		}
	}
	must(t, rows.Err() == nil, "%v", rows.Err())
	rows.Close()
	must(t, d.QueryRow(`SELECT count(*) FROM used_grants`).Scan(&s.grants) == nil, "used_grants")
	entries, err := os.ReadDir(db + store.ContentDirSuffix)
	must(t, err == nil || os.IsNotExist(err), "%v", err)
	for _, e := range entries {
		fi, err := e.Info()
		must(t, err == nil, "%v", err)
		s.files[e.Name()] = fi.Size()
	}
	return s
}

// consistent: every message with a file has it, at its size (always, even
// right after a crash).
func (s diskState) consistent(t *testing.T, when string) {
	t.Helper()
	for id, size := range s.fileRows {
		got, ok := s.files[id]
		must(t, ok && got == size, "%s: message %s (%d bytes) has content %v (%d bytes)", when, id, size, ok, got)
	}
}

// clean: consistent, and no content without a message (after a start).
func (s diskState) clean(t *testing.T, when string) {
	t.Helper()
	s.consistent(t, when)
	must(t, len(s.files) == len(s.fileRows), "%s: content files %v for messages %v", when, s.files, s.fileRows)
}

// waitRefusals waits until the server has counted a refusal with reason
// beyond before (a cut request ends in the server after the client left).
func waitRefusals(t *testing.T, base, reason string, before float64) float64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n := refusals(t, base, reason)
		if n > before {
			return n
		}
		must(t, time.Now().Before(deadline), "no %s refusal counted", reason)
		time.Sleep(20 * time.Millisecond)
	}
}

func refusals(t *testing.T, base, reason string) float64 {
	t.Helper()
	resp := call(t, http.MethodGet, base+"/metrics", "", nil, nil)
	prefix := `umawide_rs_refusals_total{reason="` + reason + `"} `
	for _, line := range strings.Split(string(resp.body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			must(t, err == nil, "%q", line)
			return f
		}
	}
	return 0
}

// TestLargePushRefusalsLeaveNothing: a cut connection, a wrong hash and an
// oversized body, each of a body large enough to go to a content file,
// leave no file, no message and no spent grant behind; the retry with the
// same RPT is stored.
func TestLargePushRefusalsLeaveNothing(t *testing.T) {
	r := newRealm(t)
	eachBackend(t, func(t *testing.T, b backend) { largePushRefusals(t, r, b) })
}

func largePushRefusals(t *testing.T, r *realmEnv, b backend) {
	const size = 8 << 20
	p := b.process(t, r, "-max-body", strconv.Itoa(size))
	p.start()
	c := content{seed: 16, size: size}
	digest := c.digest(t)
	tok := r.rptFor(t, p.base, c, digest)
	empty := func(when string) {
		t.Helper()
		s := b.read(t, p)
		must(t, len(s.files) == 0 && len(s.fileRows) == 0 && s.inline == 0 && s.grants == 0,
			"%s: left behind: files %v, messages %v + %d inline, %d spent grants", when, s.files, s.fileRows, s.inline, s.grants)
	}

	// Cut: the headers promise the whole body, half of it comes, then the
	// connection closes.
	before := refusals(t, p.base, "body")
	u, _ := url.Parse(p.base)
	conn, err := net.Dial("tcp", u.Host)
	must(t, err == nil, "%v", err)
	fmt.Fprintf(conn, "POST /incoming/bob HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", u.Host, tok, size)
	_, err = io.CopyN(conn, c.open(nil), size/2)
	must(t, err == nil, "%v", err)
	conn.Close()
	waitRefusals(t, p.base, "body", before)
	empty("cut connection")

	// Wrong hash: the same length, other bytes.
	other := content{seed: 17, size: size}
	resp, err := push(ctxT(t), p.base, tok, other.open(nil), size)
	must(t, err == nil && resp.status == 403 && strings.Contains(string(resp.body), "SHA-256"), "wrong hash: %v %d %s", err, resp.status, resp.body)
	empty("wrong hash")

	// Oversized: chunked (no Content-Length), one byte beyond the limit.
	resp, err = push(ctxT(t), p.base, tok, io.MultiReader(c.open(nil), strings.NewReader("x")), -1)
	must(t, err == nil && resp.status == 413 && resp.errorCode() == uma.ErrTooLarge, "oversized: %v %d %s", err, resp.status, resp.body)
	empty("oversized body")

	resp, err = push(ctxT(t), p.base, tok, c.open(nil), size)
	must(t, err == nil, "retry: %v", err)
	id := messageID(t, resp)
	s := b.read(t, p)
	s.clean(t, "after the retry")
	must(t, len(s.fileRows) == 1 && s.grants == 1, "after the retry: %+v", s)
	got, n := readBack(t, p.base, r.login(t, "bob", bobPassword), id)
	must(t, got == digest && n == size, "read back %d bytes %s", n, got)
}

// TestSIGKILLDuringLargePush kills the Resource Server with SIGKILL at a
// random point of a large push (while the body streams, or right after the
// client sent its last byte, racing the commit), several rounds on the same
// data: right after each kill no message lacks its content; after each
// restart no content lacks its message either (orphans are cleaned up), and
// the RPT of a push that was not stored stores it on retry. The seed is
// logged; UMAWIDE_KILL_SEED replays a run.
func TestSIGKILLDuringLargePush(t *testing.T) {
	r := newRealm(t)
	eachBackend(t, func(t *testing.T, b backend) { killDuringPush(t, r, b) })
}

func killDuringPush(t *testing.T, r *realmEnv, b backend) {
	p := b.process(t, r)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("UMAWIDE_KILL_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		must(t, err == nil, "UMAWIDE_KILL_SEED %q", v)
	}
	t.Logf("seed %d (UMAWIDE_KILL_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 16))
	const rounds, size = 6, 48 << 20
	p.start()
	stored := 0
	for round := range rounds {
		c := content{seed: seed + uint64(round), size: size}
		digest := c.digest(t)
		tok := r.rptFor(t, p.base, c, digest)
		// Kill at a random offset of the body, or (every third round) once
		// the client has handed over all of it: then the server is
		// hashing, fsyncing, renaming or committing.
		killAt := rng.Int64N(size)
		if round%3 == 2 {
			killAt = size
		}
		pid := p.cmd.Process.Pid
		killed := false
		kill := func(off int64) {
			if !killed && off >= killAt {
				killed = true
				_ = syscallKill(pid)
			}
		}
		resp, err := push(ctxT(t), p.base, tok, c.open(kill), size)
		p.kill()
		after := b.read(t, p)
		after.consistent(t, fmt.Sprintf("round %d, right after SIGKILL", round))
		t.Logf("round %d: killed at byte %d of %d (push: %d %v); on disk: %d messages with a file, %d files",
			round, killAt, size, resp.status, err, len(after.fileRows), len(after.files))

		p.start()
		s := b.read(t, p)
		s.clean(t, fmt.Sprintf("round %d, after the restart", round))
		if err == nil && resp.status == http.StatusCreated {
			// Answered 201 before the kill: it must be there.
			id := messageID(t, resp)
			_, ok := s.fileRows[id]
			must(t, ok, "round %d: the 201'd message %s is gone", round, id)
		}
		if len(s.fileRows) == stored {
			// Not stored: the RPT is not spent; the retry stores it.
			resp, err = push(ctxT(t), p.base, tok, c.open(nil), size)
			must(t, err == nil, "round %d: retry: %v", round, err)
			messageID(t, resp)
		}
		stored++
		s = b.read(t, p)
		s.clean(t, fmt.Sprintf("round %d, at the end", round))
		must(t, len(s.fileRows) == stored, "round %d: %d messages, want %d", round, len(s.fileRows), stored)
	}
	// Every stored message reads back as pushed.
	bob := r.login(t, "bob", bobPassword)
	list := call(t, http.MethodGet, p.base+"/incoming/bob/messages", bob, nil, nil)
	var ml uma.MessageList
	must(t, list.status == 200 && json.Unmarshal(list.body, &ml) == nil && len(ml.Messages) == rounds, "list: %d %s", list.status, list.body)
	want := map[string]bool{}
	for round := range rounds {
		want[content{seed: seed + uint64(round), size: size}.digest(t)] = true
	}
	for _, m := range ml.Messages {
		got, n := readBack(t, p.base, bob, m.ID)
		must(t, n == size && got == m.SHA256 && want[got], "message %s: %d bytes, SHA-256 %s (listed %s)", m.ID, n, got, m.SHA256)
		delete(want, got)
	}
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
