package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/kctest"
	kcprotection "github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/rpt"
)

// permissionClaims is the claims object of the RPT's only permission.
func permissionClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	c, err := kctest.Claims(tok)
	must(t, err == nil, "RPT payload: %v", err)
	authz, _ := c["authorization"].(map[string]any)
	perms, _ := authz["permissions"].([]any)
	must(t, len(perms) == 1, "permissions %v", perms)
	p, _ := perms[0].(map[string]any)
	cl, _ := p["claims"].(map[string]any)
	return cl
}

// TestTicketCarriesIncomingURI: the Resource Server pushes incoming_uri with
// its permission request, and Keycloak signs it into the ticket's JWS
// payload as the top-level member "claims": {"incoming_uri": ["<url>"]}.
func TestTicketCarriesIncomingURI(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{publicURL: "https://rs.bar.example"})
	ch := challenge(t, s.url, "bob")
	c, err := kctest.Claims(ch.Ticket)
	must(t, err == nil, "ticket payload: %v", err)
	payload, _ := json.Marshal(c)
	t.Logf("ticket payload: %s", payload)
	cl, _ := c["claims"].(map[string]any)
	must(t, cl != nil, "no claims member in the ticket: %s", payload)
	vals, _ := cl[uma.ClaimIncomingURI].([]any)
	must(t, len(vals) == 1 && vals[0] == "https://rs.bar.example/incoming/bob", "ticket claims %v", cl)
	must(t, ticketIncomingURI(t, ch.Ticket) == "https://rs.bar.example/incoming/bob", "helper reads %q", ticketIncomingURI(t, ch.Ticket))

	// What the stock policy's RPT carries of it: log it for the extension's
	// side (the claims-token policy writes incoming_uri itself).
	tok := r.rpt(t, ch.Ticket, uma.PushedClaims{uma.ClaimIncomingURI: nil})
	t.Logf("RPT permission claims (ticket claim, nothing pushed for incoming_uri): %v", permissionClaims(t, tok))
	tok = r.rpt(t, challenge(t, s.url, "bob").Ticket, uma.PushedClaims{uma.ClaimIncomingURI: {"https://other.example/incoming/hr"}})
	t.Logf("RPT permission claims (ticket claim, another incoming_uri pushed): %v", permissionClaims(t, tok))
}

// userID is the Keycloak id of username in the realm copy ("" when none).
func (r *realmEnv) userID(t *testing.T, username string) string {
	t.Helper()
	var users []struct{ ID, Username string }
	err := r.kc.Admin(ctxT(t), http.MethodGet, "/"+r.realm+"/users?exact=true&username="+url.QueryEscape(username), nil, &users)
	must(t, err == nil, "user look-up: %v", err)
	for _, u := range users {
		if u.Username == username {
			return u.ID
		}
	}
	return ""
}

type resourceRep struct {
	ID                 string   `json:"_id"`
	Name               string   `json:"name"`
	OwnerManagedAccess bool     `json:"ownerManagedAccess"`
	URIs               []string `json:"uris"`
	Owner              struct{ ID, Name string }
	Scopes             []struct{ Name string } `json:"resource_scopes"`
}

func (r *realmEnv) resource(t *testing.T, id string) resourceRep {
	t.Helper()
	var rep resourceRep
	must(t, r.protectionAPI().GetResource(ctxT(t), id, &rep) == nil, "resource %s", id)
	return rep
}

