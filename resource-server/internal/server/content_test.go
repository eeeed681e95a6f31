package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/store"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// contentFiles lists the store's content directory (temporary files
// included).
func (e *env) contentFiles() []string {
	e.t.Helper()
	entries, err := os.ReadDir(e.contentDir)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// waitContentFiles waits until n files are in the content directory: a
// request cut by the client ends in the handler after the client has gone,
// so there is no answer to wait for. It fails the test when others stay.
func (e *env) waitContentFiles(n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(e.contentFiles()) != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("content files %v, want %d", e.contentFiles(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) messageID(r resp) string {
	e.t.Helper()
	var m uma.Message
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &m) != nil {
		e.t.Fatalf("POST: %d %s", r.status, r.body)
	}
	return m.ID
}

// A body beyond store.InlineMax is streamed to a content file and read back
// whole and by ranges.
func TestLargeBodyAndRanges(t *testing.T) {
	e := newEnv(t, 0)
	body := randomBytes(1<<20 + 3)
	id := e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", body, nil), nil), body, nil))
	if files := e.contentFiles(); len(files) != 1 || files[0] != id {
		t.Fatalf("content files %v, want [%s]", files, id)
	}
	bob := e.signer.Reader("bob", "incoming-app", nil)
	path := "/incoming/bob/messages/" + id
	r := e.do(http.MethodGet, path, bob, nil, nil)
	if r.status != 200 || !bytes.Equal(r.body, body) || r.header.Get("Accept-Ranges") != "bytes" ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("GET: %d, %d bytes, equal %v, headers %v", r.status, len(r.body), bytes.Equal(r.body, body), r.header)
	}
	r = e.do(http.MethodGet, path, bob, nil, map[string]string{"Range": "bytes=1000-1999"})
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, body[1000:2000]) ||
		r.header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(body)) {
		t.Fatalf("range: %d %v %q", r.status, bytes.Equal(r.body, body[1000:2000]), r.header.Get("Content-Range"))
	}
	r = e.do(http.MethodGet, path, bob, nil, map[string]string{"Range": "bytes=-10"})
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, body[len(body)-10:]) {
		t.Fatalf("suffix range: %d", r.status)
	}
	r = e.do(http.MethodGet, path, bob, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(body)+5)})
	if r.status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range beyond the end: %d", r.status)
	}
	// A small message stays in its row: no file.
	small := []byte("small")
	e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", small, nil), nil), small, nil))
	if files := e.contentFiles(); len(files) != 1 {
		t.Fatalf("content files %v after a small message", files)
	}
}

