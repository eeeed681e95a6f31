package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testcp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Demo secrets: the placeholder defaults of bar-realm.json.
const (
	rqpClientSecret      = "rqp-client-secret"
	resourceServerSecret = "resource-server-secret"
	claimsTokenPolicy    = "claims token"
	stockPolicy          = "rqp-client only"
	ecKID                = testcp.ECKID
	rsaKID               = testcp.RSAKID

	// Issue 12's claim names (spelled here, not in internal/uma, which the
	// client and Resource Server sides own).
	claimIncomingURI = "incoming_uri"
	claimGrantID     = "grant_id"
	// incomingURI is the Incoming URL the fixture's "Resource Server" pushes
	// into each ticket and its "client" pushes with the claims token.
	incomingURI = "https://rs.bar.example/incoming/bob"
	// A confidential client with the password grant and standard token
	// exchange, and a third user: test-only additions to the realm copy, to
	// obtain user tokens (with a session, hence refresh tokens) for the roads
	// to an RPT that a user can take.
	directClient       = "direct-test"
	directClientSecret = "direct-test-secret"
	carolPassword      = "carol-password"
	bobPassword        = "bob-password"
)

// contentSHA256 and contentLength are the content binding pushed by default:
// the digest and length of contentBody.
var (
	contentBody   = []byte("hello Bob, this is Alice\n")
	contentSHA256 = func() string { s := sha256.Sum256(contentBody); return hex.EncodeToString(s[:]) }()
	contentLength = strconv.Itoa(len(contentBody))
)

// claimsProvider is the test's Claims Provider: keys and a JWKS endpoint
// (internal/testcp, shared with the end-to-end attack suite).
type claimsProvider struct {
	*testcp.Provider
	issuer      string
	jwksFetches *atomic.Int64
}

func newClaimsProvider(t testing.TB) *claimsProvider {
	t.Helper()
	p := testcp.New(t)
	return &claimsProvider{Provider: p, issuer: p.Issuer, jwksFetches: &p.JWKSFetches}
}

func (cp *claimsProvider) jwksURI() string { return cp.JWKSURI() }

// rsaPublicPEM is what an alg-confusion attacker would use as an HMAC secret.
func (cp *claimsProvider) rsaPublicPEM() []byte { return cp.RSAPublicPEM() }

func b64(b []byte) string { return testcp.B64(b) }

func part(v any) string { return testcp.Part(v) }

// signES256 signs header.payload with the provider's EC key (JWS R || S form).
func (cp *claimsProvider) signES256(header, claims map[string]any) string {
	return cp.SignES256(header, claims)
}

func (cp *claimsProvider) signRS256(header, claims map[string]any) string {
	return cp.SignRS256(header, claims)
}

func signHS256(header, claims map[string]any, secret []byte) string {
	return testcp.SignHS256(header, claims, secret)
}

func esHeader(kid string) map[string]any { return testcp.Header("ES256", kid) }

// realmFixture is a copy of realm bar with its own name, bob's Incoming
// registered, and a PAT of resource-server.
type realmFixture struct {
	kc         *launcher.Keycloak
	name       string
	issuer     string
	resourceID string
	pat        string
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// barCopy imports bar-realm.json under a unique name, with the claims-token
// policy trusting cp (through the file's own placeholders) and, when stock is
// set, the permission applying the stock client policy instead.
func barCopy(t testing.TB, kc *launcher.Keycloak, cp *claimsProvider, stock bool) *realmFixture {
	t.Helper()
	ctx := testCtx(t)
	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(launcher.RealmDir(root), "bar-realm.json"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"UMAWIDE_CLAIMS_PROVIDER_ISSUER":           cp.issuer,
		"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI":         cp.jwksURI(),
		"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
	}
	var rep map[string]any
	if err := json.Unmarshal(launcher.ExpandPlaceholders(raw, vars), &rep); err != nil {
		t.Fatal(err)
	}
	prefix := "bar-ct-"
	if stock {
		prefix = "bar-stock-"
	}
	name := prefix + kctest.RandomHex(4)
	rep["realm"] = name
	delete(rep, "id")
	var applied string
	for _, c := range rep["clients"].([]any) {
		client := c.(map[string]any)
		if client["clientId"] != "resource-server" {
			continue
		}
		for _, p := range client["authorizationSettings"].(map[string]any)["policies"].([]any) {
			pol := p.(map[string]any)
			conf, _ := pol["config"].(map[string]any)
			if pol["type"] == "scope" && conf["scopes"] == `["create"]` {
				applied, _ = conf["applyPolicies"].(string)
				if stock {
					conf["applyPolicies"] = `["` + stockPolicy + `"]`
				}
			}
		}
	}
	if applied != `["`+claimsTokenPolicy+`"]` {
		t.Fatalf("bar-realm.json: the scope permission on create applies %s, want the claims-token policy %q", applied, claimsTokenPolicy)
	}
	rep["clients"] = append(rep["clients"].([]any), map[string]any{
		"clientId":                  directClient,
		"enabled":                   true,
		"publicClient":              false,
		"secret":                    directClientSecret,
		"standardFlowEnabled":       false,
		"directAccessGrantsEnabled": true,
		"serviceAccountsEnabled":    false,
		"attributes":                map[string]any{"standard.token.exchange.enabled": "true"},
	})
	rep["users"] = append(rep["users"].([]any), map[string]any{
		"username": "carol", "enabled": true, "email": "carol@bar.example", "emailVerified": true,
		"firstName": "Carol", "lastName": "Test",
		"credentials": []any{map[string]any{"type": "password", "value": carolPassword, "temporary": false}},
	})
	data, _ := json.Marshal(rep)
	if err := kc.ImportRealm(ctx, data); err != nil {
		t.Fatalf("import realm %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := kc.DeleteRealm(context.Background(), name); err != nil {
			t.Errorf("delete realm %s: %v", name, err)
		}
	})
	f := &realmFixture{kc: kc, name: name, issuer: kc.IssuerURL(name)}
	tok, err := kctest.ClientCredentials(ctx, f.issuer, "resource-server", resourceServerSecret, "")
	if err != nil {
		t.Fatalf("resource-server PAT: %v", err)
	}
	f.pat = tok.AccessToken
	f.resourceID = f.register(t, uma.IncomingResourceName("bob"), false)
	return f
}

