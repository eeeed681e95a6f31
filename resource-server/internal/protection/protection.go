// Package protection is the Resource Server's side of the UMA protection API
// at Keycloak: the PAT (client credentials of the resource server, cached and
// renewed by tokensource), the resolution of an owner's username to his
// Keycloak user id (admin API, service-account roles view-users/query-users),
// the registration of each owner's Incoming resource and the permission
// tickets for it.
//
// Owners are keyed by user id (issue 12, finding 8): the Incoming resource is
// named incoming:{user id}, owned by that id, with uris /incoming/{username},
// and is never owner-managed (ownerManagedAccess false, so Keycloak
// evaluates the policies for every permission on it: no sharing, no
// owner-approved requests, no pending tickets). A resource found with
// ownerManagedAccess true (registered by an earlier version) is updated to
// false before any ticket names it. A bob deleted and created again is
// another user id, so another, empty Incoming.
//
// An owner is resolved once per OwnerTTL: concurrent first requests share
// one lookup-or-create (in this process), a resource another replica created
// is found by name, and the result is cached until OwnerTTL passes (then the
// username is looked up again: a re-created user gets his own Incoming
// within OwnerTTL at the latest) or Refresh or a refused ticket forgets it.
// Unknown owners are remembered for a short while so that probing names
// cannot flood Keycloak.
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
	"strconv"
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
	// OwnerTTL is how long a resolved owner (user id and resource id) is
	// used before the username is looked up again; default DefaultOwnerTTL.
	OwnerTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
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
	owners  map[string]cached    // username -> resolved owner
	unknown map[string]time.Time // username -> remembered until
	calls   map[string]*call     // username -> lookup or registration under way
}

// Owner is a resolved owner: his Keycloak user id and the id of his
// Incoming resource.
type Owner struct {
	UserID     string
	ResourceID string
}

type cached struct {
	owner Owner
	until time.Time
}

type call struct {
	done  chan struct{}
	owner Owner
	err   error
}

// DefaultOwnerTTL: a user deleted and created again under the same name is
// seen within this time (sooner where a ticket for his old resource is
// refused or a reader's token names the new id).
const DefaultOwnerTTL = 30 * time.Second

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
	if cfg.OwnerTTL == 0 {
		cfg.OwnerTTL = DefaultOwnerTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
		owners:  map[string]cached{},
		unknown: map[string]time.Time{},
		calls:   map[string]*call{},
	}, nil
}

// Owner resolves owner (a username that already satisfies the server's
// owner-name rules) to his user id and Incoming resource id, registering the
// resource on first use.
func (c *Client) Owner(ctx context.Context, owner string) (Owner, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	prev, known := c.owners[owner]
	if known && now.Before(prev.until) {
		c.mu.Unlock()
		return prev.owner, nil
	}
	if until, ok := c.unknown[owner]; ok {
		if now.Before(until) {
			c.mu.Unlock()
			return Owner{}, ErrUnknownOwner
		}
		delete(c.unknown, owner)
	}
	cl, running := c.calls[owner]
	if !running {
		cl = &call{done: make(chan struct{})}
		c.calls[owner] = cl
		var last *Owner
		if known {
			last = &prev.owner
		}
		// The shared work must not die with the first caller's request.
		go c.resolve(context.WithoutCancel(ctx), owner, last, cl)
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.owner, cl.err
	case <-ctx.Done():
		return Owner{}, ctx.Err()
	}
}

// Refresh looks owner's user id up again now (joining a look-up under way)
// and returns the result: for a reader whose token names another user id
// than the cached one (the user may have been deleted and created again).
func (c *Client) Refresh(ctx context.Context, owner string) (Owner, error) {
	c.mu.Lock()
	if e, ok := c.owners[owner]; ok {
		e.until = time.Time{} // expired, but still the "last" the look-up compares with
		c.owners[owner] = e
	}
	c.mu.Unlock()
	return c.Owner(ctx, owner)
}

func (c *Client) resolve(ctx context.Context, owner string, last *Owner, cl *call) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	o, err := c.lookupOrRegister(ctx, owner, last)
	c.mu.Lock()
	switch {
	case err == nil:
		c.owners[owner] = cached{owner: o, until: c.cfg.Now().Add(c.cfg.OwnerTTL)}
	case errors.Is(err, ErrUnknownOwner):
		delete(c.owners, owner)
		if len(c.unknown) >= maxUnknown {
			clear(c.unknown)
		}
		c.unknown[owner] = c.cfg.Now().Add(c.cfg.UnknownOwnerTTL)
	}
	delete(c.calls, owner)
	c.mu.Unlock()
	cl.owner, cl.err = o, err
	close(cl.done)
}

