package store

import (
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
	owner_id     TEXT
);
CREATE INDEX IF NOT EXISTS messages_owner_id_received ON messages (owner_id, received_at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS used_grants (
	grant_id   TEXT PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS used_grants_expires ON used_grants (expires_at);
`

// Postgres is the store on a PostgreSQL server (pgx connection pool). The
// database URL may carry any libpq parameter pgx knows, and runtime
// parameters such as search_path.
type Postgres struct {
	pool *pgxpool.Pool
}

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
	return &Postgres{pool: pool}, nil
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

// Insert implements Store.
func (p *Postgres) Insert(ctx context.Context, m Message, used *UsedGrant) error {
	if err := validate(m, used); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
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
		if _, err := tx.Exec(ctx, `INSERT INTO messages
			(id, owner_id, owner, sender_email, sender_iss, sender_sub, content_type, file_name, size, sha256, received_at, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			m.ID, m.OwnerID, m.Owner, m.SenderEmail, m.SenderIss, m.SenderSub, m.ContentType, m.FileName, m.Size, m.SHA256,
			m.ReceivedAt.UTC().Truncate(time.Microsecond), nonNil(m.Body)); err != nil {
			return fmt.Errorf("store: insert message: %w", err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrReplay) && !errors.Is(err, ErrInvalid) {
		return fmt.Errorf("store: PostgreSQL insert: %w", err)
	}
	return err
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
		m, err := scanPostgres(rows, false)
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
func (p *Postgres) Get(ctx context.Context, ownerID, id string) (Message, error) {
	if !ValidID(id) {
		return Message{}, ErrNotFound
	}
	row := p.pool.QueryRow(ctx, `SELECT `+listColumns+`, body FROM messages WHERE owner_id = $1 AND id = $2`, ownerID, id)
	m, err := scanPostgres(row, true)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	return m, err
}

func scanPostgres(sc scanner, withBody bool) (Message, error) {
	var m Message
	dest := []any{&m.ID, &m.OwnerID, &m.Owner, &m.SenderEmail, &m.SenderIss, &m.SenderSub, &m.ContentType, &m.FileName, &m.Size, &m.SHA256, &m.ReceivedAt}
	if withBody {
		dest = append(dest, &m.Body)
	}
	if err := sc.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return m, err
		}
		return m, fmt.Errorf("store: read message: %w", err)
	}
	m.ReceivedAt = m.ReceivedAt.UTC()
	if withBody && m.Body == nil {
		m.Body = []byte{}
	}
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
	return nil
}
