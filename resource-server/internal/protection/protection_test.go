package protection

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/keycloak/admin"
	"github.com/umawide/umawide/internal/uma"
)

// fakeKC is a minimal Keycloak: token endpoint, admin user query, protection
// API resource_set and permission.
type fakeKC struct {
	t     *testing.T
	mu    sync.Mutex
	users map[string]admin.User
	res   map[string]string // owner's user id -> resource id
	// kc266 behaves like Keycloak 26.6 and later: a resource registered
	// with the PAT is the resource server's (owner rsOwnerID), whatever
	// owner it names; rsRes holds those, resource name -> id.
	kc266    bool
	rsRes    map[string]string
	omas     map[string]bool // resource ids registered owner-managed (by an earlier version)
	updates  atomic.Int32
	claims   map[string][]string // of the last ticket request
	tokens   atomic.Int32
	userGets atomic.Int32
	creates  atomic.Int32
	tickets  atomic.Int32
	// knobs
	rejectPAT    atomic.Int32 // answer 401 to this many protection calls
	forbidPAT    atomic.Int32 // answer 403 invalid_bearer_token (Keycloak's protection API) to this many calls
	forbidden    atomic.Int32 // answer 403 not_authorized to this many calls
	conflictOnce atomic.Bool  // first create answers 409 after registering
	fail500      atomic.Bool
	failUpdate   atomic.Bool
	createDelay  time.Duration
	staleIDs     map[string]bool
	// permission tickets (shares) per resource id, as ids
	shares map[string][]string
}

