// Package protection is Keycloak's UMA protection API (below
// /realms/{realm}/authz/protection), the one way umawide's Go code uses it:
// resource registration and look-up and permission tickets, for the
// Resource Server and the tests. The caller brings the PAT (the resource
// server client's own token). See package keycloak for why it is written by
// hand.
package protection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/umawide/umawide/internal/keycloak"
)

// Config of a Client.
type Config struct {
	// Issuer is the realm's URL as this process reaches it, e.g.
	// http://127.0.0.1:8080/realms/bar.
	Issuer string
	// PAT authorizes every call. Keycloak refuses a PAT it no longer
	// accepts (revoked, or signed with keys it lost in a restart) with 401,
	// or 403 invalid_bearer_token; the PAT is then invalidated and the call
	// sent once more.
	PAT keycloak.TokenSource
	keycloak.HTTP
}

// Client calls the protection API.
type Client struct {
	cfg  Config
	base string
}

// New makes a Client; nothing is sent yet.
func New(cfg Config) *Client {
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.Issuer, "/") + "/authz/protection"}
}

// NewResource is a resource to register.
type NewResource struct {
	Name               string   `json:"name"`
	Type               string   `json:"type,omitempty"`
	Owner              string   `json:"owner,omitempty"`
	OwnerManagedAccess bool     `json:"ownerManagedAccess"`
	Scopes             []string `json:"resource_scopes,omitempty"`
	URIs               []string `json:"uris,omitempty"`
}

// Resource is a registered resource as the API answers it.
type Resource struct {
	ID    string `json:"_id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Owner struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"owner"`
	OwnerManagedAccess bool `json:"ownerManagedAccess"`
}

// Permission asks for scopes of a resource in a ticket request; Claims, if
// set, are signed into the ticket.
type Permission struct {
	ResourceID string              `json:"resource_id"`
	Scopes     []string            `json:"resource_scopes"`
	Claims     map[string][]string `json:"claims,omitempty"`
}

// ErrEmptyAnswer is a success without the id or ticket it should carry.
var ErrEmptyAnswer = errors.New("protection API: answer without id or ticket")

// patRefused says Keycloak refused the PAT itself: the protection API
// answers 403 invalid_bearer_token (401 where the token is missing).
func patRefused(status int, body []byte) bool {
	if status == http.StatusUnauthorized {
		return true
	}
	var e struct {
		Error string `json:"error"`
	}
	return status == http.StatusForbidden && json.Unmarshal(body, &e) == nil && e.Error == "invalid_bearer_token"
}

func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	return keycloak.Do(ctx, c.cfg.Client, keycloak.Call{
		Method: method, URL: c.base + path, JSON: in, Want: want, Out: out,
		Bearer: c.cfg.PAT, Refused: patRefused, Max: c.cfg.MaxResponse,
	})
}

// CreateResource registers r and returns it as registered. A resource of
// that name and owner already there is a *keycloak.Error with status 409.
// Keycloak 26.6 and later ignore r.Owner: the resource is the caller's (the
// resource server's, with a PAT); see keycloak/keycloak#49121 and #49910.
func (c *Client) CreateResource(ctx context.Context, r NewResource) (Resource, error) {
	var created Resource
	if err := c.do(ctx, http.MethodPost, "/resource_set", r, http.StatusCreated, &created); err != nil {
		return Resource{}, err
	}
	if created.ID == "" {
		return Resource{}, fmt.Errorf("register resource %s: %w", r.Name, ErrEmptyAnswer)
	}
	return created, nil
}

// Resources lists the resources named exactly name (at most max, 0 for
// Keycloak's default), with their owners. owner, if set, is a client id or
// a username (not an id): Keycloak resolves it, a client first, and lists
// only that owner's resources.
func (c *Client) Resources(ctx context.Context, name, owner string, max int) ([]Resource, error) {
	q := url.Values{"name": {name}, "exactName": {"true"}, "deep": {"true"}}
	if owner != "" {
		q.Set("owner", owner)
	}
	if max > 0 {
		q.Set("max", strconv.Itoa(max))
	}
	var found []Resource
	err := c.do(ctx, http.MethodGet, "/resource_set?"+q.Encode(), nil, http.StatusOK, &found)
	return found, err
}

// GetResource reads the resource id as Keycloak represents it into out (a
// Resource, or a map to change and send back with UpdateResource).
func (c *Client) GetResource(ctx context.Context, id string, out any) error {
	return c.do(ctx, http.MethodGet, "/resource_set/"+url.PathEscape(id), nil, http.StatusOK, out)
}

// UpdateResource replaces the resource id by rep.
func (c *Client) UpdateResource(ctx context.Context, id string, rep any) error {
	return c.do(ctx, http.MethodPut, "/resource_set/"+url.PathEscape(id), rep, http.StatusNoContent, nil)
}

// PermissionTickets lists up to max permission tickets (shares, pending or
// approved requests) on the resource id, from the first.
func (c *Client) PermissionTickets(ctx context.Context, resourceID string, first, max int) ([]string, error) {
	q := url.Values{"resourceId": {resourceID}, "first": {strconv.Itoa(first)}, "max": {strconv.Itoa(max)}}
	var tickets []struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodGet, "/permission/ticket?"+q.Encode(), nil, http.StatusOK, &tickets); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tickets))
	for _, t := range tickets {
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// DeletePermissionTicket deletes the permission ticket id.
func (c *Client) DeletePermissionTicket(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/permission/ticket/"+url.PathEscape(id), nil, http.StatusNoContent, nil)
}

// Ticket asks for a permission ticket for perms.
func (c *Client) Ticket(ctx context.Context, perms ...Permission) (string, error) {
	var out struct {
		Ticket string `json:"ticket"`
	}
	if err := c.do(ctx, http.MethodPost, "/permission", perms, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if out.Ticket == "" {
		return "", fmt.Errorf("permission ticket: %w", ErrEmptyAnswer)
	}
	return out.Ticket, nil
}
