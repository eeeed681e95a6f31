// Package protection is the Resource Server's side of the UMA protection API
// at Keycloak: the PAT (client credentials of the resource server, cached and
// renewed by tokensource), the check that an owner is a user of the realm
// (admin API, service-account roles view-users/query-users), the registration
// of each owner's Incoming resource and the permission tickets for it.
//
// An owner's resource is registered once: concurrent first requests share one
// lookup-or-create (in this process), a resource another replica created is
// found by name, and the id is cached afterwards. Unknown owners are
// remembered for a short while so that probing names cannot flood Keycloak.
package protection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/tokensource"
	"github.com/umawide/umawide/internal/uma"
)

var (
	// ErrUnknownOwner: the owner is no enabled (non-service-account) user of the realm.
	ErrUnknownOwner = errors.New("protection: owner is not a user of the realm")
	// ErrUnreachable: Keycloak did not answer, or answered with a server error.
	ErrUnreachable = errors.New("protection: authorization server unreachable")
)

// Config of a Client.
type Config struct {
	// KeycloakURL is where this server reaches Keycloak (back channel),
	// e.g. http://127.0.0.1:8080.
	KeycloakURL string
	// Realm is the owners' realm (bar).
	Realm string
	// ClientID and ClientSecret of the resource server's client.
	ClientID, ClientSecret string
	// HTTPClient for every call; default an httpclient.New client with a
	// 10 s timeout.
	HTTPClient *http.Client
	// UnknownOwnerTTL is how long an unknown owner is remembered; default 30 s.
	UnknownOwnerTTL time.Duration
	// CallTimeout bounds one lookup-or-register; default 20 s.
	CallTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Client talks to the protection and admin APIs.
type Client struct {
	cfg      Config
	hc       *http.Client
	issuer   string // back-channel issuer URL: KeycloakURL/realms/{realm}
	adminURL string
	pat      *tokensource.Cache

	mu      sync.Mutex
	ids     map[string]string    // owner -> resource _id
	unknown map[string]time.Time // owner -> remembered until
	calls   map[string]*call     // owner -> lookup or registration under way
}

type call struct {
	done chan struct{}
	id   string
	err  error
}

const (
	maxResponse   = 1 << 20
	maxUnknown    = 10000
	maxTicketSize = 16 << 10
)

// New builds a Client; nothing is fetched yet.
func New(cfg Config) (*Client, error) {
	if cfg.KeycloakURL == "" || cfg.Realm == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("protection: KeycloakURL, Realm, ClientID and ClientSecret are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = httpclient.New(10 * time.Second)
	}
	if cfg.UnknownOwnerTTL == 0 {
		cfg.UnknownOwnerTTL = 30 * time.Second
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 20 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	base := strings.TrimRight(cfg.KeycloakURL, "/")
	issuer := base + "/realms/" + url.PathEscape(cfg.Realm)
	return &Client{
		cfg:      cfg,
		hc:       cfg.HTTPClient,
		issuer:   issuer,
		adminURL: base + "/admin/realms/" + url.PathEscape(cfg.Realm),
		pat: tokensource.New(tokensource.ClientCredentials(issuer+"/protocol/openid-connect/token",
			cfg.ClientID, cfg.ClientSecret, cfg.HTTPClient), tokensource.Options{}),
		ids:     map[string]string{},
		unknown: map[string]time.Time{},
		calls:   map[string]*call{},
	}, nil
}

// ResourceID returns the _id of owner's Incoming resource, registering it on
// first use. owner must already satisfy the server's owner-name rules.
func (c *Client) ResourceID(ctx context.Context, owner string) (string, error) {
	c.mu.Lock()
	if id, ok := c.ids[owner]; ok {
		c.mu.Unlock()
		return id, nil
	}
	if until, ok := c.unknown[owner]; ok {
		if time.Now().Before(until) {
			c.mu.Unlock()
			return "", ErrUnknownOwner
		}
		delete(c.unknown, owner)
	}
	cl, running := c.calls[owner]
	if !running {
		cl = &call{done: make(chan struct{})}
		c.calls[owner] = cl
		// The shared work must not die with the first caller's request.
		go c.resolve(context.WithoutCancel(ctx), owner, cl)
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.id, cl.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *Client) resolve(ctx context.Context, owner string, cl *call) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	id, err := c.lookupOrRegister(ctx, owner)
	c.mu.Lock()
	switch {
	case err == nil:
		c.ids[owner] = id
	case errors.Is(err, ErrUnknownOwner):
		if len(c.unknown) >= maxUnknown {
			clear(c.unknown)
		}
		c.unknown[owner] = time.Now().Add(c.cfg.UnknownOwnerTTL)
	}
	delete(c.calls, owner)
	c.mu.Unlock()
	cl.id, cl.err = id, err
	close(cl.done)
}

// Forget drops a cached resource id (the resource was deleted in Keycloak).
func (c *Client) Forget(owner string) {
	c.mu.Lock()
	delete(c.ids, owner)
	c.mu.Unlock()
}

func (c *Client) lookupOrRegister(ctx context.Context, owner string) (string, error) {
	if err := c.checkUser(ctx, owner); err != nil {
		return "", err
	}
	if id, err := c.findResource(ctx, owner); err != nil || id != "" {
		return id, err
	}
	id, err := c.createResource(ctx, owner)
	if errors.Is(err, errConflict) {
		// Another replica registered it meanwhile.
		if id, err = c.findResource(ctx, owner); err == nil && id == "" {
			err = fmt.Errorf("protection: resource %s conflicts but is not found", uma.IncomingResourceName(owner))
		}
	}
	if err == nil {
		c.cfg.Logger.Info("registered Incoming resource", "owner", owner, "resource_id", id)
	}
	return id, err
}

type userRep struct {
	Username               string `json:"username"`
	Enabled                bool   `json:"enabled"`
	ServiceAccountClientID string `json:"serviceAccountClientId"`
}

func (c *Client) checkUser(ctx context.Context, owner string) error {
	q := url.Values{"username": {owner}, "exact": {"true"}, "max": {"5"}}
	var users []userRep
	if err := c.do(ctx, http.MethodGet, c.adminURL+"/users?"+q.Encode(), nil, http.StatusOK, &users); err != nil {
		return fmt.Errorf("protection: user lookup: %w", err)
	}
	for _, u := range users {
		if u.Username == owner && u.Enabled && u.ServiceAccountClientID == "" {
			return nil
		}
	}
	return ErrUnknownOwner
}

type resourceRep struct {
	ID    string `json:"_id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Owner struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"owner"`
}

func (c *Client) findResource(ctx context.Context, owner string) (string, error) {
	name := uma.IncomingResourceName(owner)
	q := url.Values{"name": {name}, "exactName": {"true"}, "deep": {"true"}, "max": {"20"}}
	var found []resourceRep
	if err := c.do(ctx, http.MethodGet, c.issuer+"/authz/protection/resource_set?"+q.Encode(), nil, http.StatusOK, &found); err != nil {
		return "", fmt.Errorf("protection: resource lookup: %w", err)
	}
	for _, r := range found {
		if r.Name == name && r.Owner.Name == owner && r.ID != "" {
			return r.ID, nil
		}
	}
	return "", nil
}

var errConflict = errors.New("protection: resource exists")

func (c *Client) createResource(ctx context.Context, owner string) (string, error) {
	body := map[string]any{
		"name":               uma.IncomingResourceName(owner),
		"type":               uma.ResourceTypeIncoming,
		"owner":              owner,
		"ownerManagedAccess": true,
		"resource_scopes":    []string{uma.ScopeCreate},
		"uris":               []string{uma.IncomingPath(owner)},
	}
	var created resourceRep
	err := c.do(ctx, http.MethodPost, c.issuer+"/authz/protection/resource_set", body, http.StatusCreated, &created)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		return "", errConflict
	}
	if err != nil {
		return "", fmt.Errorf("protection: register resource: %w", err)
	}
	if created.ID == "" {
		return "", errors.New("protection: register resource: no _id in the answer")
	}
	return created.ID, nil
}

// Ticket returns a permission ticket for scope create on owner's Incoming,
// and the resource id it names.
func (c *Client) Ticket(ctx context.Context, owner string) (ticket, resourceID string, err error) {
	for attempt := 0; ; attempt++ {
		resourceID, err = c.ResourceID(ctx, owner)
		if err != nil {
			return "", "", err
		}
		ticket, err = c.ticket(ctx, resourceID)
		var se *statusError
		if attempt == 0 && errors.As(err, &se) && (se.status == http.StatusBadRequest || se.status == http.StatusNotFound) {
			// The cached resource may have been deleted in Keycloak: look again.
			c.cfg.Logger.Warn("permission ticket refused; forgetting the cached resource", "owner", owner, "status", se.status)
			c.Forget(owner)
			continue
		}
		return ticket, resourceID, err
	}
}

func (c *Client) ticket(ctx context.Context, resourceID string) (string, error) {
	body := []map[string]any{{"resource_id": resourceID, "resource_scopes": []string{uma.ScopeCreate}}}
	var out struct {
		Ticket string `json:"ticket"`
	}
	if err := c.do(ctx, http.MethodPost, c.issuer+"/authz/protection/permission", body, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("protection: permission ticket: %w", err)
	}
	if out.Ticket == "" || len(out.Ticket) > maxTicketSize {
		return "", fmt.Errorf("protection: permission ticket: %d characters", len(out.Ticket))
	}
	return out.Ticket, nil
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %.200s", e.status, e.body) }

// patRefused says Keycloak refused the PAT itself (revoked, or signed with
// keys it no longer has after a restart): the admin API answers 401, the
// protection API 403 invalid_bearer_token.
func patRefused(status int, body []byte) bool {
	if status == http.StatusUnauthorized {
		return true
	}
	var e struct {
		Error string `json:"error"`
	}
	return status == http.StatusForbidden && json.Unmarshal(body, &e) == nil && e.Error == "invalid_bearer_token"
}

// do sends one call with the PAT; a refused PAT (patRefused) is renewed and
// the call retried once.
func (c *Client) do(ctx context.Context, method, u string, in any, want int, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		pat, err := c.pat.Token(ctx)
		if err != nil {
			return fmt.Errorf("%w: PAT: %w", ErrUnreachable, err)
		}
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+pat)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%w: reading the answer: %w", ErrUnreachable, err)
		}
		if len(data) > maxResponse {
			return fmt.Errorf("protection: answer longer than %d bytes", maxResponse)
		}
		switch {
		case attempt == 0 && patRefused(resp.StatusCode, data):
			c.pat.Invalidate()
			continue
		case resp.StatusCode >= 500:
			return fmt.Errorf("%w: %w", ErrUnreachable, &statusError{resp.StatusCode, string(data)})
		case resp.StatusCode != want:
			return &statusError{resp.StatusCode, string(data)}
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("protection: decoding the answer: %w", err)
			}
		}
		return nil
	}
}
