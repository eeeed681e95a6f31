package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// orgRealm imports the organisation bundle (keycloak/realms/org) under a
// fresh name with user bob@bar.example; cp is pinned for foo.example (the
// test's Claims Provider speaks plain http on loopback, hence the insecure
// URLs allowed), vars override further placeholders.
func orgRealm(t *testing.T, kc *launcher.Keycloak, cp *claimsProvider, vars map[string]string) *realmFixture {
	t.Helper()
	all := map[string]string{
		"UMAWIDE_CLAIMS_PROVIDERS":                 fmt.Sprintf(`[{"issuer":%q,"jwks_uri":%q,"domains":["foo.example"]}]`, cp.issuer, cp.jwksURI()),
		"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
	}
	for k, v := range vars {
		all[k] = v
	}
	data, err := launcher.OrganisationRealmJSON(launcher.Organisation{
		Realm: "org-" + kctest.RandomHex(4), Domain: "bar.example", Vars: all,
		Users: []launcher.OrganisationUser{{Username: "bob", Password: bobPassword}},
	})
	if err != nil {
		t.Fatal(err)
	}
	name := kctest.ImportRealm(t, kc, data)
	ctx := testCtx(t)
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

// registration is the answer of Keycloak's OIDC registration endpoint.
type registration struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	GrantTypes              []string `json:"grant_types"`
	RedirectURIs            []string `json:"redirect_uris"`
}

// umaTicketOnly is the registration request of docs/PROTOCOL.md.
func umaTicketOnly() map[string]any {
	return map[string]any{
		"client_name":                "umawide rqp-client (foo.example)",
		"grant_types":                []string{uma.GrantTypeUMATicket},
		"response_types":             []string{"none"},
		"token_endpoint_auth_method": "client_secret_basic",
	}
}

// registrationEndpoint is what the AS advertises in its UMA configuration.
func registrationEndpoint(t *testing.T, issuer string) string {
	t.Helper()
	res, err := http.Get(issuer + "/.well-known/uma2-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var conf struct {
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	if err := json.NewDecoder(res.Body).Decode(&conf); err != nil {
		t.Fatal(err)
	}
	if want := issuer + "/clients-registrations/openid-connect"; conf.RegistrationEndpoint != want {
		t.Fatalf("registration_endpoint %q, want %q", conf.RegistrationEndpoint, want)
	}
	return conf.RegistrationEndpoint
}

// register posts metadata anonymously; the status and, on 201, the answer.
func register(t *testing.T, endpoint string, metadata map[string]any) (int, registration, string) {
	t.Helper()
	body, _ := json.Marshal(metadata)
	res, err := http.Post(endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var r registration
	if res.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode, r, string(data)
}

// honestGrant pushes a claims token of cp for alice@foo.example with a
// fresh ticket and the client's credentials.
func honestGrant(ctx context.Context, t *testing.T, f *realmFixture, cp *claimsProvider, clientID, secret string) (*kctest.TokenResponse, error) {
	t.Helper()
	ticket := f.ticket(t)
	return kctest.PostToken(ctx, f.issuer, clientID, secret, url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ticket},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)},
		uma.FormSubmitRequest:    {"false"},
	})
}

// deleteRegistration deletes a registration with its registration access
// token (RFC 7592), freeing its place under the cap.
func deleteRegistration(t *testing.T, r registration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, r.RegistrationClientURI, nil)
	req.Header.Set("Authorization", "Bearer "+r.RegistrationAccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete registration: %d", res.StatusCode)
	}
}

