package integration

import (
	"testing"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/keycloak/launcher"
)

// TestMain runs one Keycloak for the package. When this package starts its own
// (process mode), the policy's debug lines are on: the benchmark reads the
// policy's own time per evaluation from them. A shared server (KEYCLOAK_URL)
// is used as it is.
func TestMain(m *testing.M) {
	kctest.Main(m, launcher.Options{Env: map[string]string{
		"KC_LOG_LEVEL": "INFO,dev.umawide.keycloak.claims:debug",
	}})
}