// TestIncomingsNotOwnerManaged: a new Incoming is registered with
// ownerManagedAccess false, named and owned by the user id; one found
// owner-managed (an earlier version registered it) is updated to false
// before the first ticket, keeping its id, scope and uri.
func TestIncomingsNotOwnerManaged(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	bobID := r.userID(t, "bob")
	must(t, bobID != "", "no bob")
	challenge(t, s.url, "bob")
	ids := r.resourcesNamed(t, "incoming:"+bobID)
	must(t, len(ids) == 1, "resources %v", ids)
	rep := r.resource(t, ids[0])
	must(t, !rep.OwnerManagedAccess && rep.Owner.ID == bobID && len(rep.URIs) == 1 && rep.URIs[0] == "/incoming/bob",
		"registered %+v", rep)

	r.createUser(t, "carol")
	carolID := r.userID(t, "carol")
	api := r.protectionAPI()
	created, err := api.CreateResource(ctxT(t), kcprotection.NewResource{
		Name: "incoming:" + carolID, Type: uma.ResourceTypeIncoming, Owner: carolID, OwnerManagedAccess: true,
		Scopes: []string{uma.ScopeCreate}, URIs: []string{"/incoming/carol"},
	})
	must(t, err == nil, "register carol's Incoming: %v", err)
	must(t, r.resource(t, created.ID).OwnerManagedAccess, "set-up: not owner-managed")
	// Carol shared it with bob while it was owner-managed: that share would
	// outlive the switch and refuse every honest grant.
	pat, err := kctest.ClientCredentials(ctxT(t), r.issuer, "resource-server", rsSecret, "")
	must(t, err == nil, "PAT: %v", err)
	share, _ := json.Marshal(map[string]any{
		"resource": created.ID, "requesterName": "bob", "granted": true, "scopeName": uma.ScopeCreate,
	})
	a := testhttp.Send(t, ctxT(t), http.MethodPost, r.issuer+"/authz/protection/permission/ticket", pat.AccessToken,
		share, http.Header{"Content-Type": {"application/json"}})
	must(t, a.Status/100 == 2, "share: %s", a)
	tickets := func() int {
		list, err := api.PermissionTickets(ctxT(t), created.ID, 0, 100)
		must(t, err == nil, "permission tickets: %v", err)
		return len(list)
	}
	must(t, tickets() == 1, "set-up: the share is not there")
	ch := challenge(t, s.url, "carol")
	must(t, tickets() == 0, "%d permission tickets left on the Incoming after it stopped being owner-managed", tickets())
	rep = r.resource(t, created.ID)
	must(t, !rep.OwnerManagedAccess && rep.Name == "incoming:"+carolID && rep.Owner.ID == carolID &&
		len(rep.URIs) == 1 && rep.URIs[0] == "/incoming/carol" && len(rep.Scopes) == 1 && rep.Scopes[0].Name == uma.ScopeCreate,
		"after the first challenge %+v", rep)
	must(t, len(r.resourcesNamed(t, "incoming:"+carolID)) == 1, "registered again")
	// Its ticket works and names that resource.
	body := []byte("to carol")
	tok := r.rpt(t, ch.Ticket, boundClaims(body))
	resp := call(t, http.MethodPost, s.url+"/incoming/carol", tok, body, nil)
	must(t, resp.status == 201, "push: %d %s", resp.status, resp.body)
}

// TestInvariantThroughKeycloak: RPTs issued by Keycloak (stock policy,
// pushed claims copied into the permission, as an owner-approved or
// otherwise policy-free road would) that lack a part of the invariant are
// refused with 403 and the reason, nothing is stored, and an honest push
// succeeds right after each; two RPTs of one grant store one message.
func TestInvariantThroughKeycloak(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	body := []byte("the invariant")
	count := func() int {
		l, err := s.store.List(ctxT(t), s.ownerID(t, "bob"), 0)
		must(t, err == nil, "%v", err)
		return len(l)
	}
	honest := func(t *testing.T) {
		t.Helper()
		tok := r.rpt(t, challenge(t, s.url, "bob").Ticket, boundClaims(body))
		resp := call(t, http.MethodPost, s.url+"/incoming/bob", tok, body, nil)
		must(t, resp.status == 201, "honest push: %d %s", resp.status, resp.body)
	}
	cases := []struct {
		name   string
		claims uma.PushedClaims
		reason string
	}{
		{"pushed sender only (owner-approved road)", uma.PushedClaims{uma.ClaimSenderEmail: {"ceo@partner.example"}, uma.ClaimSenderIss: nil, uma.ClaimSenderSub: nil}, rpt.ReasonSenderUnverified},
		{"no content binding", uma.PushedClaims{uma.ClaimContentSHA256: nil, uma.ClaimContentLength: nil}, rpt.ReasonContentUnbound},
		{"relayed: another Incoming's URL", uma.PushedClaims{uma.ClaimIncomingURI: {"https://other.example/incoming/hr"}}, rpt.ReasonIncomingURIMismatch},
		{"no grant_id", uma.PushedClaims{uma.ClaimGrantID: nil}, rpt.ReasonGrantUnbound},
		{"every claim, copied without the policy's grant_mac", uma.PushedClaims{grantmac.Claim: nil}, rpt.ReasonGrantUnattested},
		{"every claim and a forged grant_mac", uma.PushedClaims{grantmac.Claim: {"w7hDO8ogIRrFT3tD7908y0lGYvFs1TXpXsHlaqTJawA"}}, rpt.ReasonGrantUnattested},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := count()
			claims := boundClaims(body)
			for k, v := range tc.claims {
				claims[k] = v
			}
			tok := r.rpt(t, challenge(t, s.url, "bob").Ticket, claims)
			resp := call(t, http.MethodPost, s.url+"/incoming/bob", tok, body, nil)
			var e uma.Error
			_ = json.Unmarshal(resp.body, &e)
			must(t, resp.status == 403 && e.Code == uma.ErrInsufficientScope && strings.HasSuffix(e.Description, "("+tc.reason+")"),
				"%d %s, want 403 (%s)", resp.status, resp.body, tc.reason)
			must(t, count() == before, "stored on refusal")
			honest(t)
		})
	}
	t.Run("two RPTs of one grant", func(t *testing.T) {
		claims := boundClaims(body)
		claims.Set(uma.ClaimGrantID, "AAAAAAAAAAAAAAAAAAAAAA")
		first := r.rpt(t, challenge(t, s.url, "bob").Ticket, claims)
		second := r.rpt(t, challenge(t, s.url, "bob").Ticket, claims)
		before := count()
		resp := call(t, http.MethodPost, s.url+"/incoming/bob", first, body, nil)
		must(t, resp.status == 201, "first: %d %s", resp.status, resp.body)
		resp = call(t, http.MethodPost, s.url+"/incoming/bob", second, body, nil)
		must(t, resp.status == 401 && strings.Contains(string(resp.body), "rpt_replayed"), "second: %d %s", resp.status, resp.body)
		must(t, count() == before+1, "%d stored, want 1", count()-before)
		honest(t)
	})
}

