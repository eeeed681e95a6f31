package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock serializes schema creation between replicas starting together.
const migrationLock = 0x756d6177 // "umaw"

// postgresMigration brings a database of the earlier schema (owners keyed
// by username, single use keyed by the RPT's jti) to the current one, as
// migrateSQLite does: used_tokens becomes used_grants (its jti column
// grant_id), messages gain owner_id (NULL for the old rows, which so belong
// to no one) and lose the username index. It runs before postgresSchema,
// under the migration lock, and changes nothing on a current database.
const postgresMigration = `
DO $$
BEGIN
	IF to_regclass('used_tokens') IS NOT NULL AND to_regclass('used_grants') IS NULL THEN
		ALTER TABLE used_tokens RENAME TO used_grants;
		ALTER TABLE used_grants RENAME COLUMN jti TO grant_id;
		ALTER INDEX IF EXISTS used_tokens_expires RENAME TO used_grants_expires;
	END IF;
	IF to_regclass('messages') IS NOT NULL THEN
		ALTER TABLE messages ADD COLUMN IF NOT EXISTS owner_id TEXT;
		ALTER TABLE messages ADD COLUMN IF NOT EXISTS body_oid OID;
	END IF;
	IF to_regclass('owner_usage') IS NULL AND to_regclass('messages') IS NOT NULL THEN
		CREATE TABLE owner_usage (owner_id TEXT PRIMARY KEY, bytes BIGINT NOT NULL);
		INSERT INTO owner_usage (owner_id, bytes)
			SELECT owner_id, sum(size) FROM messages WHERE owner_id IS NOT NULL GROUP BY owner_id;
	END IF;
END $$;
DROP INDEX IF EXISTS messages_owner_received;
`

const postgresSchema = `
CREATE TABLE IF NOT EXISTS messages (
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
	body         BYTEA       NOT NULL,
	owner_id     TEXT,
	body_oid     OID
);
CREATE INDEX IF NOT EXISTS messages_owner_id_received ON messages (owner_id, received_at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS used_grants (
	grant_id   TEXT PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS used_grants_expires ON used_grants (expires_at);
CREATE TABLE IF NOT EXISTS owner_usage (
	owner_id TEXT PRIMARY KEY,
	bytes    BIGINT NOT NULL
);
`

// Postgres is the store on a PostgreSQL server (pgx connection pool). The
// database URL may carry any libpq parameter pgx knows, and runtime
// parameters such as search_path.
//
// Content: a body up to InlineMax is the row's body column; a larger one is a
// large object (body_oid), shared by every replica and streamed in and out
// in chunks. The large object is created and written inside the transaction
// that later inserts the row and the grant_id (opened when the body outgrows
// InlineMax), so a refused, cut or crashed push rolls it back with
// everything else: no large object exists without its row. Delete unlinks it
// in the transaction that deletes the row. So there is no orphan to clean
// up, and none is looked for (large objects are per database, not per
// schema: a sweep could not tell another schema's from an orphan).
type Postgres struct {
	pool *pgxpool.Pool
	// content holds the transactions that live as long as a large body
	// travels (a push's large object, a download): a pool of its own, so
	// that slow transfers never take the connections that inserts, lists
	// and readiness checks need.
	content *pgxpool.Pool
}

// ContentConns bounds the connections of the content pool: large pushes and
// downloads of large objects in flight at once per replica (more wait).
const ContentConns = 16

// OpenPostgres connects and creates the schema when missing.
func OpenPostgres(ctx context.Context, databaseURL string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's error may quote the URL with its password: do not wrap it.
		return nil, errors.New("store: invalid PostgreSQL database URL")
	}
	if cfg.MaxConns > 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: PostgreSQL pool: %w", err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	ccfg := cfg.Copy()
	ccfg.MaxConns = ContentConns
	content, err := pgxpool.NewWithConfig(ctx, ccfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: PostgreSQL content pool: %w", err)
	}
	return &Postgres{pool: pool, content: content}, nil
}

