package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/umawide/umawide/keycloak/launcher"
)

// rsProcess is the Resource Server as a real process (its binary, built by
// the test), on a SQLite database in its own folder unless the extra flags
// say otherwise; it can be killed and started again on the same data.
type rsProcess struct {
	t                  *testing.T
	bin, dir, db, base string
	args               []string
	env                []string // added to the environment
	cmd                *exec.Cmd
	logf               *os.File
}

// buildRS builds the Resource Server's binary into a test folder.
func buildRS(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: no binary build")
	}
	bin := filepath.Join(t.TempDir(), "resource-server")
	root, err := launcher.RepoRoot()
	must(t, err == nil, "%v", err)
	build := exec.Command("go", "build", "-o", bin, "./resource-server")
	build.Dir = root
	out, err := build.CombinedOutput()
	must(t, err == nil, "go build: %v\n%s", err, out)
	return bin
}

// newRSProcess prepares (does not start) a Resource Server for realm r with
// the extra flags.
func newRSProcess(t *testing.T, r *realmEnv, extra ...string) *rsProcess {
	t.Helper()
	p := &rsProcess{t: t, bin: buildRS(t), dir: t.TempDir()}
	port, err := launcher.FreePort()
	must(t, err == nil, "%v", err)
	p.base = "http://127.0.0.1:" + strconv.Itoa(port)
	p.db = filepath.Join(p.dir, "data", "rs.db")
	secretFile := filepath.Join(p.dir, "secret")
	must(t, os.WriteFile(secretFile, []byte(rsSecret+"\n"), 0o600) == nil, "secret file")
	p.args = append([]string{"-listen", "127.0.0.1:" + strconv.Itoa(port), "-keycloak-url", r.kc.BaseURL,
		"-realm", r.realm, "-client-secret-file", secretFile, "-db", p.db, "-log-level", "info"}, extra...)
	t.Cleanup(func() {
		if p.cmd != nil {
			p.kill()
		}
	})
	return p
}

// start runs the binary and waits until it is ready.
func (p *rsProcess) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(append(os.Environ(), "RESOURCE_SERVER_CLIENT_SECRET="), p.env...) // the secret only from the file
	logf, err := os.OpenFile(filepath.Join(p.dir, "rs.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(p.t, err == nil, "%v", err)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(p.t, cmd.Start() == nil, "start")
	p.cmd, p.logf = cmd, logf
	waitHealthy(p.t, p.base)
}

// kill ends the process with SIGKILL (no clean-up of its own runs).
func (p *rsProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.logf.Close()
	p.cmd = nil
}

func (p *rsProcess) logs() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "rs.log"))
	return string(b)
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func (p *rsProcess) peakRSS() int64 {
	p.t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	must(p.t, err == nil, "%v", err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			must(p.t, err == nil, "VmHWM %q", v)
			return kb << 10
		}
	}
	p.t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
