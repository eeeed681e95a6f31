package e2e

import (
	"testing"

	"github.com/umawide/umawide/internal/kctest"
)

func TestMain(m *testing.M) { kctest.Main(m) }
