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
//
// The calls themselves are internal/keycloak's (admin, protection, token);
// this package decides when to make them and what to remember.
package protection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/admin"
	kcprotection "github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/keycloak/token"
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
	cfg   Config
	admin *admin.Client
	api   *kcprotection.Client

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

// pat is the PAT cache; a PAT that cannot be had is Keycloak's failure
// (ErrUnreachable), whatever the token endpoint answered.
type pat struct{ *tokensource.Cache }

func (p pat) Token(ctx context.Context) (string, error) {
	tok, err := p.Cache.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: PAT: %w", ErrUnreachable, err)
	}
	return tok, nil
}

// unreachable marks Keycloak's own failures (no answer, 5xx) ErrUnreachable.
func unreachable(err error) error {
	if errors.Is(err, keycloak.ErrUnreachable) && !errors.Is(err, ErrUnreachable) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// status is the HTTP status of Keycloak's refusal in err; 0 if none.
func status(err error) int {
	var ke *keycloak.Error
	if errors.As(err, &ke) {
		return ke.StatusCode
	}
	return 0
}

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
	p := pat{tokensource.New(token.ClientCredentialsFetch(cfg.HTTPClient, token.Endpoint(issuer),
		cfg.ClientID, cfg.ClientSecret), tokensource.Options{})}
	return &Client{
		cfg:     cfg,
		admin:   admin.New(admin.Config{KeycloakURL: base, Token: p, HTTP: keycloak.HTTP{Client: cfg.HTTPClient, MaxResponse: maxResponse}}),
		api:     kcprotection.New(kcprotection.Config{Issuer: issuer, PAT: p, HTTP: keycloak.HTTP{Client: cfg.HTTPClient, MaxResponse: maxResponse}}),
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

// maxUserIDLen bounds the user id taken from Keycloak (its ids are 36
// characters; imported users may bring others).
const maxUserIDLen = 255

// userID is the id of the enabled, non-service-account user named owner.
func (c *Client) userID(ctx context.Context, owner string) (string, error) {
	users, err := c.admin.Users(ctx, c.cfg.Realm, admin.UserQuery{Username: owner, Exact: true, Max: 5})
	if err != nil {
		return "", fmt.Errorf("protection: user lookup: %w", unreachable(err))
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

// incomingRep is the representation of owner's Incoming, registered or
// updated: never owner-managed.
func incomingRep(owner, userID string) kcprotection.NewResource {
	return kcprotection.NewResource{
		Name:               uma.IncomingResourceName(userID),
		Type:               uma.ResourceTypeIncoming,
		Owner:              userID,
		OwnerManagedAccess: false,
		Scopes:             []string{uma.ScopeCreate},
		URIs:               []string{uma.IncomingPath(owner)},
	}
}

// findResource finds the user's Incoming by name and owner; one found
// owner-managed is updated to not owner-managed first.
//
// The owner is the user (his id) where Keycloak registered it as asked (up
// to 26.5), or this resource server itself: from 26.6 on (keycloak/keycloak
// #49121, #49910) the protection API ignores the owner of a resource a PAT
// registers and makes it the resource server's. The second look asks
// Keycloak for this client's own resources only (owner=client id: Keycloak
// resolves a client id before a username, so a user named like the client
// cannot plant one), and the answer must name this client as the owner.
func (c *Client) findResource(ctx context.Context, owner, userID string) (string, error) {
	name := uma.IncomingResourceName(userID)
	found, err := c.api.Resources(ctx, name, "", 20)
	if err != nil {
		return "", fmt.Errorf("protection: resource lookup: %w", unreachable(err))
	}
	r, ok := pick(found, name, func(r kcprotection.Resource) bool { return r.Owner.ID == userID })
	if !ok {
		found, err = c.api.Resources(ctx, name, c.cfg.ClientID, 20)
		if err != nil {
			return "", fmt.Errorf("protection: resource lookup: %w", unreachable(err))
		}
		r, ok = pick(found, name, func(r kcprotection.Resource) bool {
			return r.Owner.ID != "" && r.Owner.ID != userID && r.Owner.Name == c.cfg.ClientID
		})
	}
	if ok {
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
			if err := c.api.UpdateResource(ctx, r.ID, incomingRep(owner, userID)); err != nil {
				return "", fmt.Errorf("protection: making resource %s not owner-managed: %w", r.ID, unreachable(err))
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

// pick is the first resource of found named exactly name, with an id, whose
// owner ownerOK accepts.
func pick(found []kcprotection.Resource, name string, ownerOK func(kcprotection.Resource) bool) (kcprotection.Resource, bool) {
	for _, r := range found {
		if r.Name == name && r.ID != "" && ownerOK(r) {
			return r, true
		}
	}
	return kcprotection.Resource{}, false
}

// deletePermissionTickets deletes every permission ticket (share, pending
// or approved request) on a resource, a page at a time.
func (c *Client) deletePermissionTickets(ctx context.Context, resourceID string) error {
	const page, maxPages = 100, 1000
	for range maxPages {
		tickets, err := c.api.PermissionTickets(ctx, resourceID, 0, page)
		if err != nil {
			return fmt.Errorf("protection: listing permission tickets of %s: %w", resourceID, unreachable(err))
		}
		if len(tickets) == 0 {
			return nil
		}
		for _, id := range tickets {
			if err := c.api.DeletePermissionTicket(ctx, id); err != nil {
				return fmt.Errorf("protection: deleting permission ticket %s of %s: %w", id, resourceID, unreachable(err))
			}
		}
		c.cfg.Logger.Warn("permission tickets of a formerly owner-managed Incoming deleted", "resource_id", resourceID, "count", len(tickets))
	}
	return fmt.Errorf("protection: more than %d pages of permission tickets on %s", maxPages, resourceID)
}

var errConflict = errors.New("protection: resource exists")

func (c *Client) createResource(ctx context.Context, owner, userID string) (string, error) {
	created, err := c.api.CreateResource(ctx, incomingRep(owner, userID))
	if status(err) == http.StatusConflict {
		return "", errConflict
	}
	if err != nil {
		return "", fmt.Errorf("protection: register resource: %w", unreachable(err))
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
		if st := status(err); attempt == 0 && (st == http.StatusBadRequest || st == http.StatusNotFound) {
			// The cached resource may have been deleted in Keycloak: look again.
			c.cfg.Logger.Warn("permission ticket refused; forgetting the cached resource", "owner", owner, "status", st)
			c.Forget(owner)
			continue
		}
		return ticket, o, err
	}
}

func (c *Client) ticket(ctx context.Context, resourceID, incomingURL string) (string, error) {
	ticket, err := c.api.Ticket(ctx, kcprotection.Permission{
		ResourceID: resourceID,
		Scopes:     []string{uma.ScopeCreate},
		Claims:     map[string][]string{uma.ClaimIncomingURI: {incomingURL}},
	})
	if err != nil {
		return "", fmt.Errorf("protection: permission ticket: %w", unreachable(err))
	}
	if len(ticket) > maxTicketSize {
		return "", fmt.Errorf("protection: permission ticket: %d characters", len(ticket))
	}
	return ticket, nil
}

// maxAttributes bounds the attributes read back from a resource (names and
// values together): rules hold at most a few hundred values.
const maxAttributes = 2000

// ResourceAttributes are the attributes of the resource id as Keycloak
// keeps them (the owner rules among them: package rules).
func (c *Client) ResourceAttributes(ctx context.Context, resourceID string) (map[string][]string, error) {
	var rep struct {
		Attributes map[string][]string `json:"attributes"`
	}
	if err := c.api.GetResource(ctx, resourceID, &rep); err != nil {
		return nil, fmt.Errorf("protection: reading resource %s: %w", resourceID, unreachable(err))
	}
	n := 0
	for _, v := range rep.Attributes {
		n += 1 + len(v)
	}
	if n > maxAttributes {
		return nil, fmt.Errorf("protection: resource %s has %d attribute names and values", resourceID, n)
	}
	if rep.Attributes == nil {
		rep.Attributes = map[string][]string{}
	}
	return rep.Attributes, nil
}

// ReplaceResourceAttributes replaces the attributes of the resource id whose
// names start with prefix by attrs and keeps the rest of the resource as it
// is (read, changed, written back: the protection API replaces a resource
// as a whole). Two concurrent replacements: the last one wins.
func (c *Client) ReplaceResourceAttributes(ctx context.Context, resourceID, prefix string, attrs map[string][]string) error {
	var rep map[string]any
	if err := c.api.GetResource(ctx, resourceID, &rep); err != nil {
		return fmt.Errorf("protection: reading resource %s: %w", resourceID, unreachable(err))
	}
	out := map[string]any{}
	if old, ok := rep["attributes"].(map[string]any); ok {
		for k, v := range old {
			if !strings.HasPrefix(k, prefix) {
				out[k] = v
			}
		}
	}
	for k, v := range attrs {
		if !strings.HasPrefix(k, prefix) {
			return fmt.Errorf("protection: attribute %q outside %q", k, prefix)
		}
		out[k] = v
	}
	rep["attributes"] = out
	// Whatever the answer said, an Incoming stays not owner-managed.
	rep["ownerManagedAccess"] = false
	if err := c.api.UpdateResource(ctx, resourceID, rep); err != nil {
		return fmt.Errorf("protection: updating resource %s: %w", resourceID, unreachable(err))
	}
	return nil
}
