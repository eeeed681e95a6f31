// Package cluster tests umawide on a Keycloak cluster as compose.scale.yaml
// runs it: two Keycloak processes (`start`, one PostgreSQL database,
// embedded Infinispan whose nodes find each other through the database:
// jdbc-ping), one issuer for both (--hostname), a Resource Server next to
// each node on one shared PostgreSQL database.
//
// Under `make test` the test starts the cluster itself on the private
// PostgreSQL server of the run (UMAWIDE_TEST_DATABASE_URL, internal/pgtest):
// the launcher's Cluster option, each node on its own HTTP, management and
// cluster ports on 127.0.0.1, the realm imported once through the first
// node. It checks that
//
//   - a claims token's jti accepted at one node is refused at the other
//     (jti_replayed), and a ticket that got an RPT at one node is refused at
//     the other (ticket_reused): the policy's single-use store is the
//     cluster's;
//   - a ticket made at node A is granted at node B, and the RPT is accepted
//     by the Resource Server next to node B (and the other way round);
//   - an RPT used at one Resource Server is refused at the other;
//   - Bob lists the same Incoming at both.
//
// Given two nodes of a running cluster instead,
//
//	UMAWIDE_TEST_KEYCLOAK_NODES=http://127.0.0.1:18080,http://127.0.0.1:18180 go test ./deploy/cluster
//
// (their admin in KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD, default
// admin/admin, the umawide extension loaded), it runs the replay checks
// against those.
package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/pgtest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Environment the test reads.
const (
	// NodesEnv lists the base URLs of the nodes of a running cluster.
	NodesEnv = "UMAWIDE_TEST_KEYCLOAK_NODES"
)

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
	api    *protection.Client
}

func (n *node) url(path string) string { return n.kc.BaseURL + "/realms/" + n.realm + path }

// jdbc turns a postgres:// URL into Keycloak's JDBC URL, user and password.
func jdbc(t *testing.T, pgURL string) (jdbcURL, user, password string) {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ = u.User.Password()
	return "jdbc:postgresql://" + u.Host + u.Path, u.User.Username(), password
}

// startCluster starts two Keycloak nodes on a fresh database: node A
// imports the realm files into the empty database, node B joins it (as
// compose.scale.yaml starts keycloak-2 once keycloak is healthy). Both
// issue as node A's address.
func startCluster(t *testing.T, base string) []*launcher.Keycloak {
	t.Helper()
	jdbcURL, user, password := jdbc(t, pgtest.FreshDatabase(t, base, "umawide_kc_"))
	portA, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	hostname := "http://127.0.0.1:" + strconv.Itoa(portA)
	var nodes []*launcher.Keycloak
	for i, port := range []int{portA, 0} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		kc, err := launcher.Start(ctx, launcher.Options{
			// Not the run's Keycloak (KEYCLOAK_URL), nor a container.
			Mode:         launcher.ModeProcess,
			HTTPPort:     port,
			MaxHeap:      "512m",
			StartTimeout: 10 * time.Minute,
			Cluster: &launcher.Cluster{
				DBURL: jdbcURL, DBUser: user, DBPassword: password,
				Hostname: hostname, Production: true, SkipImport: i > 0,
			},
		})
		cancel()
		if err != nil {
			t.Fatalf("cluster node %d: %v", i, err)
		}
		t.Cleanup(func() {
			if err := kc.Stop(context.Background()); err != nil {
				t.Errorf("stop node %d: %v", i, err)
			}
		})
		t.Logf("node %d: %s (log %s)", i, kc.BaseURL, kc.LogPath)
		nodes = append(nodes, kc)
	}
	return nodes
}