func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("store: PostgreSQL migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, postgresMigration); err != nil {
			return fmt.Errorf("store: PostgreSQL migration: %w", err)
		}
		if _, err := tx.Exec(ctx, postgresSchema); err != nil {
			return fmt.Errorf("store: PostgreSQL schema: %w", err)
		}
		return nil
	})
}

// NewBody implements Store: a body beyond InlineMax becomes a large object
// in a transaction of ctx, which Insert commits with the row.
func (p *Postgres) NewBody(ctx context.Context) *Body {
	return newBody(func() (spill, error) {
		tx, err := p.content.Begin(ctx)
		if err != nil {
			return nil, err
		}
		los := tx.LargeObjects()
		oid, err := los.Create(ctx, 0)
		if err == nil {
			var obj *pgx.LargeObject
			if obj, err = los.Open(ctx, oid, pgx.LargeObjectModeWrite); err == nil {
				return &loSpill{tx: tx, oid: oid, obj: obj}, nil
			}
		}
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	})
}

// loSpill is a body's large object and the transaction it lives in.
type loSpill struct {
	tx  pgx.Tx
	oid uint32
	obj *pgx.LargeObject
}

func (sp *loSpill) Write(b []byte) (int, error) { return sp.obj.Write(b) }

// discard rolls the transaction back, and the large object with it. The
// request's context may be canceled already (a cut connection): the
// rollback must still be sent (else it happens when the pool notices).
func (sp *loSpill) discard() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sp.tx.Rollback(ctx)
}

// Insert implements Store.
func (p *Postgres) Insert(ctx context.Context, m Message, body *Body, used *UsedGrant, quota int64) error {
	if err := validate(m, used); err != nil {
		body.Discard()
		return err
	}
	if err := checkBody(m, body); err != nil {
		body.Discard()
		return err
	}
	var err error
	if body.sp == nil {
		inline := body.inline.Bytes()
		body.done = true
		err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return insertPostgres(ctx, tx, m, inline, nil, used, quota) })
	} else {
		sp := body.sp.(*loSpill)
		body.done = true
		err = sp.obj.Close()
		if err == nil {
			err = insertPostgres(ctx, sp.tx, m, []byte{}, &sp.oid, used, quota)
		}
		if err == nil {
			err = sp.tx.Commit(ctx)
		} else {
			_ = sp.discard()
		}
	}
	if err != nil && !errors.Is(err, ErrReplay) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrQuota) {
		return fmt.Errorf("store: PostgreSQL insert: %w", err)
	}
	return err
}

