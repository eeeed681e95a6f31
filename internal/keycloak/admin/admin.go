// Package admin is Keycloak's admin REST API (below /admin/realms), the one
// way umawide's Go code uses it: the user look-ups of the Claims Provider
// (by email) and the Resource Server (by username), and the realm import and
// delete of the launcher and the tests. See package keycloak for why it is
// written by hand.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/umawide/umawide/internal/keycloak"
)

// Config of a Client.
type Config struct {
	// KeycloakURL, e.g. http://127.0.0.1:8080 (no /admin or /realms).
	KeycloakURL string
	// Token authorizes every call: a service account's token with the
	// realm-management roles the calls need, or an admin's. A token Keycloak
	// refuses (401) is invalidated and the call sent once more.
	Token keycloak.TokenSource
	keycloak.HTTP
}

// Client calls the admin REST API.
type Client struct {
	cfg    Config
	realms string // the API's root: KeycloakURL/admin/realms
}

// New makes a Client; nothing is sent yet.
func New(cfg Config) *Client {
	return &Client{cfg: cfg, realms: strings.TrimRight(cfg.KeycloakURL, "/") + "/admin/realms"}
}

// Do calls path below /admin/realms (e.g. "/bar/users"; "" is the realm
// list): in, if not nil, is sent as JSON, a JSON answer is decoded into out,
// if not nil. Any 2xx is success; otherwise a *keycloak.Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return keycloak.Do(ctx, c.cfg.Client, keycloak.Call{
		Method: method, URL: c.realms + path, JSON: in, Out: out,
		Bearer: c.cfg.Token, Max: c.cfg.MaxResponse,
	})
}

// User is a user representation, as far as umawide reads it.
type User struct {
	ID                     string `json:"id,omitempty"`
	Username               string `json:"username,omitempty"`
	Email                  string `json:"email,omitempty"`
	EmailVerified          bool   `json:"emailVerified,omitempty"`
	Enabled                bool   `json:"enabled,omitempty"`
	FirstName              string `json:"firstName,omitempty"`
	LastName               string `json:"lastName,omitempty"`
	ServiceAccountClientID string `json:"serviceAccountClientId,omitempty"`
}

// UserQuery selects users (GET /admin/realms/{realm}/users); empty fields
// are not sent.
type UserQuery struct {
	Username, Email string
	// Exact matches Username and Email exactly instead of as substrings.
	Exact bool
	// Full asks for the full representation (briefRepresentation=false).
	Full bool
	// Max bounds the users answered; 0 leaves Keycloak's default.
	Max int
}

func (q UserQuery) values() url.Values {
	v := url.Values{}
	if q.Username != "" {
		v.Set("username", q.Username)
	}
	if q.Email != "" {
		v.Set("email", q.Email)
	}
	if q.Exact {
		v.Set("exact", "true")
	}
	if q.Full {
		v.Set("briefRepresentation", "false")
	}
	if q.Max > 0 {
		v.Set("max", strconv.Itoa(q.Max))
	}
	return v
}

func realmPath(realm string) string { return "/" + url.PathEscape(realm) }

// Users lists the users of realm that q selects (realm-management
// query-users and view-users).
func (c *Client) Users(ctx context.Context, realm string, q UserQuery) ([]User, error) {
	var users []User
	if err := c.Do(ctx, http.MethodGet, realmPath(realm)+"/users?"+q.values().Encode(), nil, &users); err != nil {
		return nil, err
	}
	return users, nil
}

// UserCount counts the users of realm that q selects.
func (c *Client) UserCount(ctx context.Context, realm string, q UserQuery) (int, error) {
	var n int
	err := c.Do(ctx, http.MethodGet, realmPath(realm)+"/users/count?"+q.values().Encode(), nil, &n)
	return n, err
}

// ImportRealm creates a realm from its representation (JSON, placeholders
// already expanded: the admin API does not expand them).
func (c *Client) ImportRealm(ctx context.Context, realmJSON []byte) error {
	return c.Do(ctx, http.MethodPost, "", json.RawMessage(realmJSON), nil)
}

// DeleteRealm removes a realm.
func (c *Client) DeleteRealm(ctx context.Context, realm string) error {
	return c.Do(ctx, http.MethodDelete, realmPath(realm), nil, nil)
}
