// Package testhttp sends the HTTP requests of tests that talk to a service
// (the Resource Server, the Claims Provider) as a client would: with or
// without a bearer token, the answer read whole (bounded) with its JSON error
// body. Keycloak's own APIs are internal/keycloak's.
package testhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// MaxBody bounds an answer read: 64 MiB, more than any listing a test asks for.
const MaxBody = 64 << 20

// Response is an HTTP answer with its JSON error body, if any (the wire's
// uma.Error; zero Code when the body is none).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Err    uma.Error
}

func (r Response) String() string { return fmt.Sprintf("%d %.300s", r.Status, r.Body) }

// Do sends req with hc (http.DefaultClient when nil) and reads the answer;
// a transport failure fails the test.
func Do(t testing.TB, hc *http.Client, req *http.Request) Response {
	t.Helper()
	r, err := DoErr(hc, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// DoErr is Do for callers that must not fail the test from another goroutine
// (or that expect the transport to fail).
func DoErr(hc *http.Client, req *http.Request) (Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	r := Response{Status: resp.StatusCode, Header: resp.Header}
	r.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if json.Unmarshal(r.Body, &r.Err) == nil {
		r.Err.StatusCode = r.Status
	}
	return r, err
}

// NewRequest is a request with body (none when nil), bearer (when set) in
// Authorization and hdr; a bad URL fails the test.
func NewRequest(t testing.TB, ctx context.Context, method, url, bearer string, body []byte, hdr http.Header) *http.Request {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req
}

// Send is NewRequest and Do with http.DefaultClient.
func Send(t testing.TB, ctx context.Context, method, url, bearer string, body []byte, hdr http.Header) Response {
	t.Helper()
	return Do(t, nil, NewRequest(t, ctx, method, url, bearer, body, hdr))
}

// Get reads url with bearer (none when empty); any answer but 200 OK fails
// the test.
func Get(t testing.TB, ctx context.Context, url, bearer string) Response {
	t.Helper()
	r := Send(t, ctx, http.MethodGet, url, bearer, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %s", url, r)
	}
	return r
}

// GetJSON is Get with the JSON answer decoded into out.
func GetJSON(t testing.TB, ctx context.Context, url, bearer string, out any) {
	t.Helper()
	r := Get(t, ctx, url, bearer)
	if err := json.Unmarshal(r.Body, out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