// TestDynamicRegistration: an RqP client of another organisation registers
// itself at the bundle's AS and can do the uma-ticket grant, and nothing
// else; what it may not ask for is refused by name, nothing is created for
// a refusal, and an honest registration right after succeeds.
func TestDynamicRegistration(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := orgRealm(t, kc, cp, nil)
	ctx := testCtx(t)
	endpoint := registrationEndpoint(t, f.issuer)

	before := time.Now().Unix()
	status, r, body := register(t, endpoint, umaTicketOnly())
	if status != http.StatusCreated || r.ClientID == "" || r.ClientSecret == "" {
		t.Fatalf("registration: %d %s", status, body)
	}
	if r.ClientSecretExpiresAt < before+604800-5 || r.ClientSecretExpiresAt > time.Now().Unix()+604800+5 {
		t.Errorf("client_secret_expires_at %d, want about now + 7 days", r.ClientSecretExpiresAt)
	}
	if !strings.HasPrefix(r.ClientID, "umawide-dcr-") {
		t.Errorf("client_id %q", r.ClientID)
	}
	t.Logf("registration answered grant_types %v", r.GrantTypes)
	if len(r.RedirectURIs) != 0 {
		t.Errorf("redirect_uris %v", r.RedirectURIs)
	}
	tok, err := honestGrant(ctx, t, f, cp, r.ClientID, r.ClientSecret)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("uma-ticket grant with the registration: %v", err)
	}
	perms := rptPermissions(t, tok.AccessToken)
	if len(perms) != 1 || perms[0].Claims[uma.ClaimSenderEmail][0] != "alice@foo.example" {
		t.Fatalf("RPT permissions %v", perms)
	}

	// Nothing granted because of the registration: without a claims token
	// the grant is refused, and its own client-credentials token (Keycloak
	// needs the service account for uma-ticket) carries no role.
	_, err = kctest.PostToken(ctx, f.issuer, r.ClientID, r.ClientSecret, url.Values{
		uma.FormGrantType: {uma.GrantTypeUMATicket}, uma.FormTicket: {f.ticket(t)}, uma.FormSubmitRequest: {"false"},
	})
	if status := statusOf(err); status != http.StatusForbidden {
		t.Fatalf("grant without a claims token: %v", err)
	}
	cc, err := kctest.ClientCredentials(ctx, f.issuer, r.ClientID, r.ClientSecret, "")
	if err == nil {
		claims, _ := kctest.Claims(cc.AccessToken)
		if ra, ok := claims["realm_access"].(map[string]any); ok && len(ra["roles"].([]any)) > 0 {
			t.Errorf("the registration's own token carries realm roles %v", ra)
		}
		if _, ok := claims["resource_access"]; ok {
			t.Errorf("the registration's own token carries client roles %v", claims["resource_access"])
		}
	}

	// An update (RFC 7592 PUT) is refused: register anew.
	put, _ := json.Marshal(map[string]any{"client_id": r.ClientID, "redirect_uris": []string{"https://evil.example/cb"}, "grant_types": []string{"authorization_code"}})
	req, _ := http.NewRequest(http.MethodPut, r.RegistrationClientURI, bytes.NewReader(put))
	req.Header.Set("Authorization", "Bearer "+r.RegistrationAccessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 == 2 {
		t.Fatalf("update of a registration: %d", res.StatusCode)
	}
	deleteRegistration(t, r)

	// Without response_types (Keycloak 26.5 derives none from uma-ticket;
	// earlier releases assume code, which the policy turns off): accepted.
	m := umaTicketOnly()
	delete(m, "response_types")
	if status, r, body := register(t, endpoint, m); status != http.StatusCreated {
		t.Fatalf("registration without response_types: %d %s", status, body)
	} else {
		deleteRegistration(t, r)
	}

	// Fields that would make Keycloak fetch a URL of the registrant's (review
	// F1: sector_identifier_uri at registration, request_uris at the
	// authorization endpoint, jwks_uri, the logout URIs) or redirect to it
	// (F2: post_logout_redirect_uris) are refused by name, before Keycloak
	// acts on them: the probe server below must see no request at all.
	var probeHits atomic.Int64
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probeHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`["https://evil.example/cb"]`))
	}))
	t.Cleanup(probe.Close)

	clientsBefore := clientCount(t, kc, f.name)
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		field  string // the field the refusal names, when it names one
	}{
		{"client_credentials", func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} }, ""},
		{"uma-ticket and client_credentials", func(m map[string]any) {
			m["grant_types"] = []string{uma.GrantTypeUMATicket, "client_credentials"}
		}, ""},
		{"authorization_code", func(m map[string]any) {
			m["grant_types"] = []string{"authorization_code"}
			m["response_types"] = []string{"code"}
		}, ""},
		{"implicit", func(m map[string]any) { m["response_types"] = []string{"token"} }, ""},
		{"password", func(m map[string]any) { m["grant_types"] = []string{uma.GrantTypeUMATicket, "password"} }, ""},
		{"redirect URIs", func(m map[string]any) { m["redirect_uris"] = []string{"https://app.foo.example/cb"} }, "redirect_uris"},
		{"public client", func(m map[string]any) { m["token_endpoint_auth_method"] = "none" }, ""},
		{"scope", func(m map[string]any) { m["scope"] = "offline_access" }, "scope"},
		{"client_uri", func(m map[string]any) { m["client_uri"] = "https://foo.example" }, "client_uri"},
		{"sector_identifier_uri", func(m map[string]any) {
			m["subject_type"] = "pairwise"
			m["sector_identifier_uri"] = probe.URL + "/sector"
		}, "sector_identifier_uri"},
		{"subject_type", func(m map[string]any) { m["subject_type"] = "pairwise" }, "subject_type"},
		{"request_uris", func(m map[string]any) { m["request_uris"] = []string{probe.URL + "/*"} }, "request_uris"},
		{"post_logout_redirect_uris", func(m map[string]any) {
			m["post_logout_redirect_uris"] = []string{"https://evil.example/*"}
		}, "post_logout_redirect_uris"},
		{"backchannel_logout_uri", func(m map[string]any) { m["backchannel_logout_uri"] = probe.URL + "/logout" }, "backchannel_logout_uri"},
		{"frontchannel_logout_uri", func(m map[string]any) { m["frontchannel_logout_uri"] = probe.URL + "/logout" }, "frontchannel_logout_uri"},
		{"jwks_uri", func(m map[string]any) { m["jwks_uri"] = probe.URL + "/jwks" }, "jwks_uri"},
		{"jwks", func(m map[string]any) {
			m["jwks"] = map[string]any{"keys": []map[string]any{{"kty": "EC", "crv": "P-256", "use": "sig", "kid": "k",
				"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}
		}, "jwks"},
		{"logo_uri", func(m map[string]any) { m["logo_uri"] = probe.URL + "/logo.png" }, "logo_uri"},
		{"policy_uri", func(m map[string]any) { m["policy_uri"] = "https://evil.example/policy" }, "policy_uri"},
		{"tos_uri", func(m map[string]any) { m["tos_uri"] = "https://evil.example/tos" }, "tos_uri"},
		{"client_secret", func(m map[string]any) { m["client_secret"] = "chosen-by-the-registrant" }, "client_secret"},
		{"software_id", func(m map[string]any) { m["software_id"] = "umawide" }, "software_id"},
		{"backchannel_logout_session_required", func(m map[string]any) {
			m["backchannel_logout_session_required"] = false
		}, "backchannel_logout_session_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := umaTicketOnly()
			tc.change(m)
			status, _, body := register(t, endpoint, m)
			if status != http.StatusForbidden || !strings.Contains(body, "uma-ticket only") {
				t.Fatalf("registration %s: %d %s, want 403 from the policy", tc.name, status, body)
			}
			if tc.field != "" && !strings.Contains(body, tc.field+" is not accepted") {
				t.Fatalf("registration %s: %s, want the refusal to name %s", tc.name, body, tc.field)
			}
			if n := clientCount(t, kc, f.name); n != clientsBefore {
				t.Fatalf("a refused registration left a client: %d clients, %d before", n, clientsBefore)
			}
			status, r, body := register(t, endpoint, umaTicketOnly())
			if status != http.StatusCreated {
				t.Fatalf("honest registration right after: %d %s", status, body)
			}
			deleteRegistration(t, r)
		})
	}
	if n := probeHits.Load(); n != 0 {
		t.Fatalf("Keycloak fetched the registrant's URLs %d times", n)
	}
}

