package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS messages (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
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
	body         BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_owner_received ON messages (owner, received_at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS used_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS used_tokens_expires ON used_tokens (expires_at);
`

// SQLite is the embedded store: one writer connection (SQLite serializes
// writers anyway; BEGIN IMMEDIATE avoids lock upgrades), a few readers (WAL
// lets them read while the writer commits).
type SQLite struct {
	w, r *sql.DB
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
	if _, err := w.ExecContext(ctx, sqliteSchema); err != nil {
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
	r, err := sql.Open("sqlite", path+"?"+params+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open SQLite: %w", err)
	}
	r.SetMaxOpenConns(4)
	return &SQLite{w: w, r: r}, nil
}

// Insert implements Store.
func (s *SQLite) Insert(ctx context.Context, m Message, used *UsedToken) error {
	if err := validate(m, used); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if used != nil {
		res, err := tx.ExecContext(ctx, `INSERT INTO used_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`,
			used.JTI, used.ExpiresAt.UTC().Format(timeFormat))
		if err != nil {
			return fmt.Errorf("store: record jti: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: record jti: %w", err)
		} else if n == 0 {
			return ErrReplay
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages
		(id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Owner, m.SenderEmail, m.SenderIss, m.SenderSub, m.ContentType, m.FileName, m.Size, m.SHA256,
		m.ReceivedAt.UTC().Truncate(time.Microsecond).Format(timeFormat), nonNil(m.Body)); err != nil {
		return fmt.Errorf("store: insert message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// TokenUsed implements Store.
func (s *SQLite) TokenUsed(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM used_tokens WHERE jti = ?`, jti).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: jti lookup: %w", err)
	}
	return true, nil
}

const listColumns = `id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at`

// List implements Store.
func (s *SQLite) List(ctx context.Context, owner string, limit int) ([]Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+listColumns+` FROM messages
		WHERE owner = ? ORDER BY received_at DESC, seq DESC LIMIT ?`, owner, clampLimit(limit))
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
func (s *SQLite) Get(ctx context.Context, owner, id string) (Message, error) {
	if !ValidID(id) {
		return Message{}, ErrNotFound
	}
	row := s.r.QueryRowContext(ctx, `SELECT `+listColumns+`, body FROM messages WHERE owner = ? AND id = ?`, owner, id)
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
	dest := []any{&m.ID, &m.Owner, &m.SenderEmail, &m.SenderIss, &m.SenderSub, &m.ContentType, &m.FileName, &m.Size, &m.SHA256, &received}
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

// PruneUsedTokens implements Store.
func (s *SQLite) PruneUsedTokens(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM used_tokens WHERE expires_at < ?`, before.UTC().Format(timeFormat))
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

// Close implements Store.
func (s *SQLite) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}
