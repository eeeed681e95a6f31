package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/admin"
	"github.com/umawide/umawide/internal/keycloak/token"
)

var adminHTTP = &http.Client{Timeout: 30 * time.Second}

// adminToken logs into the master realm's admin-cli with the admin
// credentials, for each call: the launcher's calls are few, and a token
// fetched per call survives the restarts of the Keycloak it serves.
type adminToken struct{ k *Keycloak }

func (a adminToken) Token(ctx context.Context) (string, error) { return a.k.AdminToken(ctx) }
func (adminToken) Invalidate()                                 {}

// AdminToken logs into the master realm's admin-cli with the admin credentials.
func (k *Keycloak) AdminToken(ctx context.Context) (string, error) {
	tok, err := token.Request(ctx, adminHTTP, token.Endpoint(k.IssuerURL("master")), "admin-cli", "", url.Values{
		"grant_type": {"password"},
		"client_id":  {"admin-cli"},
		"username":   {k.AdminUser},
		"password":   {k.AdminPassword},
	})
	if err != nil {
		return "", fmt.Errorf("launcher: admin login: %w", err)
	}
	return tok.AccessToken, nil
}

// AdminAPI is the admin REST API of this Keycloak as its admin.
func (k *Keycloak) AdminAPI() *admin.Client {
	return admin.New(admin.Config{KeycloakURL: k.BaseURL, Token: adminToken{k}, HTTP: keycloak.HTTP{Client: adminHTTP, MaxResponse: 8 << 20}})
}

// Admin calls the admin REST API (path below /admin/realms, e.g. "/bar/users")
// with a fresh admin token; body (if not nil) is sent as JSON and a JSON answer
// is decoded into out (if not nil). A refusal is a *keycloak.Error.
func (k *Keycloak) Admin(ctx context.Context, method, path string, body, out any) error {
	return k.AdminAPI().Do(ctx, method, path, body, out)
}

// ImportRealm creates a realm from a realm representation (JSON, placeholders
// already expanded: the admin API does not expand them).
func (k *Keycloak) ImportRealm(ctx context.Context, realmJSON []byte) error {
	return k.AdminAPI().ImportRealm(ctx, realmJSON)
}

// DeleteRealm removes a realm.
func (k *Keycloak) DeleteRealm(ctx context.Context, realm string) error {
	return k.AdminAPI().DeleteRealm(ctx, realm)
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}`)

// ExpandPlaceholders resolves ${VAR} and ${VAR:default} the way Keycloak does
// when it imports a realm file at start: from vars, then the environment, then
// the default. An unresolved placeholder without default is left as it is.
func ExpandPlaceholders(data []byte, vars map[string]string) []byte {
	return placeholder.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := placeholder.FindSubmatch(m)
		name := string(sub[1])
		if v, ok := vars[name]; ok {
			return []byte(jsonEscape(v))
		}
		if v, ok := os.LookupEnv(name); ok {
			return []byte(jsonEscape(v))
		}
		if sub[2] != nil || bytes.Contains(m, []byte(":")) {
			return sub[2]
		}
		return m
	})
}

// jsonEscape makes v safe inside a JSON string literal.
func jsonEscape(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}
