package integration

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/keycloak/launcher"
)

func TestMain(m *testing.M) { kctest.Main(m) }

// TestRealms runs the suite on this package's Keycloak (process or KEYCLOAK_URL).
func TestRealms(t *testing.T) { runRealmSuite(t, kctest.Keycloak(t)) }

// TestRealmsInContainer runs the same suite on the testcontainers path.
func TestRealmsInContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: no container")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc, err := launcher.Start(ctx, launcher.Options{Mode: launcher.ModeDocker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.Stop(context.Background()) })
	runRealmSuite(t, kc)
}
