package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StockPolicyName is the stock client policy of bar-realm.json that admits
// rqp-client: the baseline a realm copy can apply instead of the claims-token
// policy.
const StockPolicyName = "rqp-client only"

// BarCopy describes a copy of realm bar (keycloak/realms/bar-realm.json)
// under another name, for tests and benchmarks that must not touch realm bar
// itself and must not meet each other on a shared Keycloak.
type BarCopy struct {
	// Name of the copy (required).
	Name string
	// Stock makes the scope permission on "create" apply the stock client
	// policy StockPolicyName instead of the claims-token policy.
	Stock bool
	// ClaimsProviderURL is the Claims Provider the claims-token policy trusts
	// (issuer; JWKS at ClaimsProviderURL + "/jwks"), over plain http allowed;
	// empty keeps the realm file's placeholders and their defaults.
	ClaimsProviderURL string
}

// BarCopyJSON derives the realm representation of c from bar-realm.json
// (placeholders expanded as Keycloak would at import).
func BarCopyJSON(c BarCopy) ([]byte, error) {
	if c.Name == "" {
		return nil, errors.New("launcher: a realm copy needs a name")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(RealmDir(root), "bar-realm.json"))
	if err != nil {
		return nil, err
	}
	var vars map[string]string
	if c.ClaimsProviderURL != "" {
		cp := strings.TrimRight(c.ClaimsProviderURL, "/")
		vars = map[string]string{
			"UMAWIDE_CLAIMS_PROVIDER_ISSUER":           cp,
			"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI":         cp + "/jwks",
			"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
		}
	}
	var rep map[string]any
	if err := json.Unmarshal(ExpandPlaceholders(raw, vars), &rep); err != nil {
		return nil, fmt.Errorf("launcher: bar-realm.json: %w", err)
	}
	rep["realm"] = c.Name
	delete(rep, "id")
	perm := createPermission(rep)
	if perm == nil {
		return nil, errors.New("launcher: bar-realm.json has no scope permission on create")
	}
	if c.Stock {
		conf, _ := perm["config"].(map[string]any)
		conf["applyPolicies"] = `["` + StockPolicyName + `"]`
	}
	return json.Marshal(rep)
}

// createPermission finds the scope permission on ["create"] of the
// resource-server client's authorization settings.
func createPermission(rep map[string]any) map[string]any {
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
			if pol["type"] != "scope" {
				continue
			}
			if conf, ok := pol["config"].(map[string]any); ok && conf["scopes"] == `["create"]` {
				return pol
			}
		}
	}
	return nil
}

// ImportBarCopy imports the copy c; delete it with DeleteRealm(c.Name).
func (k *Keycloak) ImportBarCopy(ctx context.Context, c BarCopy) error {
	data, err := BarCopyJSON(c)
	if err != nil {
		return err
	}
	return k.ImportRealm(ctx, data)
}
