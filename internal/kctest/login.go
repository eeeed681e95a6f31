package kctest

import (
	"context"
	"fmt"
	"net/url"

	"github.com/umawide/umawide/internal/formlogin"
	"github.com/umawide/umawide/internal/keycloak/token"
	"github.com/umawide/umawide/internal/pkce"
)

// PKCE is an RFC 7636 verifier and its S256 challenge.
type PKCE struct{ Verifier, Challenge string }

// NewPKCE makes a fresh verifier (internal/pkce).
func NewPKCE() PKCE {
	v := pkce.NewVerifier()
	return PKCE{Verifier: v, Challenge: pkce.Challenge(v)}
}

// Browser drives Keycloak's login pages over HTTP the way a browser would
// (internal/formlogin: cookies, redirects inside Keycloak, the login form) and
// stops at the redirect back to the client.
type Browser struct{}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser() *Browser { return &Browser{} }

// Login opens authURL (an authorization request), submits username and
// password on Keycloak's login form and returns the redirect it answers with:
// the client's redirect URI carrying code and state (or an error).
func (b *Browser) Login(ctx context.Context, authURL, username, password string) (*url.URL, error) {
	loc, err := formlogin.Submit(ctx, nil, authURL, username, password)
	if err != nil {
		return nil, err
	}
	return url.Parse(loc)
}

// CodeFlow describes an authorization code + PKCE login at a realm.
type CodeFlow struct {
	Issuer       string // e.g. kc.IssuerURL("foo")
	ClientID     string
	ClientSecret string // empty for a public client
	RedirectURI  string // e.g. http://127.0.0.1:5555/callback (any loopback port)
	Scope        string // e.g. "openid email claims-provider"
}

// TokenResponse is the token endpoint's answer (internal/keycloak/token's).
type TokenResponse = token.Response

// LoginForTokens runs the whole code flow for a user with a new browser and
// returns the tokens: what Alice (or Bob) does in a real browser.
func LoginForTokens(ctx context.Context, f CodeFlow, username, password string) (*TokenResponse, error) {
	pk := NewPKCE()
	state := NewPKCE().Verifier[:16]
	q := url.Values{
		"client_id":             {f.ClientID},
		"redirect_uri":          {f.RedirectURI},
		"response_type":         {"code"},
		"scope":                 {f.Scope},
		"state":                 {state},
		"code_challenge":        {pk.Challenge},
		"code_challenge_method": {"S256"},
	}
	loc, err := NewBrowser().Login(ctx, f.Issuer+"/protocol/openid-connect/auth?"+q.Encode(), username, password)
	if err != nil {
		return nil, err
	}
	if got := loc.Query().Get("state"); got != state {
		return nil, fmt.Errorf("kctest: state mismatch in %s", loc)
	}
	code := loc.Query().Get("code")
	if code == "" {
		return nil, fmt.Errorf("kctest: no code in redirect %s", loc)
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.RedirectURI},
		"code_verifier": {pk.Verifier},
		"client_id":     {f.ClientID},
	}
	return PostToken(ctx, f.Issuer, f.ClientID, f.ClientSecret, form)
}

// ClientCredentials gets a client-credentials token at a realm's issuer.
func ClientCredentials(ctx context.Context, issuer, clientID, secret, scope string) (*TokenResponse, error) {
	return token.ClientCredentials(ctx, nil, token.Endpoint(issuer), clientID, secret, scope)
}

// PostToken posts a form to a realm's token endpoint, with basic client
// authentication when secret is set. A refusal is a *keycloak.Error.
func PostToken(ctx context.Context, issuer, clientID, secret string, form url.Values) (*TokenResponse, error) {
	return token.Request(ctx, nil, token.Endpoint(issuer), clientID, secret, form)
}
