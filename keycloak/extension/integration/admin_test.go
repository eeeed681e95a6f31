package integration

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/keycloak/launcher"
)

type policyRep struct {
	ID               string            `json:"id,omitempty"`
	Name             string            `json:"name"`
	Description      string            `json:"description,omitempty"`
	Type             string            `json:"type,omitempty"`
	Logic            string            `json:"logic,omitempty"`
	DecisionStrategy string            `json:"decisionStrategy,omitempty"`
	Config           map[string]string `json:"config,omitempty"`
	Scopes           []string          `json:"scopes,omitempty"`
	Policies         []string          `json:"policies,omitempty"`
}

// authzPath is the admin API path of a realm's resource-server authorization settings.
func authzPath(t *testing.T, kc *launcher.Keycloak, realm string) string {
	t.Helper()
	var clients []struct {
		ID string `json:"id"`
	}
	if err := kc.Admin(testCtx(t), http.MethodGet, "/"+realm+"/clients?clientId=resource-server", nil, &clients); err != nil || len(clients) != 1 {
		t.Fatalf("resource-server of %s: %v %v", realm, clients, err)
	}
	return "/" + realm + "/clients/" + clients[0].ID + "/authz/resource-server"
}

func findPolicy(t *testing.T, kc *launcher.Keycloak, authz, name string) policyRep {
	t.Helper()
	var p policyRep
	if err := kc.Admin(testCtx(t), http.MethodGet, authz+"/policy/search?name="+url.QueryEscape(name), nil, &p); err != nil || p.ID == "" {
		t.Fatalf("policy %q: %+v %v", name, p, err)
	}
	return p
}

func associated(t *testing.T, kc *launcher.Keycloak, authz, permissionID string) []string {
	t.Helper()
	var ps []policyRep
	if err := kc.Admin(testCtx(t), http.MethodGet, authz+"/policy/"+permissionID+"/associatedPolicies", nil, &ps); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Type+":"+p.Name)
	}
	return names
}

// TestShippedBarRealm checks realm bar as the launcher imported it: the create
// permission applies the claims-token policy, whose placeholders are resolved.
func TestShippedBarRealm(t *testing.T) {
	kc := kctest.Keycloak(t)
	authz := authzPath(t, kc, "bar")
	pol := findPolicy(t, kc, authz, claimsTokenPolicy)
	if pol.Type != "claims-token" {
		t.Fatalf("policy %q has type %q", claimsTokenPolicy, pol.Type)
	}
	var providers []struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Domains []string `json:"domains"`
	}
	if err := json.Unmarshal([]byte(pol.Config["claimsProviders"]), &providers); err != nil {
		t.Fatalf("claimsProviders %q: %v", pol.Config["claimsProviders"], err)
	}
	if len(providers) != 1 || !slices.Equal(providers[0].Domains, []string{"foo.example"}) ||
		providers[0].Issuer == "" || strings.Contains(providers[0].Issuer+providers[0].JWKSURI, "${") {
		t.Fatalf("claimsProviders = %+v, want the project's Claims Provider for foo.example, placeholders resolved", providers)
	}
	if v := pol.Config["allowInsecureUrls"]; v != "true" && v != "false" {
		t.Fatalf("allowInsecureUrls = %q", v)
	}
	perm := findPolicy(t, kc, authz, "create in Incoming")
	if got := associated(t, kc, authz, perm.ID); !slices.Equal(got, []string{"claims-token:" + claimsTokenPolicy}) {
		t.Fatalf("create in Incoming applies %v, want only the claims-token policy", got)
	}
	// Issue 12: no user-managed access in realm bar, and no refresh tokens for
	// rqp-client's tokens.
	var realm struct {
		UserManagedAccessAllowed *bool `json:"userManagedAccessAllowed"`
	}
	if err := kc.Admin(testCtx(t), http.MethodGet, "/bar", nil, &realm); err != nil {
		t.Fatal(err)
	}
	if realm.UserManagedAccessAllowed == nil || *realm.UserManagedAccessAllowed {
		t.Fatalf("realm bar userManagedAccessAllowed = %v, want false", realm.UserManagedAccessAllowed)
	}
	var clients []struct {
		Attributes map[string]string `json:"attributes"`
	}
	if err := kc.Admin(testCtx(t), http.MethodGet, "/bar/clients?clientId=rqp-client", nil, &clients); err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].Attributes["use.refresh.tokens"] != "false" {
		t.Fatalf("rqp-client attributes = %v, want use.refresh.tokens false", clients)
	}
	// The stock baseline stays defined.
	if stock := findPolicy(t, kc, authz, stockPolicy); stock.Type != "client" {
		t.Fatalf("%q has type %q", stockPolicy, stock.Type)
	}
}

