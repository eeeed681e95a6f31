package rqp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"
)

// continuePatience is how long a request with Expect: 100-continue holds its
// body back when the server neither asks for it (100 Continue) nor answers.
// RFC 9110 lets a client send the body after a while without either, for
// servers that ignore the expectation; Go's transport does so after
// ExpectContinueTimeout (2 s here), which is shorter than a Resource Server
// on a loaded machine may take to fetch a ticket for its 401 (issue 16):
// the body then went out to a server that answers 401 without reading it
// and closes, and the reset that follows lost the 401. A server that
// implements the expectation (the Resource Server does: Go's server sends
// 100 Continue when the handler reads the body) is never waited for this long.
var continuePatience = time.Minute

// errNotAsked ends the body of a request whose server answered without
// asking for the body: the transport then sends none of it.
var errNotAsked = errors.New("rqp: the server answered without asking for the body")

// continueGate holds back the body of a request with Expect: 100-continue
// until the server asks for it (100 Continue) or continuePatience has
// passed, whatever the transport's ExpectContinueTimeout; once the answer is
// in (done), a body not asked for is never sent.
type continueGate struct {
	once   sync.Once
	opened chan struct{} // closed: send the body
	ended  chan struct{} // closed: the exchange is over, send nothing
	timer  *time.Timer
}

// gateBody puts a continueGate on req's body when it expects 100-continue:
// it returns the request to send (a copy with a context that reports the
// 100 Continue) and the function to call once the answer has been read.
func gateBody(ctx context.Context, req *http.Request) (*http.Request, func()) {
	if !strings.EqualFold(req.Header.Get("Expect"), "100-continue") || req.Body == nil || req.Body == http.NoBody {
		return req.WithContext(ctx), func() {}
	}
	g := &continueGate{opened: make(chan struct{}), ended: make(chan struct{})}
	g.timer = time.AfterFunc(continuePatience, g.open)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got100Continue: g.open})
	r := req.WithContext(ctx)
	r.Body = &gatedBody{rc: req.Body, g: g, ctx: ctx}
	if get := req.GetBody; get != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			rc, err := get()
			if err != nil {
				return nil, err
			}
			return &gatedBody{rc: rc, g: g, ctx: ctx}, nil
		}
	}
	return r, func() {
		g.timer.Stop()
		close(g.ended)
	}
}

func (g *continueGate) open() { g.once.Do(func() { close(g.opened) }) }

// gatedBody is a request body behind a continueGate.
type gatedBody struct {
	rc  io.ReadCloser
	g   *continueGate
	ctx context.Context
}

func (b *gatedBody) Read(p []byte) (int, error) {
	select {
	case <-b.g.opened:
	default:
		select {
		case <-b.g.opened:
		case <-b.g.ended:
			return 0, errNotAsked
		case <-b.ctx.Done():
			return 0, context.Cause(b.ctx)
		}
	}
	select {
	case <-b.g.ended:
		// The answer is in and was read; the transport closes the connection.
		return 0, errNotAsked
	default:
	}
	return b.rc.Read(p)
}

func (b *gatedBody) Close() error { return b.rc.Close() }
