// Package resilience holds the fault and load tests of the whole stack: a
// Keycloak of its own (it is restarted), the Claims Provider and the
// Resource Server as processes, Alice's pushes through the rqp library and
// CLI. Faults: Keycloak restarted in the middle of a push, the Claims
// Provider down and back, the Resource Server killed right after a 201 and
// in the middle of pushes, a signing-key rotation at the Claims Provider.
// Load: 500 pushes at concurrency 16, every one stored once, no error in any
// log.
//
//	go test ./e2e/resilience      # starts its own Keycloak, also under make test
package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/keycloak/launcher"
)

// The package's Keycloak: realm foo and bar from the files, bar's
// claims-token policy trusting the Claims Provider at cpAddr (import
// placeholders), so that both realms come back as they were after a restart
// (dev-mem: what was created at run time is gone).
var (
	kc      *launcher.Keycloak
	kcOpts  launcher.Options
	kcDir   string
	kcStart int
	cpAddr  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if kcDir, err = os.MkdirTemp("", "umawide-resilience-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(kcDir)
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = launcher.FreePort(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	cpAddr = "127.0.0.1:" + strconv.Itoa(ports[2])
	kcOpts = launcher.Options{
		Mode:     launcher.ModeProcess,
		HTTPPort: ports[0], ManagementPort: ports[1],
		Env: map[string]string{
			"UMAWIDE_CLAIMS_PROVIDER_ISSUER":   "http://" + cpAddr,
			"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI": "http://" + cpAddr + "/jwks",
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if err := startKeycloak(); err != nil {
		fmt.Fprintf(os.Stderr, "resilience: no Keycloak: %v\n", err)
		return 1
	}
	code := m.Run()
	if err := kc.Stop(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "resilience: stopping Keycloak: %v\n", err)
	}
	return code
}

// startKeycloak starts (again) the package's Keycloak on its ports, with a
// log file per start.
func startKeycloak() error {
	kcStart++
	o := kcOpts
	o.LogPath = filepath.Join(kcDir, fmt.Sprintf("keycloak-%d.log", kcStart))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	k, err := launcher.Start(ctx, o)
	if err != nil {
		return err
	}
	kc = k
	return nil
}

// newWorld is the stack on the package's Keycloak: the Claims Provider on
// cpAddr for realm foo and the Resource Server for realm bar (as imported
// from the files).
func newWorld(t *testing.T) *e2etest.World {
	return e2etest.New(t, e2etest.Options{KC: kc, Realm: "bar", CPAddr: cpAddr, NoOutsider: true})
}
