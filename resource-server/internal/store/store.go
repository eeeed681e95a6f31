// Package store keeps the Resource Server's Incoming messages: an embedded
// SQLite database by default, PostgreSQL when a database URL is configured.
// Both implement Store and pass the same test suite.
//
// Durability: Insert returns only after the transaction committed (SQLite in
// WAL mode with synchronous=FULL, PostgreSQL with its default
// synchronous_commit), so a 201 is never sent for a message a crash can lose.
//
// Single-use grants: Insert records the RPT permission's grant_id (stamped by
// the claims-token policy, one per grant) in the same transaction as the
// message; a grant_id already recorded makes the whole insert fail with
// ErrReplay, so one grant stores one message, whatever RPTs Keycloak issues
// for it (a refreshed RPT has a new jti but the same permission claims),
// across restarts and replicas sharing the database.
//
// Content: a body arrives as a Body (hashed and counted as it is written;
// up to InlineMax bytes in memory and then in the row, beyond that streamed
// to a file next to the SQLite database or a PostgreSQL large object) and is
// read back as a Content (io.ReadSeeker: Range requests). Memory stays flat
// whatever the size. Insert makes the content, the row and the spent grant
// visible in one step; a refused or abandoned body leaves nothing (see
// SQLite and Postgres for how each backend keeps that across crashes).
//
// Quota: each owner's stored bytes are kept in owner_usage, updated in the
// transaction of every insert and delete; Insert refuses with ErrQuota what
// would go beyond the quota it is given.
//
// Owners: messages are keyed by the owner's Keycloak user id (owner_id); the
// owner column keeps the username the message was posted to, for display.
// Rows stored before owners were keyed by id have no owner_id: they stay in
// the database under the old username and are listed to no one (a user
// created later with that name must not read them).
package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Message is one stored message's metadata; its body is a Body on the way
// in and a Content on the way out.
type Message struct {
	ID string
	// OwnerID is the owner's Keycloak user id: List and Get select on it.
	OwnerID string
	// Owner is the username the message was posted to (shown, not a key).
	Owner       string
	SenderEmail string
	SenderIss   string
	SenderSub   string
	ContentType string
	FileName    string
	Size        int64
	SHA256      string // lower-case hex of the body's SHA-256
	ReceivedAt  time.Time
}

// UsedGrant marks a grant as spent: its grant_id, remembered until
// ExpiresAt (the RPT's exp; after that the RPT is refused for its expiry
// anyway).
type UsedGrant struct {
	GrantID   string
	ExpiresAt time.Time
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("store: message not found")
	ErrReplay   = errors.New("store: RPT already used for a message")
	ErrInvalid  = errors.New("store: invalid message")
	// ErrQuota: the owner's stored bytes plus this message would exceed
	// the quota given to Insert.
	ErrQuota = errors.New("store: storage quota exceeded")
)

// Store is the storage of Incoming messages.
type Store interface {
	// NewBody starts receiving a body; ctx bounds the storage work it does
	// before Insert (a PostgreSQL large object lives in a transaction of
	// that context).
	NewBody(ctx context.Context) *Body
	// Insert stores m with its body durably, in one transaction: the row,
	// the content (or the reference to it) and, when used is not nil, its
	// grant_id. A grant_id recorded before makes Insert fail with ErrReplay;
	// when quota > 0 and the owner's stored bytes with this message would
	// exceed it, Insert fails with ErrQuota (checked in the transaction, so
	// concurrent pushes cannot overshoot it together). A failed Insert
	// stores nothing and discards the body; m.Size and m.SHA256 must be the
	// body's.
	Insert(ctx context.Context, m Message, body *Body, used *UsedGrant, quota int64) error
	// GrantUsed says whether a grant_id is recorded (a fast refusal before a
	// body is read; Insert stays the authority).
	GrantUsed(ctx context.Context, grantID string) (bool, error)
	// List returns at most limit messages of the owner with this user id,
	// newest first, without bodies.
	List(ctx context.Context, ownerID string, limit int) ([]Message, error)
	// Get returns one message of the owner with this user id and its
	// content, which the caller must close, or ErrNotFound.
	Get(ctx context.Context, ownerID, id string) (Message, Content, error)
	// Delete removes one message of the owner with this user id (row first,
	// then its content: a crash between leaves content without a row, which
	// the next start removes), or answers ErrNotFound.
	Delete(ctx context.Context, ownerID, id string) error
	// Usage is the bytes stored for the owner with this user id.
	Usage(ctx context.Context, ownerID string) (int64, error)
	// PruneUsedGrants forgets grant_ids whose RPT expired before t.
	PruneUsedGrants(ctx context.Context, before time.Time) (int64, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Bounds of what a Store accepts (the server checks them first; the store
// refuses anything beyond so that no caller can store unbounded metadata).
const (
	MaxOwnerLen       = 64
	MaxOwnerIDLen     = 255
	MaxMetaLen        = 320 // sender_email, sender_iss, sender_sub
	MaxContentTypeLen = 255
	MaxFileNameLen    = 255
	MaxGrantIDLen     = 256
	MaxListLimit      = 1000
)

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// NewID returns a random, URL-safe message id (128 bits, 22 characters).
func NewID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("store: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidID says whether id has the shape NewID gives.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func validate(m Message, used *UsedGrant) error {
	switch {
	case !ValidID(m.ID):
		return fmt.Errorf("%w: id %q", ErrInvalid, m.ID)
	case m.Owner == "" || len(m.Owner) > MaxOwnerLen:
		return fmt.Errorf("%w: owner", ErrInvalid)
	case m.OwnerID == "" || len(m.OwnerID) > MaxOwnerIDLen || strings.ContainsRune(m.OwnerID, 0):
		return fmt.Errorf("%w: owner id", ErrInvalid)
	case len(m.SenderEmail) > MaxMetaLen || len(m.SenderIss) > MaxMetaLen || len(m.SenderSub) > MaxMetaLen:
		return fmt.Errorf("%w: sender metadata too long", ErrInvalid)
	case m.ContentType == "" || len(m.ContentType) > MaxContentTypeLen:
		return fmt.Errorf("%w: content type", ErrInvalid)
	case len(m.FileName) > MaxFileNameLen:
		return fmt.Errorf("%w: file name too long", ErrInvalid)
	case m.Size < 0:
		return fmt.Errorf("%w: size %d", ErrInvalid, m.Size)
	case !sha256Pattern.MatchString(m.SHA256):
		return fmt.Errorf("%w: sha256", ErrInvalid)
	case m.ReceivedAt.IsZero():
		return fmt.Errorf("%w: received_at", ErrInvalid)
	}
	if used != nil && (used.GrantID == "" || len(used.GrantID) > MaxGrantIDLen || strings.ContainsRune(used.GrantID, 0)) {
		return fmt.Errorf("%w: grant_id", ErrInvalid)
	}
	return nil
}

func clampLimit(limit int) int {
	if limit <= 0 || limit > MaxListLimit {
		return MaxListLimit
	}
	return limit
}

// Open opens PostgreSQL when databaseURL is set, else SQLite at sqlitePath
// (content files in sqlitePath + ContentDirSuffix).
func Open(ctx context.Context, sqlitePath, databaseURL string) (Store, error) {
	if databaseURL != "" {
		return OpenPostgres(ctx, databaseURL)
	}
	return OpenSQLite(ctx, sqlitePath)
}

// timeFormat stores received_at as text that sorts like time (UTC, fixed
// width, nanoseconds) in SQLite.
const timeFormat = "2006-01-02T15:04:05.000000000Z"
