package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

var adminHTTP = &http.Client{Timeout: 30 * time.Second}

// AdminToken logs into the master realm's admin-cli with the admin credentials.
func (k *Keycloak) AdminToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type": {"password"},
		"client_id":  {"admin-cli"},
		"username":   {k.AdminUser},
		"password":   {k.AdminPassword},
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := k.do(ctx, http.MethodPost, "/realms/master/protocol/openid-connect/token", "",
		"application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &tok); err != nil {
		return "", fmt.Errorf("launcher: admin login: %w", err)
	}
	return tok.AccessToken, nil
}

// Admin calls the admin REST API (path below /admin/realms, e.g. "/bar/users")
// with a fresh admin token; body (if not nil) is sent as JSON and a JSON answer
// is decoded into out (if not nil).
func (k *Keycloak) Admin(ctx context.Context, method, path string, body, out any) error {
	tok, err := k.AdminToken(ctx)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	return k.do(ctx, method, "/admin/realms"+path, tok, "application/json", rd, out)
}

// ImportRealm creates a realm from a realm representation (JSON, placeholders
// already expanded: the admin API does not expand them).
func (k *Keycloak) ImportRealm(ctx context.Context, realmJSON []byte) error {
	return k.Admin(ctx, http.MethodPost, "", json.RawMessage(realmJSON), nil)
}

// DeleteRealm removes a realm.
func (k *Keycloak) DeleteRealm(ctx context.Context, realm string) error {
	return k.Admin(ctx, http.MethodDelete, "/"+url.PathEscape(realm), nil, nil)
}

// HTTPError is a non-2xx answer of Keycloak.
type HTTPError struct {
	Method, URL string
	StatusCode  int
	Body        string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, e.Body)
}

func (k *Keycloak) do(ctx context.Context, method, path, bearer, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, k.BaseURL+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := adminHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Method: method, URL: req.URL.String(), StatusCode: resp.StatusCode, Body: string(data)}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}`)

// ExpandPlaceholders resolves ${VAR} and ${VAR:default} the way Keycloak does
// when it imports a realm file at start: from vars, then the environment, then
// the default. An unresolved placeholder without default is left as it is.
func ExpandPlaceholders(data []byte, vars map[string]string) []byte {
	return placeholder.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := placeholder.FindSubmatch(m)
		name := string(sub[1])
		if v, ok := vars[name]; ok {
			return []byte(jsonEscape(v))
		}
		if v, ok := os.LookupEnv(name); ok {
			return []byte(jsonEscape(v))
		}
		if sub[2] != nil || bytes.Contains(m, []byte(":")) {
			return sub[2]
		}
		return m
	})
}

// jsonEscape makes v safe inside a JSON string literal.
func jsonEscape(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}
