package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// InlineMax is the largest body kept in the message's row. A body up to this
// size is held in memory while it arrives and written with its row in the
// one transaction (and the group commit) that stores the message: no file,
// no large object, no extra fsync, so small messages cost what they cost
// before content was streamed. A larger body spills to the backend's content
// storage (a file next to the SQLite database, a PostgreSQL large object) as
// it arrives, so memory stays flat whatever its size.
const InlineMax = 64 << 10

// Body is a message body being received: every byte written is hashed and
// counted on its way to storage. The server writes the request body into it,
// checks Size and SHA256 against the RPT's binding, and then either hands it
// to Store.Insert, which makes it part of the message atomically, or
// discards it. Discard is always safe to defer: after a successful Insert it
// does nothing; otherwise it removes whatever was written (temporary file,
// large object) so a refused body leaves nothing behind.
//
// A Body is used by one goroutine.
type Body struct {
	h      hash.Hash
	n      int64
	inline bytes.Buffer
	// sp is the backend's spill storage, opened when the body outgrows
	// InlineMax; nil while the body is inline.
	sp       spill
	newSpill func() (spill, error)
	// spillHashes: sp hashes what it is given into h (hashingSpill).
	spillHashes bool
	// done: inserted or discarded; the Body may not be used again.
	done bool
}

// spill is a backend's storage for a body larger than InlineMax.
type spill interface {
	io.Writer
	// discard removes what was written; called at most once, and never
	// after the backend's Insert took the spill over.
	discard() error
}

// lender is a spill that lends its write buffer, so that Receive reads from
// the connection straight into what goes to the disk: no copy in between.
type lender interface {
	// buf is the unfilled rest of the current buffer, never empty; it may
	// wait for the backend to give a buffer back.
	buf() ([]byte, error)
	// filled says that the first n bytes of what buf returned now hold
	// content.
	filled(n int) error
}

// hashingSpill is a spill that hashes what it is given from now on into h,
// on a goroutine of its own (the SQLite content file: on two cores the
// request's goroutine then only receives). syncHash waits until every byte
// given so far is in h.
type hashingSpill interface {
	hashInto(h hash.Hash)
	syncHash()
}

// ErrBodyUsed is returned for a write to a Body already inserted or discarded.
var ErrBodyUsed = errors.New("store: body already inserted or discarded")

func newBody(newSpill func() (spill, error)) *Body {
	return &Body{h: sha256.New(), newSpill: newSpill}
}

// Write implements io.Writer.
func (b *Body) Write(p []byte) (int, error) {
	if b.done {
		return 0, ErrBodyUsed
	}
	if b.sp == nil && int64(b.inline.Len())+int64(len(p)) > InlineMax {
		sp, err := b.newSpill()
		if err != nil {
			return 0, fmt.Errorf("store: content storage: %w", err)
		}
		b.sp = sp
		if _, err := sp.Write(b.inline.Bytes()); err != nil {
			return 0, fmt.Errorf("store: write content: %w", err)
		}
		if hs, ok := sp.(hashingSpill); ok {
			// The inline bytes are hashed; the spill hashes the rest.
			hs.hashInto(b.h)
			b.spillHashes = true
		}
		b.inline = bytes.Buffer{}
	}
	var err error
	var n int
	if b.sp != nil {
		n, err = b.sp.Write(p)
		if err != nil {
			err = fmt.Errorf("store: write content: %w", err)
		}
	} else {
		n, _ = b.inline.Write(p)
	}
	if !b.spillHashes {
		b.h.Write(p[:n])
	}
	b.n += int64(n)
	return n, err
}

// Receive reads r to its end into the body, as io.Copy(b, r) would, hashing
// it on the way (here, or in the spill's goroutine). buf is for the start of
// the body; once it spilled to a backend that lends its buffers (the SQLite
// content file), reads go straight into them. An error of r is returned as it is, one of storage wrapped as
// Write's.
func (b *Body) Receive(r io.Reader, buf []byte) (int64, error) {
	if len(buf) == 0 {
		buf = make([]byte, 32<<10)
	}
	var total int64
	for {
		if b.done {
			return total, ErrBodyUsed
		}
		if l, ok := b.sp.(lender); ok {
			p, err := l.buf()
			if err != nil {
				return total, fmt.Errorf("store: write content: %w", err)
			}
			n, rerr := r.Read(p)
			if n > 0 {
				if !b.spillHashes {
					b.h.Write(p[:n])
				}
				b.n += int64(n)
				total += int64(n)
				if err := l.filled(n); err != nil {
					return total, fmt.Errorf("store: write content: %w", err)
				}
			}
			if rerr == io.EOF {
				return total, nil
			}
			if rerr != nil {
				return total, rerr
			}
			continue
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			w, err := b.Write(buf[:n])
			total += int64(w)
			if err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// Size is the number of bytes written.
func (b *Body) Size() int64 { return b.n }

// SHA256 is the lower-case hex SHA-256 of the bytes written so far.
func (b *Body) SHA256() string {
	if b.spillHashes {
		b.sp.(hashingSpill).syncHash()
	}
	return hex.EncodeToString(b.h.Sum(nil))
}

// Discard drops the body and removes whatever it stored. It does nothing
// after a successful Insert, a second call, or on nil.
func (b *Body) Discard() error {
	if b == nil || b.done {
		return nil
	}
	b.done = true
	b.inline = bytes.Buffer{}
	if b.sp != nil {
		return b.sp.discard()
	}
	return nil
}

// BodyOf is a Body holding p, for callers that have the whole body in hand
// (tests, small pushes); s decides where a body beyond InlineMax goes.
func BodyOf(ctx context.Context, s Store, p []byte) (*Body, error) {
	b := s.NewBody(ctx)
	if _, err := b.Write(p); err != nil {
		b.Discard()
		return nil, err
	}
	return b, nil
}

// checkBody: the message's size and digest are the body's (the caller
// decided them from the binding; the store refuses a disagreement so that a
// row never describes other bytes than its content).
func checkBody(m Message, b *Body) error {
	if b == nil || b.done {
		return fmt.Errorf("%w: no body, or a body already used", ErrInvalid)
	}
	if m.Size != b.n {
		return fmt.Errorf("%w: size %d for a body of %d bytes", ErrInvalid, m.Size, b.n)
	}
	if m.SHA256 != b.SHA256() {
		return fmt.Errorf("%w: sha256 differs from the body's", ErrInvalid)
	}
	return nil
}

// Content is a stored body being read: http.ServeContent serves it with
// Range support. Close releases it (a file, or a PostgreSQL transaction).
type Content interface {
	io.ReadSeekCloser
}

// inlineContent is a body read from its row.
type inlineContent struct{ *bytes.Reader }

func (inlineContent) Close() error { return nil }