// Forget drops a cached owner (his resource was deleted in Keycloak).
func (c *Client) Forget(owner string) {
	c.mu.Lock()
	delete(c.owners, owner)
	c.mu.Unlock()
}

// lookupOrRegister resolves the username to the user id, then finds the
// user's resource (made not owner-managed where someone switched it back
// since: checked again every OwnerTTL) or registers it.
func (c *Client) lookupOrRegister(ctx context.Context, owner string, last *Owner) (Owner, error) {
	userID, err := c.userID(ctx, owner)
	if err != nil {
		return Owner{}, err
	}
	if last != nil && last.UserID != userID {
		c.cfg.Logger.Warn("owner's user id changed: a new user of that name gets his own Incoming",
			"owner", owner, "old_user_id", last.UserID, "user_id", userID)
	}
	id, err := c.findResource(ctx, owner, userID)
	if err != nil || id != "" {
		return Owner{UserID: userID, ResourceID: id}, err
	}
	id, err = c.createResource(ctx, owner, userID)
	if errors.Is(err, errConflict) {
		// Another replica registered it meanwhile.
		if id, err = c.findResource(ctx, owner, userID); err == nil && id == "" {
			err = fmt.Errorf("protection: resource %s conflicts but is not found", uma.IncomingResourceName(userID))
		}
	}
	if err != nil {
		return Owner{}, err
	}
	c.cfg.Logger.Info("registered Incoming resource", "owner", owner, "user_id", userID, "resource_id", id)
	return Owner{UserID: userID, ResourceID: id}, nil
}

type userRep struct {
	ID                     string `json:"id"`
	Username               string `json:"username"`
	Enabled                bool   `json:"enabled"`
	ServiceAccountClientID string `json:"serviceAccountClientId"`
}

// maxUserIDLen bounds the user id taken from Keycloak (its ids are 36
// characters; imported users may bring others).
const maxUserIDLen = 255

// userID is the id of the enabled, non-service-account user named owner.
func (c *Client) userID(ctx context.Context, owner string) (string, error) {
	q := url.Values{"username": {owner}, "exact": {"true"}, "max": {"5"}}
	var users []userRep
	if err := c.do(ctx, http.MethodGet, c.adminURL+"/users?"+q.Encode(), nil, http.StatusOK, &users); err != nil {
		return "", fmt.Errorf("protection: user lookup: %w", err)
	}
	for _, u := range users {
		if u.Username == owner && u.Enabled && u.ServiceAccountClientID == "" {
			if u.ID == "" || len(u.ID) > maxUserIDLen || strings.ContainsFunc(u.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
				return "", fmt.Errorf("protection: user lookup: unusable id %q for %s", u.ID, owner)
			}
			return u.ID, nil
		}
	}
	return "", ErrUnknownOwner
}

