// Package pgtest starts a private PostgreSQL server for a test run, the way
// keycloak/launcher starts Keycloak: Debian's server binaries
// (/usr/lib/postgresql/<version>/bin, from the postgresql package), a
// cluster created in a temporary folder, listening on a free port of
// 127.0.0.1 only, run as an unprivileged user when this process is root
// (PostgreSQL refuses to run as root), in its own process group, ended when
// Stop is called or when this process dies for any reason (parent-death
// signal), and its folder removed.
//
// `devstack exec` (make test) starts one and passes its URL to every test
// package as UMAWIDE_TEST_DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/umawide/umawide/internal/logtail"
	"github.com/umawide/umawide/internal/procgroup"
)

// Environment variables read by Start.
const (
	// BinDirEnv names the folder with initdb and postgres; default the
	// newest /usr/lib/postgresql/<version>/bin.
	BinDirEnv = "UMAWIDE_POSTGRES_BIN"
	// UserEnv names the user the server runs as when this process is root;
	// default nobody.
	UserEnv = "UMAWIDE_POSTGRES_USER"
)

// DatabaseEnv names the environment variable with the URL of the
// PostgreSQL server (a superuser's) that `devstack exec` started for the
// tests; the tests that need one skip, saying so, without it.
const DatabaseEnv = "UMAWIDE_TEST_DATABASE_URL"

// Fixed names of the server's superuser and of the database created for the
// tests (the tests create their own databases and schemas beside it).
const (
	User     = "umawide"
	Database = "umawide_test"
)

// dirPrefix starts the name of every server folder, so that a folder left
// by a run that was SIGKILLed can be found and removed by the next one.
const dirPrefix = "umawide-pg-"

// ErrNoServer says the PostgreSQL server binaries are not installed.
var ErrNoServer = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres): install Debian's postgresql package or set " + BinDirEnv)

// Options configure Start; the zero value is what make test uses.
type Options struct {
	// BinDir holds initdb and postgres; empty means BinDirEnv, then the
	// newest /usr/lib/postgresql/*/bin.
	BinDir string
	// RunAs is the user the server runs as when this process is root;
	// empty means UserEnv, then nobody. Ignored when not root.
	RunAs string
	// StartTimeout bounds initdb, start and readiness; default 2 minutes.
	StartTimeout time.Duration
	// Logger receives progress; default slog.Default().
	Logger *slog.Logger
}

// Server is a running private PostgreSQL server.
type Server struct {
	// Host and Port are where it listens (TCP only: no Unix socket).
	Host string
	Port int
	// Password is User's password (scram-sha-256).
	Password string
	// Dir is the temporary folder with the cluster and the log.
	Dir string
	// LogPath is the server's output.
	LogPath string
	// PID is the postmaster's process (and process group) id.
	PID int
	// Version is the server's major version (the folder under /usr/lib/postgresql).
	Version string

	exited <-chan struct{}
}

