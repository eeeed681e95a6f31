package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
)

func TestMain(m *testing.M) { kctest.Main(m) }

// TestFlow: seed steps 1-2 and 9-10 against Keycloak, Bob reads, Carol cannot.
func TestFlow(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	body := []byte("Hello Bob, this is Alice.\n")

	// Steps 1-2.
	resp := call(t, http.MethodPost, s.url+"/incoming/bob", "", body, map[string]string{"Content-Type": "text/plain"})
	must(t, resp.status == 401, "no token: %d %s", resp.status, resp.body)
	ch, err := uma.ParseChallenge(resp.header)
	must(t, err == nil, "challenge %q: %v", resp.header.Get("WWW-Authenticate"), err)
	must(t, ch.Realm == r.realm && ch.ASURI == r.issuer && ch.Ticket != "", "challenge %+v", ch)
	ids := r.resourcesNamed(t, uma.IncomingResourceName(s.ownerID(t, "bob")))
	must(t, len(ids) == 1, "bob's Incoming registered %d times", len(ids))

	// Step 7 with the ticket: Keycloak accepts it.
	claims := boundClaims(body)
	claims.Set(uma.ClaimContentType, "text/plain")
	claims.Set(uma.ClaimFileName, "hello.txt")
	tok := r.rpt(t, ch.Ticket, claims)
	c, _ := kctest.Claims(tok)
	t.Logf("RPT aud=%v azp=%v typ=%v jti? %v permissions=%v", c["aud"], c["azp"], c["typ"], c["jti"] != nil, c["authorization"])

	// Steps 9-10.
	resp = call(t, http.MethodPost, s.url+"/incoming/bob", tok, body, map[string]string{"Content-Type": "text/plain"})
	must(t, resp.status == 201, "with RPT: %d %s", resp.status, resp.body)
	var m uma.Message
	must(t, json.Unmarshal(resp.body, &m) == nil, "201 body %s", resp.body)
	must(t, resp.header.Get("Location") == "/incoming/bob/messages/"+m.ID, "Location %q", resp.header.Get("Location"))
	must(t, m.Owner == "bob" && m.SenderEmail == "alice@foo.example" && m.SenderIss == "http://127.0.0.1:8081" &&
		m.ContentType == "text/plain" && m.FileName == "hello.txt" && m.Size == int64(len(body)) && m.SHA256 == hexSum(body),
		"201 body %+v", m)
	_, err = time.Parse(time.RFC3339, m.ReceivedAt)
	must(t, err == nil, "received_at %q", m.ReceivedAt)

	// The same content-bound RPT cannot store a second message.
	resp = call(t, http.MethodPost, s.url+"/incoming/bob", tok, body, nil)
	must(t, resp.status == 401 && resp.errorCode() == uma.ErrInvalidToken, "second message: %d %s", resp.status, resp.body)
	_, err = uma.ParseChallenge(resp.header)
	must(t, err == nil, "second message: no fresh challenge: %v", err)

	// Bob reads.
	bob := r.login(t, "bob", bobPassword)
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages", bob, nil, nil)
	var list uma.MessageList
	must(t, resp.status == 200 && json.Unmarshal(resp.body, &list) == nil, "list: %d %s", resp.status, resp.body)
	must(t, len(list.Messages) == 1 && list.Messages[0] == m, "list %+v, want [%+v]", list.Messages, m)
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages/"+m.ID, bob, nil, nil)
	must(t, resp.status == 200 && string(resp.body) == string(body), "get: %d %q", resp.status, resp.body)
	must(t, resp.header.Get("Content-Type") == "text/plain" && resp.header.Get("X-Content-Type-Options") == "nosniff" &&
		resp.header.Get("Content-Disposition") == `attachment; filename=hello.txt`, "get headers %v", resp.header)

	// Carol, another user of the realm, cannot.
	r.createUser(t, "carol")
	carol := r.login(t, "carol", userPasswords+"carol")
	for _, p := range []string{"/incoming/bob/messages", "/incoming/bob/messages/" + m.ID} {
		resp = call(t, http.MethodGet, s.url+p, carol, nil, nil)
		must(t, resp.status == 403, "carol GET %s: %d %s", p, resp.status, resp.body)
	}
	resp = call(t, http.MethodGet, s.url+"/incoming/carol/messages/"+m.ID, carol, nil, nil)
	must(t, resp.status == 404, "carol reading bob's message id in her Incoming: %d", resp.status)
	resp = call(t, http.MethodGet, s.url+"/incoming/carol/messages", carol, nil, nil)
	must(t, resp.status == 200 && strings.Contains(string(resp.body), `"messages":[]`), "carol's own list: %d %s", resp.status, resp.body)
	// The RqP client's RPT is no reader's token.
	resp = call(t, http.MethodGet, s.url+"/incoming/bob/messages", tok, nil, nil)
	must(t, resp.status == 401 || resp.status == 403, "RPT reading: %d", resp.status)
}

