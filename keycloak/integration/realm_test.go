package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/admin"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Demo credentials: the realm files' placeholder defaults.
const (
	alicePassword = "alice-password"
	bobPassword   = "bob-password"
	rqpSecret     = "rqp-client-secret"
	cpSecret      = "claims-provider-secret"
	rsSecret      = "resource-server-secret"
)

func runRealmSuite(t *testing.T, kc *launcher.Keycloak) {
	t.Run("bar publishes UMA configuration", func(t *testing.T) { testUMAConfiguration(t, kc) })
	t.Run("protection API and uma-ticket grant", func(t *testing.T) { testProtectionAndGrant(t, kc) })
	t.Run("claims-provider finds alice by exact email", func(t *testing.T) { testClaimsProviderUserQuery(t, kc) })
	t.Run("tokens for the Claims Provider carry its audience", func(t *testing.T) { testClaimsProviderAudience(t, kc) })
	t.Run("bob logs into incoming-app", func(t *testing.T) { testBobLogin(t, kc) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testUMAConfiguration(t *testing.T, kc *launcher.Keycloak) {
	var conf map[string]any
	testhttp.GetJSON(t, ctxT(t), kc.IssuerURL("bar")+"/.well-known/uma2-configuration", "", &conf)
	for _, k := range []string{"permission_endpoint", "token_endpoint", "resource_registration_endpoint"} {
		v, _ := conf[k].(string)
		if !strings.HasPrefix(v, kc.IssuerURL("bar")+"/") {
			t.Errorf("%s = %q, want an endpoint of realm bar", k, v)
		}
	}
	if conf["issuer"] != kc.IssuerURL("bar") {
		t.Errorf("issuer = %v, want %s", conf["issuer"], kc.IssuerURL("bar"))
	}
	grants, _ := conf["grant_types_supported"].([]any)
	if !slices.Contains(grants, any(uma.GrantTypeUMATicket)) {
		t.Errorf("grant_types_supported %v lacks %s", grants, uma.GrantTypeUMATicket)
	}
}

// testProtectionAndGrant runs seed steps 2 and 7-8 with the stock client
// policy, on a copy of realm bar imported under a fresh name: the permission
// of the shipped file may apply the claims-token policy, and other packages
// share this Keycloak's realm bar.
func testProtectionAndGrant(t *testing.T, kc *launcher.Keycloak) {
	ctx := ctxT(t)
	realm := stockBarCopy(t, kc)
	issuer := kc.IssuerURL(realm)

	pat, err := kctest.ClientCredentials(ctx, issuer, "resource-server", rsSecret, "")
	if err != nil {
		t.Fatalf("resource-server PAT: %v", err)
	}
	claims, _ := kctest.Claims(pat.AccessToken)
	if !hasClientRole(claims, "resource-server", "uma_protection") {
		t.Fatalf("PAT lacks resource-server/uma_protection: %v", claims["resource_access"])
	}

	// Register bob's Incoming as the Resource Server will.
	api := kctest.ProtectionAPI(issuer, "resource-server", rsSecret)
	created := kctest.RegisterIncoming(t, api, uma.IncomingResourceName("bob"), "bob", true)
	if created.ID == "" || created.Owner.Name != "bob" || !created.OwnerManagedAccess {
		t.Fatalf("registered resource = %+v, want an owner-managed resource of bob", created)
	}
	ticket := kctest.Ticket(t, api, created.ID)

	pushed := uma.PushedClaims{"k": {"v"}}
	claimToken, err := pushed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	grant := func(clientID, secret, claimToken string) (*kctest.TokenResponse, error) {
		return kctest.PostToken(ctx, issuer, clientID, secret, url.Values{
			uma.FormGrantType:        {uma.GrantTypeUMATicket},
			uma.FormTicket:           {ticket},
			uma.FormSubmitRequest:    {"false"},
			uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
			uma.FormClaimToken:       {claimToken},
		})
	}

	t.Run("rqp-client gets an RPT", func(t *testing.T) {
		rpt, err := grant("rqp-client", rqpSecret, claimToken)
		if err != nil {
			t.Fatalf("uma-ticket grant: %v", err)
		}
		c, err := kctest.Claims(rpt.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c["azp"] != "rqp-client" || c["iss"] != issuer {
			t.Errorf("RPT azp=%v iss=%v", c["azp"], c["iss"])
		}
		perms := permissions(c)
		if len(perms) != 1 {
			t.Fatalf("RPT permissions = %v, want one", perms)
		}
		p := perms[0]
		scopes, _ := p["scopes"].([]any)
		if p["rsid"] != created.ID || p["rsname"] != uma.IncomingResourceName("bob") || !slices.Contains(scopes, any(uma.ScopeCreate)) {
			t.Errorf("permission = %v, want rsid %s, scope create", p, created.ID)
		}
		pc, _ := p["claims"].(map[string]any)
		if v, _ := pc["k"].([]any); len(v) != 1 || v[0] != "v" {
			t.Errorf("pushed claims in permission = %v, want k=[v]", pc)
		}
	})
	t.Run("malformed claim_token is 400", func(t *testing.T) {
		_, err := grant("rqp-client", rqpSecret, "not-base64url-json!")
		wantStatus(t, err, http.StatusBadRequest)
	})
	t.Run("raw JWT as claim_token is 400", func(t *testing.T) {
		_, err := grant("rqp-client", rqpSecret, "eyJhbGciOiJub25lIn0.eyJrIjoidiJ9.")
		wantStatus(t, err, http.StatusBadRequest)
	})
	t.Run("client the policy does not admit is 403", func(t *testing.T) {
		_, err := grant("resource-server", rsSecret, claimToken)
		wantStatus(t, err, http.StatusForbidden)
	})
	t.Run("wrong client secret is 401", func(t *testing.T) {
		_, err := grant("rqp-client", "wrong", claimToken)
		wantStatus(t, err, http.StatusUnauthorized)
	})
}

// stockBarCopy imports realm bar's file under a fresh name, with its
// permission on scope create applying the stock client policy, and deletes it
// when the test ends.
func stockBarCopy(t *testing.T, kc *launcher.Keycloak) string {
	t.Helper()
	return kctest.ImportStockBar(t, kc)
}

func testClaimsProviderUserQuery(t *testing.T, kc *launcher.Keycloak) {
	ctx := ctxT(t)
	tok, err := kctest.ClientCredentials(ctx, kc.IssuerURL("foo"), "claims-provider", cpSecret, "")
	if err != nil {
		t.Fatalf("claims-provider service-account token: %v", err)
	}
	// The admin API as the Claims Provider's service account sees it.
	api := admin.New(admin.Config{KeycloakURL: kc.BaseURL, Token: keycloak.StaticToken(tok.AccessToken)})
	users, err := api.Users(ctx, "foo", admin.UserQuery{Email: "alice@foo.example", Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Username != "alice" || !users[0].EmailVerified {
		t.Fatalf("exact email query = %v, want alice with a verified email", users)
	}
	// Exact means exact: a prefix finds nobody.
	if users, err = api.Users(ctx, "foo", admin.UserQuery{Email: "alice@foo", Exact: true}); err != nil {
		t.Fatal(err)
	}
	if len(users) != 0 {
		t.Fatalf("exact query for a prefix found %v", users)
	}
	// Least privilege: it can read users, not change them.
	var refused *keycloak.Error
	err = api.Do(ctx, http.MethodPost, "/foo/users", map[string]any{"username": "mallory", "enabled": true}, nil)
	if !errors.As(err, &refused) || refused.StatusCode != http.StatusForbidden {
		t.Fatalf("claims-provider creating a user: %v, want 403", err)
	}
}

func testClaimsProviderAudience(t *testing.T, kc *launcher.Keycloak) {
	ctx := ctxT(t)
	foo := kc.IssuerURL("foo")
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Alice logs in with code and PKCE", func(t *testing.T) {
		tok, err := kctest.LoginForTokens(ctx, kctest.CodeFlow{
			Issuer: foo, ClientID: "rqp-client", ClientSecret: rqpSecret,
			RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/callback", port),
			Scope:       "openid " + uma.ClaimsProviderScope,
		}, "alice", alicePassword)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := kctest.Claims(tok.AccessToken)
		if !audContains(c, uma.ClaimsProviderAudience) {
			t.Errorf("Alice's token aud = %v, want %s in it", c["aud"], uma.ClaimsProviderAudience)
		}
		if c["email"] != "alice@foo.example" || c["email_verified"] != true || c["iss"] != foo {
			t.Errorf("Alice's token email=%v verified=%v iss=%v", c["email"], c["email_verified"], c["iss"])
		}
	})
	t.Run("login without PKCE is refused", func(t *testing.T) {
		q := url.Values{
			"client_id": {"rqp-client"}, "response_type": {"code"}, "scope": {"openid"},
			"redirect_uri": {fmt.Sprintf("http://127.0.0.1:%d/callback", port)},
		}
		// Keycloak answers with a redirect carrying an error, before any form.
		loc, err := kctest.NewBrowser().Login(ctx, foo+"/protocol/openid-connect/auth?"+q.Encode(), "alice", alicePassword)
		if err != nil {
			t.Fatalf("want an error redirect, got %v", err)
		}
		if loc.Query().Get("code") != "" || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("redirect %s: want error=invalid_request and no code", loc)
		}
	})
	t.Run("wrong password gets no code", func(t *testing.T) {
		_, err := kctest.LoginForTokens(ctx, kctest.CodeFlow{
			Issuer: foo, ClientID: "rqp-client", ClientSecret: rqpSecret,
			RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/callback", port), Scope: "openid",
		}, "alice", "not-her-password")
		if err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
	})
	t.Run("rqp-client client credentials", func(t *testing.T) {
		tok, err := kctest.ClientCredentials(ctx, foo, "rqp-client", rqpSecret, uma.ClaimsProviderScope)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := kctest.Claims(tok.AccessToken)
		if !audContains(c, uma.ClaimsProviderAudience) || c["azp"] != "rqp-client" {
			t.Errorf("client-credentials token aud=%v azp=%v", c["aud"], c["azp"])
		}
		// The scope is optional: a token not asked for the Claims Provider
		// cannot be replayed there.
		tok, err = kctest.ClientCredentials(ctx, foo, "rqp-client", rqpSecret, "")
		if err != nil {
			t.Fatal(err)
		}
		c, _ = kctest.Claims(tok.AccessToken)
		if audContains(c, uma.ClaimsProviderAudience) {
			t.Errorf("token without scope claims-provider has aud %v", c["aud"])
		}
	})
}

func testBobLogin(t *testing.T, kc *launcher.Keycloak) {
	ctx := ctxT(t)
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kctest.LoginForTokens(ctx, kctest.CodeFlow{
		Issuer: kc.IssuerURL("bar"), ClientID: "incoming-app",
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/", port), Scope: "openid",
	}, "bob", bobPassword)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := kctest.Claims(tok.AccessToken)
	if c["preferred_username"] != "bob" || c["iss"] != kc.IssuerURL("bar") || c["azp"] != "incoming-app" {
		t.Errorf("Bob's token preferred_username=%v iss=%v azp=%v", c["preferred_username"], c["iss"], c["azp"])
	}
}

// --- helpers ---

func permissions(claims map[string]any) []map[string]any {
	authz, _ := claims["authorization"].(map[string]any)
	list, _ := authz["permissions"].([]any)
	var out []map[string]any
	for _, p := range list {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func audContains(claims map[string]any, aud string) bool {
	switch v := claims["aud"].(type) {
	case string:
		return v == aud
	case []any:
		return slices.Contains(v, any(aud))
	}
	return false
}

func hasClientRole(claims map[string]any, client, role string) bool {
	ra, _ := claims["resource_access"].(map[string]any)
	c, _ := ra[client].(map[string]any)
	roles, _ := c["roles"].([]any)
	return slices.Contains(roles, any(role))
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var te *keycloak.Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a token endpoint refusal %d", err, status)
	}
	if te.StatusCode != status {
		t.Fatalf("status = %d (%s), want %d", te.StatusCode, te.Body, status)
	}
}