// URL is a connection URL for database db as the superuser (User).
func (s *Server) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(User, s.Password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// FindBinDir returns the folder with initdb and postgres: env, then the
// newest of /usr/lib/postgresql/<version>/bin.
func FindBinDir(env string) (string, error) {
	candidates := []string{env}
	if env == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		// Newest first: compare the versions as numbers (9.6 < 10 < 15).
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		candidates = dirs
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	if env != "" {
		return "", fmt.Errorf("%w: %s=%s has no initdb and postgres", ErrNoServer, BinDirEnv, env)
	}
	return "", ErrNoServer
}

// versionOf turns /usr/lib/postgresql/15/bin into 15 (9.6 into 9.6), for
// sorting; unknown shapes sort last.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// runAs returns the credential to run the server with: nil when this
// process is not root (it runs as ourselves), else the user name's.
func runAs(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if name == "" {
		name = os.Getenv(UserEnv)
	}
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pgtest: PostgreSQL does not run as root and user %q (%s) is unknown: %w", name, UserEnv, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user %q: %w", name, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("pgtest: user %q is root; PostgreSQL does not run as root", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Start creates a cluster in a new temporary folder and starts the server.
// A server that exits during its start (its free port taken in the
// meantime) gets one more try.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	bin, err := FindBinDir(firstOf(opts.BinDir, os.Getenv(BinDirEnv)))
	if err != nil {
		return nil, err
	}
	cred, err := runAs(opts.RunAs)
	if err != nil {
		return nil, err
	}
	removeStale(os.TempDir(), opts.Logger)
	s, err := startOnce(ctx, bin, cred, opts.Logger)
	if errors.Is(err, errExitedEarly) && ctx.Err() == nil {
		opts.Logger.Warn("PostgreSQL exited during its start; trying once more", "err", err)
		s, err = startOnce(ctx, bin, cred, opts.Logger)
	}
	return s, err
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

var errExitedEarly = errors.New("PostgreSQL exited before it was ready")

func startOnce(ctx context.Context, bin string, cred *syscall.Credential, log *slog.Logger) (_ *Server, err error) {
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	// Who made the folder: a later run removes it once this process is gone.
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{
		Host:     "127.0.0.1",
		Password: randomHex(16),
		Dir:      dir,
		LogPath:  filepath.Join(dir, "postgres.log"),
		Version:  filepath.Base(filepath.Dir(bin)),
	}
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		// The server's user owns its folder; nobody else may read it.
		for _, p := range []string{dir, pwFile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata="+data, "--username="+User, "--pwfile="+pwFile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.Env = serverEnv()
	if cred != nil {
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb in %s: %w\n%s", dir, err, out)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), serverArgs(data, s.Port)...)
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	// SIGINT is PostgreSQL's fast shutdown: clients are disconnected, not
	// waited for.
	s.exited, err = procgroup.StartWithDeathSignal(cmd, syscall.SIGINT)
	if err != nil {
		return nil, fmt.Errorf("pgtest: starting %s: %w", cmd.Path, err)
	}
	s.PID = cmd.Process.Pid
	log.Info("starting PostgreSQL", "version", s.Version, "port", s.Port, "dir", dir)
	if err := s.waitReady(ctx); err != nil {
		lastLines := logtail.Tail(s.LogPath, 20)
		_ = s.stopProcess(context.Background())
		return nil, fmt.Errorf("pgtest: PostgreSQL did not become ready (log %s): %w\n%s", s.LogPath, err, lastLines)
	}
	if err := s.exec(ctx, "postgres", "CREATE DATABASE "+Database); err != nil {
		_ = s.stopProcess(context.Background())
		return nil, err
	}
	log.Info("PostgreSQL ready", "port", s.Port)
	return s, nil
}

// serverArgs configure a throwaway server: TCP on loopback only, no Unix
// socket (its default folder belongs to the system's postgres user), no
// fsync (nothing here must survive a crash of the machine), and room for
// two Keycloak nodes, Resource Server replicas and parallel test packages.
func serverArgs(data string, port int) []string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=",
		"fsync=off",
		"full_page_writes=off",
		"max_connections=300",
		"shared_buffers=32MB",
		"log_min_messages=warning",
	}
	// The cluster name shows in the server's command line and process
	// titles: .ci/run finds a server its run left behind by it.
	settings = append(settings, "cluster_name="+ClusterName(os.Getenv("UMAWIDE_RUN_ID")))
	args := []string{"-D", data}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	return args
}

// ClusterName names a server of the run runID (UMAWIDE_RUN_ID, as the
// launcher marks its Keycloaks): umawide-<runID>, or umawide-test.
func ClusterName(runID string) string {
	if runID == "" {
		return "umawide-test"
	}
	return "umawide-" + runID
}

// serverEnv is a small environment for the server: the test run's own
// variables (passwords, URLs) are none of its business, and a C locale
// avoids depending on installed locales.
func serverEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
}

func (s *Server) waitReady(ctx context.Context) error {
	var last error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("%w (last: %v)", errExitedEarly, last)
		default:
		}
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-s.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// Stop ends the server (fast shutdown, then whatever is left of its process
// group) and removes its folder.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.stopProcess(ctx)
	if rmErr := os.RemoveAll(s.Dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("pgtest: %w", rmErr))
	}
	return err
}

func (s *Server) stopProcess(ctx context.Context) error {
	if s.PID <= 0 {
		return nil
	}
	_ = syscall.Kill(s.PID, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	// The backends end with the postmaster; nothing of the group survives this.
	return procgroup.Stop(ctx, s.PID, s.exited)
}

// removeStale removes server folders whose creating process is gone (a run
// that was SIGKILLed: its server ended with it, its folder stayed).
func removeStale(tmp string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // being created right now, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil || postmasterAlive(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			log.Info("removed the folder of an earlier PostgreSQL", "dir", dir)
		}
	}
}

// postmasterAlive says whether the server of a folder still runs
// (postmaster.pid's first line is its process id).
func postmasterAlive(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