// A wrong body, a body longer than bound, one beyond the limit and a cut
// connection each leave no message and no content, and do not spend the
// RPT: the honest retry with it is stored.
func TestRefusedBodiesLeaveNothing(t *testing.T) {
	body := randomBytes(300 << 10)
	e := newEnv(t, int64(len(body)))
	tok := e.signer.RPT(bound("rid-bob", body, nil), nil)
	nothing := func(what string) {
		t.Helper()
		e.waitContentFiles(0)
		if n := e.count("bob"); n != 0 {
			t.Fatalf("%s: %d messages stored", what, n)
		}
	}

	wrong := bytes.Clone(body)
	wrong[len(wrong)-1] ^= 1
	if r := e.post("bob", tok, wrong, nil); r.status != 403 || !strings.Contains(r.err().Description, "SHA-256") {
		t.Fatalf("wrong hash: %d %s", r.status, r.body)
	}
	nothing("wrong hash")

	chunked := map[string]string{"Transfer-Encoding": "chunked"}
	if r := e.post("bob", tok, append(bytes.Clone(body), 'x'), chunked); r.status != 413 || r.err().Code != uma.ErrTooLarge {
		t.Fatalf("body beyond the limit: %d %s", r.status, r.body)
	}
	nothing("beyond the limit")

	shorter := body[:len(body)-1]
	longTok := e.signer.RPT(bound("rid-bob", shorter, nil), nil)
	if r := e.post("bob", longTok, body, chunked); r.status != 403 || r.err().Code != uma.ErrInsufficientScope {
		t.Fatalf("body beyond the bound length: %d %s", r.status, r.body)
	}
	nothing("beyond the bound length")

	// Cut: the headers promise the whole body, half of it comes, then the
	// connection closes.
	bodyRefusals := func() string {
		for _, line := range strings.Split(string(e.do(http.MethodGet, "/metrics", "", nil, nil).body), "\n") {
			if v, ok := strings.CutPrefix(line, `umawide_rs_refusals_total{reason="body"} `); ok {
				return v
			}
		}
		return ""
	}
	before := bodyRefusals()
	u, _ := url.Parse(e.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /incoming/bob HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", u.Host, tok, len(body))
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// The handler ends after the client left: wait for its refusal.
	deadline := time.Now().Add(20 * time.Second)
	for bodyRefusals() == before {
		if time.Now().After(deadline) {
			t.Fatal("the cut request was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	nothing("cut connection")

	e.messageID(e.post("bob", tok, body, nil))
	if files := e.contentFiles(); len(files) != 1 {
		t.Fatalf("content files after the retry: %v", files)
	}
}

// unreadBody fails the test when the server reads it.
type unreadBody struct{ t *testing.T }

func (u unreadBody) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.ErrUnexpectedEOF
}

// A push beyond the owner's quota is refused with 507: before its body is
// read when it is larger than PrecheckBytes or of unknown length, when it
// is stored otherwise (the insert's own check); the RPT stays usable once
// space is freed; other owners are not affected.
func TestStorageQuota(t *testing.T) {
	e := newEnvQuota(t, 0, 1000)
	first := randomBytes(600)
	firstID := e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", first, nil), nil), first, nil))
	over := randomBytes(500)
	overTok := e.signer.RPT(bound("rid-bob", over, nil), nil)
	large := randomBytes(PrecheckBytes + 1)
	largeTok := e.signer.RPT(bound("rid-bob", large, nil), nil)
	want507 := func(what string, code int, body []byte) {
		t.Helper()
		var got uma.Error
		if code != http.StatusInsufficientStorage || json.Unmarshal(body, &got) != nil ||
			got.Code != uma.ErrInsufficientStorage || !strings.Contains(got.Description, ReasonStorageQuota) {
			t.Fatalf("%s: %d %s, want 507 %s", what, code, body, uma.ErrInsufficientStorage)
		}
	}
	for _, tc := range []struct {
		length int64
		tok    string
	}{{int64(len(large)), largeTok}, {-1, overTok}} {
		req := httptest.NewRequest(http.MethodPost, "/incoming/bob", unreadBody{t})
		req.ContentLength = tc.length
		req.Header.Set("Authorization", "Bearer "+tc.tok)
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		want507(fmt.Sprintf("Content-Length %d, unread", tc.length), w.Code, w.Body.Bytes())
	}
	r := e.post("bob", overTok, over, nil)
	want507("a small body, read", r.status, r.body)
	if n := e.count("bob"); n != 1 {
		t.Fatalf("%d messages after the refusal", n)
	}
	// Within the quota: admitted right after; carol's Incoming has its own.
	rest := randomBytes(400)
	e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", rest, nil), nil), rest, nil))
	e.messageID(e.post("carol", e.signer.RPT(bound("rid-carol", over, nil), nil), over, nil))
	// Space freed: the refused RPT stores its message.
	bob := e.signer.Reader("bob", "incoming-app", nil)
	if r := e.do(http.MethodDelete, "/incoming/bob/messages/"+firstID, bob, nil, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.messageID(e.post("bob", overTok, over, nil))
}

// The quota is checked again when the message is stored: two pushes that
// each fit alone, read side by side, store one.
func TestStorageQuotaConcurrent(t *testing.T) {
	e := newEnvQuota(t, 0, 1<<20)
	a, b := randomBytes(600<<10), randomBytes(600<<10)
	// a passes the check before its body is read (with Expect:
	// 100-continue the client sends no byte before the server reads, which
	// it does after its checks); b is stored meanwhile and leaves no room.
	pr, pw := io.Pipe()
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	done := make(chan resp, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/incoming/bob", pr)
		req.ContentLength = int64(len(a))
		req.Header.Set("Authorization", "Bearer "+e.signer.RPT(bound("rid-bob", a, nil), nil))
		req.Header.Set("Expect", "100-continue")
		res, err := client.Do(req)
		if err != nil {
			done <- resp{status: -1, body: []byte(err.Error())}
			return
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- resp{res.StatusCode, res.Header, data}
	}()
	if _, err := pw.Write(a[:1000]); err != nil {
		t.Fatal(err)
	}
	// The client read those bytes, so the server asked for the body: a is
	// past its checks.
	e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", b, nil), nil), b, nil))
	pw.Write(a[1000:])
	pw.Close()
	r := <-done
	if r.status != http.StatusInsufficientStorage || r.err().Code != uma.ErrInsufficientStorage {
		t.Fatalf("second push: %d %s, want 507", r.status, r.body)
	}
	e.waitContentFiles(1)
	if n := e.count("bob"); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
}

func TestDeleteMessage(t *testing.T) {
	e := newEnv(t, 0)
	large, small := randomBytes(200<<10), []byte("small")
	ids := []string{
		e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", large, nil), nil), large, nil)),
		e.messageID(e.post("bob", e.signer.RPT(bound("rid-bob", small, nil), nil), small, nil)),
	}
	bob := e.signer.Reader("bob", "incoming-app", nil)
	carol := e.signer.Reader("carol", "incoming-app", nil)
	refusals := []struct {
		name, path, token string
		status            int
	}{
		{"no token", "/incoming/bob/messages/" + ids[0], "", 401},
		{"someone else", "/incoming/bob/messages/" + ids[0], carol, 403},
		{"bob's id in carol's Incoming", "/incoming/carol/messages/" + ids[0], carol, 404},
		{"unknown id", "/incoming/bob/messages/" + store.NewID(), bob, 404},
		{"bad id", "/incoming/bob/messages/x", bob, 404},
		{"RPT", "/incoming/bob/messages/" + ids[0], e.signer.RPT(bound("rid-bob", small, nil), nil), 403},
	}
	for _, tc := range refusals {
		if r := e.do(http.MethodDelete, tc.path, tc.token, nil, nil); r.status != tc.status || r.err().Code == "" {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	if n := e.count("bob"); n != 2 {
		t.Fatalf("refusals deleted: %d left", n)
	}
	for _, id := range ids {
		if r := e.do(http.MethodDelete, "/incoming/bob/messages/"+id, bob, nil, nil); r.status != 204 || len(r.body) != 0 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := e.do(http.MethodGet, "/incoming/bob/messages/"+id, bob, nil, nil); r.status != 404 {
			t.Fatalf("get after delete: %d", r.status)
		}
		if r := e.do(http.MethodDelete, "/incoming/bob/messages/"+id, bob, nil, nil); r.status != 404 {
			t.Fatalf("second delete: %d", r.status)
		}
	}
	if files := e.contentFiles(); len(files) != 0 || e.count("bob") != 0 {
		t.Fatalf("after deleting all: files %v, %d messages", files, e.count("bob"))
	}
	if u, err := e.store.Usage(context.Background(), rpttest.UserID("bob")); err != nil || u != 0 {
		t.Fatalf("usage %d %v", u, err)
	}
}

// slowReader hands out its data a chunk per tick.
type slowReader struct {
	data  []byte
	chunk int
	tick  time.Duration
	left  int // of the current chunk
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	if s.left == 0 {
		time.Sleep(s.tick)
		s.left = s.chunk
	}
	n := copy(p[:min(len(p), s.left)], s.data)
	s.data, s.left = s.data[n:], s.left-n
	return n, nil
}

// A body, and a download, that take longer than the server's Read and
// Write timeouts but keep making progress are not cut: the deadlines bound
// the time without progress, not the size.
func TestSlowTransfersOutliveTimeouts(t *testing.T) {
	e := newEnvConfig(t, func(c *Config) {
		to := DefaultTimeouts
		to.Read, to.Write = time.Second, time.Second
		c.Timeouts = &to
	})
	body := randomBytes(16 << 20)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/incoming/bob", &slowReader{data: body, chunk: 1 << 20, tick: 200 * time.Millisecond})
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+e.signer.RPT(bound("rid-bob", body, nil), nil))
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	id := e.messageID(resp{res.StatusCode, res.Header, data})

	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/incoming/bob/messages/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+e.signer.Reader("bob", "incoming-app", nil))
	res, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 1<<20)
	for {
		time.Sleep(200 * time.Millisecond)
		n, err := io.ReadFull(res.Body, buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("slow download: %d of %d bytes, equal %v", got.Len(), len(body), bytes.Equal(got.Bytes(), body))
	}
}
