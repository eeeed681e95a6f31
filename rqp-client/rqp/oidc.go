package rqp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Well-known paths of the two kinds of server metadata the client reads.
const (
	oidcConfigPath = "/.well-known/openid-configuration" // AuthN server (step 3)
	umaConfigPath  = "/.well-known/uma2-configuration"   // owner's AS (step 7)
	metadataTTL    = time.Hour
)

// serverMeta is the part of OpenID Connect / UMA 2.0 server metadata used.
type serverMeta struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
	fetched               time.Time
}

type metaCache struct {
	mu sync.Mutex
	m  map[string]*serverMeta
}

// metadata fetches (or reuses) issuer + path and checks that it names the
// same issuer and usable endpoints.
func (c *Client) metadata(ctx context.Context, step int, service, issuer, path string) (*serverMeta, *StepError) {
	key := path + " " + issuer
	c.meta.mu.Lock()
	if m, ok := c.meta.m[key]; ok && time.Since(m.fetched) < metadataTTL {
		c.meta.mu.Unlock()
		return m, nil
	}
	c.meta.mu.Unlock()

	u := strings.TrimSuffix(issuer, "/") + path
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, &StepError{Step: step, Name: StepName(step), Service: service, Kind: KindConfig, URL: redact(u), Err: err, Attempt: attemptOf(ctx)}
	}
	req.Header.Set("Accept", "application/json")
	a, se := c.do(ctx, step, service, req, c.cfg.Timeout, maxDiscoveryBytes)
	if se != nil {
		return nil, se
	}
	if a.resp.StatusCode != http.StatusOK {
		se := statusError(ctx, step, service, req, a)
		if se.Kind == KindRefused && a.resp.StatusCode == http.StatusNotFound {
			se.Kind = KindConfig // no such realm or not an issuer
		}
		return nil, se
	}
	var m serverMeta
	if err := decodeJSON(a.body, &m); err != nil {
		return nil, protocolError(ctx, step, service, u, a.resp.StatusCode, "metadata: %v", err)
	}
	if !sameIssuer(m.Issuer, issuer) {
		return nil, protocolError(ctx, step, service, u, a.resp.StatusCode, "metadata names issuer %q, want %q", clip(m.Issuer, 200), issuer)
	}
	if _, err := checkURL(m.TokenEndpoint, c.cfg.AllowInsecureHTTP); err != nil {
		return nil, protocolError(ctx, step, service, u, a.resp.StatusCode, "token_endpoint: %v", err)
	}
	if m.AuthorizationEndpoint != "" {
		if _, err := checkURL(m.AuthorizationEndpoint, c.cfg.AllowInsecureHTTP); err != nil {
			return nil, protocolError(ctx, step, service, u, a.resp.StatusCode, "authorization_endpoint: %v", err)
		}
	}
	m.fetched = time.Now()
	c.meta.mu.Lock()
	if c.meta.m == nil {
		c.meta.m = map[string]*serverMeta{}
	}
	c.meta.m[key] = &m
	c.meta.mu.Unlock()
	return &m, nil
}

// tokenAnswer is a token endpoint's success answer.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Upgraded    bool   `json:"upgraded"`
}

// tokenRequest posts a form to a token endpoint, authenticating with HTTP
// basic (RFC 6749 2.3.1) when there is a secret, else with client_id.
func (c *Client) tokenRequest(ctx context.Context, step int, service, endpoint, clientID, secret string, form url.Values) (*tokenAnswer, *answer, *http.Request, *StepError) {
	if secret == "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, nil, &StepError{Step: step, Name: StepName(step), Service: service, Kind: KindConfig, URL: redact(endpoint), Err: err, Attempt: attemptOf(ctx)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	a, se := c.do(ctx, step, service, req, c.cfg.Timeout, maxJSONBytes)
	if se != nil {
		return nil, nil, req, se
	}
	if a.resp.StatusCode != http.StatusOK {
		return nil, a, req, statusError(ctx, step, service, req, a)
	}
	var t tokenAnswer
	if err := decodeJSON(a.body, &t); err != nil {
		return nil, a, req, protocolError(ctx, step, service, endpoint, a.resp.StatusCode, "token answer: %v", err)
	}
	if t.AccessToken == "" || len(t.AccessToken) > maxTokenBytes {
		return nil, a, req, protocolError(ctx, step, service, endpoint, a.resp.StatusCode, "token answer without a usable access_token")
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "Bearer") {
		return nil, a, req, protocolError(ctx, step, service, endpoint, a.resp.StatusCode, "token_type %q, want Bearer", clip(t.TokenType, 50))
	}
	return &t, a, req, nil
}

// unverifiedClaims decodes a JWT's payload WITHOUT verifying it. The client
// uses it only for tokens it received directly from the issuing server on a
// connection it opened (OpenID Connect Core 3.1.3.7 allows relying on the
// TLS server for those), to pick a discovery domain and to describe steps;
// every decision about a token is taken by the server that receives it.
func unverifiedClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a compact JWS (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return claims, nil
}

func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// audContains: aud is a string or an array of strings.
func audContains(claims map[string]any, want string) bool {
	switch a := claims["aud"].(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
