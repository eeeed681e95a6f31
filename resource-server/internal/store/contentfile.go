package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// A spilled body's content file is written the way MinIO writes large
// objects: with O_DIRECT where the filesystem allows it, from a writer
// goroutine, while the request's goroutine goes on receiving and hashing.
//
// Why: written through the page cache, storing 1 GiB costs the kernel about
// a second of page allocation and copying on this project's machine (what a
// plain copy of the file pays too), and done in the request's goroutine it
// adds to the time of receiving and hashing instead of overlapping it.
// O_DIRECT moves the bytes from our buffer to the disk by DMA, and the
// content is never read back soon enough for the page cache to pay off (a
// download reads it once, later). Memory stays bounded: each body being
// received holds at most spillBuffers buffers of spillBufferSize bytes.
//
// The buffers are aligned to directAlign bytes (the strictest logical block
// size of common devices; Linux wants buffer, length and offset aligned to
// the device's). Every buffer but the last is full, so every O_DIRECT
// write is aligned. The last one, of any length, is written after O_DIRECT
// is cleared on the file (fcntl F_SETFL): no padding, no truncate, and the
// same switch serves a filesystem that takes O_DIRECT at fcntl but refuses
// a write (a stricter alignment): the writer clears O_DIRECT and goes on
// buffered. Where O_DIRECT is refused when the file is set up (tmpfs and
// other filesystems without direct I/O: EINVAL), the file is written
// through the page cache, by the same writer goroutine. Either way the file
// is fsynced before it is named (placeFile): O_DIRECT bypasses the page
// cache, not the device's cache, nor the file's metadata (its size, its
// blocks).
const (
	directAlign     = 4096
	spillBufferSize = 1 << 20
	spillBuffers    = 4
)

// spillBufferPool holds aligned buffers of spillBufferSize bytes between
// bodies, so that a steady stream of large pushes does not allocate 4 MiB
// per push.
var spillBufferPool = sync.Pool{New: func() any {
	b := make([]byte, spillBufferSize+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	b = b[off : off+spillBufferSize : off+spillBufferSize]
	return &b
}}

// setDirect turns O_DIRECT on or off on f (direct_linux.go), writeFile
// writes to a content file: variables so that a test can make the
// filesystem refuse O_DIRECT or fail a write.
var (
	setDirect = setDirectIO
	writeFile = (*os.File).Write
)

// directMode is logged once per process: which way content files are
// written here.
var directMode sync.Once

// fileSpill is a body's temporary content file and the writer goroutine
// that writes it. The Body's goroutine fills cur (through Write, or
// directly through buf/filled: Body.Receive reads from the connection into
// it) and hands full buffers to the writer on full; the writer gives them
// back on free. A writer's error is kept and returned by the next buf,
// filled or Write, and by finish.
type fileSpill struct {
	f    *os.File
	name string

	cur  []byte // the buffer being filled, cur[:fill] holding content; nil when none
	fill int

	full chan []byte   // to the writer; capacity spillBuffers, so never blocks
	free chan []byte   // from the writer; spillBuffers buffers in all
	done chan struct{} // closed when the writer returned
	shut bool          // full is closed

	// direct: O_DIRECT is on (only the writer changes it once started).
	direct bool

	mu   sync.Mutex
	err  error // the writer's first error
	stop bool  // discarding: write nothing more
}

// newFileSpill creates a temporary content file in dir (named with
// tmpPrefix, so that a crash leaves it to cleanContent) and starts its
// writer.
func newFileSpill(dir string) (*fileSpill, error) {
	f, err := createTemp(dir)
	if err != nil {
		return nil, err
	}
	sp := &fileSpill{
		f: f, name: f.Name(),
		full: make(chan []byte, spillBuffers),
		free: make(chan []byte, spillBuffers),
		done: make(chan struct{}),
	}
	// The file is created buffered and O_DIRECT set afterwards: Linux
	// creates the file before it refuses O_DIRECT at open, which would
	// leave a file behind the refusal; fcntl refuses it with the same
	// EINVAL and nothing to clean up.
	if err := setDirect(f, true); err == nil {
		sp.direct = true
		directMode.Do(func() { logDirect(dir, nil) })
	} else {
		directMode.Do(func() { logDirect(dir, err) })
	}
	for range spillBuffers {
		sp.free <- *spillBufferPool.Get().(*[]byte)
	}
	go sp.writer()
	return sp, nil
}

// createTemp is os.CreateTemp(dir, tmpPrefix+"*") with the file's mode
// 0600 spelled out.
func createTemp(dir string) (*os.File, error) {
	var rnd [12]byte
	for range 10 {
		_, _ = rand.Read(rnd[:])
		f, err := os.OpenFile(filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:])), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("store: no free temporary name in %s", dir)
}