func TestCluster(t *testing.T) {
	var kcs []*launcher.Keycloak
	base := os.Getenv(pgtest.DatabaseEnv)
	if raw := os.Getenv(NodesEnv); raw != "" {
		for _, u := range strings.Split(raw, ",") {
			kcs = append(kcs, &launcher.Keycloak{
				BaseURL: strings.TrimRight(strings.TrimSpace(u), "/"), Mode: launcher.ModeExternal,
				AdminUser: env("KEYCLOAK_ADMIN_USER", "admin"), AdminPassword: env("KEYCLOAK_ADMIN_PASSWORD", "admin"),
			})
		}
		if len(kcs) != 2 {
			t.Fatalf("%s names %d node(s), want two", NodesEnv, len(kcs))
		}
		base = "" // the Resource Servers need the cluster's issuer setup: only on a cluster of our own
	} else {
		if base == "" {
			t.Skipf("Keycloak cluster NOT tested: set %s (a PostgreSQL role that may create databases; make test starts one) or %s (two nodes of a running cluster)", pgtest.DatabaseEnv, NodesEnv)
		}
		if testing.Short() {
			t.Skip("Keycloak cluster NOT tested: -short (it starts two Keycloaks)")
		}
		kcs = startCluster(t, base)
	}
	c := setUp(t, kcs)
	t.Run("replay refused across nodes", c.replay)
	if base == "" {
		return
	}
	t.Run("resource server per node", func(t *testing.T) { c.resourceServers(t, base) })
}

// clusterTest is one realm copy on the cluster, seen through each node.
type clusterTest struct {
	ctx        context.Context
	cp         *testclaimsprovider.Provider
	nodes      []*node
	realm      string
	resourceID string
}

// setUp imports a copy of realm bar trusting this test's Claims Provider,
// once, through node 0's admin REST API, and gets a PAT from each node.
func setUp(t *testing.T, kcs []*launcher.Keycloak) *clusterTest {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	c := &clusterTest{ctx: ctx, cp: testclaimsprovider.New(t), realm: "bar-cluster-" + kctest.RandomHex(4)}
	kctest.ImportBarCopy(t, kcs[0], launcher.BarCopy{Name: c.realm, ClaimsProviderURL: c.cp.Issuer})
	for i, kc := range kcs {
		n := &node{kc: kc, realm: c.realm}
		tok, err := kctest.ClientCredentials(ctx, n.url(""), "resource-server", "resource-server-secret", "")
		if err != nil {
			t.Fatalf("node %d: PAT: %v", i, err)
		}
		n.api = kctest.ProtectionAPI(n.url(""), "resource-server", "resource-server-secret")
		claims, _ := kctest.Claims(tok.AccessToken)
		n.issuer, _ = claims["iss"].(string)
		c.nodes = append(c.nodes, n)
	}
	if c.nodes[0].issuer != c.nodes[1].issuer {
		t.Fatalf("the nodes issue as %s and %s: one cluster has one issuer (KC_HOSTNAME)", c.nodes[0].issuer, c.nodes[1].issuer)
	}
	return c
}

func (c *clusterTest) ticket(t *testing.T, n *node) string {
	t.Helper()
	if c.resourceID == "" {
		c.resourceID = kctest.RegisterIncoming(t, c.nodes[0].api, uma.IncomingResourceName("bob"), "bob", false).ID
	}
	return kctest.TicketFor(t, n.api, protection.Permission{ResourceID: c.resourceID, Scopes: []string{uma.ScopeCreate},
		Claims: map[string][]string{uma.ClaimIncomingURI: {replayIncoming}}})
}

// claimsToken is what the Claims Provider of foo.example would sign for
// Alice, bound to ticket.
func (c *clusterTest) claimsToken(ticket, jti string) string {
	now := time.Now().Unix()
	return c.cp.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), map[string]any{
		"iss": c.cp.Issuer, "sub": "alice-user-id", "aud": c.nodes[0].issuer, "iat": now, "exp": now + 120,
		"jti": jti, "ticket_digest": uma.TicketDigest(ticket), "email": "alice@foo.example", "email_verified": true,
	})
}

// replayIncoming is the Incoming URL the replay checks' tickets name (no
// Resource Server takes part in them).
const replayIncoming = "http://rs.cluster.invalid/incoming/bob"

