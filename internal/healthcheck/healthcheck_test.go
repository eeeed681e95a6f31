package healthcheck

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for listen, want := range map[string]string{
		"0.0.0.0:8081":   "http://127.0.0.1:8081/readyz",
		":8082":          "http://127.0.0.1:8082/readyz",
		"[::]:8082":      "http://[::1]:8082/readyz",
		"127.0.0.1:9":    "http://127.0.0.1:9/readyz",
		"10.1.2.3:80":    "http://10.1.2.3:80/readyz",
		"localhost:8081": "http://localhost:8081/readyz",
		"[::1]:8081":     "http://[::1]:8081/readyz",
	} {
		got, err := URL(listen, "/readyz")
		if err != nil || got != want {
			t.Errorf("URL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	for _, bad := range []string{"", "8081", "0.0.0.0", "0.0.0.0:", "a:b:c"} {
		if got, err := URL(bad, "/readyz"); err == nil {
			t.Errorf("URL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestRun(t *testing.T) {
	status := http.StatusOK
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/readyz", http.StatusFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	listen := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(listen)
	var out bytes.Buffer

	// Listening on every address: the check asks the loopback address.
	if code := Run(context.Background(), "0.0.0.0:"+port, "/readyz", &out); code != 0 {
		t.Fatalf("ready server: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "ok") || len(paths) != 1 || paths[0] != "/readyz" {
		t.Fatalf("output %q, paths %q", out.String(), paths)
	}

	status = http.StatusServiceUnavailable
	out.Reset()
	if code := Run(context.Background(), listen, "/readyz", &out); code != 1 || !strings.Contains(out.String(), "503") {
		t.Fatalf("unready server: exit %d: %s", code, out.String())
	}

	// A redirect is not readiness.
	status = http.StatusOK
	out.Reset()
	if code := Run(context.Background(), listen, "/moved", &out); code != 1 || !strings.Contains(out.String(), "302") {
		t.Fatalf("redirect: exit %d: %s", code, out.String())
	}

	// Nobody listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	out.Reset()
	if code := Run(context.Background(), closed, "/readyz", &out); code != 1 || !strings.Contains(out.String(), "refused") {
		t.Fatalf("closed port: exit %d: %s", code, out.String())
	}

	out.Reset()
	if code := Run(context.Background(), "no-port", "/readyz", &out); code != 1 {
		t.Fatalf("bad listen address: exit %d: %s", code, out.String())
	}
}
