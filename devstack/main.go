// Command devstack runs the local development stack for the Makefile:
//
//	devstack up       start Keycloak (and the services, as they exist) in the background
//	devstack down     stop everything `up` started
//	devstack status   say what runs where
//	devstack exec -- CMD...
//	                  start a private Keycloak on free ports and a private
//	                  PostgreSQL server (internal/pgtest), run CMD with
//	                  KEYCLOAK_URL and UMAWIDE_TEST_DATABASE_URL set to them,
//	                  stop both, exit with CMD's status (`make test`: one
//	                  Keycloak and one PostgreSQL for every test package)
//
// State and logs live in the run folder (-run-dir, UMAWIDE_RUN_DIR, default
// <repo>/.run): logs/*.log, stack.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/umawide/umawide/internal/pgtest"
	"github.com/umawide/umawide/keycloak/launcher"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	fs := flag.NewFlagSet("devstack", flag.ExitOnError)
	runDir := fs.String("run-dir", os.Getenv("UMAWIDE_RUN_DIR"), "folder for state and logs (env UMAWIDE_RUN_DIR; default <repo>/.run)")
	kcVersion := fs.String("keycloak-version", os.Getenv("UMAWIDE_KEYCLOAK_VERSION"), "Keycloak version that exec starts (env UMAWIDE_KEYCLOAK_VERSION; default the launcher's pinned "+launcher.Version+"): make test runs the extension's integration tests on the newest supported version too")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: devstack [flags] up|down|status|exec -- CMD...\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	if *runDir == "" {
		root, err := launcher.RepoRoot()
		if err != nil {
			fail(err)
		}
		*runDir = filepath.Join(root, ".run")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	var err error
	switch fs.Arg(0) {
	case "up":
		err = up(ctx, *runDir, fs.Args()[1:])
	case "down":
		err = down(*runDir)
	case "status":
		err = status(*runDir)
	case "exec":
		args := fs.Args()[1:]
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		var code int
		code, err = execWith(ctx, *kcVersion, args)
		if err == nil {
			os.Exit(code)
		}
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "devstack:", err)
	os.Exit(1)
}

// execWith runs a command against a private Keycloak that lives exactly as
// long as the command.
func execWith(ctx context.Context, kcVersion string, args []string) (int, error) {
	if len(args) == 0 {
		return 0, errors.New("exec: no command")
	}
	// PostgreSQL starts in a few seconds, Keycloak in tens: side by side.
	type pgResult struct {
		env []string
		pg  *pgtest.Server
		err error
	}
	pgDone := make(chan pgResult, 1)
	go func() {
		env, pg, err := startPostgres(ctx)
		pgDone <- pgResult{env, pg, err}
	}()
	// The tests' Keycloak: a realm may move the quota clock (issue 15).
	kc, kcErr := launcher.Start(ctx, launcher.Options{TestClock: true, Version: kcVersion})
	pgr := <-pgDone
	defer func() { _ = pgr.pg.Stop(context.Background()) }()
	if kcErr != nil {
		return 0, kcErr
	}
	defer func() { _ = kc.Stop(context.Background()) }()
	if pgr.err != nil {
		return 0, pgr.err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), kcEnv(kc)...), pgr.env...)
	// The child shares our process group: Ctrl-C reaches it directly; we only
	// have to outlive it and then stop Keycloak. A SIGTERM to us is passed on.
	signal.Ignore(os.Interrupt)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// startPostgres starts a private PostgreSQL server for the tests and returns
// the environment that points them to it. A server given in the environment
// is used as it is; UMAWIDE_TEST_POSTGRES=off starts none; missing server
// binaries are not an error (the tests that need them skip and say why).
func startPostgres(ctx context.Context) ([]string, *pgtest.Server, error) {
	if os.Getenv(pgtest.DatabaseEnv) != "" {
		slog.Info("PostgreSQL from the environment", "env", pgtest.DatabaseEnv)
		return nil, nil, nil
	}
	if os.Getenv("UMAWIDE_TEST_POSTGRES") == "off" {
		slog.Warn("no PostgreSQL started (UMAWIDE_TEST_POSTGRES=off): its tests will skip")
		return nil, nil, nil
	}
	pg, err := pgtest.Start(ctx, pgtest.Options{})
	if errors.Is(err, pgtest.ErrNoServer) {
		slog.Warn("no PostgreSQL started: its tests will skip", "err", err)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("devstack: private PostgreSQL (UMAWIDE_TEST_POSTGRES=off to run without it): %w", err)
	}
	return []string{pgtest.DatabaseEnv + "=" + pg.URL(pgtest.Database)}, pg, nil
}

// kcEnv tells tests and tools where Keycloak is (launcher's external mode).
func kcEnv(kc *launcher.Keycloak) []string {
	env := []string{
		"KEYCLOAK_URL=" + kc.BaseURL,
		"KEYCLOAK_MANAGEMENT_URL=" + kc.ManagementURL,
		"KEYCLOAK_ADMIN_USER=" + kc.AdminUser,
		"KEYCLOAK_ADMIN_PASSWORD=" + kc.AdminPassword,
		// Tests that assert on Keycloak's log lines (the policy's deny reasons) read it.
		"KEYCLOAK_LOG=" + kc.LogPath,
		"KEYCLOAK_VERSION=" + kc.Version,
	}
	if kc.TestClock {
		env = append(env, "KEYCLOAK_TEST_CLOCK=enabled")
	}
	return env
}
