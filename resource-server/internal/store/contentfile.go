package store

import (
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A spilled body's content file is written the way MinIO writes large
// objects: with O_DIRECT where the filesystem allows it, from writer
// goroutines, while the request's goroutine goes on receiving (straight into
// the aligned buffers the writers write from) and a goroutine of its own
// hashes each buffer in between.
//
// Why: written through the page cache, storing 1 GiB costs the kernel about
// a second of page allocation and copying on this project's machine (what a
// plain copy of the file pays too), and done in the request's goroutine it
// adds to the time of receiving and hashing instead of overlapping it.
// O_DIRECT moves the bytes from our buffer to the disk by DMA, and the
// content is never read back soon enough for the page cache to pay off (a
// download reads it once, later). Two writers keep two writes in flight: a
// disk shared with other work keeps its throughput only with more than one
// request queued (1 GiB measured here under load: 2.1-2.7 s with one direct
// write at a time, 1.6 s with two; the kernel's write-back of a buffered
// file queues many). Hashing on its own goroutine takes SHA-256 (most of
// the CPU a large push costs the Resource Server, 0.86 s of 1.3 s per GiB
// here) off the goroutine that reads the connection, so on two cores the
// two overlap. Memory stays bounded: each body being received holds
// spillBuffers buffers of spillBufferSize bytes, whatever its size.
//
// The buffers are aligned to directAlign bytes (the strictest logical block
// size of common devices; Linux wants buffer, length and offset aligned to
// the device's). Every buffer but the last is full, so every O_DIRECT write
// is aligned. The last one, of any length, is written when the body ends,
// after the writers are done and O_DIRECT is cleared on the file (fcntl
// F_SETFL): no padding, no truncate, and the same switch serves a
// filesystem that takes O_DIRECT at fcntl but refuses a write (a stricter
// alignment): the writer clears O_DIRECT and goes on buffered. Where
// O_DIRECT is refused when the file is set up (tmpfs and other filesystems
// without direct I/O: EINVAL), the file is written through the page cache,
// by the same goroutines. Either way the file is fsynced before it is named
// (placeFile): O_DIRECT bypasses the page cache, not the device's cache,
// nor the file's metadata (its size, its blocks).
const (
	directAlign     = 4096
	spillBufferSize = 1 << 20
	spillBuffers    = 6
	spillWriters    = 2
)

// spillBufferPool holds aligned buffers of spillBufferSize bytes between
// bodies, so that a steady stream of large pushes does not allocate 6 MiB
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
	writeFile = (*os.File).WriteAt
)

// directMode is logged once per process: which way content files are
// written here.
var directMode sync.Once

// fileSpill is a body's temporary content file, its hasher goroutine and
// the writer goroutines that write it. The Body's goroutine fills cur
// (through Write, or directly through buf/filled: Body.Receive reads from
// the connection into it) and hands each full buffer, with its offset in
// the file, to the hasher on toHash, which hashes it into the Body's hash
// and passes it to the writers on full; they give the buffers back on free.
// So on two cores the request's goroutine receives while another hashes
// (SHA-256 is most of the CPU a large push costs the Resource Server). A
// writer's error is kept and returned by the next buf, filled or Write, and
// by finish.
type fileSpill struct {
	f    *os.File
	name string

	cur  []byte // the buffer being filled, cur[:fill] holding content; nil when none
	fill int
	off  int64 // where cur goes in the file

	toHash  chan chunk // to the hasher; capacity spillBuffers, so never blocks
	synced  chan struct{}
	h       hash.Hash   // nil: the Body hashes
	hashed  int         // cur[:hashed] is in h (or hashed by the Body)
	full    chan chunk  // to the writers; capacity spillBuffers, so never blocks
	free    chan []byte // from the writers; spillBuffers buffers in all
	wg      sync.WaitGroup
	running atomic.Int32 // hasher and writer goroutines not yet returned (tests)
	shut    bool         // toHash is closed

	mu     sync.Mutex
	direct bool  // O_DIRECT is on
	err    error // the first write error
	stop   bool  // discarding: write nothing more
}

// chunk is a full buffer and where it goes; b[from:] is to be hashed. A
// chunk without b asks the hasher to say on synced that it is idle.
type chunk struct {
	b    []byte
	off  int64
	from int
}

