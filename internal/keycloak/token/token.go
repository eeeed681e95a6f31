// Package token is Keycloak's OpenID Connect token endpoint (RFC 6749 section
// 3.2), the one way umawide's Go code asks it for a token: the services'
// client-credentials tokens (through internal/tokensource), the launcher's
// admin login and every grant the tests send. See package keycloak for why
// it is written by hand.
package token

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/tokensource"
)

// Endpoint is the token endpoint of a realm's issuer URL
// (e.g. http://127.0.0.1:8080/realms/bar).
func Endpoint(issuer string) string {
	return strings.TrimRight(issuer, "/") + "/protocol/openid-connect/token"
}

// Response is the token endpoint's answer.
type Response struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

// ErrNoAccessToken is a 200 answer without access_token.
var ErrNoAccessToken = errors.New("token endpoint: answer without access_token")

// Request posts form to the token endpoint, authenticating the client with
// HTTP basic when secret is set (a public client puts its client_id in the
// form). A refusal is a *keycloak.Error carrying the OAuth error; no answer
// wraps keycloak.ErrUnreachable. hc nil means http.DefaultClient.
func Request(ctx context.Context, hc *http.Client, endpoint, clientID, secret string, form url.Values) (*Response, error) {
	c := keycloak.Call{Method: http.MethodPost, URL: endpoint, Form: form, Want: http.StatusOK}
	if secret != "" {
		c.BasicUser, c.BasicPassword = clientID, secret
	}
	var tok Response
	c.Out = &tok
	if err := keycloak.Do(ctx, hc, c); err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, ErrNoAccessToken
	}
	return &tok, nil
}

// RequestAs posts form to the token endpoint as the holder of bearer
// (Authorization: Bearer, no client authentication), as a user holding an
// access token may ask for an RPT. A refusal is not retried.
func RequestAs(ctx context.Context, hc *http.Client, endpoint, bearer string, form url.Values) (*Response, error) {
	var tok Response
	err := keycloak.Do(ctx, hc, keycloak.Call{Method: http.MethodPost, URL: endpoint, Form: form, Want: http.StatusOK,
		Bearer: keycloak.StaticToken(bearer), Refused: func(int, []byte) bool { return false }, Out: &tok})
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, ErrNoAccessToken
	}
	return &tok, nil
}

// ClientCredentials asks for a client-credentials token (scope, if set).
func ClientCredentials(ctx context.Context, hc *http.Client, endpoint, clientID, secret, scope string) (*Response, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return Request(ctx, hc, endpoint, clientID, secret, form)
}

// ClientCredentialsFetch is a tokensource.Fetch of client-credentials tokens:
// a service's own token (the Resource Server's PAT, the Claims Provider's
// service-account token), cached by a tokensource.Cache.
func ClientCredentialsFetch(hc *http.Client, endpoint, clientID, secret string) tokensource.Fetch {
	return func(ctx context.Context) (string, time.Duration, error) {
		tok, err := ClientCredentials(ctx, hc, endpoint, clientID, secret, "")
		if err != nil {
			return "", 0, err
		}
		return tok.AccessToken, time.Duration(tok.ExpiresIn) * time.Second, nil
	}
}
