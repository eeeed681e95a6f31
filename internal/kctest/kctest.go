// Package kctest runs Go tests against a real Keycloak: one per package run
// (TestMain), obtained through keycloak/launcher, stopped on every exit path.
//
//	func TestMain(m *testing.M) { kctest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		kc := kctest.Keycloak(t)
//		...
//	}
//
// When `make test` runs, one Keycloak serves every package (KEYCLOAK_URL is set
// by devstack exec); a package run alone starts its own.
//
// A suite of one part that needs a real Keycloak is a package named
// integration next to that part (claims-provider/integration,
// resource-server/integration, keycloak/extension/integration and
// keycloak/integration for the realm files); the suites across parts are
// under e2e/ and deploy/.
package kctest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/umawide/umawide/keycloak/launcher"
)

var shared *launcher.Keycloak

// Main starts Keycloak, runs the package's tests and stops Keycloak, also when
// the run is interrupted. It does not return.
func Main(m *testing.M, opts ...launcher.Options) {
	os.Exit(run(m, opts...))
}

func run(m *testing.M, opts ...launcher.Options) int {
	var o launcher.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// Tests may move the quota clock of their own realm copy (issue 15).
	o.TestClock = true
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	kc, err := launcher.Start(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kctest: no Keycloak for this package: %v\n", err)
		return 1
	}
	shared = kc
	// An interrupt ends the run: stop Keycloak first. (A crash or a kill is
	// covered by the launcher's parent-death signal.)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			_ = kc.Stop(context.Background())
			os.Exit(130)
		}
	}()
	code := m.Run()
	signal.Stop(sig)
	close(sig)
	if err := kc.Stop(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "kctest: stopping Keycloak: %v\n", err)
	}
	return code
}

// Keycloak is the package's server; it fails the test outside kctest.Main.
func Keycloak(t testing.TB) *launcher.Keycloak {
	t.Helper()
	if shared == nil {
		t.Fatal("kctest: no Keycloak: call kctest.Main(m) from TestMain")
	}
	return shared
}
