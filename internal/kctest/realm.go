package kctest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umawide/umawide/keycloak/launcher"
)

// StockPolicyName is the stock client policy of bar-realm.json that admits
// rqp-client.
const StockPolicyName = "rqp-client only"

// ImportStockBar imports realm bar's file under a fresh name ("bar-stock-…"),
// with its permission on scope create applying the stock client policy (not
// the claims-token policy), and deletes the realm when the test ends. Tests
// that need realm bar's clients and users without the extension's policy use
// it; every test gets its own copy, so tests sharing one Keycloak do not meet.
func ImportStockBar(t testing.TB, kc *launcher.Keycloak) string {
	t.Helper()
	name, err := importStockBar(kc)
	if err != nil {
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

func importStockBar(kc *launcher.Keycloak) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := launcher.RepoRoot()
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(launcher.RealmDir(root), "bar-realm.json"))
	if err != nil {
		return "", err
	}
	var rep map[string]any
	if err := json.Unmarshal(launcher.ExpandPlaceholders(raw, nil), &rep); err != nil {
		return "", err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bar-stock-" + hex.EncodeToString(b)
	rep["realm"] = name
	delete(rep, "id")
	found := false
	clients, _ := rep["clients"].([]any)
	for _, c := range clients {
		client, _ := c.(map[string]any)
		if client["clientId"] != "resource-server" {
			continue
		}
		authz, _ := client["authorizationSettings"].(map[string]any)
		policies, _ := authz["policies"].([]any)
		for _, p := range policies {
			pol, _ := p.(map[string]any)
			if pol["type"] == "scope" {
				conf, _ := pol["config"].(map[string]any)
				if conf["scopes"] == `["create"]` {
					conf["applyPolicies"] = `["` + StockPolicyName + `"]`
					found = true
				}
			}
		}
	}
	if !found {
		return "", errors.New("kctest: bar-realm.json has no scope permission on create")
	}
	data, err := json.Marshal(rep)
	if err != nil {
		return "", err
	}
	if err := kc.ImportRealm(ctx, data); err != nil {
		return "", err
	}
	return name, nil
}
