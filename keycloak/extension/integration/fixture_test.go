package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Demo secrets: the placeholder defaults of bar-realm.json.
const (
	rqpClientSecret      = "rqp-client-secret"
	resourceServerSecret = "resource-server-secret"
	claimsTokenPolicy    = "claims token"
	stockPolicy          = "rqp-client only"
	ecKID                = testclaimsprovider.ECKID
	rsaKID               = testclaimsprovider.RSAKID

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
// (internal/testclaimsprovider, shared with the end-to-end attack suite).
type claimsProvider struct {
	*testclaimsprovider.Provider
	issuer      string
	jwksFetches *atomic.Int64
}

func newClaimsProvider(t testing.TB) *claimsProvider {
	t.Helper()
	p := testclaimsprovider.New(t)
	return &claimsProvider{Provider: p, issuer: p.Issuer, jwksFetches: &p.JWKSFetches}
}

func (cp *claimsProvider) jwksURI() string { return cp.JWKSURI() }

// rsaPublicPEM is what an alg-confusion attacker would use as an HMAC secret.
func (cp *claimsProvider) rsaPublicPEM() []byte { return cp.RSAPublicPEM() }

func b64(b []byte) string { return testclaimsprovider.B64(b) }

func part(v any) string { return testclaimsprovider.Part(v) }

// signES256 signs header.payload with the provider's EC key (JWS R || S form).
func (cp *claimsProvider) signES256(header, claims map[string]any) string {
	return cp.SignES256(header, claims)
}

func (cp *claimsProvider) signRS256(header, claims map[string]any) string {
	return cp.SignRS256(header, claims)
}

func signHS256(header, claims map[string]any, secret []byte) string {
	return testclaimsprovider.SignHS256(header, claims, secret)
}

func esHeader(kid string) map[string]any { return testclaimsprovider.Header("ES256", kid) }

// realmFixture is a copy of realm bar with its own name, bob's Incoming
// registered, and the protection API with a PAT of resource-server (and the
// PAT itself, for the tests that probe the API's raw answers).
type realmFixture struct {
	kc         *launcher.Keycloak
	name       string
	issuer     string
	resourceID string
	api        *protection.Client
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
	prefix := "bar-ct-"
	if stock {
		prefix = "bar-stock-"
	}
	name := kctest.ImportBarCopy(t, kc, launcher.BarCopy{Name: prefix + kctest.RandomHex(4), Stock: stock, ClaimsProviderURL: cp.issuer,
		Mutate: func(rep map[string]any) {
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
		}})
	f := &realmFixture{kc: kc, name: name, issuer: kc.IssuerURL(name)}
	tok, err := kctest.ClientCredentials(ctx, f.issuer, "resource-server", resourceServerSecret, "")
	if err != nil {
		t.Fatalf("resource-server PAT: %v", err)
	}
	f.pat = tok.AccessToken
	f.api = protection.New(protection.Config{Issuer: f.issuer, PAT: keycloak.StaticToken(f.pat)})
	f.resourceID = f.register(t, uma.IncomingResourceName("bob"), false)
	return f
}

// register registers an Incoming of bob through the protection API, as the
// Resource Server does; issue 12 registers them with ownerManagedAccess false.
func (f *realmFixture) register(t testing.TB, name string, ownerManagedAccess bool) string {
	t.Helper()
	return kctest.RegisterIncoming(t, f.api, name, "bob", ownerManagedAccess).ID
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
	return kctest.TicketFor(t, f.api, protection.Permission{ResourceID: id, Scopes: []string{uma.ScopeCreate}, Claims: claims})
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
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ticket},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {claimToken},
		uma.FormSubmitRequest:    {"false"},
	})
}

// denials counts the policy's deny log lines for this realm and a reason (any
// reason when empty); -1 when the Keycloak log cannot be read (an external
// server without KEYCLOAK_LOG).
func (f *realmFixture) denials(reason string) int {
	path := kctest.KeycloakLog(f.kc)
	if path == "" {
		return -1
	}
	return kctest.LogMark{Path: path}.Denials(reason, f.name)
}

// expectDenied asserts 403 access_denied and no RPT for the standard grant
// form, and, where Keycloak's log is readable, that the policy logged exactly
// one denial with this reason and that the log carries no token material.
func (f *realmFixture) expectDenied(t *testing.T, ticket, claimToken, reason string) {
	t.Helper()
	f.expectDeniedForm(t, url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ticket},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {claimToken},
		uma.FormSubmitRequest:    {"false"},
	}, reason)
}

func (f *realmFixture) expectDeniedForm(t *testing.T, form url.Values, reason string) {
	t.Helper()
	f.expectDeniedBy(t, func() (*kctest.TokenResponse, error) {
		return kctest.PostToken(testCtx(t), f.issuer, "rqp-client", rqpClientSecret, form)
	}, form.Get(uma.FormClaimToken), reason)
}

// expectDeniedBy asserts that grant answers 403 access_denied without a
// token and, where the log is readable, that the policy logged one denial
// with reason and that the log carries no part of claimToken.
func (f *realmFixture) expectDeniedBy(t *testing.T, grant func() (*kctest.TokenResponse, error), claimToken, reason string) {
	t.Helper()
	mark := kctest.MarkLog(kctest.KeycloakLog(f.kc))
	tok, err := grant()
	if err == nil {
		t.Fatalf("got an RPT (%.40s...), want 403", tok.AccessToken)
	}
	var te *keycloak.Error
	if !errors.As(err, &te) {
		t.Fatalf("grant: %v", err)
	}
	if te.StatusCode != http.StatusForbidden || !strings.Contains(te.Body, `"access_denied"`) || strings.Contains(te.Body, "access_token") {
		t.Fatalf("grant answered %d %s, want 403 access_denied without a token", te.StatusCode, te.Body)
	}
	if mark.Path == "" {
		return
	}
	if !mark.ExpectDenial(t, 5*time.Second, reason, f.name) {
		t.FailNow()
	}
	if f.logContains(claimToken) {
		t.Fatal("Keycloak's log contains the pushed claim_token")
	}
}

// expectShapeRefused asserts that the extension's uma-ticket grant type
// refuses form (rqp-client's credentials) before Keycloak evaluates
// anything: 400 invalid_request naming the form of step 7, and no denial of
// the policy (which would have been logged before the answer).
func (f *realmFixture) expectShapeRefused(t *testing.T, form url.Values) {
	t.Helper()
	mark := kctest.MarkLog(kctest.KeycloakLog(f.kc))
	_, err := kctest.PostToken(testCtx(t), f.issuer, "rqp-client", rqpClientSecret, form)
	expectShapeRefusal(t, err)
	if lines := mark.Lines(kctest.DenialNeedles("", f.name)...); len(lines) != 0 {
		t.Fatalf("the policy ran for a refused form: %q", lines)
	}
}

// expectShapeRefusal checks the answer to such a form.
func expectShapeRefusal(t *testing.T, err error) {
	t.Helper()
	var te *keycloak.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusBadRequest || !strings.Contains(te.Body, `"invalid_request"`) ||
		!strings.Contains(te.Body, "exactly one ticket") || strings.Contains(te.Body, "access_token") {
		t.Fatalf("grant: %v, want 400 invalid_request naming the form of step 7", err)
	}
}

func (f *realmFixture) logContains(s string) bool {
	path := kctest.KeycloakLog(f.kc)
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