// TestRecreatedOwner (finding 8): bob deleted and created again in a realm
// copy is another user: his Incoming is empty, the old Bob's messages are
// not his to read, and an RPT for the old Bob's resource is refused.
func TestRecreatedOwner(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	oldID := r.userID(t, "bob")
	body := []byte("for the first bob")
	resp := call(t, http.MethodPost, s.url+"/incoming/bob", r.rpt(t, challenge(t, s.url, "bob").Ticket, boundClaims(body)), body, nil)
	must(t, resp.status == 201, "push to the first bob: %d %s", resp.status, resp.body)
	var m uma.Message
	must(t, json.Unmarshal(resp.body, &m) == nil, "%s", resp.body)
	unusedOldRPT := r.rpt(t, challenge(t, s.url, "bob").Ticket, boundClaims(body))
	oldBob := r.login(t, "bob", bobPassword)
	oldResource := r.resourcesNamed(t, "incoming:"+oldID)
	must(t, len(oldResource) == 1, "old resource %v", oldResource)

	must(t, r.kc.Admin(ctxT(t), http.MethodDelete, "/"+r.realm+"/users/"+oldID, nil, nil) == nil, "delete bob")
	r.createUser(t, "bob")
	newID := r.userID(t, "bob")
	must(t, newID != "" && newID != oldID, "new bob %q, old %q", newID, oldID)
	t.Logf("after deleting the user, Keycloak has %d resources named incoming:%s", len(r.resourcesNamed(t, "incoming:"+oldID)), oldID)

	// The new bob reads: his token's sub is the new id; the Resource Server
	// still has the old one cached and looks bob up again.
	newBob := r.login(t, "bob", userPasswords+"bob")
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages", newBob, nil, nil)
	must(t, resp.status == 200 && strings.Contains(string(resp.body), `"messages":[]`), "the new bob's list: %d %s", resp.status, resp.body)
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages/"+m.ID, newBob, nil, nil)
	must(t, resp.status == 404, "the new bob reads the old message: %d %s", resp.status, resp.body)
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages", oldBob, nil, nil)
	must(t, resp.status == 403 || resp.status == 401, "the old Bob's token: %d %s", resp.status, resp.body)

	// The old Bob's unused RPT names his resource: refused, nothing stored.
	resp = call(t, http.MethodPost, s.url+"/incoming/bob", unusedOldRPT, body, nil)
	must(t, resp.status == 401 && resp.errorCode() == uma.ErrInsufficientScope, "old Bob's RPT: %d %s", resp.status, resp.body)
	l, err := s.store.List(ctxT(t), newID, 0)
	must(t, err == nil && len(l) == 0, "the new bob's Incoming: %v %v", l, err)

	// The new bob's Incoming is his own resource, and pushes reach it.
	ch := challenge(t, s.url, "bob")
	must(t, len(r.resourcesNamed(t, "incoming:"+newID)) == 1, "no resource for the new bob")
	resp = call(t, http.MethodPost, s.url+"/incoming/bob", r.rpt(t, ch.Ticket, boundClaims(body)), body, nil)
	must(t, resp.status == 201, "push to the new bob: %d %s", resp.status, resp.body)
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages", newBob, nil, nil)
	must(t, resp.status == 200 && strings.Count(string(resp.body), `"id"`) == 1 && !strings.Contains(string(resp.body), m.ID),
		"the new bob's list: %d %s", resp.status, resp.body)

	// A second Resource Server (fresh cache, same store) agrees.
	other := r.startRS(t, rsOptions{st: s.store})
	resp = call(t, http.MethodGet, other.url+"/incoming/bob/messages/"+m.ID, newBob, nil, nil)
	must(t, resp.status == 404, "fresh server, old message: %d", resp.status)
}