// TestDynamicRegistrationCap: the cap refuses the N+1th registration
// (nothing created); once one is deleted (RFC 7592, with its registration
// access token) an honest registration succeeds again.
func TestDynamicRegistrationCap(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := orgRealm(t, kc, cp, map[string]string{"UMAWIDE_DCR_MAX_REGISTRATIONS": "2"})
	ctx := testCtx(t)
	endpoint := registrationEndpoint(t, f.issuer)

	var regs []registration
	for i := 0; i < 2; i++ {
		status, r, body := register(t, endpoint, umaTicketOnly())
		if status != http.StatusCreated {
			t.Fatalf("registration %d: %d %s", i+1, status, body)
		}
		regs = append(regs, r)
	}
	before := clientCount(t, kc, f.name)
	if status, _, body := register(t, endpoint, umaTicketOnly()); status != http.StatusForbidden || !strings.Contains(body, "most registrations") {
		t.Fatalf("third registration over a cap of 2: %d %s", status, body)
	}
	if n := clientCount(t, kc, f.name); n != before {
		t.Fatalf("the refused registration left a client: %d, %d before", n, before)
	}
	// Both registrations still work.
	for _, r := range regs {
		if _, err := honestGrant(ctx, t, f, cp, r.ClientID, r.ClientSecret); err != nil {
			t.Fatalf("grant with a registration under the cap: %v", err)
		}
	}
	deleteRegistration(t, regs[0])
	if status, _, body := register(t, endpoint, umaTicketOnly()); status != http.StatusCreated {
		t.Fatalf("registration after one was deleted: %d %s", status, body)
	}
}