// register registers an Incoming of bob through the protection API, as the
// Resource Server does; issue 12 registers them with ownerManagedAccess false.
func (f *realmFixture) register(t testing.TB, name string, ownerManagedAccess bool) string {
	t.Helper()
	var created struct {
		ID string `json:"_id"`
	}
	f.postJSON(t, "/authz/protection/resource_set", map[string]any{
		"name":               name,
		"type":               uma.ResourceTypeIncoming,
		"owner":              "bob",
		"ownerManagedAccess": ownerManagedAccess,
		"resource_scopes":    []string{uma.ScopeCreate},
		"uris":               []string{uma.IncomingPath("bob")},
	}, &created)
	if created.ID == "" {
		t.Fatal("no resource id")
	}
	return created.ID
}

func (f *realmFixture) postJSON(t testing.TB, path string, body, out any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, f.issuer+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.pat)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}

// ticket asks for a fresh permission ticket for bob's Incoming, scope create,
// pushing its Incoming URL, as the Resource Server does in seed step 2.
func (f *realmFixture) ticket(t testing.TB) string {
	t.Helper()
	return f.ticketFor(t, f.resourceID, map[string][]string{claimIncomingURI: {incomingURI}})
}

// ticketFor asks for a ticket for resource id, scope create, with these
// claims in the permission request (none when nil).
func (f *realmFixture) ticketFor(t testing.TB, id string, claims map[string][]string) string {
	t.Helper()
	var tk struct {
		Ticket string `json:"ticket"`
	}
	req := map[string]any{"resource_id": id, "resource_scopes": []string{uma.ScopeCreate}}
	if claims != nil {
		req["claims"] = claims
	}
	f.postJSON(t, "/authz/protection/permission", []map[string]any{req}, &tk)
	if tk.Ticket == "" {
		t.Fatal("no ticket")
	}
	return tk.Ticket
}

// claims is a valid claims token payload for ticket, as the Claims Provider
// issues it (seed step 6).
func (f *realmFixture) claims(cp *claimsProvider, ticket string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss":            cp.issuer,
		"sub":            "alice-user-id",
		"aud":            f.issuer,
		"iat":            now,
		"exp":            now + 120,
		"jti":            kctest.RandomHex(16),
		"ticket_digest":  uma.TicketDigest(ticket),
		"email":          "alice@foo.example",
		"email_verified": true,
		"name":           "Alice",
	}
}

// omit, as a value in pushed's meta, leaves that key out.
const omit = "\x00omit"

