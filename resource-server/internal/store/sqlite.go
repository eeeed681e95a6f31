package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// sqliteSchema: seq is the rowid (no AUTOINCREMENT: a commit need not write
// sqlite_sequence; a deleted newest message may give its seq to the next
// one, which is still newer than every other); body holds a body of up to
// InlineMax bytes, body_file = 1 says the content is the file named by the id
// in the content directory (body then empty); owner_usage keeps each owner's
// stored bytes so that the quota check is one row, not a sum; used_grants is keyed by grant_id alone (WITHOUT ROWID:
// one B-tree, not a table and its key index). Every page less is a WAL frame
// less to write and fsync per message. Files created with an earlier schema
// are migrated in place by migrateSQLite first.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS messages (
	seq          INTEGER PRIMARY KEY,
	id           TEXT    NOT NULL UNIQUE,
	owner        TEXT    NOT NULL,
	sender_email TEXT    NOT NULL,
	sender_iss   TEXT    NOT NULL,
	sender_sub   TEXT    NOT NULL,
	content_type TEXT    NOT NULL,
	file_name    TEXT    NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT    NOT NULL,
	received_at  TEXT    NOT NULL,
	body         BLOB    NOT NULL,
	owner_id     TEXT,
	body_file    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_owner_id_received ON messages (owner_id, received_at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS used_grants (
	grant_id   TEXT PRIMARY KEY,
	expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS used_grants_expires ON used_grants (expires_at);
CREATE TABLE IF NOT EXISTS owner_usage (
	owner_id TEXT PRIMARY KEY,
	bytes    INTEGER NOT NULL
) WITHOUT ROWID;
`

// migrateSQLite brings a file of the earlier schema (owners keyed by
// username, single use keyed by the RPT's jti) to the current one, in one
// transaction: messages gain owner_id (NULL for the old rows, which so
// belong to no one) and lose the username index; used_tokens becomes
// used_grants, its jti column grant_id (the old records expire and are
// pruned as before). A fresh or migrated file is left unchanged.
func migrateSQLite(ctx context.Context, w *sql.DB) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	has := func(q string, args ...any) (bool, error) {
		var n int
		err := tx.QueryRowContext(ctx, q, args...).Scan(&n)
		return n > 0, err
	}
	messages, err := has(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'messages'`)
	if err != nil {
		return err
	}
	if messages {
		ownerID, err := has(`SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'owner_id'`)
		if err != nil {
			return err
		}
		if !ownerID {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE messages ADD COLUMN owner_id TEXT`); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS messages_owner_received`); err != nil {
			return err
		}
		bodyFile, err := has(`SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'body_file'`)
		if err != nil {
			return err
		}
		if !bodyFile {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE messages ADD COLUMN body_file INTEGER NOT NULL DEFAULT 0`); err != nil {
				return err
			}
		}
	}
	usage, err := has(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'owner_usage'`)
	if err != nil {
		return err
	}
	oldUsed, err := has(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'used_tokens'`)
	if err != nil {
		return err
	}
	newUsed, err := has(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'used_grants'`)
	if err != nil {
		return err
	}
	if oldUsed && !newUsed {
		for _, q := range []string{
			`DROP INDEX IF EXISTS used_tokens_expires`,
			`ALTER TABLE used_tokens RENAME TO used_grants`,
			`ALTER TABLE used_grants RENAME COLUMN jti TO grant_id`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	if !usage {
		// A file from before quotas: count what its owners store.
		if _, err := tx.ExecContext(ctx, `INSERT INTO owner_usage (owner_id, bytes)
			SELECT owner_id, sum(size) FROM messages WHERE owner_id IS NOT NULL GROUP BY owner_id`); err != nil {
			return fmt.Errorf("owner_usage: %w", err)
		}
	}
	return tx.Commit()
}

// SQLite is the embedded store: one writer connection (SQLite serializes
// writers anyway; BEGIN IMMEDIATE avoids lock upgrades), a few readers (WAL
// lets them read while the writer commits).
//
// Group commit: inserts go to one committer goroutine, which writes every
// insert waiting at that moment in one transaction, each in a savepoint of
// its own, and commits them with one fsync. An insert returns only after the
// transaction that holds it committed (or it failed alone: a replayed grant_id or
// a duplicate id rolls back its own savepoint, not the others'). Under
// concurrent load this turns one fsync per message into one per batch;
// alone, an insert commits at once, as before.
//
// Content: a body larger than InlineMax is written to a temporary file in
// the content directory (the database path + ContentDirSuffix) as it
// arrives; Insert fsyncs it, names it by the message id, fsyncs the
// directory and only then commits the row. So a committed row always has its
// file; a crash before the commit leaves a file without a row (or a
// temporary file), which OpenSQLite removes. Delete removes the row, then
// the file, for the same reason.
type SQLite struct {
	w, r *sql.DB
	dir  string // content directory

	insGrant, insMsg, addUsage *sql.Stmt

	queue   chan *insertReq
	qmu     sync.RWMutex // held (read) while enqueuing, (write) by Close
	closed  bool
	stop    chan struct{}
	stopped chan struct{}

	batches atomic.Int64 // transactions committed (tests, metrics)
	// beforeBatch, when set (tests), runs before each batch is written.
	beforeBatch func(n int)
}

// MaxBatch bounds the inserts written in one transaction.
const MaxBatch = 128

// ErrClosed is returned for an insert after Close.
var ErrClosed = errors.New("store: closed")

type insertReq struct {
	ctx    context.Context
	m      Message
	body   []byte // the inline body; nil when inFile
	inFile bool
	used   *UsedGrant
	quota  int64
	done   chan error
}

// ContentDirSuffix names the content directory of a SQLite database: the
// database path with this suffix, next to it like SQLite's own -wal file.
const ContentDirSuffix = "-content"

// tmpPrefix starts the names of content files still being received.
const tmpPrefix = "tmp-"

// OpenSQLite opens (creating when missing) the database file at path, in
// WAL mode with synchronous=FULL: a commit is on disk before Insert returns.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty SQLite path")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: SQLite path %q: use a plain file path without '?', '#' or file: URI", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	// Create the file private to this user before SQLite opens it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	_ = f.Close()

	params := "_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1"
	w, err := sql.Open("sqlite", path+"?"+params+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrateSQLite(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: SQLite schema: %w", err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("store: SQLite journal_mode is %q (%v), want wal", mode, err)
	}
	var syncMode int
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode < 2 {
		w.Close()
		return nil, fmt.Errorf("store: SQLite synchronous is %d (%v), want FULL (2)", syncMode, err)
	}
	s := &SQLite{w: w, dir: path + ContentDirSuffix, queue: make(chan *insertReq, MaxBatch), stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.cleanContent(ctx); err != nil {
		w.Close()
		return nil, err
	}
	// The content directory exists, durably (its entry in the data
	// directory fsynced), before any file in it is counted on.
	if err := os.Mkdir(s.dir, 0o700); err == nil {
		err = syncDir(filepath.Dir(s.dir))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: content directory: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		w.Close()
		return nil, fmt.Errorf("store: content directory: %w", err)
	}
	if s.insGrant, err = w.PrepareContext(ctx, `INSERT INTO used_grants (grant_id, expires_at) VALUES (?, ?) ON CONFLICT (grant_id) DO NOTHING`); err == nil {
		if s.insMsg, err = w.PrepareContext(ctx, `INSERT INTO messages
		(id, owner_id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body, body_file)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`); err == nil {
			s.addUsage, err = w.PrepareContext(ctx, usageUpsert)
		}
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: SQLite statements: %w", err)
	}
	r, err := sql.Open("sqlite", path+"?"+params+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open SQLite: %w", err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	go s.commitLoop()
	return s, nil
}

// usageUpsert adds a message's bytes to its owner's usage and returns the
// new total (the quota check inside the insert's transaction).
const usageUpsert = `INSERT INTO owner_usage (owner_id, bytes) VALUES (?, ?)
	ON CONFLICT (owner_id) DO UPDATE SET bytes = bytes + excluded.bytes RETURNING bytes`

// NewBody implements Store: a body beyond InlineMax goes to a temporary
// file in the content directory, written by a goroutine of its own with
// O_DIRECT where the filesystem allows it (contentfile.go).
func (s *SQLite) NewBody(ctx context.Context) *Body {
	return newBody(func() (spill, error) { return newFileSpill(s.dir) })
}

// logDirect says once how content files are written in dir.
func logDirect(dir string, refused error) {
	if refused == nil {
		slog.Info("store: content files are written with O_DIRECT (no page cache)", "dir", dir)
		return
	}
	slog.Info("store: content files are written through the page cache: the filesystem refuses O_DIRECT", "dir", dir, "err", refused)
}

// Insert implements Store: a body in a file is made durable under its final
// name first; then the insert goes to the committer, and Insert waits for
// the transaction that holds it. An insert whose ctx ends before its batch
// is written is not stored; once written, its answer is awaited.
func (s *SQLite) Insert(ctx context.Context, m Message, body *Body, used *UsedGrant, quota int64) (err error) {
	if err := validate(m, used); err != nil {
		body.Discard()
		return err
	}
	if err := checkBody(m, body); err != nil {
		body.Discard()
		return err
	}
	req := &insertReq{ctx: ctx, m: m, used: used, quota: quota, done: make(chan error, 1)}
	if body.sp == nil {
		req.body = body.inline.Bytes()
		body.done = true
	} else {
		final, perr := s.placeFile(body, m.ID)
		if perr != nil {
			return perr
		}
		req.inFile = true
		defer func() {
			if err != nil {
				// Not committed: the file must not outlive its
				// refusal. (A crash right here leaves it to the
				// clean-up at the next start.)
				if rmErr := os.Remove(final); rmErr != nil {
					slog.Warn("store: removing the content of a message not stored", "file", final, "err", rmErr)
				}
			}
		}()
	}
	if err := s.enqueue(req); err != nil {
		return err
	}
	return <-req.done
}

// placeFile makes a spilled body durable under the message id: fsync the
// temporary file, give it its final name, fsync the directory. The name is
// given by a hard link, not a rename: a link never replaces an existing
// file, so not even an id collision could swap another message's content.
// The Body is spent.
func (s *SQLite) placeFile(body *Body, id string) (string, error) {
	sp := body.sp.(*fileSpill)
	body.done = true
	tmp := sp.name
	final := filepath.Join(s.dir, id)
	// Every write done first (the writer goroutine's, O_DIRECT or not);
	// the fsync then covers the device's cache and the file's metadata.
	err := sp.finish()
	if err == nil {
		err = sp.f.Sync()
	}
	if cerr := sp.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, final)
	}
	if rmErr := os.Remove(tmp); err == nil && rmErr != nil {
		// The temporary name stays to the clean-up at the next start.
		slog.Warn("store: removing a temporary content file", "file", tmp, "err", rmErr)
	}
	if err != nil {
		return "", fmt.Errorf("store: content file: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = os.Remove(final)
		return "", fmt.Errorf("store: content directory: %w", err)
	}
	return final, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// cleanContent removes what a crash can leave in the content directory:
// temporary files, and files whose message row was never committed (or was
// deleted). It runs before the store serves anything.
func (s *SQLite) cleanContent(ctx context.Context) error {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: content directory: %w", err)
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		orphan := strings.HasPrefix(name, tmpPrefix)
		if !orphan && ValidID(name) && e.Type().IsRegular() {
			var one int
			err := s.w.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = ? AND body_file = 1`, name).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store: content clean-up: %w", err)
			}
			orphan = errors.Is(err, sql.ErrNoRows)
		} else if !orphan {
			slog.Warn("store: unexpected entry in the content directory left alone", "dir", s.dir, "name", name)
			continue
		}
		if orphan {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("store: content clean-up: %w", err)
			}
			slog.Info("store: removed content without a message (an interrupted push or delete)", "dir", s.dir, "name", name)
			removed++
		}
	}
	if removed > 0 {
		return syncDir(s.dir)
	}
	return nil
}

func (s *SQLite) enqueue(req *insertReq) error {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- req:
		return nil
	case <-req.ctx.Done():
		return req.ctx.Err()
	}
}

// commitLoop writes what is queued, batch after batch, until Close; then
// what is still queued.
func (s *SQLite) commitLoop() {
	defer close(s.stopped)
	for {
		var first *insertReq
		select {
		case first = <-s.queue:
		case <-s.stop:
			// Close holds back new inserts: write what is left, then end.
			for {
				select {
				case r := <-s.queue:
					s.writeBatch(s.collect(r))
				default:
					return
				}
			}
		}
		s.writeBatch(s.collect(first))
	}
}

// collect takes first and whatever else waits, up to MaxBatch.
func (s *SQLite) collect(first *insertReq) []*insertReq {
	batch := []*insertReq{first}
	for len(batch) < MaxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// writeBatch writes the inserts of one transaction and answers each.
func (s *SQLite) writeBatch(batch []*insertReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // gone before its batch began: not stored
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if s.beforeBatch != nil {
		s.beforeBatch(len(live))
	}
	errs := make([]error, len(live))
	answer := func(all error) {
		for i, r := range live {
			if errs[i] == nil {
				errs[i] = all
			}
			r.done <- errs[i]
		}
	}
	// The transaction is the batch's, not one request's: no request's
	// context may abort it.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		answer(fmt.Errorf("store: begin: %w", err))
		return
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	grant, msg, usage := tx.StmtContext(ctx, s.insGrant), tx.StmtContext(ctx, s.insMsg), tx.StmtContext(ctx, s.addUsage)
	if len(live) == 1 {
		if errs[0] = insertOne(ctx, grant, msg, usage, live[0]); errs[0] != nil {
			answer(nil)
			return
		}
	} else {
		for i, r := range live {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT ins`); err != nil {
				answer(fmt.Errorf("store: savepoint: %w", err))
				return
			}
			if errs[i] = insertOne(ctx, grant, msg, usage, r); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO ins`); err != nil {
					answer(fmt.Errorf("store: rollback to savepoint: %w", err))
					return
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE ins`); err != nil {
				answer(fmt.Errorf("store: release savepoint: %w", err))
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		answer(fmt.Errorf("store: commit: %w", err))
		return
	}
	s.batches.Add(1)
	answer(nil)
}

// insertOne records the grant_id (when there is one), the owner's usage
// (refusing beyond the quota) and the message.
func insertOne(ctx context.Context, grant, msg, usage *sql.Stmt, r *insertReq) error {
	m, used := r.m, r.used
	if used != nil {
		res, err := grant.ExecContext(ctx, used.GrantID, used.ExpiresAt.UTC().Format(timeFormat))
		if err != nil {
			return fmt.Errorf("store: record grant_id: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: record grant_id: %w", err)
		} else if n == 0 {
			return ErrReplay
		}
	}
	var total int64
	if err := usage.QueryRowContext(ctx, m.OwnerID, m.Size).Scan(&total); err != nil {
		return fmt.Errorf("store: owner usage: %w", err)
	}
	if r.quota > 0 && total > r.quota {
		return ErrQuota
	}
	if _, err := msg.ExecContext(ctx,
		m.ID, m.OwnerID, m.Owner, m.SenderEmail, m.SenderIss, m.SenderSub, m.ContentType, m.FileName, m.Size, m.SHA256,
		m.ReceivedAt.UTC().Truncate(time.Microsecond).Format(timeFormat), nonNil(r.body), r.inFile); err != nil {
		return fmt.Errorf("store: insert message: %w", err)
	}
	return nil
}

// Batches is how many transactions committed inserts so far.
func (s *SQLite) Batches() int64 { return s.batches.Load() }

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GrantUsed implements Store.
func (s *SQLite) GrantUsed(ctx context.Context, grantID string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM used_grants WHERE grant_id = ?`, grantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: grant_id lookup: %w", err)
	}
	return true, nil
}

const listColumns = `id, owner_id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at`

// List implements Store.
func (s *SQLite) List(ctx context.Context, ownerID string, limit int) ([]Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+listColumns+` FROM messages
		WHERE owner_id = ? ORDER BY received_at DESC, seq DESC LIMIT ?`, ownerID, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanSQLite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, ownerID, id string) (Message, Content, error) {
	if !ValidID(id) {
		return Message{}, nil, ErrNotFound
	}
	var inline []byte
	var inFile bool
	row := s.r.QueryRowContext(ctx, `SELECT `+listColumns+`, body, body_file FROM messages WHERE owner_id = ? AND id = ?`, ownerID, id)
	m, err := scanSQLite(row, &inline, &inFile)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, nil, ErrNotFound
	}
	if err != nil {
		return Message{}, nil, err
	}
	if !inFile {
		return m, inlineContent{bytes.NewReader(inline)}, nil
	}
	// A Delete may remove the file after this row was read: then the
	// message is gone, as if it had been deleted first.
	f, err := os.Open(filepath.Join(s.dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return Message{}, nil, ErrNotFound
	}
	if err != nil {
		return Message{}, nil, fmt.Errorf("store: content: %w", err)
	}
	return m, f, nil
}

// Delete implements Store: the row and the usage in one transaction, then
// the file (a crash in between leaves an orphan the next start removes).
func (s *SQLite) Delete(ctx context.Context, ownerID, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var size int64
	var inFile bool
	err = tx.QueryRowContext(ctx, `DELETE FROM messages WHERE owner_id = ? AND id = ? RETURNING size, body_file`, ownerID, id).Scan(&size, &inFile)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE owner_usage SET bytes = bytes - ? WHERE owner_id = ?`, size, ownerID); err != nil {
		return fmt.Errorf("store: delete: owner usage: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delete: commit: %w", err)
	}
	if inFile {
		if err := os.Remove(filepath.Join(s.dir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// The message is gone; its file is an orphan now.
			slog.Warn("store: content of a deleted message not removed (removed at the next start)", "id", id, "err", err)
		}
	}
	return nil
}

// Usage implements Store.
func (s *SQLite) Usage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT bytes FROM owner_usage WHERE owner_id = ?`, ownerID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: usage: %w", err)
	}
	return n, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanSQLite(sc scanner, more ...any) (Message, error) {
	var m Message
	var received string
	dest := append([]any{&m.ID, &m.OwnerID, &m.Owner, &m.SenderEmail, &m.SenderIss, &m.SenderSub, &m.ContentType, &m.FileName, &m.Size, &m.SHA256, &received}, more...)
	if err := sc.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return m, err
		}
		return m, fmt.Errorf("store: read message: %w", err)
	}
	t, err := time.Parse(timeFormat, received)
	if err != nil {
		return m, fmt.Errorf("store: received_at %q: %w", received, err)
	}
	m.ReceivedAt = t
	return m, nil
}

// PruneUsedGrants implements Store.
func (s *SQLite) PruneUsedGrants(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM used_grants WHERE expires_at < ?`, before.UTC().Format(timeFormat))
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	return res.RowsAffected()
}

// Ping implements Store.
func (s *SQLite) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM messages LIMIT 0`).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close implements Store: inserts already handed over are written first;
// later ones get ErrClosed.
func (s *SQLite) Close() error {
	s.qmu.Lock()
	already := s.closed
	s.closed = true
	s.qmu.Unlock()
	if already {
		return nil
	}
	close(s.stop)
	<-s.stopped
	return errors.Join(s.insGrant.Close(), s.insMsg.Close(), s.addUsage.Close(), s.r.Close(), s.w.Close())
}
