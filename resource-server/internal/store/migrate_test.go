package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema before owners were keyed by user id and single use by grant_id
// (as released), and one message and one spent jti in it.
const oldSQLiteSchema = `
CREATE TABLE messages (
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
	body         BLOB    NOT NULL
);
CREATE INDEX messages_owner_received ON messages (owner, received_at DESC, seq DESC);
CREATE TABLE used_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX used_tokens_expires ON used_tokens (expires_at);
INSERT INTO messages (id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body)
VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'bob', 'a@foo.example', 'https://cp', 's', 'text/plain', '', 1,
	'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881', '2026-01-01T00:00:00.000000000Z', X'78');
INSERT INTO used_tokens (jti, expires_at) VALUES ('old-jti', '2999-01-01T00:00:00.000000000Z');
`

const oldPostgresSchema = `
CREATE TABLE messages (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id           TEXT        NOT NULL UNIQUE,
	owner        TEXT        NOT NULL,
	sender_email TEXT        NOT NULL,
	sender_iss   TEXT        NOT NULL,
	sender_sub   TEXT        NOT NULL,
	content_type TEXT        NOT NULL,
	file_name    TEXT        NOT NULL,
	size         BIGINT      NOT NULL,
	sha256       TEXT        NOT NULL,
	received_at  TIMESTAMPTZ NOT NULL,
	body         BYTEA       NOT NULL
);
CREATE INDEX messages_owner_received ON messages (owner, received_at DESC, seq DESC);
CREATE TABLE used_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX used_tokens_expires ON used_tokens (expires_at);
INSERT INTO messages (id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body)
VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'bob', 'a@foo.example', 'https://cp', 's', 'text/plain', '', 1,
	'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881', '2026-01-01T00:00:00Z', '\x78');
INSERT INTO used_tokens (jti, expires_at) VALUES ('old-jti', '2999-01-01T00:00:00Z');
`

// checkMigrated: the old row stays but belongs to no owner id (not even
// one spelled like the old username), the old spent record is kept, and the
// migrated store works as a fresh one; opening it again changes nothing.
func checkMigrated(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	for _, owner := range []string{"bob", ""} {
		if list, err := s.List(ctx, owner, 0); err != nil || len(list) != 0 {
			t.Fatalf("List(%q) after migration: %v %v", owner, list, err)
		}
	}
	if _, _, err := s.Get(ctx, "bob", "AAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old row is readable by the username: %v", err)
	}
	if used, err := s.GrantUsed(ctx, "old-jti"); err != nil || !used {
		t.Fatalf("the old spent record: used=%v err=%v", used, err)
	}
	m := msg("bob", []byte("after the migration"), t0)
	used := &UsedGrant{GrantID: "g-" + randomHex(8), ExpiresAt: t0.Add(time.Hour)}
	if err := insert(ctx, s, m, used); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, s, msg("bob", []byte("again"), t0), used); !errors.Is(err, ErrReplay) {
		t.Fatalf("second use of the grant: %v", err)
	}
	if n, err := s.PruneUsedGrants(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	list, err := s.List(ctx, m.OwnerID, 0)
	if err != nil || len(list) != 1 || list[0].ID != m.ID || list[0].Owner != "bob" {
		t.Fatalf("after reopening: %v %v", list, err)
	}
}

func TestSQLiteMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(oldSQLiteSchema); err != nil {
		t.Fatal(err)
	}
	db.Close()
	checkMigrated(t, func() Store {
		s, err := OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPostgresMigration(t *testing.T) {
	if os.Getenv(PostgresEnv) == "" {
		t.Skipf("PostgreSQL migration NOT tested: set %s", PostgresEnv)
	}
	open := postgresBackend(t) // a fresh, empty schema; not opened yet
	// Write the old schema into that search_path through a pool of our own.
	var u string
	probe := open()
	u = probe.(*Postgres).pool.Config().ConnString()
	probe.Close()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `DROP TABLE messages; DROP TABLE used_grants;`+oldPostgresSchema); err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, open)
}