// newFileSpill creates a temporary content file in dir (named with
// tmpPrefix, so that a crash leaves it to cleanContent) and starts its
// hasher and writers.
func newFileSpill(dir string) (*fileSpill, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600, O_EXCL
	if err != nil {
		return nil, err
	}
	sp := &fileSpill{
		f: f, name: f.Name(),
		toHash: make(chan chunk, spillBuffers),
		synced: make(chan struct{}),
		full:   make(chan chunk, spillBuffers),
		free:   make(chan []byte, spillBuffers),
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
	sp.running.Store(spillWriters + 1)
	sp.wg.Add(spillWriters + 1)
	go sp.hasher()
	for range spillWriters {
		go sp.writer()
	}
	return sp, nil
}

func (sp *fileSpill) hashInto(h hash.Hash) {
	sp.h = h
	sp.hashed = sp.fill
}

func (sp *fileSpill) hasher() {
	defer sp.running.Add(-1)
	defer sp.wg.Done()
	defer close(sp.full)
	for c := range sp.toHash {
		if c.b == nil {
			sp.synced <- struct{}{}
			continue
		}
		sp.mu.Lock()
		stop := sp.stop
		sp.mu.Unlock()
		if sp.h != nil && !stop {
			sp.h.Write(c.b[c.from:])
		}
		sp.full <- c
	}
}

// syncHash: every byte given so far is in the hash (the Body's goroutine
// then reads it).
func (sp *fileSpill) syncHash() {
	if sp.shut || sp.h == nil {
		return
	}
	sp.toHash <- chunk{}
	<-sp.synced
	if sp.cur != nil && sp.hashed < sp.fill {
		sp.h.Write(sp.cur[sp.hashed:sp.fill])
		sp.hashed = sp.fill
	}
}

func (sp *fileSpill) writer() {
	defer sp.running.Add(-1)
	defer sp.wg.Done()
	for c := range sp.full {
		sp.mu.Lock()
		skip := sp.err != nil || sp.stop
		sp.mu.Unlock()
		if !skip {
			if err := sp.writeOut(c.b, c.off); err != nil {
				sp.fail(err)
			}
		}
		sp.free <- c.b[:cap(c.b)]
	}
}

func (sp *fileSpill) fail(err error) {
	sp.mu.Lock()
	if sp.err == nil {
		sp.err = err
	}
	sp.mu.Unlock()
}

// writeOut writes p at off: directly while p is aligned and the filesystem
// takes it, else through the page cache from here on.
func (sp *fileSpill) writeOut(p []byte, off int64) error {
	sp.mu.Lock()
	direct := sp.direct
	sp.mu.Unlock()
	if direct && len(p)%directAlign != 0 {
		if err := sp.buffered(); err != nil {
			return err
		}
		direct = false
	}
	n, err := writeFile(sp.f, p, off)
	if err != nil && direct && errors.Is(err, errInvalid) {
		// Aligned for us, not for this filesystem: go on buffered.
		if err := sp.buffered(); err != nil {
			return err
		}
		_, err = writeFile(sp.f, p[n:], off+int64(n))
	}
	return err
}

// buffered clears O_DIRECT on the file (once).
func (sp *fileSpill) buffered() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.direct {
		return nil
	}
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
// a writer to give a buffer back when all are being written.
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
// full buffer goes to the hasher, then the writers.
func (sp *fileSpill) filled(n int) error {
	sp.fill += n
	if sp.fill == len(sp.cur) {
		sp.toHash <- chunk{sp.cur, sp.off, sp.hashed}
		sp.off += int64(sp.fill)
		sp.cur = nil
		sp.hashed = 0
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

// shutdown stops the hasher and the writers once every full buffer is
// hashed and written (or at once, discarding), hashes and writes the last,
// partial buffer (not discarding) and returns the buffers to the pool.
func (sp *fileSpill) shutdown(discard bool) error {
	if sp.shut {
		return sp.failed()
	}
	sp.shut = true
	if discard {
		sp.mu.Lock()
		sp.stop = true
		sp.mu.Unlock()
	}
	close(sp.toHash)
	sp.wg.Wait()
	if sp.cur != nil {
		if sp.h != nil && !discard && sp.hashed < sp.fill {
			sp.h.Write(sp.cur[sp.hashed:sp.fill])
			sp.hashed = sp.fill
		}
		if sp.fill > 0 && !discard && sp.failed() == nil {
			if err := sp.writeOut(sp.cur[:sp.fill], sp.off); err != nil {
				sp.fail(err)
			}
		}
		sp.free <- sp.cur
		sp.cur = nil
	}
	for range spillBuffers {
		b := <-sp.free
		spillBufferPool.Put(&b)
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