// grant runs the uma-ticket grant at node n as an honest client would: the
// claims token, the Incoming URL the ticket names and a content binding;
// extra pushed claims replace those.
func (c *clusterTest) grant(t *testing.T, n *node, ticket, claimsToken string, extra uma.PushedClaims) (string, error) {
	t.Helper()
	tc, err := uma.UnverifiedTicketClaims(ticket)
	if err != nil || len(tc.IncomingURIs) != 1 {
		t.Fatalf("ticket names %v: %v", tc.IncomingURIs, err)
	}
	empty := sha256.Sum256(nil)
	pushed := uma.PushedClaims{uma.ClaimClaimsToken: {claimsToken}, uma.ClaimIncomingURI: {tc.IncomingURIs[0]},
		uma.ClaimContentSHA256: {hex.EncodeToString(empty[:])}, uma.ClaimContentLength: {"0"}}
	for k, v := range extra {
		pushed[k] = v
	}
	ct, err := pushed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kctest.PostToken(c.ctx, n.url(""), "rqp-client", "rqp-client-secret", url.Values{
		uma.FormGrantType: {uma.GrantTypeUMATicket}, uma.FormTicket: {ticket}, uma.FormSubmitRequest: {"false"},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT}, uma.FormClaimToken: {ct},
	})
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func denied(err error) bool {
	var te *keycloak.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusForbidden
}

func (c *clusterTest) replay(t *testing.T) {
	a, b := c.nodes[0], c.nodes[1]
	// A claims token's jti: accepted at node A, refused at node B.
	jti := kctest.RandomHex(16)
	t1 := c.ticket(t, a)
	if _, err := c.grant(t, a, t1, c.claimsToken(t1, jti), nil); err != nil {
		t.Fatalf("grant at node A: %v", err)
	}
	t2 := c.ticket(t, b)
	if _, err := c.grant(t, b, t2, c.claimsToken(t2, jti), nil); !denied(err) {
		t.Fatalf("the same jti at node B: %v, want 403 (jti_replayed)", err)
	}

	// A ticket made at node A: an RPT at node B, then refused at node A
	// (with a fresh jti).
	t3 := c.ticket(t, a)
	if _, err := c.grant(t, b, t3, c.claimsToken(t3, kctest.RandomHex(16)), nil); err != nil {
		t.Fatalf("node A's ticket granted at node B: %v", err)
	}
	if _, err := c.grant(t, a, t3, c.claimsToken(t3, kctest.RandomHex(16)), nil); !denied(err) {
		t.Fatalf("the same ticket at node A: %v, want 403 (ticket_reused)", err)
	}
	// And a fresh ticket and jti still work at both.
	for i, n := range c.nodes {
		tk := c.ticket(t, n)
		if _, err := c.grant(t, n, tk, c.claimsToken(tk, kctest.RandomHex(16)), nil); err != nil {
			t.Fatalf("fresh grant at node %d: %v", i, err)
		}
	}
}