// TestRefusals: each refusal of issue 5 against Keycloak-issued tokens, with
// its status, and nothing stored.
func TestRefusals(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	r.createUser(t, "carol")
	body := []byte("the data")
	stored := func(t *testing.T) int {
		n := 0
		for _, o := range []string{"bob", "carol"} {
			l, err := s.store.List(context.Background(), s.ownerID(t, o), 0)
			must(t, err == nil, "list: %v", err)
			n += len(l)
		}
		return n
	}
	bound := func(t *testing.T, owner string, b []byte) string {
		return r.rpt(t, challenge(t, s.url, owner).Ticket, boundClaims(b))
	}
	post := func(t *testing.T, owner, tok string, b []byte) response {
		return call(t, http.MethodPost, s.url+"/incoming/"+owner, tok, b, nil)
	}
	wantChallenge := func(t *testing.T, resp response, code string) {
		t.Helper()
		must(t, resp.status == 401, "status %d %s, want 401", resp.status, resp.body)
		ch, err := uma.ParseChallenge(resp.header)
		must(t, err == nil && ch.ASURI == r.issuer, "challenge %q: %v", resp.header.Get("WWW-Authenticate"), err)
		must(t, resp.errorCode() == code, "error %q, want %q", resp.errorCode(), code)
		// The fresh ticket is one Keycloak accepts.
		_, err = r.grant(t, ch.Ticket, nil)
		must(t, err == nil, "ticket of the refusal not accepted: %v", err)
	}

	t.Run("no token", func(t *testing.T) {
		wantChallenge(t, post(t, "bob", "", body), "unauthorized")
	})
	t.Run("forged RPT", func(t *testing.T) {
		ids := r.resourcesNamed(t, uma.IncomingResourceName(s.ownerID(t, "bob")))
		must(t, len(ids) == 1, "resources %v", ids)
		forger := rpttest.New(r.issuer)
		forged := forger.RPT([]rpttest.Perm{{RSID: ids[0]}}, nil)
		wantChallenge(t, post(t, "bob", forged, body), uma.ErrInvalidToken)
		// A real RPT with one byte of its signature changed.
		real := bound(t, "bob", body)
		i := strings.LastIndexByte(real, '.') + 5
		flip := "A"
		if real[i] == 'A' {
			flip = "B"
		}
		tampered := real[:i] + flip + real[i+1:]
		wantChallenge(t, post(t, "bob", tampered, body), uma.ErrInvalidToken)
	})
	t.Run("expired RPT", func(t *testing.T) {
		tok := bound(t, "bob", body)
		// The same RPT seen by a Resource Server whose clock is 10 minutes
		// ahead (the realm's tokens live 5 minutes): expired.
		late := r.startRS(t, rsOptions{clockSkew: 10 * time.Minute, st: s.store})
		resp := call(t, http.MethodPost, late.url+"/incoming/bob", tok, body, nil)
		wantChallenge(t, resp, uma.ErrInvalidToken)
	})
	t.Run("RPT for another owner's Incoming", func(t *testing.T) {
		tok := bound(t, "carol", body)
		wantChallenge(t, post(t, "bob", tok, body), uma.ErrInsufficientScope)
	})
	t.Run("RPT without scope create", func(t *testing.T) {
		tok := r.rptWithoutCreate(t, s, "bob")
		wantChallenge(t, post(t, "bob", tok, body), uma.ErrInsufficientScope)
	})
	t.Run("body does not match the bound digest", func(t *testing.T) {
		tok := bound(t, "bob", body)
		resp := post(t, "bob", tok, []byte("the dat4"))
		must(t, resp.status == 403 && resp.errorCode() == uma.ErrInsufficientScope, "%d %s", resp.status, resp.body)
	})
	t.Run("body does not match the bound length", func(t *testing.T) {
		claims := boundClaims(body)
		claims.Set(uma.ClaimContentLength, "3")
		tok := r.rpt(t, challenge(t, s.url, "bob").Ticket, claims)
		resp := post(t, "bob", tok, body)
		must(t, resp.status == 403 && resp.errorCode() == uma.ErrInsufficientScope, "%d %s", resp.status, resp.body)
	})
	t.Run("body over the limit", func(t *testing.T) {
		big := make([]byte, testMaxBody+1)
		tok := r.rpt(t, challenge(t, s.url, "bob").Ticket, boundClaims(big))
		resp := post(t, "bob", tok, big)
		must(t, resp.status == 413 && resp.errorCode() == uma.ErrTooLarge, "%d %s", resp.status, resp.body)
		resp = post(t, "bob", "", big)
		must(t, resp.status == 413, "without token: %d", resp.status)
	})
	t.Run("unknown owner", func(t *testing.T) {
		resp := post(t, "nobody-"+kctest.RandomHex(3), "", body)
		must(t, resp.status == 404 && resp.errorCode() == uma.ErrNotFound, "%d %s", resp.status, resp.body)
		tok := bound(t, "bob", body)
		resp = post(t, "nobody-"+kctest.RandomHex(3), tok, body)
		must(t, resp.status == 404, "with an RPT: %d %s", resp.status, resp.body)
		resp = post(t, "service-account-rqp-client", "", body)
		must(t, resp.status == 404, "service account as owner: %d", resp.status)
		resp = post(t, "Bob", "", body)
		must(t, resp.status == 404, "upper case: %d", resp.status)
	})
	must(t, stored(t) == 0, "%d messages stored by refused requests", stored(t))

	t.Run("second message with a content-bound RPT", func(t *testing.T) {
		tok := bound(t, "bob", body)
		resp := post(t, "bob", tok, body)
		must(t, resp.status == 201, "first: %d %s", resp.status, resp.body)
		wantChallenge(t, post(t, "bob", tok, body), uma.ErrInvalidToken)
		// Not on another replica sharing the store (and the public URL)
		// either.
		other := r.startRS(t, rsOptions{st: s.store, publicURL: s.url})
		wantChallenge(t, call(t, http.MethodPost, other.url+"/incoming/bob", tok, body, nil), uma.ErrInvalidToken)
		must(t, stored(t) == 1, "%d messages, want 1", stored(t))
	})
}

