package kctest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/umawide/umawide/keycloak/launcher"
)

// StockPolicyName is the stock client policy of bar-realm.json that admits
// rqp-client.
const StockPolicyName = launcher.StockPolicyName

// ImportStockBar imports realm bar's file under a fresh name ("bar-stock-…"),
// with its permission on scope create applying the stock client policy (not
// the claims-token policy), and deletes the realm when the test ends. Tests
// that need realm bar's clients and users without the extension's policy use
// it; every test gets its own copy, so tests sharing one Keycloak do not meet.
// The derivation is launcher.BarCopyJSON's (benchmarks use it too).
func ImportStockBar(t testing.TB, kc *launcher.Keycloak) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bar-stock-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kc.ImportBarCopy(ctx, launcher.BarCopy{Name: name, Stock: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kc.DeleteRealm(ctx, name); err != nil {
			t.Errorf("delete realm %s: %v", name, err)
		}
	})
	return name
}