// resourceServers starts a Resource Server next to each node (its
// Keycloak calls go to its own node; the issuer is the cluster's) on one
// shared database, and runs the push flow across them.
func (c *clusterTest) resourceServers(t *testing.T, base string) {
	dbURL := pgtest.FreshDatabase(t, base, "umawide_rs_")
	dir := t.TempDir()
	bins, err := stack.Build(c.ctx, dir, "resource-server")
	if err != nil {
		t.Fatal(err)
	}
	issuer := c.nodes[0].issuer
	var rs []*stack.Service
	// Replicas behind one address share one public URL: the Incoming URL in
	// their tickets and in the RPTs they accept.
	var publicURL string
	for i, n := range c.nodes {
		port, err := launcher.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if publicURL == "" {
			publicURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		}
		s, err := stack.Start(c.ctx, stack.ResourceServer{
			Binary: bins["resource-server"], Listen: fmt.Sprintf("127.0.0.1:%d", port), PublicURL: publicURL,
			KeycloakURL: n.kc.BaseURL, Realm: c.realm, DatabaseURL: dbURL,
			Extra:   []string{"-issuer", issuer},
			LogPath: filepath.Join(dir, fmt.Sprintf("resource-server-%d.log", i)),
		}.Spec())
		if err != nil {
			t.Fatalf("resource server next to node %d: %v", i, err)
		}
		t.Cleanup(func() {
			if err := s.Stop(context.Background()); err != nil {
				t.Errorf("stop resource server %d: %v", i, err)
			}
		})
		rs = append(rs, s)
	}
	client := &http.Client{Timeout: time.Minute}
	post := func(at, token string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, at+uma.IncomingPath("bob"), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, res.Header, data
	}
	// push: the challenge at one Resource Server (its node makes the
	// ticket), the grant at the given node, the RPT to the other
	// Resource Server. Returns the message id and the RPT.
	push := func(challengeAt int, grantAt *node, storeAt int, body []byte) (string, string) {
		t.Helper()
		status, header, data := post(rs[challengeAt].URL, "", body)
		if status != http.StatusUnauthorized {
			t.Fatalf("POST without token at resource server %d: %d %s", challengeAt, status, data)
		}
		ch, err := uma.ParseChallenge(header)
		if err != nil {
			t.Fatalf("challenge: %v", err)
		}
		if ch.ASURI != issuer {
			t.Fatalf("as_uri %s, want the cluster's issuer %s", ch.ASURI, issuer)
		}
		sum := sha256.Sum256(body)
		rpt, err := c.grant(t, grantAt, ch.Ticket, c.claimsToken(ch.Ticket, kctest.RandomHex(16)), uma.PushedClaims{
			uma.ClaimContentSHA256: {hex.EncodeToString(sum[:])},
			uma.ClaimContentLength: {strconv.Itoa(len(body))},
			uma.ClaimContentType:   {"text/plain"},
		})
		if err != nil {
			t.Fatalf("grant of resource server %d's ticket at %s: %v", challengeAt, grantAt.kc.BaseURL, err)
		}
		status, _, data = post(rs[storeAt].URL, rpt, body)
		if status != http.StatusCreated {
			t.Fatalf("POST with RPT at resource server %d: %d %s", storeAt, status, data)
		}
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.ID == "" {
			t.Fatalf("201 body %s: %v", data, err)
		}
		return m.ID, rpt
	}
	body1 := []byte("pushed through node A's ticket, node B's grant, " + kctest.RandomHex(4))
	id1, rpt1 := push(0, c.nodes[1], 1, body1)
	body2 := []byte("pushed through node B's ticket, node A's grant, " + kctest.RandomHex(4))
	id2, _ := push(1, c.nodes[0], 0, body2)

	// The RPT used at Resource Server B is refused at Resource Server A.
	if status, _, data := post(rs[0].URL, rpt1, body1); status != http.StatusForbidden && status != http.StatusUnauthorized {
		t.Fatalf("an RPT used at resource server 1, again at resource server 0: %d %s, want a refusal", status, data)
	}

	// Bob logs in (at the cluster's frontend address, node A's: where
	// --hostname sends every browser) and lists the same Incoming at both.
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	login, err := kctest.LoginForTokens(c.ctx, kctest.CodeFlow{
		Issuer: issuer, ClientID: "incoming-app",
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/", port), Scope: "openid",
	}, "bob", "bob-password")
	if err != nil {
		t.Fatalf("bob's login: %v", err)
	}
	want := []string{id1, id2}
	slices.Sort(want)
	for i, s := range rs {
		ids := list(t, c.ctx, client, s.URL, login.AccessToken)
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("resource server %d lists %v, want %v", i, ids, want)
		}
	}
}

// list is Bob's listing of his Incoming at one Resource Server (ids).
func list(t *testing.T, ctx context.Context, client *http.Client, base, token string) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+uma.IncomingPath("bob")+"/messages?limit=1000", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET messages at %s: %d %s", base, res.StatusCode, data)
	}
	var out uma.MessageList
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range out.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}
