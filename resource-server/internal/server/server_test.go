package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/store"
)

const (
	asURI     = "http://kc.test/realms/bar"
	publicURL = "https://rs.bar.example"
)

var errUnknown = errors.New("unknown owner")
var errDown = errors.New("keycloak down")

// fakeProt resolves owner o to user id rpttest.UserID(o) and resource
// "rid-o", unless recreated gave o another user id (and resource).
type fakeProt struct {
	down      atomic.Bool
	tickets   atomic.Int32
	refreshes atomic.Int32
	mu        sync.Mutex
	recreated map[string]string // owner -> new user id
	stale     map[string]bool   // owner -> Owner still answers the old id (cached); Refresh the new
	lastURL   string            // incoming_uri of the last ticket
}

func (f *fakeProt) resolve(owner string, fresh bool) (protection.Owner, error) {
	if owner == "nobody" {
		return protection.Owner{}, errUnknown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.recreated[owner]; ok && (fresh || !f.stale[owner]) {
		if fresh {
			delete(f.stale, owner)
		}
		return protection.Owner{UserID: id, ResourceID: "rid-" + id}, nil
	}
	return protection.Owner{UserID: rpttest.UserID(owner), ResourceID: "rid-" + owner}, nil
}

func (f *fakeProt) Owner(_ context.Context, owner string) (protection.Owner, error) {
	if f.down.Load() {
		return protection.Owner{}, errDown
	}
	return f.resolve(owner, false)
}

func (f *fakeProt) Refresh(_ context.Context, owner string) (protection.Owner, error) {
	if f.down.Load() {
		return protection.Owner{}, errDown
	}
	f.refreshes.Add(1)
	return f.resolve(owner, true)
}

func (f *fakeProt) Ticket(ctx context.Context, owner, incomingURL string) (string, protection.Owner, error) {
	o, err := f.Owner(ctx, owner)
	if err != nil {
		return "", o, err
	}
	f.mu.Lock()
	f.lastURL = incomingURL
	f.mu.Unlock()
	n := f.tickets.Add(1)
	return fmt.Sprintf("ticket-%d-%s", n, o.ResourceID), o, nil
}

type env struct {
	t      *testing.T
	srv    *httptest.Server
	signer *rpttest.Signer
	store  store.Store
	prot   *fakeProt
	// handler is the server under srv (for requests that need no network);
	// contentDir its SQLite store's content files.
	handler    *Server
	contentDir string
}

func newEnv(t *testing.T, maxBody int64) *env {
	return newEnvConfig(t, func(c *Config) { c.MaxBody = maxBody })
}

func newEnvQuota(t *testing.T, maxBody, quota int64) *env {
	return newEnvConfig(t, func(c *Config) { c.MaxBody, c.Quota = maxBody, quota })
}

// newEnvConfig: a server whose Config set changes.
func newEnvConfig(t *testing.T, set func(*Config)) *env {
	t.Helper()
	db := filepath.Join(t.TempDir(), "rs.db")
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer := rpttest.New(asURI)
	v, err := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	if err != nil {
		t.Fatal(err)
	}
	prot := &fakeProt{}
	cfg := Config{
		Realm: "bar", ASURI: asURI, PublicURL: publicURL, ReaderClients: []string{"incoming-app"},
		IsUnknownOwner: func(err error) bool { return errors.Is(err, errUnknown) },
		Store:          st, Protection: prot, Verifier: v,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	set(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s)
	// The server's own timeouts, as Serve sets them.
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = s.cfg.Timeouts.Read, s.cfg.Timeouts.Write
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, signer: signer, store: st, prot: prot, handler: s, contentDir: db + store.ContentDirSuffix}
}

// countingBody counts the bytes the client transport actually read (sent).
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) err() uma.Error {
	var e uma.Error
	_ = json.Unmarshal(r.body, &e)
	return e
}