func newFake(t *testing.T) (*fakeKC, *httptest.Server) {
	f := &fakeKC{t: t, users: map[string]admin.User{
		"bob":                        {ID: "u-bob", Username: "bob", Enabled: true},
		"dora":                       {ID: "u-dora", Username: "dora", Enabled: false},
		"service-account-rqp-client": {ID: "u-sa", Username: "service-account-rqp-client", Enabled: true, ServiceAccountClientID: "rqp-client"},
		"robot":                      {ID: "u-robot", Username: "robot", Enabled: true, ServiceAccountClientID: "robot"},
	}, res: map[string]string{}, rsRes: map[string]string{}, omas: map[string]bool{}, staleIDs: map[string]bool{}, shares: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeKC) serve(w http.ResponseWriter, r *http.Request) {
	if f.fail500.Load() {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	if r.URL.Path == "/realms/bar/protocol/openid-connect/token" {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "resource-server" || secret != "s3cret" {
			http.Error(w, `{"error":"unauthorized_client"}`, http.StatusUnauthorized)
			return
		}
		n := f.tokens.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"access_token": "pat-" + string(rune('0'+n)), "expires_in": 300, "token_type": "Bearer"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer pat-") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.rejectPAT.Load() > 0 {
		f.rejectPAT.Add(-1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.forbidPAT.Load() > 0 {
		f.forbidPAT.Add(-1)
		http.Error(w, `{"error":"invalid_bearer_token","error_description":"Could not obtain bearer access_token from request."}`, http.StatusForbidden)
		return
	}
	if f.forbidden.Load() > 0 {
		f.forbidden.Add(-1)
		http.Error(w, `{"error":"not_authorized"}`, http.StatusForbidden)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/admin/realms/bar/users":
		f.userGets.Add(1)
		if r.URL.Query().Get("exact") != "true" {
			f.t.Errorf("user query without exact=true: %s", r.URL)
		}
		var out []admin.User
		f.mu.Lock()
		if u, ok := f.users[r.URL.Query().Get("username")]; ok {
			out = append(out, u)
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodGet && r.URL.Path == "/realms/bar/authz/protection/resource_set":
		name, ownerQ := r.URL.Query().Get("name"), r.URL.Query().Get("owner")
		out := []map[string]any{}
		f.mu.Lock()
		// owner= is a client id or a username; Keycloak resolves the client first.
		if id, ok := f.rsRes[name]; ok && (ownerQ == "" || ownerQ == "resource-server") {
			out = append(out, map[string]any{"_id": id, "name": name, "ownerManagedAccess": f.omas[id],
				"owner": map[string]any{"id": rsOwnerID, "name": "resource-server"}})
		}
		for owner, id := range f.res {
			if uma.IncomingResourceName(owner) == name && (ownerQ == "" || f.users[ownerQ].ID == owner) {
				out = append(out, map[string]any{"_id": id, "name": name, "ownerManagedAccess": f.omas[id],
					"owner": map[string]any{"id": owner, "name": f.usernameLocked(owner)}})
			}
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && r.URL.Path == "/realms/bar/authz/protection/resource_set":
		var in struct {
			Name, Type, Owner  string
			OwnerManagedAccess bool
			Scopes             []string `json:"resource_scopes"`
			URIs               []string
		}
		json.NewDecoder(r.Body).Decode(&in)
		f.checkRep(in.Name, in.Type, in.Owner, in.OwnerManagedAccess, in.Scopes, in.URIs)
		time.Sleep(f.createDelay)
		f.creates.Add(1)
		f.mu.Lock()
		defer f.mu.Unlock()
		id := "rid-" + strings.TrimPrefix(in.Owner, "u-")
		if f.kc266 {
			if _, ok := f.rsRes[in.Name]; ok {
				http.Error(w, `{"error":"conflict"}`, http.StatusConflict)
				return
			}
			f.rsRes[in.Name] = id
		} else {
			if _, ok := f.res[in.Owner]; ok {
				http.Error(w, `{"error":"conflict"}`, http.StatusConflict)
				return
			}
			f.res[in.Owner] = id
		}
		if f.conflictOnce.CompareAndSwap(true, false) {
			http.Error(w, `{"error":"conflict"}`, http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"_id": id, "name": in.Name})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/realms/bar/authz/protection/resource_set/"):
		var in struct {
			Name, Type, Owner  string
			OwnerManagedAccess bool
			Scopes             []string `json:"resource_scopes"`
			URIs               []string
		}
		json.NewDecoder(r.Body).Decode(&in)
		f.checkRep(in.Name, in.Type, in.Owner, in.OwnerManagedAccess, in.Scopes, in.URIs)
		if f.failUpdate.Load() {
			http.Error(w, `{"error":"not_authorized"}`, http.StatusForbidden)
			return
		}
		f.updates.Add(1)
		f.mu.Lock()
		f.omas[strings.TrimPrefix(r.URL.Path, "/realms/bar/authz/protection/resource_set/")] = in.OwnerManagedAccess
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && r.URL.Path == "/realms/bar/authz/protection/permission/ticket":
		out := []map[string]any{}
		f.mu.Lock()
		for _, id := range f.shares[r.URL.Query().Get("resourceId")] {
			out = append(out, map[string]any{"id": id, "resource": r.URL.Query().Get("resourceId"), "granted": true})
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/realms/bar/authz/protection/permission/ticket/"):
		id := strings.TrimPrefix(r.URL.Path, "/realms/bar/authz/protection/permission/ticket/")
		f.mu.Lock()
		defer f.mu.Unlock()
		for rid, ids := range f.shares {
			if i := slices.Index(ids, id); i >= 0 {
				f.shares[rid] = slices.Delete(ids, i, i+1)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
	case r.Method == http.MethodPost && r.URL.Path == "/realms/bar/authz/protection/permission":
		var in []struct {
			ResourceID string              `json:"resource_id"`
			Scopes     []string            `json:"resource_scopes"`
			Claims     map[string][]string `json:"claims"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		stale := len(in) == 1 && f.staleIDs[in[0].ResourceID]
		if len(in) == 1 {
			f.claims = in[0].Claims
			if f.omas[in[0].ResourceID] {
				f.t.Errorf("ticket asked for the owner-managed resource %s", in[0].ResourceID)
			}
		}
		f.mu.Unlock()
		if len(in) != 1 || stale {
			http.Error(w, `{"error":"invalid_resource_id"}`, http.StatusBadRequest)
			return
		}
		f.tickets.Add(1)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"ticket": "ticket-for-" + in[0].ResourceID})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeKC) usernameLocked(id string) string {
	for name, u := range f.users {
		if u.ID == id {
			return name
		}
	}
	return ""
}

func (f *fakeKC) username(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usernameLocked(id)
}

// checkRep: an Incoming is named by and owned by the user id, never
// owner-managed, scope create, its uri the username's path.
func (f *fakeKC) checkRep(name, typ, owner string, oma bool, scopes, uris []string) {
	if name != uma.IncomingResourceName(owner) || typ != uma.ResourceTypeIncoming || oma ||
		len(scopes) != 1 || scopes[0] != "create" || len(uris) != 1 || uris[0] != "/incoming/"+f.username(owner) {
		f.t.Errorf("resource representation %q %q %q oma=%v %v %v", name, typ, owner, oma, scopes, uris)
	}
}

const bobURL = "http://rs.test/incoming/bob"

// rsOwnerID is the resource server client's id (not its client id).
const rsOwnerID = "c-rs"

func newClient(t *testing.T, url string) *Client {
	c, err := New(Config{KeycloakURL: url, Realm: "bar", ClientID: "resource-server", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConcurrentFirstRequestsRegisterOnce(t *testing.T) {
	f, srv := newFake(t)
	f.createDelay = 50 * time.Millisecond
	c := newClient(t, srv.URL)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	errs := make([]error, 50)
	for i := range ids {
		wg.Go(func() {
			var o Owner
			o, errs[i] = c.Owner(context.Background(), "bob")
			ids[i] = o.ResourceID
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != "rid-bob" {
			t.Fatalf("call %d: %q %v", i, ids[i], errs[i])
		}
	}
	if f.creates.Load() != 1 || f.userGets.Load() != 1 {
		t.Fatalf("%d creates, %d user lookups; want 1 each", f.creates.Load(), f.userGets.Load())
	}
	// Cached: no further calls, one PAT for everything.
	tk, o, err := c.Ticket(context.Background(), "bob", bobURL)
	if err != nil || o != (Owner{UserID: "u-bob", ResourceID: "rid-bob"}) || tk != "ticket-for-rid-bob" {
		t.Fatalf("ticket %q %+v %v", tk, o, err)
	}
	if len(f.claims) != 1 || len(f.claims["incoming_uri"]) != 1 || f.claims["incoming_uri"][0] != bobURL {
		t.Fatalf("ticket request claims %v, want incoming_uri [%s]", f.claims, bobURL)
	}
	if f.creates.Load() != 1 || f.userGets.Load() != 1 || f.tokens.Load() != 1 {
		t.Fatalf("after cache: %d creates, %d user lookups, %d PATs", f.creates.Load(), f.userGets.Load(), f.tokens.Load())
	}
}

func TestExistingResourceIsFound(t *testing.T) {
	f, srv := newFake(t)
	f.res["u-bob"] = "rid-existing"
	c := newClient(t, srv.URL)
	o, err := c.Owner(context.Background(), "bob")
	if err != nil || o.ResourceID != "rid-existing" || f.creates.Load() != 0 || f.updates.Load() != 0 {
		t.Fatalf("owner %+v err %v creates %d updates %d", o, err, f.creates.Load(), f.updates.Load())
	}
}

func TestConflictLooksUpAgain(t *testing.T) {
	f, srv := newFake(t)
	f.conflictOnce.Store(true)
	c := newClient(t, srv.URL)
	o, err := c.Owner(context.Background(), "bob")
	if err != nil || o.ResourceID != "rid-bob" {
		t.Fatalf("owner %+v err %v", o, err)
	}
}

func TestUnknownOwners(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL)
	for _, o := range []string{"nobody", "dora", "robot", "service-account-rqp-client"} {
		for range 3 {
			if _, err := c.Owner(context.Background(), o); !errors.Is(err, ErrUnknownOwner) {
				t.Fatalf("%s: %v, want ErrUnknownOwner", o, err)
			}
		}
	}
	if n := f.userGets.Load(); n != 4 {
		t.Fatalf("%d user lookups for 4 unknown owners asked 3 times each; want 4 (remembered)", n)
	}
	if f.creates.Load() != 0 {
		t.Fatal("a resource was registered for an unknown owner")
	}
}

func TestUnknownOwnerForgottenAfterTTL(t *testing.T) {
	f, srv := newFake(t)
	c, _ := New(Config{KeycloakURL: srv.URL, Realm: "bar", ClientID: "resource-server", ClientSecret: "s3cret", UnknownOwnerTTL: time.Millisecond})
	if _, err := c.Owner(context.Background(), "carol"); !errors.Is(err, ErrUnknownOwner) {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.users["carol"] = admin.User{ID: "u-carol", Username: "carol", Enabled: true}
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	if _, err := c.Owner(context.Background(), "carol"); err != nil {
		t.Fatalf("new user still unknown: %v", err)
	}
}

func TestRejectedPATIsRenewed(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL)
	if _, err := c.Owner(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	f.rejectPAT.Store(1)
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); err != nil {
		t.Fatalf("ticket after a 401: %v", err)
	}
	if f.tokens.Load() != 2 {
		t.Fatalf("%d PATs fetched, want 2 (renewed after the 401)", f.tokens.Load())
	}
}

// TestPATRefusedWith403IsRenewed: after a restart with new keys, Keycloak's
// protection API refuses the old PAT with 403 invalid_bearer_token, not 401;
// the PAT is renewed all the same. Another 403 is an answer, not retried.
func TestPATRefusedWith403IsRenewed(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL)
	if _, err := c.Owner(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	f.forbidPAT.Store(1)
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); err != nil {
		t.Fatalf("ticket after a 403 invalid_bearer_token: %v", err)
	}
	if f.tokens.Load() != 2 {
		t.Fatalf("%d PATs fetched, want 2 (renewed after the 403)", f.tokens.Load())
	}
	f.forbidden.Store(1)
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); err == nil {
		t.Fatal("ticket despite 403 not_authorized")
	}
	if f.tokens.Load() != 2 || f.forbidden.Load() != 0 {
		t.Fatalf("%d PATs fetched after a 403 not_authorized, want still 2", f.tokens.Load())
	}
}

func TestStaleResourceIsRegisteredAgain(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL)
	if _, err := c.Owner(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	// Deleted in Keycloak behind our back.
	f.mu.Lock()
	f.staleIDs["rid-bob"] = true
	delete(f.res, "u-bob")
	f.mu.Unlock()
	_, _, err := c.Ticket(context.Background(), "bob", bobURL)
	// The fake gives the same id again, still stale: the second refusal is
	// reported, not retried forever.
	if err == nil {
		t.Fatal("ticket for a stale resource succeeded")
	}
	if f.creates.Load() != 2 {
		t.Fatalf("%d creates, want 2 (registered again once)", f.creates.Load())
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, url)
	_, _, err := c.Ticket(context.Background(), "bob", bobURL)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("closed port: %v, want ErrUnreachable", err)
	}

	f, srv2 := newFake(t)
	f.fail500.Store(true)
	c = newClient(t, srv2.URL)
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("500: %v, want ErrUnreachable", err)
	}
	// Not remembered as unknown: a recovered Keycloak is asked again.
	f.fail500.Store(false)
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestWrongSecret(t *testing.T) {
	_, srv := newFake(t)
	c, _ := New(Config{KeycloakURL: srv.URL, Realm: "bar", ClientID: "resource-server", ClientSecret: "wrong"})
	if _, _, err := c.Ticket(context.Background(), "bob", bobURL); err == nil || errors.Is(err, ErrUnknownOwner) {
		t.Fatalf("wrong client secret: %v", err)
	}
}

func TestCallerCancelDoesNotBreakOthers(t *testing.T) {
	f, srv := newFake(t)
	f.createDelay = 100 * time.Millisecond
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := c.Owner(ctx, "bob"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	o, err := c.Owner(context.Background(), "bob")
	if err != nil || o.ResourceID != "rid-bob" || f.creates.Load() != 1 {
		t.Fatalf("second caller: %+v %v, %d creates", o, err, f.creates.Load())
	}
}

// TestOwnerManagedResourceIsUpdated: an Incoming registered owner-managed
// (by an earlier version) is made not owner-managed before a ticket names it.
func TestOwnerManagedResourceIsUpdated(t *testing.T) {
	f, srv := newFake(t)
	f.res["u-bob"] = "rid-old"
	f.omas["rid-old"] = true
	f.shares["rid-old"] = []string{"share-1", "share-2"}
	f.shares["rid-other"] = []string{"share-3"}
	c := newClient(t, srv.URL)
	tk, o, err := c.Ticket(context.Background(), "bob", bobURL)
	if err != nil || o.ResourceID != "rid-old" || tk != "ticket-for-rid-old" {
		t.Fatalf("ticket %q %+v %v", tk, o, err)
	}
	// Shares made while it was owner-managed outlive the switch: gone.
	if len(f.shares["rid-old"]) != 0 || len(f.shares["rid-other"]) != 1 {
		t.Fatalf("permission tickets left: %v", f.shares)
	}
	if f.updates.Load() != 1 || f.omas["rid-old"] || f.creates.Load() != 0 {
		t.Fatalf("%d updates (owner-managed now %v), %d creates; want 1, false, 0", f.updates.Load(), f.omas["rid-old"], f.creates.Load())
	}
	// A refused update is no ticket.
	f2, srv2 := newFake(t)
	f2.res["u-bob"] = "rid-old"
	f2.omas["rid-old"] = true
	f2.failUpdate.Store(true)
	c2 := newClient(t, srv2.URL)
	if _, _, err := c2.Ticket(context.Background(), "bob", bobURL); err == nil {
		t.Fatal("ticket although Keycloak refused")
	}
	if f2.tickets.Load() != 0 {
		t.Fatal("a ticket was asked for")
	}
}

// TestRecreatedUserGetsOwnIncoming: bob deleted and created again is another
// user id; once OwnerTTL passed (or on Refresh), his own Incoming is
// registered and the old one is no longer named.
func TestRecreatedUserGetsOwnIncoming(t *testing.T) {
	f, srv := newFake(t)
	now := time.Unix(1_000_000, 0)
	c, err := New(Config{KeycloakURL: srv.URL, Realm: "bar", ClientID: "resource-server", ClientSecret: "s3cret",
		OwnerTTL: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Owner(context.Background(), "bob")
	if err != nil || first.UserID != "u-bob" {
		t.Fatalf("first bob %+v %v", first, err)
	}
	f.mu.Lock()
	f.users["bob"] = admin.User{ID: "u-bob-2", Username: "bob", Enabled: true}
	f.mu.Unlock()
	// Within OwnerTTL the cache answers, without calls.
	gets := f.userGets.Load()
	if o, _ := c.Owner(context.Background(), "bob"); o != first || f.userGets.Load() != gets {
		t.Fatalf("within the TTL: %+v, %d user look-ups", o, f.userGets.Load()-gets)
	}
	// After it, the new id and a new resource.
	now = now.Add(time.Minute + time.Second)
	second, err := c.Owner(context.Background(), "bob")
	if err != nil || second.UserID != "u-bob-2" || second.ResourceID == first.ResourceID || f.creates.Load() != 2 {
		t.Fatalf("after the TTL: %+v %v, %d creates", second, err, f.creates.Load())
	}
	// Same user after another TTL: the same resource, checked again (one
	// switched back to owner-managed meanwhile is updated again).
	f.mu.Lock()
	f.omas[second.ResourceID] = true
	f.mu.Unlock()
	now = now.Add(2 * time.Minute)
	creates := f.creates.Load()
	if o, err := c.Owner(context.Background(), "bob"); err != nil || o != second || f.creates.Load() != creates || f.omas[second.ResourceID] {
		t.Fatalf("unchanged user: %+v %v, owner-managed %v", o, err, f.omas[second.ResourceID])
	}
	// Refresh looks up at once.
	f.mu.Lock()
	f.users["bob"] = admin.User{ID: "u-bob-3", Username: "bob", Enabled: true}
	f.mu.Unlock()
	third, err := c.Refresh(context.Background(), "bob")
	if err != nil || third.UserID != "u-bob-3" {
		t.Fatalf("refresh: %+v %v", third, err)
	}
	// Deleted: unknown.
	f.mu.Lock()
	delete(f.users, "bob")
	f.mu.Unlock()
	if _, err := c.Refresh(context.Background(), "bob"); !errors.Is(err, ErrUnknownOwner) {
		t.Fatalf("deleted user: %v", err)
	}
}

// TestResourceServerOwnedIncoming (Keycloak 26.6 and later): the Incoming
// registered with the PAT is the resource server's; a new process finds it
// instead of failing on the conflict.
func TestResourceServerOwnedIncoming(t *testing.T) {
	f, srv := newFake(t)
	f.kc266 = true
	o, err := newClient(t, srv.URL).Owner(context.Background(), "bob")
	if err != nil || o != (Owner{UserID: "u-bob", ResourceID: "rid-bob"}) {
		t.Fatalf("first process: %+v %v", o, err)
	}
	// Another replica, or this one restarted: nothing cached.
	o, err = newClient(t, srv.URL).Owner(context.Background(), "bob")
	if err != nil || o.ResourceID != "rid-bob" || f.creates.Load() != 1 {
		t.Fatalf("second process: %+v %v, %d creates; want rid-bob, 1", o, err, f.creates.Load())
	}
	// Registered by both at once: the loser finds the winner's.
	f2, srv2 := newFake(t)
	f2.kc266 = true
	f2.conflictOnce.Store(true)
	if o, err := newClient(t, srv2.URL).Owner(context.Background(), "bob"); err != nil || o.ResourceID != "rid-bob" {
		t.Fatalf("after a conflict: %+v %v", o, err)
	}
}
