// Package httpclient makes the HTTP clients the services use for their back
// channel to Keycloak (token endpoint, JWKS, protection and admin APIs):
// keep-alive connections that are actually kept. Go's default transport
// keeps only 2 idle connections per host (http.DefaultMaxIdleConnsPerHost),
// so a service answering more than two requests at a time closes and opens a
// TCP connection to Keycloak for most of its calls.
package httpclient

import (
	"io"
	"net"
	"net/http"
	"time"
)

// MaxIdleConnsPerHost is how many idle keep-alive connections a transport
// keeps per host: enough for the concurrent calls of a loaded service to
// one Keycloak.
const MaxIdleConnsPerHost = 64

// Transport returns a new transport like http.DefaultTransport (proxy from
// the environment, HTTP/2 where offered, bounded dial and TLS handshake) that
// keeps MaxIdleConnsPerHost idle connections per host.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 4 * MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// New returns a client with a fresh Transport and a timeout for whole
// requests.
func New(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(), Timeout: timeout}
}

// ReadBody reads at most limit bytes of resp's body, as
// io.ReadAll(io.LimitReader(resp.Body, limit)) does, but into one buffer of
// the announced Content-Length when there is one below limit: io.ReadAll
// starts at 512 bytes and copies a token answer of a few kilobytes several
// times as it grows. (Go's transport ends a body with a Content-Length
// there, and reports one that ends early.)
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n < limit {
		buf := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}
