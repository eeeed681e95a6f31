package kctest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/umawide/umawide/keycloak/launcher"
)

// StockPolicyName is the stock client policy of bar-realm.json that admits
// rqp-client.
const StockPolicyName = launcher.StockPolicyName

// ImportRealm imports a realm representation (a map or JSON bytes) and
// deletes the realm when t ends; it returns the realm's name.
func ImportRealm(t testing.TB, kc *launcher.Keycloak, rep any) string {
	t.Helper()
	data, ok := rep.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(rep); err != nil {
			t.Fatal(err)
		}
	}
	var named struct {
		Realm string `json:"realm"`
	}
	if err := json.Unmarshal(data, &named); err != nil || named.Realm == "" {
		t.Fatalf("kctest: a realm representation without a name: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kc.ImportRealm(ctx, data); err != nil {
		t.Fatalf("import realm %s: %v", named.Realm, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kc.DeleteRealm(ctx, named.Realm); err != nil {
			t.Errorf("delete realm %s: %v", named.Realm, err)
		}
	})
	return named.Realm
}

// ImportBarCopy imports realm bar's file under c.Name as launcher.BarCopyJSON
// derives it (benchmarks use that too) and deletes the realm when t ends:
// tests sharing one Keycloak each get their own copy, so they do not meet.
func ImportBarCopy(t testing.TB, kc *launcher.Keycloak, c launcher.BarCopy) string {
	t.Helper()
	data, err := launcher.BarCopyJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	return ImportRealm(t, kc, data)
}

// ImportStockBar imports realm bar's file under a fresh name ("bar-stock-…"),
// with its permission on scope create applying the stock client policy (not
// the claims-token policy). Tests that need realm bar's clients and users
// without the extension's policy use it.
func ImportStockBar(t testing.TB, kc *launcher.Keycloak) string {
	t.Helper()
	return ImportBarCopy(t, kc, launcher.BarCopy{Name: "bar-stock-" + RandomHex(4), Stock: true})
}
