package ecosystem

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// front is an organisation's web front: HTTPS on port 443 of its address
// for its domain and its service host names, terminating TLS with the
// test CA's certificate and passing requests on to the services (which
// speak plain HTTP inside the organisation's namespace), as a reverse proxy
// does in a real deployment. The domain itself publishes the well-known
// documents: WebFinger from the Resource Server and the Claims Provider's
// discovery document.
type front struct {
	srv *http.Server
	// discoveryDown makes the domain answer 503 for its discovery document.
	discoveryDown atomic.Bool
}

// route sends requests for host (and, when set, a path prefix) to target.
type route struct {
	host, prefix string
	target       *url.URL
}

func startFront(ns, addr string, cert tls.Certificate, routes []route, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*front, error) {
	f := &front{}
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16, ResponseHeaderTimeout: 2 * time.Minute}
	proxy := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			rt := pick(routes, r.In)
			r.SetURL(rt.target)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := pick(routes, r)
		if rt == nil {
			http.Error(w, `{"error":"not_found","error_description":"no such host or path at this front"}`, http.StatusNotFound)
			return
		}
		if rt.prefix == uma.DiscoveryPath && f.discoveryDown.Load() {
			http.Error(w, `{"error":"temporarily_unavailable","error_description":"discovery is down (test)"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	l, err := listen(ns, net.JoinHostPort(addr, "443"))
	if err != nil {
		return nil, err
	}
	f.srv = &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := f.srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the test sees the front's absence in its pushes
		}
	}()
	return f, nil
}

// pick is the route of the longest matching prefix for the request's host.
func pick(routes []route, r *http.Request) *route {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	var best *route
	for i := range routes {
		rt := &routes[i]
		if rt.host != host || !strings.HasPrefix(r.URL.Path, rt.prefix) {
			continue
		}
		if best == nil || len(rt.prefix) > len(best.prefix) {
			best = rt
		}
	}
	return best
}

func (f *front) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
}
