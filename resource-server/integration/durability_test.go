package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/umawide/umawide/internal/uma"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/umawide/umawide/keycloak/launcher"
)

// TestDurabilityAfterSIGKILL builds the binary, runs it as a process, kills
// it with SIGKILL right after a 201, starts it again on the same database and
// finds the message there.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: no binary build")
	}
	r := newRealm(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "resource-server")
	root, err := launcher.RepoRoot()
	must(t, err == nil, "%v", err)
	build := exec.Command("go", "build", "-o", bin, "./resource-server")
	build.Dir = root
	out, err := build.CombinedOutput()
	must(t, err == nil, "go build: %v\n%s", err, out)

	port, err := launcher.FreePort()
	must(t, err == nil, "%v", err)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	db := filepath.Join(dir, "data", "rs.db")
	secretFile := filepath.Join(dir, "secret")
	must(t, os.WriteFile(secretFile, []byte(rsSecret+"\n"), 0o600) == nil, "secret file")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-listen", "127.0.0.1:"+strconv.Itoa(port), "-keycloak-url", r.kc.BaseURL,
			"-realm", r.realm, "-client-secret-file", secretFile, "-db", db, "-log-level", "warn")
		cmd.Env = append(os.Environ(), "RESOURCE_SERVER_CLIENT_SECRET=") // only the file
		logf, _ := os.OpenFile(filepath.Join(dir, "rs.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		must(t, cmd.Start() == nil, "start")
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
		waitHealthy(t, base)
		return cmd
	}
	logs := func() string { b, _ := os.ReadFile(filepath.Join(dir, "rs.log")); return string(b) }

	cmd := start()
	body := []byte("must survive a crash")
	ch := challenge(t, base, "bob")
	must(t, ch.ASURI == r.issuer, "as_uri %q, want %q (default derived from -keycloak-url)", ch.ASURI, r.issuer)
	tok := r.rpt(t, ch.Ticket, boundClaims(body))
	resp := call(t, http.MethodPost, base+"/incoming/bob", tok, body, nil)
	must(t, resp.status == 201, "POST: %d %s\n%s", resp.status, resp.body, logs())
	must(t, cmd.Process.Signal(syscall.SIGKILL) == nil, "kill")
	_ = cmd.Wait()
	var m uma.Message
	must(t, json.Unmarshal(resp.body, &m) == nil, "%s", resp.body)

	start()
	bob := r.login(t, "bob", bobPassword)
	resp = call(t, http.MethodGet, base+"/incoming/bob/messages/"+m.ID, bob, nil, nil)
	must(t, resp.status == 200 && string(resp.body) == string(body), "after restart: %d %q\n%s", resp.status, resp.body, logs())
	// And the RPT stays spent across the restart.
	resp = call(t, http.MethodPost, base+"/incoming/bob", tok, body, nil)
	must(t, resp.status == 401, "replay after restart: %d %s", resp.status, resp.body)
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("resource server at %s not ready: %v", base, err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