// TestAddPolicyThroughAdminAPI follows the README's procedure on a realm whose
// permission applies the stock client policy: create a claims-token policy
// through the admin REST API (bad configs refused with 400), apply it to the
// permission, and see the grant go from "any pushed claims" to "verified only".
func TestAddPolicyThroughAdminAPI(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := barCopy(t, kc, cp, true)
	ctx := testCtx(t)
	authz := authzPath(t, kc, f.name)

	// With the stock policy anything pushed is accepted: no signature at all here.
	ticket := f.ticket(t)
	forged := part(map[string]any{"alg": "none"}) + "." + part(map[string]any{"email": "mallory@foo.example"}) + "."
	if _, err := f.grant(ctx, ticket, pushed(t, forged, nil)); err != nil {
		t.Fatalf("stock policy refused: %v", err)
	}

	providers := `[{"issuer":"` + cp.issuer + `","jwks_uri":"` + cp.jwksURI() + `","domains":["foo.example"]}]`
	bad := []map[string]string{
		{"claimsProviders": providers, "allowInsecureUrls": "false"}, // http URLs without the development switch
		{"claimsProviders": providers, "allowInsecureUrls": "true", "allowedAlgorithms": `["HS256"]`},
		{"claimsProviders": `[{"issuer":"https://cp.example"}]`},
		{"claimsProviders": providers, "allowInsecureUrls": "true", "maxTokenLifetimeSeconds": "forever"},
		{"claimsProvider": providers},
	}
	for _, cfg := range bad {
		err := kc.Admin(ctx, http.MethodPost, authz+"/policy/claims-token",
			policyRep{Name: "bad " + kctest.RandomHex(3), Logic: "POSITIVE", DecisionStrategy: "UNANIMOUS", Config: cfg}, nil)
		var he *keycloak.Error
		if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
			t.Errorf("config %v: %v, want 400", cfg, err)
		}
	}

	var created policyRep
	cfg := map[string]string{"claimsProviders": providers, "allowInsecureUrls": "true", "maxTokenLifetimeSeconds": "300"}
	if err := kc.Admin(ctx, http.MethodPost, authz+"/policy/claims-token",
		policyRep{Name: "verified claims", Description: "added through the admin API", Logic: "POSITIVE",
			DecisionStrategy: "UNANIMOUS", Config: cfg}, &created); err != nil {
		t.Fatalf("create claims-token policy: %v", err)
	}
	var read policyRep
	if err := kc.Admin(ctx, http.MethodGet, authz+"/policy/claims-token/"+created.ID, nil, &read); err != nil {
		t.Fatal(err)
	}
	if read.Type != "claims-token" || read.Config["claimsProviders"] != providers || read.Config["maxTokenLifetimeSeconds"] != "300" {
		t.Fatalf("read back %+v", read)
	}
	// Update: a bad change is refused and leaves the policy as it was; a good one is stored.
	read.Config["allowedAlgorithms"] = `["none"]`
	var he *keycloak.Error
	if err := kc.Admin(ctx, http.MethodPut, authz+"/policy/claims-token/"+created.ID, read, nil); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Fatalf("update with alg none: %v, want 400", err)
	}
	read.Config["allowedAlgorithms"] = `["ES256","RS256"]`
	if err := kc.Admin(ctx, http.MethodPut, authz+"/policy/claims-token/"+created.ID, read, nil); err != nil {
		t.Fatalf("update: %v", err)
	}
	var reread policyRep
	if err := kc.Admin(ctx, http.MethodGet, authz+"/policy/claims-token/"+created.ID, nil, &reread); err != nil {
		t.Fatal(err)
	}
	if reread.Config["allowedAlgorithms"] != `["ES256","RS256"]` {
		t.Fatalf("allowedAlgorithms after update = %q", reread.Config["allowedAlgorithms"])
	}

	// Apply it to the scope permission instead of the stock policy.
	perm := findPolicy(t, kc, authz, "create in Incoming")
	if err := kc.Admin(ctx, http.MethodPut, authz+"/permission/scope/"+perm.ID, policyRep{
		ID: perm.ID, Name: perm.Name, Description: perm.Description, Type: "scope", Logic: "POSITIVE",
		DecisionStrategy: "UNANIMOUS", Scopes: []string{"create"}, Policies: []string{"verified claims"},
	}, nil); err != nil {
		t.Fatalf("apply the policy: %v", err)
	}
	if got := associated(t, kc, authz, perm.ID); !slices.Equal(got, []string{"claims-token:verified claims"}) {
		t.Fatalf("permission applies %v", got)
	}

	f.expectDenied(t, f.ticket(t), pushed(t, forged, nil), "alg_not_allowed")
	ticket = f.ticket(t)
	rpt, err := f.grant(ctx, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil))
	if err != nil {
		t.Fatalf("valid claims token after the change: %v", err)
	}
	if p := rptPermissions(t, rpt.AccessToken); len(p) != 1 || !slices.Equal(p[0].Claims["sender_email"], []string{"alice@foo.example"}) {
		t.Fatalf("RPT permissions %v", p)
	}
}
