// Package healthcheck lets a service binary check its own readiness. The
// container images are built FROM scratch (no shell, no curl), so
// `claims-provider healthcheck` and `resource-server healthcheck` are the
// commands of their Docker/compose health checks: the same flags and
// environment as the server, so the check asks the address the server
// listens on.
package healthcheck

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeout bounds one check.
const Timeout = 3 * time.Second

// URL is where a server listening on listen (host:port) answers path when
// asked from the same machine or container: an unspecified host (empty,
// 0.0.0.0, ::) becomes the loopback address of its family.
func URL(listen, path string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("healthcheck: listen address %q: %w", listen, err)
	}
	if port == "" {
		return "", fmt.Errorf("healthcheck: listen address %q has no port", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// Check GETs url and succeeds on 200 only. It never uses a proxy and never
// follows a redirect.
func Check(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}

// Run checks path on the server listening on listen and says so on out:
// exit status 0 when ready, 1 otherwise.
func Run(ctx context.Context, listen, path string, out io.Writer) int {
	u, err := URL(listen, path)
	if err == nil {
		err = Check(ctx, u)
	}
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	fmt.Fprintf(out, "healthcheck: GET %s: ok\n", u)
	return 0
}
