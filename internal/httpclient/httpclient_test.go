package httpclient

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent calls to one host reuse their connections afterwards: a second
// round of as many concurrent calls as the first opens no new connection
// (Go's default transport would keep only two of them).
func TestConnectionsKept(t *testing.T) {
	const n = 16
	var conns atomic.Int64
	var gate atomic.Pointer[chan struct{}]
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := *gate.Load()
		arrived.Done()
		<-g // all n requests are in flight at once
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(10 * time.Second)
	round := func() {
		g := make(chan struct{})
		gate.Store(&g)
		arrived.Add(n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		arrived.Wait()
		close(g)
		wg.Wait()
	}
	round()
	if got := conns.Load(); got != n {
		t.Fatalf("first round opened %d connections, want %d", got, n)
	}
	round()
	if got := conns.Load(); got != n {
		t.Fatalf("second round opened %d more connections; want the %d idle ones reused", got-n, n)
	}
}

// ReadBody reads what io.ReadAll of a LimitReader would, with or without a
// Content-Length, and fails a body that ends before its Content-Length.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, tc := range []struct {
		name    string
		length  int64 // -1: unknown
		limit   int64
		want    string
		wantErr bool
	}{
		{"announced, within the limit", int64(len(body)), 4000, body, false},
		{"announced, at the limit", int64(len(body)), int64(len(body)), body, false},
		{"announced, over the limit", int64(len(body)), 100, body[:100], false},
		{"unknown, within the limit", -1, 4000, body, false},
		{"unknown, over the limit", -1, 100, body[:100], false},
		{"empty", 0, 100, "", false},
		{"ends before its Content-Length", int64(len(body)) + 10, 4000, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{ContentLength: tc.length, Body: io.NopCloser(strings.NewReader(body))}
			if tc.name == "empty" {
				resp.Body = http.NoBody
			}
			got, err := ReadBody(resp, tc.limit)
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Fatalf("got %d bytes, %v; want %d bytes, error %v", len(got), err, len(tc.want), tc.wantErr)
			}
		})
	}
}