func (e *env) do(method, path, token string, body []byte, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
		if hdr["Transfer-Encoding"] == "chunked" {
			rd = io.MultiReader(rd) // hides the length: the client sends it chunked
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != nil && req.ContentLength == 0 && len(body) > 0 && hdr["Transfer-Encoding"] != "chunked" {
		e.t.Fatal("request without Content-Length")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, data}
}

func (e *env) post(owner, token string, body []byte, hdr map[string]string) resp {
	return e.do(http.MethodPost, "/incoming/"+owner, token, body, hdr)
}

// count is how many messages owner (by his current user id) has.
func (e *env) count(owner string) int {
	o, err := e.prot.resolve(owner, true)
	if err != nil {
		e.t.Fatal(err)
	}
	list, err := e.store.List(context.Background(), o.UserID, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bound is the permission the claims-token policy grants for body pushed to
// the Incoming of resource "rid-{owner}" at publicURL; extra entries replace
// claims, nil values delete them.
func bound(rid string, body []byte, extra map[string][]string) []rpttest.Perm {
	cl := rpttest.GrantClaims(publicURL+"/incoming/"+strings.TrimPrefix(rid, "rid-"), body)
	for k, v := range extra {
		if v == nil {
			delete(cl, k)
		} else {
			cl[k] = v
		}
	}
	return []rpttest.Perm{{RSID: rid, Claims: cl}}
}

func wantChallenge(t *testing.T, r resp, errCode string) uma.Challenge {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d %s, want 401", r.status, r.body)
	}
	ch, err := uma.ParseChallenge(r.header)
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", r.header.Get("WWW-Authenticate"), err)
	}
	if ch.Realm != "bar" || ch.ASURI != asURI || !strings.HasPrefix(ch.Ticket, "ticket-") {
		t.Fatalf("challenge %+v", ch)
	}
	if errCode != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="`+errCode+`"`) {
		t.Fatalf("challenge %q lacks error=%q", r.header.Get("WWW-Authenticate"), errCode)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("401 body is not JSON: %q", r.header.Get("Content-Type"))
	}
	return ch
}

// Authorization of another scheme is no bearer credential (RFC 6750 section
// 3.1): answered as a request without one. More than one Authorization
// header: invalid_token (the Claims Provider answers 400 there).
func TestAuthorizationSchemes(t *testing.T) {
	e := newEnv(t, 0)
	send := func(method, path string, auth ...string) resp {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader("hello"))
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return resp{res.StatusCode, res.Header, b}
	}
	r := send(http.MethodPost, "/incoming/bob", "Basic cnFwOnNlY3JldA==")
	wantChallenge(t, r, "")
	if strings.Contains(r.header.Get("WWW-Authenticate"), "error=") || r.err().Code != "unauthorized" {
		t.Fatalf("another scheme: %q %s", r.header.Get("WWW-Authenticate"), r.body)
	}
	r = send(http.MethodGet, "/incoming/bob/messages", "Basic cnFwOnNlY3JldA==")
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="bar"` {
		t.Fatalf("reader, another scheme: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	r = send(http.MethodPost, "/incoming/bob", "Bearer a", "Bearer b")
	wantChallenge(t, r, uma.ErrInvalidToken)
	r = send(http.MethodGet, "/incoming/bob/messages", "Bearer a", "Bearer b")
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="bar", error="invalid_token"` {
		t.Fatalf("reader, two Authorization headers: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	if n := e.count("bob"); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestNoTokenGetsChallenge(t *testing.T) {
	e := newEnv(t, 0)
	r := e.post("bob", "", []byte("hello"), nil)
	c1 := wantChallenge(t, r, "")
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("challenge may be cached")
	}
	c2 := wantChallenge(t, e.post("bob", "", []byte("hello"), nil), "")
	if c1.Ticket == c2.Ticket {
		t.Error("ticket reused across challenges")
	}
	if e.count("bob") != 0 {
		t.Fatal("stored without a token")
	}
}

// TestExpectContinue: a client that sends Expect: 100-continue uploads
// nothing for the 401 and the body exactly once with its RPT.
func TestExpectContinue(t *testing.T) {
	e := newEnv(t, 0)
	body := make([]byte, 2<<20)
	_, _ = rand.Read(body)
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	send := func(token string) (int, int64) {
		cb := &countingBody{r: strings.NewReader(string(body))}
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/incoming/bob", cb)
		req.ContentLength = int64(len(body))
		req.Header.Set("Expect", "100-continue")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, cb.n.Load()
	}
	status, sent := send("")
	if status != http.StatusUnauthorized || sent != 0 {
		t.Fatalf("without RPT: status %d, %d body bytes sent; want 401 and 0", status, sent)
	}
	status, sent = send(e.signer.RPT(bound("rid-bob", body, nil), nil))
	if status != http.StatusCreated || sent != int64(len(body)) {
		t.Fatalf("with RPT: status %d, %d body bytes sent; want 201 and %d", status, sent, len(body))
	}
	// A refused RPT: nothing uploaded either.
	status, sent = send(rpttest.New(asURI).RPT(bound("rid-bob", body, nil), nil))
	if status != http.StatusUnauthorized || sent != 0 {
		t.Fatalf("forged RPT: status %d, %d body bytes sent", status, sent)
	}
}

// TestBodylessFirstRequest: step 1 without a body (the rqp client's, for
// small content) gets the challenge on a connection the server keeps, and
// the POST with the RPT on that connection stores the message.
func TestBodylessFirstRequest(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("hello, Bob")
	var conns atomic.Int64
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	defer client.CloseIdleConnections()
	send := func(token string, data []byte) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/incoming/bob", bytes.NewReader(data))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := send("", nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "UMA ") || res.Close {
		t.Fatalf("without a body: %d %q, close %v; want 401 with the challenge, the connection kept", res.StatusCode, res.Header.Get("WWW-Authenticate"), res.Close)
	}
	if res = send(e.signer.RPT(bound("rid-bob", body, nil), nil), body); res.StatusCode != http.StatusCreated {
		t.Fatalf("with the RPT: %d", res.StatusCode)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for the two requests, want 1", n)
	}
}

func TestStoreWithRPT(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("hello, Bob")
	tok := e.signer.RPT(bound("rid-bob", body, map[string][]string{"content_type": {"text/plain"}, "file_name": {"hello.txt"}}), nil)
	r := e.post("bob", tok, body, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var m uma.Message
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	if r.header.Get("Location") != "/incoming/bob/messages/"+m.ID || !store.ValidID(m.ID) {
		t.Fatalf("Location %q for id %q", r.header.Get("Location"), m.ID)
	}
	if m.Owner != "bob" || m.SenderEmail != "alice@foo.example" || m.SenderIss != "https://cp.foo.example" || m.SenderSub != "a11ce" ||
		m.ContentType != "text/plain; charset=utf-8" || m.FileName != "hello.txt" || m.Size != int64(len(body)) || m.SHA256 != hexSum(body) {
		t.Fatalf("response %+v", m)
	}
	at, err := time.Parse(time.RFC3339Nano, m.ReceivedAt)
	if err != nil || time.Since(at) > time.Minute || !strings.HasSuffix(m.ReceivedAt, "Z") {
		t.Fatalf("received_at %q", m.ReceivedAt)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for _, k := range []string{"id", "owner", "sender_email", "sender_iss", "content_type", "size", "sha256", "received_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %s", k)
		}
	}
	got, content, err := e.store.Get(context.Background(), rpttest.UserID("bob"), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(content)
	content.Close()
	if string(stored) != string(body) || got.OwnerID != rpttest.UserID("bob") || got.Owner != "bob" {
		t.Fatalf("stored %+v %q", got, stored)
	}
	// Without content_type and file_name: the defaults.
	body = []byte("second")
	if r := e.post("bob", e.signer.RPT(bound("rid-bob", body, nil), nil), body, nil); r.status != http.StatusCreated {
		t.Fatalf("second message: %d %s", r.status, r.body)
	}
	m2, _ := e.store.List(context.Background(), rpttest.UserID("bob"), 1)
	if m2[0].ContentType != "application/octet-stream" || m2[0].FileName != "" {
		t.Fatalf("defaults: %+v", m2[0])
	}
}

// TestChallengeCarriesIncomingURL: the ticket is asked for with this
// server's canonical URL of the Incoming.
func TestChallengeCarriesIncomingURL(t *testing.T) {
	e := newEnv(t, 0)
	wantChallenge(t, e.post("bob", "", []byte("x"), nil), "")
	if e.prot.lastURL != "https://rs.bar.example/incoming/bob" {
		t.Fatalf("ticket asked with incoming_uri %q", e.prot.lastURL)
	}
}

// TestInvariantRefusals: issue 12's invariant at the Resource Server. An RPT
// whose permission for Bob's Incoming lacks a verified sender, the content
// binding, this Incoming's URL or a grant id is refused with 403
// insufficient_scope and its reason, nothing is stored, and an honest
// request succeeds right after.
func TestInvariantRefusals(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("for bob")
	cases := []struct {
		name   string
		extra  map[string][]string
		reason string
	}{
		{"owner-approved permission: pushed sender, no sender_iss/sub", map[string][]string{"sender_email": {"ceo@partner.example"}, "sender_iss": nil, "sender_sub": nil}, rpt.ReasonSenderUnverified},
		{"no sender_email", map[string][]string{"sender_email": nil}, rpt.ReasonSenderUnverified},
		{"two senders", map[string][]string{"sender_email": {"alice@foo.example", "ceo@partner.example"}}, rpt.ReasonSenderUnverified},
		{"no content_sha256", map[string][]string{"content_sha256": nil}, rpt.ReasonContentUnbound},
		{"no content_length", map[string][]string{"content_length": nil}, rpt.ReasonContentUnbound},
		{"no binding at all", map[string][]string{"content_sha256": nil, "content_length": nil}, rpt.ReasonContentUnbound},
		{"no incoming_uri", map[string][]string{"incoming_uri": nil}, rpt.ReasonIncomingURIMismatch},
		{"relayed: another server's URL", map[string][]string{"incoming_uri": {"https://other.example/incoming/hr"}}, rpt.ReasonIncomingURIMismatch},
		{"another owner's URL here", map[string][]string{"incoming_uri": {publicURL + "/incoming/carol"}}, rpt.ReasonIncomingURIMismatch},
		{"http instead of https", map[string][]string{"incoming_uri": {"http://rs.bar.example/incoming/bob"}}, rpt.ReasonIncomingURIMismatch},
		{"no grant_id", map[string][]string{"grant_id": nil}, rpt.ReasonGrantUnbound},
		{"two grant_ids", map[string][]string{"grant_id": {rpttest.NewGrantID(), rpttest.NewGrantID()}}, rpt.ReasonGrantUnbound},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("bob", e.signer.RPT(bound("rid-bob", body, tc.extra), nil), body, nil)
			if r.status != http.StatusForbidden || r.err().Code != uma.ErrInsufficientScope ||
				!strings.HasSuffix(r.err().Description, "("+tc.reason+")") || r.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("status %d %s, want 403 insufficient_scope (%s)", r.status, r.body, tc.reason)
			}
			if n := e.count("bob"); n != i {
				t.Fatalf("%d messages after the refusal, want %d", n, i)
			}
			// The honest push right after.
			if r := e.post("bob", e.signer.RPT(bound("rid-bob", body, nil), nil), body, nil); r.status != http.StatusCreated {
				t.Fatalf("honest push after the refusal: %d %s", r.status, r.body)
			}
		})
	}
}

// TestGrantIsSingleUse: single use is keyed on grant_id, not the RPT: a
// refreshed RPT (new jti, same permission claims) cannot store a second
// message, nor can the same grant at another owner.
func TestGrantIsSingleUse(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("once per grant")
	perms := bound("rid-bob", body, nil)
	if r := e.post("bob", e.signer.RPT(perms, nil), body, nil); r.status != http.StatusCreated {
		t.Fatalf("first RPT: %d %s", r.status, r.body)
	}
	refreshed := e.signer.RPT(perms, nil) // another jti, the same grant
	r := e.post("bob", refreshed, body, nil)
	wantChallenge(t, r, "invalid_token")
	if !strings.Contains(r.err().Description, "already used") || !strings.Contains(r.err().Description, "rpt_replayed") {
		t.Fatalf("refreshed RPT: %s", r.body)
	}
	if e.count("bob") != 1 {
		t.Fatalf("%d messages, want 1", e.count("bob"))
	}
	// A new grant for the same content is a new message.
	if r := e.post("bob", e.signer.RPT(bound("rid-bob", body, nil), nil), body, nil); r.status != http.StatusCreated {
		t.Fatalf("new grant: %d %s", r.status, r.body)
	}
}

// TestRecreatedOwner: bob deleted and created again (another user id). An
// RPT for the old Bob's resource is refused, the new bob's Incoming is
// empty, and the old messages are read by no one; the old Bob's token reads
// nothing once the new id is known.
func TestRecreatedOwner(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("for the first bob")
	oldRPT := func() string { return e.signer.RPT(bound("rid-bob", body, nil), nil) }
	r := e.post("bob", oldRPT(), body, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var m uma.Message
	json.Unmarshal(r.body, &m)
	oldBob := e.signer.Reader("bob", "incoming-app", nil)

	e.prot.mu.Lock()
	e.prot.recreated = map[string]string{"bob": "uid-bob-2"}
	e.prot.stale = map[string]bool{"bob": true} // the server's cache still has the old id
	e.prot.mu.Unlock()
	newBob := e.signer.Reader("bob", "incoming-app", jwt.MapClaims{"sub": "uid-bob-2"})
	r = e.do(http.MethodGet, "/incoming/bob/messages", newBob, nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"messages":[]`) || e.prot.refreshes.Load() != 1 {
		t.Fatalf("the new bob's list: %d %s (%d refreshes)", r.status, r.body, e.prot.refreshes.Load())
	}
	if r = e.do(http.MethodGet, "/incoming/bob/messages/"+m.ID, newBob, nil, nil); r.status != 404 {
		t.Fatalf("the new bob reads the old message: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodGet, "/incoming/bob/messages", oldBob, nil, nil); r.status != 403 {
		t.Fatalf("the old Bob's token: %d %s", r.status, r.body)
	}
	if r = e.post("bob", oldRPT(), body, nil); r.status != 401 || r.err().Code != uma.ErrInsufficientScope {
		t.Fatalf("RPT for the old Bob's resource: %d %s", r.status, r.body)
	}
	// Another reader whose token does not even claim the name causes no look-up.
	before := e.prot.refreshes.Load()
	if r = e.do(http.MethodGet, "/incoming/bob/messages", e.signer.Reader("carol", "incoming-app", nil), nil, nil); r.status != 403 || e.prot.refreshes.Load() != before {
		t.Fatalf("carol: %d, %d refreshes", r.status, e.prot.refreshes.Load()-before)
	}
	// The new bob's own pushes land in his Incoming.
	if r = e.post("bob", e.signer.RPT(bound("rid-uid-bob-2", body, map[string][]string{"incoming_uri": {publicURL + "/incoming/bob"}}), nil), body, nil); r.status != 201 {
		t.Fatalf("push to the new bob: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodGet, "/incoming/bob/messages", newBob, nil, nil); r.status != 200 || strings.Count(string(r.body), `"id"`) != 1 || !strings.Contains(string(r.body), `"owner":"bob"`) {
		t.Fatalf("the new bob's list: %d %s", r.status, r.body)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, 1000)
	body := []byte("the data")
	good := func() string { return e.signer.RPT(bound("rid-bob", body, nil), nil) }
	cases := []struct {
		name   string
		owner  string
		token  string
		body   []byte
		hdr    map[string]string
		status int
		code   string // error code in the JSON body
	}{
		{"forged RPT", "bob", rpttest.New(asURI).RPT(bound("rid-bob", body, nil), nil), body, nil, 401, "invalid_token"},
		{"expired RPT", "bob", e.signer.RPT(bound("rid-bob", body, nil), jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), body, nil, 401, "invalid_token"},
		{"RPT for another owner", "bob", e.signer.RPT(bound("rid-carol", body, nil), nil), body, nil, 401, "insufficient_scope"},
		{"RPT without scope create", "bob", e.signer.RPT([]rpttest.Perm{{RSID: "rid-bob", Scopes: []string{"read"}}}, nil), body, nil, 401, "insufficient_scope"},
		{"owner's access token", "bob", e.signer.Reader("bob", "incoming-app", jwt.MapClaims{"aud": "resource-server"}), body, nil, 401, "insufficient_scope"},
		{"malformed Authorization", "bob", "a b", body, nil, 401, "invalid_token"},
		{"body does not match digest", "bob", good(), []byte("the dat4"), nil, 403, "insufficient_scope"},
		{"body does not match length", "bob", good(), []byte("the data!"), nil, 403, "insufficient_scope"},
		{"chunked body does not match length", "bob", e.signer.RPT(bound("rid-bob", []byte("the"), nil), nil), body, map[string]string{"Transfer-Encoding": "chunked"}, 403, "insufficient_scope"},
		{"chunked body does not match digest", "bob", good(), []byte("the dat4"), map[string]string{"Transfer-Encoding": "chunked"}, 403, "insufficient_scope"},
		{"chunked body over the limit", "bob", e.signer.RPT(bound("rid-bob", make([]byte, 1000), nil), nil), make([]byte, 1001), map[string]string{"Transfer-Encoding": "chunked"}, 413, "request_too_large"},
		{"content type does not match", "bob", e.signer.RPT(bound("rid-bob", body, map[string][]string{"content_type": {"text/plain"}}), nil), body, map[string]string{"Content-Type": "text/html"}, 403, "insufficient_scope"},
		{"file name does not match", "bob", e.signer.RPT(bound("rid-bob", body, map[string][]string{"file_name": {"a.txt"}}), nil), body, map[string]string{"Content-Disposition": `attachment; filename="b.txt"`}, 403, "insufficient_scope"},
		{"bad Content-Type", "bob", good(), body, map[string]string{"Content-Type": "text/"}, 400, "invalid_request"},
		{"bad file name", "bob", good(), body, map[string]string{"Content-Disposition": `attachment; filename=".."`}, 400, "invalid_request"},
		{"body over the limit", "bob", e.signer.RPT(bound("rid-bob", make([]byte, 1001), nil), nil), make([]byte, 1001), nil, 413, "request_too_large"},
		{"body over the limit without a token", "bob", "", make([]byte, 1001), nil, 413, "request_too_large"},
		{"bound length over the limit", "bob", e.signer.RPT(bound("rid-bob", make([]byte, 1001), nil), nil), make([]byte, 1001), nil, 413, "request_too_large"},
		{"unknown owner", "nobody", "", body, nil, 404, "not_found"},
		{"unknown owner with RPT", "nobody", good(), body, nil, 404, "not_found"},
		{"upper case owner", "Bob", "", body, nil, 404, "not_found"},
		{"dot segment owner", "..", "", body, nil, 404, "not_found"},
		{"percent-encoded owner", "b%6fb", "", body, nil, 400, "invalid_request"},
		{"service account owner", "service-account-rqp-client", "", body, nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.owner, tc.token, tc.body, tc.hdr)
			if r.status != tc.status || r.err().Code != tc.code {
				t.Fatalf("status %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.status == 401 {
				wantChallenge(t, r, tc.code)
			}
			if n := e.count("bob"); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
	t.Run("chunked body over the limit", func(t *testing.T) {
		tok := e.signer.RPT(bound("rid-bob", make([]byte, 1000), nil), nil)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/incoming/bob", io.LimitReader(zeros{}, 5000))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if req.ContentLength != 0 || res.StatusCode != 413 {
			t.Fatalf("status %d (content length %d), want 413 for a chunked body", res.StatusCode, req.ContentLength)
		}
		if e.count("bob") != 0 {
			t.Fatal("stored")
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestContentBoundRPTIsSingleUse(t *testing.T) {
	e := newEnv(t, 0)
	body := []byte("once")
	tok := e.signer.RPT(bound("rid-bob", body, nil), nil)
	// A mismatch does not spend it.
	if r := e.post("bob", tok, []byte("twice"), nil); r.status != 403 {
		t.Fatalf("mismatch: %d", r.status)
	}
	if r := e.post("bob", tok, body, nil); r.status != 201 {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	r := e.post("bob", tok, body, nil)
	wantChallenge(t, r, "invalid_token")
	if !strings.Contains(r.err().Description, "already used") {
		t.Fatalf("second use: %s", r.body)
	}
	if e.count("bob") != 1 {
		t.Fatalf("%d messages, want 1", e.count("bob"))
	}
}

func TestAuthorizationServerUnreachable(t *testing.T) {
	e := newEnv(t, 0)
	e.prot.down.Store(true)
	for _, tok := range []string{"", e.signer.RPT(bound("rid-bob", []byte("x"), nil), nil)} {
		r := e.post("bob", tok, []byte("x"), nil)
		if r.status != http.StatusForbidden || r.header.Get("Warning") != `199 - "UMA Authorization Server Unreachable"` {
			t.Fatalf("status %d, Warning %q", r.status, r.header.Get("Warning"))
		}
		if r.err().Code != uma.ErrUnavailable || r.header.Get("WWW-Authenticate") != "" {
			t.Fatalf("body %s, WWW-Authenticate %q", r.body, r.header.Get("WWW-Authenticate"))
		}
	}
	if e.count("bob") != 0 {
		t.Fatal("stored")
	}
}

func TestReading(t *testing.T) {
	e := newEnv(t, 0)
	var tok string
	var ids []string
	for i, b := range []string{"<script>alert(1)</script>", "second"} {
		tok = e.signer.RPT(bound("rid-bob", []byte(b), nil), nil)
		hdr := map[string]string{"Content-Type": "text/html"}
		if i == 1 {
			hdr = map[string]string{"Content-Type": "application/pdf", "Content-Disposition": `attachment; filename="../../etc/Überweisung \"final\".pdf"`}
		}
		r := e.post("bob", tok, []byte(b), hdr)
		if r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var m uma.Message
		json.Unmarshal(r.body, &m)
		ids = append(ids, m.ID)
	}
	bob := e.signer.Reader("bob", "incoming-app", nil)

	r := e.do(http.MethodGet, "/incoming/bob/messages", bob, nil, nil)
	var list uma.MessageList
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || len(list.Messages) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if list.Messages[0].ID != ids[1] || list.Messages[1].ID != ids[0] {
		t.Fatal("not newest first")
	}
	if list.Messages[0].FileName != `Überweisung "final".pdf` {
		t.Fatalf("file name stored as %q", list.Messages[0].FileName)
	}
	if r := e.do(http.MethodGet, "/incoming/bob/messages?limit=1", bob, nil, nil); r.status != 200 || strings.Count(string(r.body), `"id"`) != 1 {
		t.Fatalf("limit=1: %d %s", r.status, r.body)
	}

	r = e.do(http.MethodGet, "/incoming/bob/messages/"+ids[0], bob, nil, nil)
	if r.status != 200 || string(r.body) != "<script>alert(1)</script>" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	h := r.header
	if h.Get("Content-Type") != "text/html" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("headers %v", h)
	}
	r = e.do(http.MethodGet, "/incoming/bob/messages/"+ids[1], bob, nil, nil)
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename*=utf-8''") || strings.ContainsAny(cd, "/\r\n") {
		t.Fatalf("Content-Disposition %q", cd)
	}

	refusals := []struct {
		name, path, token string
		status            int
	}{
		{"no token", "/incoming/bob/messages", "", 401},
		{"forged token", "/incoming/bob/messages", rpttest.New(asURI).Reader("bob", "incoming-app", nil), 401},
		{"ID token", "/incoming/bob/messages", e.signer.Reader("bob", "incoming-app", jwt.MapClaims{"typ": "ID"}), 401},
		{"expired", "/incoming/bob/messages", e.signer.Reader("bob", "incoming-app", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), 401},
		{"someone else lists", "/incoming/bob/messages", e.signer.Reader("carol", "incoming-app", nil), 403},
		{"someone else reads", "/incoming/bob/messages/" + ids[0], e.signer.Reader("carol", "incoming-app", nil), 403},
		{"carol reads bob's id in her Incoming", "/incoming/carol/messages/" + ids[0], e.signer.Reader("carol", "incoming-app", nil), 404},
		{"other client", "/incoming/bob/messages", e.signer.Reader("bob", "rqp-client", nil), 403},
		{"carol renamed to bob (preferred_username bob, carol's id)", "/incoming/bob/messages", e.signer.Reader("bob", "incoming-app", jwt.MapClaims{"sub": rpttest.UserID("carol")}), 403},
		{"bob's id, another name", "/incoming/bob/messages", e.signer.Reader("robert", "incoming-app", jwt.MapClaims{"sub": rpttest.UserID("bob")}), 200},
		// An RPT is a token of rqp-client, no reader client (it was 401
		// when readers were matched by preferred_username, which RPTs lack).
		{"RPT", "/incoming/bob/messages", tok, 403},
		{"unknown id", "/incoming/bob/messages/" + store.NewID(), bob, 404},
		{"bad id", "/incoming/bob/messages/x", bob, 404},
		{"bad limit", "/incoming/bob/messages?limit=0", bob, 400},
		{"huge limit", "/incoming/bob/messages?limit=100000", bob, 400},
		{"trailing slash", "/incoming/bob/messages/", bob, 404},
	}
	for _, tc := range refusals {
		r := e.do(http.MethodGet, tc.path, tc.token, nil, nil)
		if r.status != tc.status || (tc.status != 200 && r.err().Code == "") {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, r.status, r.body, tc.status)
		}
		if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="bar"`) {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.header.Get("WWW-Authenticate"))
		}
	}
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t, 0)
	e.post("bob", "", []byte("x"), nil)
	if r := e.do(http.MethodGet, "/healthz", "", nil, nil); r.status != 200 {
		t.Fatal("healthz", r.status)
	}
	if r := e.do(http.MethodGet, "/readyz", "", nil, nil); r.status != 200 {
		t.Fatal("readyz", r.status)
	}
	r := e.do(http.MethodGet, "/metrics", "", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `umawide_rs_uma_challenges_total 1`) ||
		!strings.Contains(string(r.body), `umawide_rs_http_requests_total{code="401",method="POST",route="/incoming/:owner"} 1`) {
		t.Fatalf("metrics: %d %.2000s", r.status, r.body)
	}
	if r := e.do(http.MethodDelete, "/incoming/bob", "", nil, nil); r.status != 405 || r.err().Code == "" {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	e.store.Close()
	if r := e.do(http.MethodGet, "/readyz", "", nil, nil); r.status != 503 {
		t.Fatal("readyz with a closed store", r.status)
	}
}

func TestSafeFileName(t *testing.T) {
	for in, want := range map[string]string{"a.txt": "a.txt", "../../x.pdf": "x.pdf", `C:\dir\y.doc`: "y.doc", " z ": "z"} {
		if got, ok := SafeFileName(in); !ok || got != want {
			t.Errorf("SafeFileName(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "..", "dir/", "a\nb", "a\x00b", "evil\u202etxt.exe", strings.Repeat("a", 256), "\xff"} {
		if _, ok := SafeFileName(bad); ok {
			t.Errorf("SafeFileName(%q) accepted", bad)
		}
	}
}

// BenchmarkPost1KiB: one accepted POST of a 1 KiB body through the handlers
// (RPT verification, SHA-256, SQLite commit with synchronous=FULL).
func BenchmarkPost1KiB(b *testing.B) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "rs.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	signer := rpttest.New(asURI)
	v, _ := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	s, err := New(Config{
		Realm: "bar", ASURI: asURI, PublicURL: publicURL, IsUnknownOwner: func(error) bool { return false },
		Store: st, Protection: &fakeProt{}, Verifier: v, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Quota: DefaultQuota, // as the Resource Server runs by default
	})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	_, _ = rand.Read(body)
	// Every grant stores one message: one RPT per request, signed before
	// the timer starts.
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = "Bearer " + signer.RPT(bound("rid-bob", body, nil), nil)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/incoming/bob", strings.NewReader(string(body)))
		req.Header.Set("Authorization", toks[i])
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPost1KiBParallel: accepted POSTs of 1 KiB bodies through the
// handlers from 8 goroutines per GOMAXPROCS, each with its own
// content-bound RPT (signed before the timer starts), so each stores its
// message and its RPT's jti: RPT verification, SHA-256, single-use check and
// a durable commit, as concurrent senders cause them.
func BenchmarkPost1KiBParallel(b *testing.B) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "rs.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	signer := rpttest.New(asURI)
	v, _ := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	s, err := New(Config{
		Realm: "bar", ASURI: asURI, PublicURL: publicURL, IsUnknownOwner: func(error) bool { return false },
		Store: st, Protection: &fakeProt{}, Verifier: v, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Quota: DefaultQuota, // as the Resource Server runs by default
	})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	_, _ = rand.Read(body)
	toks := make(chan string, b.N)
	for range b.N {
		toks <- "Bearer " + signer.RPT(bound("rid-bob", body, nil), nil)
	}
	close(toks)
	b.SetBytes(1024)
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/incoming/bob", strings.NewReader(string(body)))
			req.Header.Set("Authorization", <-toks)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusCreated {
				b.Errorf("%d %s", w.Code, w.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReaderCheckCanceled: a reader check that the client cuts short (a
// canceled request, as Go's server makes it on a half-closed connection)
// answers 503, never an empty 200, and shows nothing.
func TestReaderCheckCanceled(t *testing.T) {
	e := newEnv(t, DefaultMaxBody)
	e.prot.down.Store(true) // the owner look-up fails, as a canceled call to Keycloak would
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/incoming/bob/messages", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+e.signer.Reader("bob", "incoming-app", nil))
	w := httptest.NewRecorder()
	e.srv.Config.Handler.ServeHTTP(w, req)
	var got uma.Error
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Code != uma.ErrUnavailable || strings.Contains(w.Body.String(), "messages\"") {
		t.Fatalf("canceled reader check: %d %s, want 503 %s", w.Code, w.Body, uma.ErrUnavailable)
	}
	// The same request not canceled, Keycloak back: Bob reads his Incoming.
	e.prot.down.Store(false)
	if r := e.do(http.MethodGet, "/incoming/bob/messages", e.signer.Reader("bob", "incoming-app", nil), nil, nil); r.status != http.StatusOK {
		t.Fatalf("honest read after: %d %s", r.status, r.body)
	}
}
