package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/umawide/umawide/internal/procgroup"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
)

// process is one background process of the stack.
type process struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	PID  int    `json:"pid"` // also its process group id
	Log  string `json:"log"`
	// Dir is a folder to remove when the process is stopped.
	Dir string `json:"dir,omitempty"`
}

// state is what `up` leaves in the run folder for `down` and `status`.
type state struct {
	Keycloak *process  `json:"keycloak,omitempty"`
	Services []process `json:"services,omitempty"`
}

func statePath(runDir string) string { return filepath.Join(runDir, "stack.json") }

func loadState(runDir string) (*state, error) {
	data, err := os.ReadFile(statePath(runDir))
	if errors.Is(err, fs.ErrNotExist) {
		return &state{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(runDir), err)
	}
	return &s, nil
}

func (s *state) save(runDir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath(runDir), data, 0o644); err != nil {
		return err
	}
	// A shell-friendly copy: `. .run/stack.env`.
	env := ""
	if s.Keycloak != nil {
		env += "KEYCLOAK_URL=" + s.Keycloak.URL + "\n"
	}
	for _, p := range s.Services {
		env += envName(p.Name) + "=" + p.URL + "\n"
	}
	return os.WriteFile(filepath.Join(runDir, "stack.env"), []byte(env), 0o644)
}

func envName(service string) string {
	out := []byte{}
	for _, c := range []byte(service) {
		switch {
		case c >= 'a' && c <= 'z':
			out = append(out, c-'a'+'A')
		case c == '-':
			out = append(out, '_')
		default:
			out = append(out, c)
		}
	}
	return string(out) + "_URL"
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func up(ctx context.Context, runDir string, _ []string) error {
	logs := filepath.Join(runDir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	s, err := loadState(runDir)
	if err != nil {
		return err
	}
	if s.Keycloak != nil && alive(s.Keycloak.PID) {
		fmt.Printf("Keycloak already runs at %s (log %s)\n", s.Keycloak.URL, s.Keycloak.Log)
	} else {
		httpPort, err := portFromEnv("UMAWIDE_KEYCLOAK_PORT", 8080)
		if err != nil {
			return err
		}
		mgmtPort, err := portFromEnv("UMAWIDE_KEYCLOAK_MANAGEMENT_PORT", 9000)
		if err != nil {
			return err
		}
		kc, err := launcher.Start(ctx, launcher.Options{
			Mode:           launcher.ModeProcess,
			HTTPPort:       httpPort,
			ManagementPort: mgmtPort,
			Detached:       true,
			LogPath:        filepath.Join(logs, "keycloak.log"),
			Env:            stackPlaceholders(),
		})
		if err != nil {
			return err
		}
		s.Keycloak = &process{Name: "keycloak", URL: kc.BaseURL, PID: kc.PID, Log: kc.LogPath, Dir: kc.InstanceDir}
		if err := s.save(runDir); err != nil {
			return err
		}
		fmt.Printf("Keycloak %s ready at %s (admin %s/%s, log %s)\n", launcher.Version, kc.BaseURL, kc.AdminUser, kc.AdminPassword, kc.LogPath)
	}
	bin, err := binDir()
	if err != nil {
		return err
	}
	specs := []stack.Spec{
		stack.ClaimsProvider{
			Binary: filepath.Join(bin, "claims-provider"), Listen: envOr("UMAWIDE_CLAIMS_PROVIDER_LISTEN", "127.0.0.1:8081"),
			KeycloakURL: s.Keycloak.URL, KeyDir: stack.KeyDir(runDir),
			LogPath: stack.LogPath(runDir, "claims-provider"), Detached: true,
		}.Spec(),
		stack.ResourceServer{
			Binary: filepath.Join(bin, "resource-server"), Listen: envOr("UMAWIDE_RESOURCE_SERVER_LISTEN", "127.0.0.1:8082"),
			KeycloakURL: s.Keycloak.URL, DB: stack.DBPath(runDir),
			LogPath: stack.LogPath(runDir, "resource-server"), Detached: true,
		}.Spec(),
	}
	for _, spec := range specs {
		if p := s.service(spec.Name); p != nil && alive(p.PID) {
			fmt.Printf("%s already runs at %s (log %s)\n", p.Name, p.URL, p.Log)
			continue
		}
		if _, err := os.Stat(spec.Binary); err != nil {
			fmt.Printf("%s not built (%s): skipped\n", spec.Name, spec.Binary)
			continue
		}
		svc, err := stack.Start(ctx, spec)
		if err != nil {
			_ = s.save(runDir)
			return err
		}
		s.setService(process{Name: spec.Name, URL: spec.URL, PID: svc.PID, Log: spec.LogPath})
		if err := s.save(runDir); err != nil {
			return err
		}
		fmt.Printf("%s ready at %s (log %s)\n", spec.Name, spec.URL, spec.LogPath)
	}
	return s.save(runDir)
}

func (s *state) service(name string) *process {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

func (s *state) setService(p process) {
	if old := s.service(p.Name); old != nil {
		*old = p
		return
	}
	s.Services = append(s.Services, p)
}

// binDir is where the service binaries are: beside this program (make build
// puts them all in bin/), else <repo>/bin.
func binDir() (string, error) {
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, "claims-provider")); err == nil {
			return dir, nil
		}
	}
	root, err := launcher.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// stackPlaceholders are the realm-file placeholders for the default local
// ports of docs/PROTOCOL.md; the realm files' own defaults already match them.
func stackPlaceholders() map[string]string { return map[string]string{} }

func portFromEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port", name, v)
	}
	return p, nil
}

func down(runDir string) error {
	s, err := loadState(runDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var errs []error
	// Services first: they depend on Keycloak.
	for i := len(s.Services) - 1; i >= 0; i-- {
		p := s.Services[i]
		if err := procgroup.Stop(ctx, p.PID, nil); err != nil {
			errs = append(errs, err)
		}
		fmt.Printf("stopped %s\n", p.Name)
	}
	s.Services = nil
	if s.Keycloak != nil {
		if err := procgroup.Stop(ctx, s.Keycloak.PID, nil); err != nil {
			errs = append(errs, err)
		}
		if s.Keycloak.Dir != "" {
			os.RemoveAll(s.Keycloak.Dir)
		}
		fmt.Printf("stopped Keycloak (log kept in %s)\n", s.Keycloak.Log)
		s.Keycloak = nil
	}
	if err := os.Remove(statePath(runDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	os.Remove(filepath.Join(runDir, "stack.env"))
	return errors.Join(errs...)
}

func status(runDir string) error {
	s, err := loadState(runDir)
	if err != nil {
		return err
	}
	all := s.Services
	if s.Keycloak != nil {
		all = append([]process{*s.Keycloak}, all...)
	}
	if len(all) == 0 {
		fmt.Println("nothing runs (make up starts the stack)")
		return nil
	}
	for _, p := range all {
		st := "stopped"
		if alive(p.PID) {
			st = "running"
		}
		fmt.Printf("%-16s %-8s %-28s log %s\n", p.Name, st, p.URL, p.Log)
	}
	return nil
}
