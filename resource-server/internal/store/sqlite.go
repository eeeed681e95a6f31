package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// sqliteSchema: seq is the rowid (no AUTOINCREMENT: messages are never
// deleted, so rowids only grow, and a commit need not write
// sqlite_sequence); used_grants is keyed by grant_id alone (WITHOUT ROWID:
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
	owner_id     TEXT
);
CREATE INDEX IF NOT EXISTS messages_owner_id_received ON messages (owner_id, received_at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS used_grants (
	grant_id   TEXT PRIMARY KEY,
	expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS used_grants_expires ON used_grants (expires_at);
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
type SQLite struct {
	w, r *sql.DB

	insGrant, insMsg *sql.Stmt

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
	ctx  context.Context
	m    Message
	used *UsedGrant
	done chan error
}

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
	s := &SQLite{w: w, queue: make(chan *insertReq, MaxBatch), stop: make(chan struct{}), stopped: make(chan struct{})}
	if s.insGrant, err = w.PrepareContext(ctx, `INSERT INTO used_grants (grant_id, expires_at) VALUES (?, ?) ON CONFLICT (grant_id) DO NOTHING`); err == nil {
		s.insMsg, err = w.PrepareContext(ctx, `INSERT INTO messages
		(id, owner_id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
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

// Insert implements Store: it hands the insert to the committer and waits
// for the transaction that holds it. An insert whose ctx ends before its
// batch is written is not stored; once written, its answer is awaited.
func (s *SQLite) Insert(ctx context.Context, m Message, used *UsedGrant) error {
	if err := validate(m, used); err != nil {
		return err
	}
	req := &insertReq{ctx: ctx, m: m, used: used, done: make(chan error, 1)}
	if err := s.enqueue(req); err != nil {
		return err
	}
	return <-req.done
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
	grant, msg := tx.StmtContext(ctx, s.insGrant), tx.StmtContext(ctx, s.insMsg)
	if len(live) == 1 {
		if errs[0] = insertOne(ctx, grant, msg, live[0]); errs[0] != nil {
			answer(nil)
			return
		}
	} else {
		for i, r := range live {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT ins`); err != nil {
				answer(fmt.Errorf("store: savepoint: %w", err))
				return
			}
			if errs[i] = insertOne(ctx, grant, msg, r); errs[i] != nil {
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

// insertOne records the grant_id (when there is one) and the message.
func insertOne(ctx context.Context, grant, msg *sql.Stmt, r *insertReq) error {
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
	if _, err := msg.ExecContext(ctx,
		m.ID, m.OwnerID, m.Owner, m.SenderEmail, m.SenderIss, m.SenderSub, m.ContentType, m.FileName, m.Size, m.SHA256,
		m.ReceivedAt.UTC().Truncate(time.Microsecond).Format(timeFormat), nonNil(m.Body)); err != nil {
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
		m, err := scanSQLite(rows, false)
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
func (s *SQLite) Get(ctx context.Context, ownerID, id string) (Message, error) {
	if !ValidID(id) {
		return Message{}, ErrNotFound
	}
	row := s.r.QueryRowContext(ctx, `SELECT `+listColumns+`, body FROM messages WHERE owner_id = ? AND id = ?`, ownerID, id)
	m, err := scanSQLite(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	return m, err
}

type scanner interface{ Scan(dest ...any) error }

func scanSQLite(sc scanner, withBody bool) (Message, error) {
	var m Message
	var received string
	dest := []any{&m.ID, &m.OwnerID, &m.Owner, &m.SenderEmail, &m.SenderIss, &m.SenderSub, &m.ContentType, &m.FileName, &m.Size, &m.SHA256, &received}
	if withBody {
		dest = append(dest, &m.Body)
	}
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
	if withBody && m.Body == nil {
		m.Body = []byte{}
	}
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
	return errors.Join(s.insGrant.Close(), s.insMsg.Close(), s.r.Close(), s.w.Close())
}