// TestDynamicRegistrationExpiry: once its lifetime has passed, a
// registration's secret is refused at the token endpoint, and the next
// registration deletes it.
func TestDynamicRegistrationExpiry(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := orgRealm(t, kc, cp, map[string]string{"UMAWIDE_DCR_LIFETIME_SECONDS": "1"})
	ctx := testCtx(t)
	endpoint := registrationEndpoint(t, f.issuer)

	status, r, body := register(t, endpoint, umaTicketOnly())
	if status != http.StatusCreated {
		t.Fatalf("registration: %d %s", status, body)
	}
	// Wait out the lifetime Keycloak announced (whole seconds; a second more
	// so that "now" has passed it on Keycloak's clock too).
	time.Sleep(time.Until(time.Unix(r.ClientSecretExpiresAt+1, 0)))
	_, err := honestGrant(ctx, t, f, cp, r.ClientID, r.ClientSecret)
	if statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("grant with an expired registration: %v", err)
	}
	if status, _, body := register(t, endpoint, umaTicketOnly()); status != http.StatusCreated {
		t.Fatalf("registration after one expired: %d %s", status, body)
	}
	if clientExists(t, kc, f.name, r.ClientID) {
		t.Fatal("the expired registration was not deleted")
	}
	// The realm's own client still gets its grant.
	ticket := f.ticket(t)
	if _, err := f.grant(ctx, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)); err != nil {
		t.Fatalf("rqp-client's grant: %v", err)
	}
}

type adminClient struct {
	ID         string            `json:"id"`
	ClientID   string            `json:"clientId"`
	Attributes map[string]string `json:"attributes"`
}

func clients(t *testing.T, kc *launcher.Keycloak, realm, clientID string) []adminClient {
	t.Helper()
	path := "/" + realm + "/clients?max=1000"
	if clientID != "" {
		path += "&clientId=" + url.QueryEscape(clientID)
	}
	var out []adminClient
	if err := kc.Admin(testCtx(t), http.MethodGet, path, nil, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func clientCount(t *testing.T, kc *launcher.Keycloak, realm string) int {
	return len(clients(t, kc, realm, ""))
}

func clientExists(t *testing.T, kc *launcher.Keycloak, realm, clientID string) bool {
	return len(clients(t, kc, realm, clientID)) > 0
}

// statusOf is the HTTP status of a refusal (0 for success or no answer).
func statusOf(err error) int {
	var e *keycloak.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// TestOrganisationRealmPinsAndBlocks: in the bundle, discovery is on and a
// domain listed in UMAWIDE_CLAIMS_PROVIDERS is pinned (another issuer
// signing for it is refused without any discovery fetch), a domain in
// UMAWIDE_BLOCKED_DOMAINS is refused whoever signs; the pinned issuer's
// honest grant still succeeds right after; a domain both pinned and blocked
// makes the import fail.
func TestOrganisationRealmPinsAndBlocks(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := newClaimsProvider(t)
	f := orgRealm(t, kc, cp, map[string]string{"UMAWIDE_BLOCKED_DOMAINS": `["evil.example"]`})
	ctx := testCtx(t)

	other := newClaimsProvider(t)
	ticket := f.ticket(t)
	c := f.claims(other, ticket)
	f.expectDenied(t, ticket, pushed(t, other.signES256(esHeader(ecKID), c), nil), "domain_pinned")
	if n := other.jwksFetches.Load(); n != 0 {
		t.Fatalf("the other issuer's JWKS was fetched %d times", n)
	}

	ticket = f.ticket(t)
	c = f.claims(cp, ticket)
	c["email"] = "mallory@evil.example"
	f.expectDenied(t, ticket, pushed(t, cp.signES256(esHeader(ecKID), c), nil), "email_domain_blocked")

	ticket = f.ticket(t)
	if _, err := f.grant(ctx, ticket, pushed(t, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), nil)); err != nil {
		t.Fatalf("honest grant after the refusals: %v", err)
	}

	data, err := launcher.OrganisationRealmJSON(launcher.Organisation{Realm: "org-" + kctest.RandomHex(4), Domain: "bar.example",
		Vars: map[string]string{
			"UMAWIDE_CLAIMS_PROVIDERS":                 fmt.Sprintf(`[{"issuer":%q,"jwks_uri":%q,"domains":["foo.example"]}]`, cp.issuer, cp.jwksURI()),
			"UMAWIDE_BLOCKED_DOMAINS":                  `["foo.example"]`,
			"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.ImportRealm(ctx, data); err == nil {
		var named struct{ Realm string }
		_ = json.Unmarshal(data, &named)
		_ = kc.DeleteRealm(ctx, named.Realm)
		t.Fatal("a realm pinning and blocking foo.example was imported")
	}
}