// pushed encodes the claim_token parameter (seed step 7): the claims token,
// the content binding of contentBody and the Incoming URL, as an honest
// client pushes them, changed by meta (a value of omit removes the key).
func pushed(t testing.TB, claimsToken string, meta map[string]string) string {
	t.Helper()
	p := uma.PushedClaims{uma.ClaimClaimsToken: {claimsToken}}
	p.Set(uma.ClaimContentSHA256, contentSHA256)
	p.Set(uma.ClaimContentLength, contentLength)
	p.Set(claimIncomingURI, incomingURI)
	for k, v := range meta {
		if v == omit {
			delete(p, k)
			continue
		}
		p.Set(k, v)
	}
	enc, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// grant runs the uma-ticket grant as the RqP client (seed step 7).
func (f *realmFixture) grant(ctx context.Context, ticket, claimToken string) (*kctest.TokenResponse, error) {
	return kctest.PostToken(ctx, f.issuer, "rqp-client", rqpClientSecret, url.Values{
		"grant_type":         {uma.GrantTypeUMATicket},
		"ticket":             {ticket},
		"claim_token_format": {uma.ClaimTokenFormatJWT},
		"claim_token":        {claimToken},
		"submit_request":     {"false"},
	})
}

// denials counts the policy's deny log lines for this realm and a reason (any
// reason when empty); -1 when the Keycloak log cannot be read (an external
// server without KEYCLOAK_LOG).
func (f *realmFixture) denials(reason string) int {
	path := f.kc.LogPath
	if path == "" {
		path = os.Getenv("KEYCLOAK_LOG")
	}
	if path == "" {
		return -1
	}
	file, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer file.Close()
	needle := "claims-token policy denied: reason=" + reason + " realm=" + f.name + " "
	realm := " realm=" + f.name + " "
	n := 0
	s := bufio.NewScanner(file)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if reason == "" && strings.Contains(line, "claims-token policy denied: reason=") && strings.Contains(line, realm) ||
			strings.Contains(line, needle) {
			n++
		}
	}
	return n
}

// expectDenied asserts 403 access_denied and no RPT for the standard grant
// form, and, where Keycloak's log is readable, that the policy logged exactly
// one denial with this reason and that the log carries no token material.
func (f *realmFixture) expectDenied(t *testing.T, ticket, claimToken, reason string) {
	t.Helper()
	f.expectDeniedForm(t, url.Values{
		"grant_type":         {uma.GrantTypeUMATicket},
		"ticket":             {ticket},
		"claim_token_format": {uma.ClaimTokenFormatJWT},
		"claim_token":        {claimToken},
		"submit_request":     {"false"},
	}, reason)
}

func (f *realmFixture) expectDeniedForm(t *testing.T, form url.Values, reason string) {
	t.Helper()
	f.expectDeniedBy(t, func() (*kctest.TokenResponse, error) {
		return kctest.PostToken(testCtx(t), f.issuer, "rqp-client", rqpClientSecret, form)
	}, form.Get("claim_token"), reason)
}

// expectDeniedBy asserts that grant answers 403 access_denied without a
// token and, where the log is readable, that the policy logged one denial
// with reason and that the log carries no part of claimToken.
func (f *realmFixture) expectDeniedBy(t *testing.T, grant func() (*kctest.TokenResponse, error), claimToken, reason string) {
	t.Helper()
	before := f.denials(reason)
	tok, err := grant()
	if err == nil {
		t.Fatalf("got an RPT (%.40s...), want 403", tok.AccessToken)
	}
	var te *kctest.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("grant: %v", err)
	}
	if te.StatusCode != http.StatusForbidden || !strings.Contains(te.Body, `"access_denied"`) || strings.Contains(te.Body, "access_token") {
		t.Fatalf("grant answered %d %s, want 403 access_denied without a token", te.StatusCode, te.Body)
	}
	if before < 0 {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := f.denials(reason)
		if after == before+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Keycloak log: %d denials with reason=%s for realm %s, want %d", after, reason, f.name, before+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.logContains(claimToken) {
		t.Fatal("Keycloak's log contains the pushed claim_token")
	}
}

func (f *realmFixture) logContains(s string) bool {
	path := f.kc.LogPath
	if path == "" {
		path = os.Getenv("KEYCLOAK_LOG")
	}
	if path == "" || len(s) < 64 {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	// A window from the middle: unique to this token (its payload and signature).
	mid := len(s) / 2
	return bytes.Contains(data, []byte(s[mid-16:mid+16]))
}

// rptPermissions decodes the RPT's authorization.permissions.
func rptPermissions(t *testing.T, rpt string) []permission {
	t.Helper()
	parts := strings.Split(rpt, ".")
	if len(parts) != 3 {
		t.Fatalf("RPT is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Authorization struct {
			Permissions []permission `json:"permissions"`
		} `json:"authorization"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Authorization.Permissions
}

type permission struct {
	RSID   string              `json:"rsid"`
	Scopes []string            `json:"scopes"`
	Claims map[string][]string `json:"claims"`
}

func (p permission) String() string { return fmt.Sprintf("%s %v %v", p.RSID, p.Scopes, p.Claims) }