func (sp *fileSpill) writer() {
	defer close(sp.done)
	for p := range sp.full {
		sp.mu.Lock()
		skip := sp.err != nil || sp.stop
		sp.mu.Unlock()
		if !skip {
			if err := sp.writeOut(p); err != nil {
				sp.mu.Lock()
				sp.err = err
				sp.mu.Unlock()
			}
		}
		sp.free <- p[:cap(p)]
	}
}

// writeOut writes p at the file's end: directly while p is aligned and the
// filesystem takes it, else through the page cache from here on.
func (sp *fileSpill) writeOut(p []byte) error {
	if sp.direct && len(p)%directAlign != 0 {
		if err := sp.buffered(); err != nil {
			return err
		}
	}
	n, err := writeFile(sp.f, p)
	if err != nil && sp.direct && errors.Is(err, errInvalid) {
		// Aligned for us, not for this filesystem: go on buffered.
		if err := sp.buffered(); err != nil {
			return err
		}
		_, err = writeFile(sp.f, p[n:])
	}
	return err
}

func (sp *fileSpill) buffered() error {
	if err := setDirect(sp.f, false); err != nil {
		return fmt.Errorf("clearing O_DIRECT: %w", err)
	}
	sp.direct = false
	return nil
}

func (sp *fileSpill) failed() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.err
}

// buf is the unfilled rest of the current buffer, never empty; it waits for
// the writer to give a buffer back when all are being written.
func (sp *fileSpill) buf() ([]byte, error) {
	if sp.shut {
		return nil, ErrBodyUsed
	}
	if sp.cur == nil {
		sp.cur = <-sp.free
		sp.fill = 0
	}
	if err := sp.failed(); err != nil {
		return nil, err
	}
	return sp.cur[sp.fill:], nil
}

// filled says that the first n bytes of what buf returned hold content; a
// full buffer goes to the writer.
func (sp *fileSpill) filled(n int) error {
	sp.fill += n
	if sp.fill == len(sp.cur) {
		sp.full <- sp.cur
		sp.cur = nil
	}
	return sp.failed()
}

// Write copies p into the buffers (bodies written rather than received).
func (sp *fileSpill) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		b, err := sp.buf()
		if err != nil {
			return n, err
		}
		c := copy(b, p)
		p = p[c:]
		n += c
		if err := sp.filled(c); err != nil {
			return n, err
		}
	}
	return n, nil
}

// shutdown hands the last, partial buffer to the writer (unless stopping),
// waits for the writer to finish and returns the buffers to the pool.
func (sp *fileSpill) shutdown(stop bool) error {
	if !sp.shut {
		sp.shut = true
		if stop {
			sp.mu.Lock()
			sp.stop = true
			sp.mu.Unlock()
		}
		if sp.cur != nil {
			if sp.fill > 0 && !stop {
				sp.full <- sp.cur[:sp.fill]
			} else {
				sp.free <- sp.cur
			}
			sp.cur = nil
		}
		close(sp.full)
		<-sp.done
		for range spillBuffers {
			b := <-sp.free
			spillBufferPool.Put(&b)
		}
	}
	return sp.failed()
}

// finish writes what is left and waits for every write to be done; the
// file is then complete (not yet durable: placeFile fsyncs it).
func (sp *fileSpill) finish() error { return sp.shutdown(false) }

func (sp *fileSpill) discard() error {
	_ = sp.shutdown(true)
	return errors.Join(sp.f.Close(), os.Remove(sp.name))
}
