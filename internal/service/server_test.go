package service

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

func TestHTTPServer(t *testing.T) {
	hs := newFixture(t, nil).svc.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout != time.Second || hs.ReadTimeout != time.Minute || hs.WriteTimeout != time.Minute ||
		hs.IdleTimeout != time.Minute || hs.MaxHeaderBytes != 8<<10 || hs.ErrorLog == nil {
		t.Fatalf("server %+v", hs)
	}
}

// A request in flight when the context ends is answered; then Serve returns
// and the listener is closed.
func TestServeShutsDownGracefully(t *testing.T) {
	f := newFixture(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	f.svc.Engine.GET("/slow", func(c *gin.Context) {
		close(entered)
		<-release
		c.String(http.StatusOK, "done")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.svc.Serve(ctx, l) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel()
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Fatalf("request in flight: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after the shutdown")
	}
}
