// Package cluster tests the claims-token policy's replay protection across
// the nodes of one Keycloak cluster, as compose.scale.yaml runs it (two
// nodes, one PostgreSQL database, Infinispan over jdbc-ping): a claims
// token's jti accepted at one node is refused at the other, and so is a
// ticket that got an RPT at the other node.
//
// Nobody starts a cluster for `make test` (two more Keycloaks on the CI
// machine), so the test runs only when it is given one:
//
//	UMAWIDE_TEST_KEYCLOAK_NODES=http://127.0.0.1:18080,http://127.0.0.1:18180 go test ./deploy/cluster
//
// with the nodes' admin in KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD
// (default admin/admin) and the umawide extension loaded. docs/DEPLOYMENT.md
// says how it was run.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testcp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// NodesEnv lists the base URLs of the nodes of one Keycloak cluster.
const NodesEnv = "UMAWIDE_TEST_KEYCLOAK_NODES"

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type node struct {
	kc     *launcher.Keycloak
	realm  string
	issuer string // what this node puts into iss (KC_HOSTNAME)
	pat    string
}

func (n *node) url(path string) string { return n.kc.BaseURL + "/realms/" + n.realm + path }

func (n *node) postJSON(t *testing.T, path string, body, out any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, n.url(path), strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+n.pat)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func TestReplayRefusedAcrossNodes(t *testing.T) {
	raw := os.Getenv(NodesEnv)
	if raw == "" {
		t.Skipf("claims-token replay across Keycloak nodes NOT tested: set %s to the base URLs of two nodes of one cluster", NodesEnv)
	}
	var nodes []*node
	for _, u := range strings.Split(raw, ",") {
		nodes = append(nodes, &node{kc: &launcher.Keycloak{
			BaseURL: strings.TrimRight(strings.TrimSpace(u), "/"), Mode: launcher.ModeExternal,
			AdminUser: env("KEYCLOAK_ADMIN_USER", "admin"), AdminPassword: env("KEYCLOAK_ADMIN_PASSWORD", "admin"),
		}})
	}
	if len(nodes) < 2 {
		t.Fatalf("%s names %d node(s), want two", NodesEnv, len(nodes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A copy of realm bar trusting this test's Claims Provider, imported
	// through node 0 (the admin REST API through the node's own address).
	cp := testcp.New(t)
	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(launcher.RealmDir(root), "bar-realm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(launcher.ExpandPlaceholders(file, map[string]string{
		"UMAWIDE_CLAIMS_PROVIDER_ISSUER":           cp.Issuer,
		"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI":         cp.JWKSURI(),
		"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
	}), &rep); err != nil {
		t.Fatal(err)
	}
	realm := "bar-cluster-" + kctest.RandomHex(4)
	rep["realm"] = realm
	delete(rep, "id")
	data, _ := json.Marshal(rep)
	if err := nodes[0].kc.ImportRealm(ctx, data); err != nil {
		t.Fatalf("import through node 0: %v", err)
	}
	t.Cleanup(func() {
		if err := nodes[0].kc.DeleteRealm(context.Background(), realm); err != nil {
			t.Errorf("delete realm %s: %v", realm, err)
		}
	})
	for i, n := range nodes {
		n.realm = realm
		tok, err := kctest.ClientCredentials(ctx, n.url(""), "resource-server", "resource-server-secret", "")
		if err != nil {
			t.Fatalf("node %d: PAT: %v", i, err)
		}
		n.pat = tok.AccessToken
		claims, _ := kctest.Claims(tok.AccessToken)
		n.issuer, _ = claims["iss"].(string)
	}
	if nodes[0].issuer != nodes[1].issuer {
		t.Fatalf("the nodes issue as %s and %s: one cluster has one issuer (KC_HOSTNAME)", nodes[0].issuer, nodes[1].issuer)
	}
	var resource struct {
		ID string `json:"_id"`
	}
	nodes[0].postJSON(t, "/authz/protection/resource_set", map[string]any{
		"name": uma.IncomingResourceName("bob"), "type": uma.ResourceTypeIncoming, "owner": "bob",
		"ownerManagedAccess": true, "resource_scopes": []string{uma.ScopeCreate}, "uris": []string{uma.IncomingPath("bob")},
	}, &resource)

	ticket := func(n *node) string {
		var tk struct {
			Ticket string `json:"ticket"`
		}
		n.postJSON(t, "/authz/protection/permission",
			[]map[string]any{{"resource_id": resource.ID, "resource_scopes": []string{uma.ScopeCreate}}}, &tk)
		return tk.Ticket
	}
	claimsToken := func(ticket, jti string) string {
		now := time.Now().Unix()
		return cp.SignES256(testcp.Header("ES256", testcp.ECKID), map[string]any{
			"iss": cp.Issuer, "sub": "alice-user-id", "aud": nodes[0].issuer, "iat": now, "exp": now + 120,
			"jti": jti, "ticket_digest": uma.TicketDigest(ticket), "email": "alice@foo.example", "email_verified": true,
		})
	}
	grant := func(n *node, ticket, claimsToken string) error {
		ct, err := uma.PushedClaims{uma.ClaimClaimsToken: {claimsToken}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		_, err = kctest.PostToken(ctx, n.url(""), "rqp-client", "rqp-client-secret", url.Values{
			"grant_type": {uma.GrantTypeUMATicket}, "ticket": {ticket}, "submit_request": {"false"},
			"claim_token_format": {uma.ClaimTokenFormatJWT}, "claim_token": {ct},
		})
		return err
	}
	denied := func(err error) bool {
		var te *kctest.TokenError
		return errors.As(err, &te) && te.StatusCode == http.StatusForbidden
	}

	// A claims token's jti: accepted at node 0, refused at node 1.
	jti := kctest.RandomHex(16)
	t1 := ticket(nodes[0])
	if err := grant(nodes[0], t1, claimsToken(t1, jti)); err != nil {
		t.Fatalf("grant at node 0: %v", err)
	}
	t2 := ticket(nodes[1])
	if err := grant(nodes[1], t2, claimsToken(t2, jti)); !denied(err) {
		t.Fatalf("the same jti at node 1: %v, want 403 (jti_replayed)", err)
	}

	// A ticket: an RPT at node 1, then refused at node 0 (with a fresh jti).
	t3 := ticket(nodes[0])
	if err := grant(nodes[1], t3, claimsToken(t3, kctest.RandomHex(16))); err != nil {
		t.Fatalf("grant at node 1: %v", err)
	}
	if err := grant(nodes[0], t3, claimsToken(t3, kctest.RandomHex(16))); !denied(err) {
		t.Fatalf("the same ticket at node 0: %v, want 403 (ticket_reused)", err)
	}
	// And a fresh ticket and jti still work at both.
	for i, n := range nodes {
		tk := ticket(n)
		if err := grant(n, tk, claimsToken(tk, kctest.RandomHex(16))); err != nil {
			t.Fatalf("fresh grant at node %d: %v", i, err)
		}
	}
}