// rptWithoutCreate gets a real RPT for owner's Incoming that lacks scope
// create: the realm copy gets a scope "read" with its own permission, the
// resource gets that scope, and the ticket asks for read only.
func (r *realmEnv) rptWithoutCreate(t *testing.T, s *rs, owner string) string {
	t.Helper()
	ctx := ctxT(t)
	o, err := s.prot.Owner(ctx, owner)
	must(t, err == nil, "resource id: %v", err)
	rid := o.ResourceID
	var clients []struct{ ID string }
	must(t, r.kc.Admin(ctx, http.MethodGet, "/"+r.realm+"/clients?clientId=resource-server", nil, &clients) == nil && len(clients) == 1, "client lookup")
	authz := "/" + r.realm + "/clients/" + clients[0].ID + "/authz/resource-server"
	must(t, r.kc.Admin(ctx, http.MethodPost, authz+"/scope", map[string]any{"name": "read"}, nil) == nil, "create scope read")
	var policies []struct{ ID, Name string }
	must(t, r.kc.Admin(ctx, http.MethodGet, authz+"/policy?name="+url.QueryEscape(kctest.StockPolicyName), nil, &policies) == nil, "policy lookup")
	var stock string
	for _, p := range policies {
		if p.Name == kctest.StockPolicyName {
			stock = p.ID
		}
	}
	must(t, stock != "", "no stock policy in %v", policies)
	err = r.kc.Admin(ctx, http.MethodPost, authz+"/permission/scope", map[string]any{
		"name": "read in Incoming", "scopes": []string{"read"}, "policies": []string{stock}, "decisionStrategy": "UNANIMOUS",
	}, nil)
	must(t, err == nil, "read permission: %v", err)
	api := r.protectionAPI()
	var res map[string]any
	must(t, api.GetResource(ctx, rid, &res) == nil, "read resource %s", rid)
	res["resource_scopes"] = []string{uma.ScopeCreate, "read"}
	delete(res, "scopes")
	must(t, api.UpdateResource(ctx, rid, res) == nil, "update resource %s", rid)
	ticket := kctest.Ticket(t, api, rid, "read")
	tok := r.rpt(t, ticket, nil)
	c, _ := kctest.Claims(tok)
	authzClaim, _ := c["authorization"].(map[string]any)
	perms, _ := authzClaim["permissions"].([]any)
	for _, p := range perms {
		pm, _ := p.(map[string]any)
		scopes, _ := pm["scopes"].([]any)
		must(t, !slices.Contains(scopes, any(uma.ScopeCreate)), "RPT asked without create has it: %v", pm)
	}
	must(t, len(perms) == 1, "permissions %v", perms)
	return tok
}

