package e2e

import (
	"testing"

	"github.com/umawide/umawide/internal/e2etest"
)

// world is one run's ecosystem (internal/e2etest): Keycloak (shared), a
// private copy of realm bar trusting this run's Claims Provider, and the two
// services as processes.
type world struct{ *e2etest.World }

// newWorld builds the binaries, imports the realm copy, adds the outsider
// user and starts the Claims Provider and the Resource Server; everything is
// undone when t ends.
func newWorld(t *testing.T) *world { return &world{e2etest.New(t, e2etest.Options{})} }
