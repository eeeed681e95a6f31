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

// ClaimsTokenPolicyName is the claims-token policy of bar-realm.json, which
// its scope permission on "create" applies.
const ClaimsTokenPolicyName = "claims token"

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
	// Mutate, if set, changes the representation last (more users,
	// clients, another policy configuration).
	Mutate func(rep map[string]any)
}

// BarCopyJSON derives the realm representation of c from bar-realm.json
// (placeholders expanded as Keycloak would at import). It checks rather than
// assumes what a copy relies on: the permission on create applies the
// claims-token policy (before Stock replaces it), and that policy trusts
// ClaimsProviderURL when set.
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
	// User ids are unique across realms: the file's fixed ones (bob's, so
	// that a dev-mem Keycloak restarted re-imports the same Bob, whose
	// Incoming is keyed by his id) go, and each copy gets fresh ones.
	users, _ := rep["users"].([]any)
	for _, u := range users {
		if m, ok := u.(map[string]any); ok {
			delete(m, "id")
		}
	}
	perm := createPermission(rep)
	if perm == nil {
		return nil, errors.New("launcher: bar-realm.json has no scope permission on create")
	}
	conf, _ := perm["config"].(map[string]any)
	if applied := conf["applyPolicies"]; applied != `["`+ClaimsTokenPolicyName+`"]` {
		return nil, fmt.Errorf("launcher: bar-realm.json: the permission on create applies %v, want the claims-token policy %q", applied, ClaimsTokenPolicyName)
	}
	if c.ClaimsProviderURL != "" {
		jwks := strings.TrimRight(c.ClaimsProviderURL, "/") + "/jwks"
		pconf, _ := Policy(rep, "claims-token")["config"].(map[string]any)
		if trusted, _ := pconf["claimsProviders"].(string); !strings.Contains(trusted, jwks) {
			return nil, fmt.Errorf("launcher: bar-realm.json: the claims-token policy does not trust %s: %v", jwks, pconf)
		}
	}
	if c.Stock {
		conf["applyPolicies"] = `["` + StockPolicyName + `"]`
	}
	if c.Mutate != nil {
		c.Mutate(rep)
	}
	return json.Marshal(rep)
}

// createPermission finds the scope permission on ["create"] of the
// resource-server client's authorization settings.
func createPermission(rep map[string]any) map[string]any {
	for _, p := range policies(rep) {
		if pol, _ := p.(map[string]any); pol["type"] == "scope" {
			if conf, ok := pol["config"].(map[string]any); ok && conf["scopes"] == `["create"]` {
				return pol
			}
		}
	}
	return nil
}

// Policy is the resource-server client's first authorization policy of type
// typ in a realm representation (nil if none).
func Policy(rep map[string]any, typ string) map[string]any {
	for _, p := range policies(rep) {
		if pol, _ := p.(map[string]any); pol["type"] == typ {
			return pol
		}
	}
	return nil
}

func policies(rep map[string]any) []any {
	authz, _ := Client(rep, "resource-server")["authorizationSettings"].(map[string]any)
	list, _ := authz["policies"].([]any)
	return list
}

// Client is the realm representation's client clientID (nil if none).
func Client(rep map[string]any, clientID string) map[string]any {
	clients, _ := rep["clients"].([]any)
	for _, c := range clients {
		if client, _ := c.(map[string]any); client["clientId"] == clientID {
			return client
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
