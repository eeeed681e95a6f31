package ecosystem

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetwork builds two organisations without Keycloak (fronts only) and
// checks what every organisation relies on: names resolve as the hosts
// file says inside the namespaces, HTTPS with the test CA works between
// them, the host's network does not reach them, and Close removes it all.
func TestNetwork(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err.Error())
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "backend saw "+r.Host+r.URL.Path)
	}))
	defer backend.Close()
	bu, _ := url.Parse(backend.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := New(ctx, Options{Dir: t.TempDir()}, OrgSpec{Domain: "a.example", Backend: bu}, OrgSpec{Domain: "b.example", Backend: bu})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			e.Close()
		}
	}()
	a, b := e.Orgs["a.example"], e.Orgs["b.example"]

	out, err := exec.Command("ip", "netns", "exec", a.NS, "getent", "hosts", "cp.b.example").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), b.IP+" ") {
		t.Errorf("getent hosts cp.b.example in %s: %q %v, want %s", a.NS, out, err, b.IP)
	}
	resp, err := e.Client("a.example").Get("https://cp.b.example/jwks")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "backend saw cp.b.example/jwks" {
		t.Errorf("through b's front: %s %q", resp.Status, body)
	}
	// Only the rogue routes exist: another path on the domain is not found.
	resp, err = e.Client("a.example").Get("https://b.example/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unrouted path: %s", resp.Status)
	}
	// The host's own network is untouched: no interface of the ecosystem.
	links, _ := exec.Command("ip", "-o", "link").CombinedOutput()
	if strings.Contains(string(links), "uw"+e.net.id) {
		t.Errorf("the host has an interface of the ecosystem:\n%s", links)
	}

	e.Close()
	closed = true
	list, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	for _, ns := range []string{a.NS, b.NS} {
		if strings.Contains(string(list), ns) {
			t.Errorf("namespace %s left behind", ns)
		}
		if _, err := os.Stat(filepath.Join("/etc/netns", ns)); err == nil {
			t.Errorf("/etc/netns/%s left behind", ns)
		}
	}
}