type resourceRep struct {
	ID                 string `json:"_id"`
	Name               string `json:"name"`
	Type               string `json:"type"`
	OwnerManagedAccess bool   `json:"ownerManagedAccess"`
	Owner              struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"owner"`
}

// incomingRep is the representation of owner's Incoming, registered or
// updated: never owner-managed.
func incomingRep(owner, userID string) map[string]any {
	return map[string]any{
		"name":               uma.IncomingResourceName(userID),
		"type":               uma.ResourceTypeIncoming,
		"owner":              userID,
		"ownerManagedAccess": false,
		"resource_scopes":    []string{uma.ScopeCreate},
		"uris":               []string{uma.IncomingPath(owner)},
	}
}

// findResource finds the user's Incoming by name and owner id; one found
// owner-managed is updated to not owner-managed first.
func (c *Client) findResource(ctx context.Context, owner, userID string) (string, error) {
	name := uma.IncomingResourceName(userID)
	q := url.Values{"name": {name}, "exactName": {"true"}, "deep": {"true"}, "max": {"20"}}
	var found []resourceRep
	if err := c.do(ctx, http.MethodGet, c.issuer+"/authz/protection/resource_set?"+q.Encode(), nil, http.StatusOK, &found); err != nil {
		return "", fmt.Errorf("protection: resource lookup: %w", err)
	}
	for _, r := range found {
		if r.Name != name || r.Owner.ID != userID || r.ID == "" {
			continue
		}
		if r.OwnerManagedAccess {
			// Registered by an earlier version: with owner-managed access
			// Keycloak grants shared and owner-approved permissions without
			// evaluating the policies (issue 12).
			// Shares granted while it was owner-managed stay in force after
			// the switch and refuse every honest grant (keycloak/extension
			// README, "Roads to an RPT"): they go first, and once more after
			// the switch, when no new one can be created.
			if err := c.deletePermissionTickets(ctx, r.ID); err != nil {
				return "", err
			}
			if err := c.do(ctx, http.MethodPut, c.issuer+"/authz/protection/resource_set/"+url.PathEscape(r.ID),
				incomingRep(owner, userID), http.StatusNoContent, nil); err != nil {
				return "", fmt.Errorf("protection: making resource %s not owner-managed: %w", r.ID, err)
			}
			if err := c.deletePermissionTickets(ctx, r.ID); err != nil {
				return "", err
			}
			c.cfg.Logger.Warn("Incoming resource was owner-managed; updated to ownerManagedAccess false",
				"owner", owner, "user_id", userID, "resource_id", r.ID)
		}
		return r.ID, nil
	}
	return "", nil
}

// deletePermissionTickets deletes every permission ticket (share, pending
// or approved request) on a resource, a page at a time.
func (c *Client) deletePermissionTickets(ctx context.Context, resourceID string) error {
	const page, maxPages = 100, 1000
	for range maxPages {
		q := url.Values{"resourceId": {resourceID}, "first": {"0"}, "max": {strconv.Itoa(page)}}
		var tickets []struct {
			ID string `json:"id"`
		}
		if err := c.do(ctx, http.MethodGet, c.issuer+"/authz/protection/permission/ticket?"+q.Encode(), nil, http.StatusOK, &tickets); err != nil {
			return fmt.Errorf("protection: listing permission tickets of %s: %w", resourceID, err)
		}
		if len(tickets) == 0 {
			return nil
		}
		for _, t := range tickets {
			if err := c.do(ctx, http.MethodDelete, c.issuer+"/authz/protection/permission/ticket/"+url.PathEscape(t.ID), nil, http.StatusNoContent, nil); err != nil {
				return fmt.Errorf("protection: deleting permission ticket %s of %s: %w", t.ID, resourceID, err)
			}
		}
		c.cfg.Logger.Warn("permission tickets of a formerly owner-managed Incoming deleted", "resource_id", resourceID, "count", len(tickets))
	}
	return fmt.Errorf("protection: more than %d pages of permission tickets on %s", maxPages, resourceID)
}

var errConflict = errors.New("protection: resource exists")

func (c *Client) createResource(ctx context.Context, owner, userID string) (string, error) {
	var created resourceRep
	err := c.do(ctx, http.MethodPost, c.issuer+"/authz/protection/resource_set", incomingRep(owner, userID), http.StatusCreated, &created)
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
// carrying the claim incoming_uri = incomingURL (the Resource Server's
// canonical URL of that Incoming: Keycloak signs it into the ticket, the
// client and the claims-token policy compare it with the URL the client
// chose), and the owner it names.
func (c *Client) Ticket(ctx context.Context, owner, incomingURL string) (ticket string, o Owner, err error) {
	for attempt := 0; ; attempt++ {
		o, err = c.Owner(ctx, owner)
		if err != nil {
			return "", Owner{}, err
		}
		ticket, err = c.ticket(ctx, o.ResourceID, incomingURL)
		var se *statusError
		if attempt == 0 && errors.As(err, &se) && (se.status == http.StatusBadRequest || se.status == http.StatusNotFound) {
			// The cached resource may have been deleted in Keycloak: look again.
			c.cfg.Logger.Warn("permission ticket refused; forgetting the cached resource", "owner", owner, "status", se.status)
			c.Forget(owner)
			continue
		}
		return ticket, o, err
	}
}

func (c *Client) ticket(ctx context.Context, resourceID, incomingURL string) (string, error) {
	body := []map[string]any{{
		"resource_id":     resourceID,
		"resource_scopes": []string{uma.ScopeCreate},
		"claims":          map[string][]string{uma.ClaimIncomingURI: {incomingURL}},
	}}
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