// TestConcurrentFirstRequests: 100 first requests for a new owner at once
// register exactly one resource, and each gets a ticket.
func TestConcurrentFirstRequests(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	owner := "dave-" + kctest.RandomHex(3)
	r.createUser(t, owner)
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	const n = 100
	var wg sync.WaitGroup
	var ok atomic.Int32
	tickets := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := client.Post(s.url+"/incoming/"+owner, "text/plain", strings.NewReader("hi"))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if ch, err := uma.ParseChallenge(res.Header); res.StatusCode == 401 && err == nil {
				ok.Add(1)
				tickets[i] = ch.Ticket
			} else {
				t.Errorf("request %d: %d %v", i, res.StatusCode, err)
			}
		})
	}
	close(start)
	wg.Wait()
	must(t, ok.Load() == n, "%d of %d requests got a challenge", ok.Load(), n)
	name := uma.IncomingResourceName(s.ownerID(t, owner))
	ids := r.resourcesNamed(t, name)
	must(t, len(ids) == 1, "%d resources named %s, want exactly 1: %v", len(ids), name, ids)
	// A ticket from the crowd works.
	_, err := r.grant(t, tickets[n/2], nil)
	must(t, err == nil, "ticket refused: %v", err)
}

// TestAuthorizationServerUnreachable: no Keycloak at the configured URL.
func TestAuthorizationServerUnreachable(t *testing.T) {
	r := newRealm(t)
	port, err := launcher.FreePort()
	must(t, err == nil, "%v", err)
	s := r.startRS(t, rsOptions{keycloakURL: "http://127.0.0.1:" + strconv.Itoa(port)})
	resp := call(t, http.MethodPost, s.url+"/incoming/bob", "", []byte("x"), nil)
	must(t, resp.status == 403 && resp.header.Get("Warning") == `199 - "UMA Authorization Server Unreachable"` &&
		resp.errorCode() == uma.ErrUnavailable, "%d %v %s", resp.status, resp.header, resp.body)
}

// TestExpectContinue against Keycloak's real ticket: the 401 comes before any
// byte of the body is sent.
func TestExpectContinue(t *testing.T) {
	r := newRealm(t)
	s := r.startRS(t, rsOptions{})
	body := make([]byte, 32<<10)
	tr := &http.Transport{ExpectContinueTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	send := func(tok string) (int, int64, http.Header) {
		cb := &countingReader{data: body}
		req, _ := http.NewRequest(http.MethodPost, s.url+"/incoming/bob", cb)
		req.ContentLength = int64(len(body))
		req.Header.Set("Expect", "100-continue")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		must(t, err == nil, "%v", err)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, cb.n.Load(), res.Header
	}
	status, sent, h := send("")
	must(t, status == 401 && sent == 0, "without RPT: %d, %d bytes sent", status, sent)
	ch, err := uma.ParseChallenge(h)
	must(t, err == nil, "%v", err)
	status, sent, _ = send(r.rpt(t, ch.Ticket, boundClaims(body)))
	must(t, status == 201 && sent == int64(len(body)), "with RPT: %d, %d bytes sent", status, sent)
}

type countingReader struct {
	data []byte
	off  int
	n    atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.off >= len(c.data) {
		return 0, io.EOF
	}
	k := copy(p, c.data[c.off:])
	c.off += k
	c.n.Add(int64(k))
	return k, nil
}
