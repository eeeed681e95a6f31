// Package stack builds and runs umawide's Go services as real processes: the
// development stack (`make up`, devstack) and the end-to-end tests start the
// Claims Provider and the Resource Server through it, so both run them the
// same way with the same flags.
package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/procgroup"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Build compiles the named commands (folders at the repository root, e.g.
// "claims-provider") into dir and returns their paths by name.
func Build(ctx context.Context, dir string, names ...string) (map[string]string, error) {
	root, err := launcher.RepoRoot()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, "./"+n)
		out[n] = filepath.Join(dir, n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: go %v: %w\n%s", args, err, b)
	}
	return out, nil
}

// Spec says how to run one service.
type Spec struct {
	Name     string
	Binary   string
	Args     []string
	Env      []string // added to this process's environment
	URL      string   // where clients reach it
	ReadyURL string   // answers 200 once it serves
	LogPath  string
	// Detached services outlive this process (make up).
	Detached bool
	// ReadyTimeout; default 60 seconds.
	ReadyTimeout time.Duration
	// ReadyClient asks ReadyURL; default a plain client (the federation
	// test's services are reachable only through their namespace).
	ReadyClient *http.Client
}

// Service is a running service process.
type Service struct {
	Spec
	PID    int
	exited <-chan struct{}
}

// Start runs the service in its own process group and waits until ReadyURL
// answers 200; on failure the process is stopped and its log tail returned.
func Start(ctx context.Context, spec Spec) (*Service, error) {
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(spec.Binary, spec.Args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), spec.Env...)
	exited, err := procgroup.Start(cmd, spec.Detached)
	if err != nil {
		return nil, fmt.Errorf("stack: starting %s: %w", spec.Name, err)
	}
	s := &Service{Spec: spec, PID: cmd.Process.Pid, exited: exited}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop(context.Background())
		log, _ := os.ReadFile(spec.LogPath)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return nil, fmt.Errorf("stack: %s: %w\n%s", spec.Name, err, log)
	}
	return s, nil
}

func (s *Service) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.ReadyTimeout)
	defer cancel()
	client := s.ReadyClient
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.ReadyURL, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", s.ReadyURL, resp.Status)
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("exited before it was ready (last: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the service gracefully (SIGTERM, then SIGKILL after a grace time).
func (s *Service) Stop(ctx context.Context) error {
	return procgroup.Stop(ctx, s.PID, s.exited)
}

// Kill ends the service at once with SIGKILL, as a crash would, and waits
// until it is gone.
func (s *Service) Kill() {
	_ = syscall.Kill(-s.PID, syscall.SIGKILL)
	<-s.exited
}

// Exited closes when the process has exited.
func (s *Service) Exited() <-chan struct{} { return s.exited }