// insertPostgres records the grant_id (when there is one), the owner's usage
// (refusing beyond the quota) and the message, in tx.
func insertPostgres(ctx context.Context, tx pgx.Tx, m Message, inline []byte, oid *uint32, used *UsedGrant, quota int64) error {
	if used != nil {
		tag, err := tx.Exec(ctx, `INSERT INTO used_grants (grant_id, expires_at) VALUES ($1, $2) ON CONFLICT (grant_id) DO NOTHING`,
			used.GrantID, used.ExpiresAt.UTC())
		if err != nil {
			return fmt.Errorf("store: record grant_id: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrReplay
		}
	}
	// The row lock on the owner's usage serializes concurrent pushes
	// to one owner until commit: the quota holds for all of them.
	var total int64
	if err := tx.QueryRow(ctx, `INSERT INTO owner_usage (owner_id, bytes) VALUES ($1, $2)
		ON CONFLICT (owner_id) DO UPDATE SET bytes = owner_usage.bytes + excluded.bytes RETURNING bytes`,
		m.OwnerID, m.Size).Scan(&total); err != nil {
		return fmt.Errorf("store: owner usage: %w", err)
	}
	if quota > 0 && total > quota {
		return ErrQuota
	}
	if _, err := tx.Exec(ctx, `INSERT INTO messages
		(id, owner_id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body, body_oid)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		m.ID, m.OwnerID, m.Owner, m.SenderEmail, m.SenderIss, m.SenderSub, m.ContentType, m.FileName, m.Size, m.SHA256,
		m.ReceivedAt.UTC().Truncate(time.Microsecond), nonNil(inline), oid); err != nil {
		return fmt.Errorf("store: insert message: %w", err)
	}
	return nil
}

// GrantUsed implements Store.
func (p *Postgres) GrantUsed(ctx context.Context, grantID string) (bool, error) {
	var used bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM used_grants WHERE grant_id = $1)`, grantID).Scan(&used); err != nil {
		return false, fmt.Errorf("store: grant_id lookup: %w", err)
	}
	return used, nil
}

// List implements Store.
func (p *Postgres) List(ctx context.Context, ownerID string, limit int) ([]Message, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+listColumns+` FROM messages
		WHERE owner_id = $1 ORDER BY received_at DESC, seq DESC LIMIT $2`, ownerID, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanPostgres(rows)
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

// Get implements Store: a large object is read in a read-only, repeatable
// read transaction (the snapshot of its row), which the Content's Close
// ends.
func (p *Postgres) Get(ctx context.Context, ownerID, id string) (Message, Content, error) {
	if !ValidID(id) {
		return Message{}, nil, ErrNotFound
	}
	tx, err := p.content.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Message{}, nil, fmt.Errorf("store: get: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var inline []byte
	var oid *uint32
	row := tx.QueryRow(ctx, `SELECT `+listColumns+`, body, body_oid FROM messages WHERE owner_id = $1 AND id = $2`, ownerID, id)
	m, err := scanPostgres(row, &inline, &oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, nil, ErrNotFound
	}
	if err != nil {
		return Message{}, nil, err
	}
	if oid == nil {
		return m, inlineContent{bytes.NewReader(inline)}, nil
	}
	los := tx.LargeObjects()
	obj, err := los.Open(ctx, *oid, pgx.LargeObjectModeRead)
	if err != nil {
		return Message{}, nil, fmt.Errorf("store: content: %w", err)
	}
	keep = true
	return m, &loContent{LargeObject: obj, tx: tx}, nil
}

// loContent is a large object being read and its transaction.
type loContent struct {
	*pgx.LargeObject
	tx pgx.Tx
}

func (c *loContent) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(c.LargeObject.Close(), c.tx.Rollback(ctx))
}

// Delete implements Store: row, usage and large object in one transaction.
func (p *Postgres) Delete(ctx context.Context, ownerID, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var size int64
		var oid *uint32
		err := tx.QueryRow(ctx, `DELETE FROM messages WHERE owner_id = $1 AND id = $2 RETURNING size, body_oid`, ownerID, id).Scan(&size, &oid)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if oid != nil {
			los := tx.LargeObjects()
			if err := los.Unlink(ctx, *oid); err != nil {
				return fmt.Errorf("unlink content: %w", err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE owner_usage SET bytes = bytes - $1 WHERE owner_id = $2`, size, ownerID)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: delete: %w", err)
	}
	return err
}

// Usage implements Store.
func (p *Postgres) Usage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT bytes FROM owner_usage WHERE owner_id = $1`, ownerID).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: usage: %w", err)
	}
	return n, nil
}

func scanPostgres(sc scanner, more ...any) (Message, error) {
	var m Message
	dest := append([]any{&m.ID, &m.OwnerID, &m.Owner, &m.SenderEmail, &m.SenderIss, &m.SenderSub, &m.ContentType, &m.FileName, &m.Size, &m.SHA256, &m.ReceivedAt}, more...)
	if err := sc.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return m, err
		}
		return m, fmt.Errorf("store: read message: %w", err)
	}
	m.ReceivedAt = m.ReceivedAt.UTC()
	return m, nil
}

// PruneUsedGrants implements Store.
func (p *Postgres) PruneUsedGrants(ctx context.Context, before time.Time) (int64, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM used_grants WHERE expires_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Ping implements Store.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close implements Store.
func (p *Postgres) Close() error {
	p.pool.Close()
	p.content.Close()
	return nil
}
