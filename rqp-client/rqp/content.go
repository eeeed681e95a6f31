package rqp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// Content is the data to push. It is read three times: once to hash it
// (content_sha256 is pushed with the claims token), and as the body of steps
// 1 and 9 (with Expect: 100-continue, step 1 normally sends none of it).
// So it must be re-readable: an io.ReaderAt with a known size, such as an
// *os.File or a *bytes.Reader.
type Content struct {
	// Data holds Size bytes from offset 0.
	Data io.ReaderAt
	// Size in bytes.
	Size int64
	// Type is the media type (Content-Type, pushed as content_type); empty
	// means: guessed from Name's extension, else sniffed from the data.
	Type string
	// Name is the file name (Content-Disposition filename, pushed as
	// file_name); only its last path element is used. Empty: none.
	Name string
}

// Bounds of the content's metadata (the Resource Server's limits).
const (
	MaxFileNameBytes    = 255
	MaxContentTypeBytes = 255
)

// FileContent opens a regular file as Content named after it; close the
// returned file when the push is done.
func FileContent(path string) (*Content, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	return &Content{Data: f, Size: fi.Size(), Name: filepath.Base(path)}, f, nil
}

// BytesContent wraps data held in memory.
func BytesContent(data []byte, name string) *Content {
	return &Content{Data: bytes.NewReader(data), Size: int64(len(data)), Name: name}
}

// ErrTooLarge is returned by ReadContent for input beyond its bound.
var ErrTooLarge = errors.New("content larger than the limit")

// ReadContent buffers a stream (standard input) of at most max bytes.
func ReadContent(r io.Reader, max int64, name string) (*Content, error) {
	if max <= 0 {
		return nil, fmt.Errorf("rqp: ReadContent needs a positive bound")
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, max)
	}
	return BytesContent(data, name), nil
}

// prepared is Content checked, typed and hashed.
type prepared struct {
	data   io.ReaderAt
	size   int64
	typ    string // canonical media type
	name   string // safe file name or ""
	sha256 string // lower-case hex
}

func (p *prepared) body() io.Reader { return io.NewSectionReader(p.data, 0, p.size) }

// contentDisposition is the header that carries the file name, or "".
func (p *prepared) contentDisposition() string {
	if p.name == "" {
		return ""
	}
	return mime.FormatMediaType("attachment", map[string]string{"filename": p.name})
}

// hashBuffers are the read buffers of hashing: io.Copy would allocate 32 KiB
// per push (a section reader has no WriteTo, a hash no ReadFrom), a quarter
// of what a push of 1 KiB allocated in all (make bench, docs/BENCHMARKS.md).
// Content beyond a megabyte is read in reads of a megabyte
// (largeHashBuffers): a sixteenth of the system calls for a 1 GiB file, and
// nothing next to the content's size.
var (
	hashBuffers      = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	largeHashBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
)

// prepare checks, types and hashes c; meter (may be nil) is told how far
// hashing has come.
func prepare(c *Content, meter *transferMeter) (*prepared, error) {
	if c == nil || c.Data == nil {
		return nil, errors.New("no content")
	}
	if c.Size < 0 {
		return nil, fmt.Errorf("content size %d", c.Size)
	}
	p := &prepared{data: c.Data, size: c.Size}
	if c.Name != "" {
		name, ok := SafeFileName(c.Name)
		if !ok {
			return nil, fmt.Errorf("file name %q is not acceptable (control characters, longer than %d bytes, or not UTF-8)", c.Name, MaxFileNameBytes)
		}
		p.name = name
	}
	h := sha256.New()
	var src io.Reader = io.NewSectionReader(c.Data, 0, c.Size)
	if meter != nil {
		src = meteredReader{r: src, m: meter}
	}
	pool := &hashBuffers
	if c.Size > 1<<20 {
		pool = &largeHashBuffers
	}
	buf := pool.Get().(*[]byte)
	n, err := io.CopyBuffer(h, src, *buf)
	pool.Put(buf)
	if err != nil {
		return nil, fmt.Errorf("reading the content: %w", err)
	}
	if n != c.Size {
		return nil, fmt.Errorf("reading the content: got %d of %d bytes", n, c.Size)
	}
	p.sha256 = hex.EncodeToString(h.Sum(nil))
	typ := c.Type
	if typ == "" {
		typ = guessType(c, p.name)
	}
	mt, params, err := mime.ParseMediaType(typ)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", typ, err)
	}
	p.typ = mime.FormatMediaType(mt, params)
	if p.typ == "" || len(p.typ) > MaxContentTypeBytes {
		return nil, fmt.Errorf("content type %q cannot be sent", typ)
	}
	return p, nil
}

// guessType: the file name's extension, else the first 512 bytes
// (http.DetectContentType), else application/octet-stream.
func guessType(c *Content, name string) string {
	if ext := filepath.Ext(name); ext != "" {
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
	}
	head := make([]byte, 512)
	n, _ := c.Data.ReadAt(head, 0)
	if int64(n) > c.Size {
		n = int(c.Size)
	}
	if n == 0 {
		return "application/octet-stream"
	}
	return http.DetectContentType(head[:n])
}

// SafeFileName keeps the last path element of name and refuses what a
// Resource Server would: empty, "." or "..", longer than 255 bytes, not
// UTF-8, control or bidirectional-override characters.
func SafeFileName(name string) (string, bool) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." || len(name) > MaxFileNameBytes || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return "", false
		}
	}
	return name, true
}
