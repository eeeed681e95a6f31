package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/pkce"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/server"
	"github.com/umawide/umawide/resource-server/internal/store"
	"github.com/umawide/umawide/resource-server/internal/web"
)

// The page in front of the real API handlers, store and token checks; only
// Keycloak is played by the test: its protection API (owners) and its token
// endpoint (which checks the PKCE verifier and signs the tokens).

const (
	issuer    = "https://kc.test/realms/bar"
	publicURL = "https://rs.bar.example"
	clientID  = "incoming-app"
)

var errUnknown = errors.New("unknown owner")

// owners resolves username o to user id rpttest.UserID(o), and keeps
// resource attributes (where the rules live) in memory.
type owners struct {
	mu    *sync.Mutex
	attrs map[string]map[string][]string
}

func (p owners) ResourceAttributes(_ context.Context, rid string) (map[string][]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.attrs[rid]), nil
}

func (p owners) ReplaceResourceAttributes(_ context.Context, rid, prefix string, attrs map[string][]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string][]string{}
	for k, v := range p.attrs[rid] {
		if !strings.HasPrefix(k, prefix) {
			m[k] = v
		}
	}
	maps.Copy(m, attrs)
	p.attrs[rid] = m
	return nil
}

func (owners) Owner(_ context.Context, o string) (protection.Owner, error) {
	if o == "nobody" {
		return protection.Owner{}, errUnknown
	}
	return protection.Owner{UserID: rpttest.UserID(o), ResourceID: "rid-" + o}, nil
}
func (p owners) Refresh(ctx context.Context, o string) (protection.Owner, error) {
	return p.Owner(ctx, o)
}
func (p owners) Ticket(ctx context.Context, o, _ string) (string, protection.Owner, error) {
	ow, err := p.Owner(ctx, o)
	return "ticket", ow, err
}

// keycloak is the realm's token endpoint: a code it issued (for user, with
// the challenge and nonce of the authorization request) gives tokens once.
type keycloak struct {
	t      *testing.T
	signer *rpttest.Signer
	mu     sync.Mutex
	codes  map[string]grant
	// access, when set, changes the access token's claims.
	access jwt.MapClaims
}

type grant struct{ user, challenge, nonce, redirect string }

func (k *keycloak) authorize(t *testing.T, authURL, user string) string {
	u, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, issuer+"/protocol/openid-connect/auth?") {
		t.Fatalf("authorization URL %q", authURL)
	}
	q := u.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != clientID || q.Get("scope") != "openid" ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32 ||
		q.Get("redirect_uri") != publicURL+"/web/callback" {
		t.Fatalf("authorization request %v", q)
	}
	code := "code-" + rpttest.NewGrantID()
	k.mu.Lock()
	k.codes[code] = grant{user, q.Get("code_challenge"), q.Get("nonce"), q.Get("redirect_uri")}
	k.mu.Unlock()
	return "/web/callback?" + url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {issuer}}.Encode()
}

func (k *keycloak) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	k.mu.Lock()
	g, ok := k.codes[r.PostForm.Get("code")]
	delete(k.codes, r.PostForm.Get("code"))
	k.mu.Unlock()
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("client_id") != clientID ||
		pkce.Challenge(r.PostForm.Get("code_verifier")) != g.challenge || r.PostForm.Get("redirect_uri") != g.redirect {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
		return
	}
	id := k.signer.Reader(g.user, clientID, jwt.MapClaims{"typ": "ID", "aud": clientID, "nonce": g.nonce})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": k.signer.Reader(g.user, clientID, k.access), "id_token": id, "expires_in": 300, "token_type": "Bearer",
	})
}

type env struct {
	t     *testing.T
	page  http.Handler
	kc    *keycloak
	store store.Store
	now   time.Time
	mu    sync.Mutex
}

func newEnv(t *testing.T) *env {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "rs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer := rpttest.New(issuer)
	v, err := rpt.New(rpt.Config{Issuer: issuer, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{
		Realm: "bar", ASURI: issuer, PublicURL: publicURL, ReaderClients: []string{clientID},
		IsUnknownOwner: func(err error) bool { return errors.Is(err, errUnknown) },
		Store:          st, Protection: owners{&sync.Mutex{}, map[string]map[string][]string{}}, Verifier: v, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	kc := &keycloak{t: t, signer: signer, codes: map[string]grant{}}
	kcSrv := httptest.NewServer(kc)
	t.Cleanup(kcSrv.Close)
	e := &env{t: t, kc: kc, store: st, now: time.Now()}
	page, err := web.New(web.Config{
		API: srv, Tokens: v, Issuer: issuer, TokenEndpoint: kcSrv.URL, ClientID: clientID, PublicURL: publicURL,
		Logger: logger, Now: e.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(web.Prefix, page)
	e.page = srv
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// browser keeps cookies by name (one host) and sends requests to the page.
type browser struct {
	e       *env
	cookies map[string]*http.Cookie
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]*http.Cookie{}} }

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) *http.Response {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, publicURL+path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.e.page.ServeHTTP(w, r)
	res := w.Result()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return res
}

func text(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// login logs user in through the page and returns the page's CSRF token.
func (b *browser) login(t *testing.T, user string) {
	t.Helper()
	res := b.do("GET", "/web/login", nil, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", res.StatusCode, text(res))
	}
	c := b.cookies[web.LoginCookie]
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("login cookie %+v", c)
	}
	res = b.do("GET", b.e.kc.authorize(t, res.Header.Get("Location"), user), nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/web/" {
		t.Fatalf("callback: %d %s %s", res.StatusCode, res.Header.Get("Location"), text(res))
	}
	s := b.cookies[web.SessionCookie]
	if s == nil || !s.Secure || !s.HttpOnly || s.SameSite != http.SameSiteLaxMode || s.Path != "/" || s.MaxAge != 300 || b.cookies[web.LoginCookie] != nil {
		t.Fatalf("session cookie %+v, cookies %v", s, b.cookies)
	}
}

func (b *browser) csrf(t *testing.T) string {
	t.Helper()
	res := b.do("GET", "/web/", nil, nil)
	page := text(res)
	_, after, ok := strings.Cut(page, `name="csrf" value="`)
	if res.StatusCode != 200 || !ok {
		t.Fatalf("no CSRF token on the page: %d %s", res.StatusCode, page)
	}
	tok, _, _ := strings.Cut(after, `"`)
	return tok
}

func (e *env) insert(owner, sender string, body []byte, at time.Time) store.Message {
	sum := sha256.Sum256(body)
	m := store.Message{
		ID: store.NewID(), OwnerID: rpttest.UserID(owner), Owner: owner, SenderEmail: sender, SenderIss: "https://foo.example/claims",
		ContentType: "text/html", FileName: "x.html", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ReceivedAt: at,
	}
	b, err := store.BodyOf(context.Background(), e.store, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Insert(context.Background(), m, b, nil, 0); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func wantPage(t *testing.T, res *http.Response, status int, contains ...string) string {
	t.Helper()
	page := text(res)
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, page)
	}
	h := res.Header
	csp := h.Get("Content-Security-Policy")
	if h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
		t.Fatalf("page headers %v", h)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, " style=") {
		t.Fatalf("inline script or style: %s", page)
	}
	for _, c := range contains {
		if !strings.Contains(page, c) {
			t.Fatalf("page lacks %q: %s", c, page)
		}
	}
	return page
}

func TestLoginListDownload(t *testing.T) {
	e := newEnv(t)
	old := e.insert("bob", "alice@foo.example", []byte("older"), time.Now().Add(-time.Hour))
	m := e.insert("bob", "carol@foo.example", []byte("<script>alert(1)</script>"), time.Now())
	e.insert("carol", "alice@foo.example", []byte("not bob's"), time.Now())
	b := e.browser()
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, `href="/web/login"`)
	b.login(t, "bob")

	page := wantPage(t, b.do("GET", "/web/", nil, nil), 200, "Incoming of <span id=\"owner\">bob</span>", m.SHA256, old.SHA256,
		"https://foo.example/claims", "text/html", "25 B", "x.html")
	if strings.Index(page, m.ID) > strings.Index(page, old.ID) || strings.Count(page, `class="download"`) != 2 {
		t.Fatalf("not bob's two messages newest first: %s", page)
	}
	if strings.Contains(page, "<script>alert") {
		t.Fatal("content shown on the page")
	}

	res := b.do("GET", "/web/messages/"+m.ID, nil, nil)
	got := text(res)
	h := res.Header
	if res.StatusCode != 200 || got != "<script>alert(1)</script>" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
		h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("download: %d %v %q", res.StatusCode, h, got)
	}
	if res := b.do("HEAD", "/web/messages/"+m.ID, nil, nil); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("HEAD: %d %v", res.StatusCode, res.Header)
	}
	// A download a link on another site (or another host of the domain)
	// asks for is refused, whatever the session (review F6); the page's own
	// links, a typed URL and a client without the header still download.
	for _, site := range []string{"cross-site", "same-site"} {
		for _, method := range []string{"GET", "HEAD"} {
			res := b.do(method, "/web/messages/"+m.ID, nil, map[string]string{"Sec-Fetch-Site": site})
			body := text(res)
			if res.StatusCode != http.StatusForbidden || res.Header.Get("Content-Disposition") != "" || strings.Contains(body, "alert(1)") {
				t.Fatalf("%s download from %s: %d %v %q", method, site, res.StatusCode, res.Header, body)
			}
			if method == "GET" && !strings.Contains(body, "another site") {
				t.Fatalf("%s download refusal: %q", site, body)
			}
		}
	}
	for _, site := range []string{"same-origin", "none"} {
		if res := b.do("GET", "/web/messages/"+m.ID, nil, map[string]string{"Sec-Fetch-Site": site}); res.StatusCode != 200 || text(res) != "<script>alert(1)</script>" {
			t.Fatalf("download with Sec-Fetch-Site %s: %d", site, res.StatusCode)
		}
	}

	// Another owner's message: the API's answer, as a page.
	wantPage(t, b.do("GET", "/web/messages/"+store.NewID(), nil, nil), 404, "no such message")
	wantPage(t, b.do("GET", "/web/messages/a.b", nil, nil), 404)
	wantPage(t, b.do("POST", "/web/messages/"+m.ID, nil, nil), 405)

	// The session ends with the token.
	e.advance(301 * time.Second)
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, `href="/web/login"`)
	wantPage(t, b.do("GET", "/web/messages/"+m.ID, nil, nil), 401, "Log in")
	b.login(t, "bob")
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, m.SHA256)
}

func TestFormsNeedTheSessionsCSRFToken(t *testing.T) {
	e := newEnv(t)
	m := e.insert("bob", "alice@foo.example", []byte("hello"), time.Now())
	b := e.browser()
	b.login(t, "bob")
	csrf := b.csrf(t)
	// Another user's session (a second login of bob's would end the first:
	// one session per user).
	other := e.browser()
	other.login(t, "carol")
	for name, c := range map[string]struct {
		form   url.Values
		hdr    map[string]string
		status int
	}{
		"no token":            {url.Values{}, nil, 403},
		"another session's":   {url.Values{"csrf": {other.csrf(t)}}, nil, 403},
		"empty":               {url.Values{"csrf": {""}}, nil, 403},
		"from another origin": {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}, 403},
		"from an opaque one":  {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "null"}, 403},
	} {
		for _, path := range []string{"/web/messages/" + m.ID + "/delete", "/web/rules", "/web/logout"} {
			wantPage(t, b.do("POST", path, c.form, c.hdr), c.status, "nothing was changed")
			_ = name
		}
	}
	// Not logged in at all.
	wantPage(t, e.browser().do("POST", "/web/messages/"+m.ID+"/delete", url.Values{"csrf": {csrf}}, nil), 401)
	// Nothing was deleted and the session still works.
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, m.SHA256)
	// An honest delete: the API's DELETE, then the list without it.
	res := b.do("POST", "/web/messages/"+m.ID+"/delete", url.Values{"csrf": {csrf}}, map[string]string{"Origin": publicURL})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/web/?done=deleted" {
		t.Fatalf("delete: %d %s %s", res.StatusCode, res.Header.Get("Location"), text(res))
	}
	wantPage(t, b.do("GET", "/web/?done=deleted", nil, nil), 200, "The message was deleted.", "Your Incoming is empty")
	wantPage(t, b.do("POST", "/web/messages/"+m.ID+"/delete", url.Values{"csrf": {csrf}}, nil), 404, "no such message")
	wantPage(t, b.do("GET", "/web/messages/"+m.ID, nil, nil), 404)

	// Logout: the session is gone, Keycloak is told with the ID token.
	res = b.do("POST", "/web/logout", url.Values{"csrf": {csrf}}, map[string]string{"Origin": publicURL})
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), issuer+"/protocol/openid-connect/logout?") ||
		loc.Query().Get("id_token_hint") == "" || loc.Query().Get("post_logout_redirect_uri") != publicURL+"/web/" || b.cookies[web.SessionCookie] != nil {
		t.Fatalf("logout: %d %s %v", res.StatusCode, loc, b.cookies)
	}
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, `href="/web/login"`)
	wantPage(t, other.do("GET", "/web/", nil, nil), 200, "Your Incoming is empty")
}

func TestCallbackRefusals(t *testing.T) {
	e := newEnv(t)
	start := func(b *browser) string {
		res := b.do("GET", "/web/login", nil, nil)
		return e.kc.authorize(t, res.Header.Get("Location"), "bob")
	}
	with := func(cb string, change func(q url.Values)) string {
		u, _ := url.Parse(cb)
		q := u.Query()
		change(q)
		return "/web/callback?" + q.Encode()
	}
	b := e.browser()
	cb := start(b)
	wantPage(t, b.do("GET", with(cb, func(q url.Values) { q.Set("state", "x"+q.Get("state")) }), nil, nil), 400, "state does not match")
	// The login was used up by the refusal: the right state now fails too.
	wantPage(t, b.do("GET", cb, nil, nil), 400, "Log in again")

	cb = start(b)
	wantPage(t, e.browser().do("GET", cb, nil, nil), 400, "started no login")
	cb = start(b)
	wantPage(t, b.do("GET", with(cb, func(q url.Values) { q.Set("iss", "https://evil.example/realms/bar") }), nil, nil), 400, "another issuer")
	cb = start(b)
	wantPage(t, b.do("GET", with(cb, func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }), nil, nil), 401, "access_denied")
	cb = start(b)
	wantPage(t, b.do("GET", with(cb, func(q url.Values) { q.Set("code", "code-forged") }), nil, nil), 400, "refused the code")

	// A code from another login of this browser (its nonce, its verifier).
	first := start(b)
	b2 := e.browser()
	second := start(b2)
	u1, _ := url.Parse(first)
	wantPage(t, b2.do("GET", with(second, func(q url.Values) { q.Set("code", u1.Query().Get("code")) }), nil, nil), 400, "refused the code")

	// An access token of another client.
	e.kc.access = jwt.MapClaims{"azp": "rqp-client"}
	wantPage(t, b.do("GET", start(b), nil, nil), 401, "access token is not valid")
	e.kc.access = nil
	if b.cookies[web.SessionCookie] != nil {
		t.Fatal("a refused login left a session cookie")
	}
	// An honest login right after.
	b.login(t, "bob")
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, "Your Incoming is empty")
}

// The page's reads are the API's: a user the owner check refuses sees the
// API's refusal with its status.
func TestAPIRefusalsShowAsPages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(t, "nobody")
	wantPage(t, b.do("GET", "/web/", nil, nil), 404, "no such Incoming")
}

func TestRulesForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(t, "bob")
	page := wantPage(t, b.do("GET", "/web/", nil, nil), 200, `id="rules-form"`, `value="anyone" checked`)
	if !strings.Contains(page, `<textarea name="deny" id="deny" rows="4"></textarea>`) {
		t.Fatalf("default rules not shown: %s", page)
	}
	csrf := b.csrf(t)
	save := func(form url.Values) *http.Response {
		form.Set("csrf", csrf)
		return b.do("POST", "/web/rules", form, nil)
	}
	res := save(url.Values{"default": {"listed"}, "allow": {"Alice@Foo.Example\r\nbar.example"}, "deny": {"foo.example, evil.example"},
		"messages_per_day": {"10"}, "bytes_per_day": {""}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/web/?done=rules#rules" {
		t.Fatalf("save: %d %s", res.StatusCode, text(res))
	}
	wantPage(t, b.do("GET", "/web/?done=rules", nil, nil), 200, "Your rules were saved", `value="listed" checked`,
		"alice@foo.example\nbar.example</textarea>", "foo.example\nevil.example</textarea>", `id="messages_per_day" inputmode="numeric" value="10"`,
		`id="bytes_per_day" inputmode="numeric" value=""`)

	// Refusals name the field and change nothing.
	wantPage(t, save(url.Values{"default": {"listed"}, "deny": {"not an entry@@"}}), 400, "deny", "nothing was changed")
	wantPage(t, save(url.Values{"default": {"sometimes"}}), 400, "default", "nothing was changed")
	wantPage(t, save(url.Values{"default": {"anyone"}, "messages_per_day": {"-1"}}), 400, "messages_per_day", "nothing was changed")
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, `value="listed" checked`, "foo.example\nevil.example</textarea>")

	// Another owner sees his own rules, not Bob's.
	carol := e.browser()
	carol.login(t, "carol")
	wantPage(t, carol.do("GET", "/web/", nil, nil), 200, `value="anyone" checked`)
}

// TestLoginsHoldNoServerState: logins in progress live in the browser's
// sealed cookie, so no number of unauthenticated GET /web/login refuses
// anyone's login (review F5: a store of 1000 pending logins was filled by
// anyone in ten minutes, and every login answered 503); a login cookie
// changed, from another process or too old is refused, and an honest login
// right after succeeds.
func TestLoginsHoldNoServerState(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 2000; i++ {
		res := e.browser().do("GET", "/web/login", nil, nil)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %d: %d %s", i, res.StatusCode, text(res))
		}
	}
	b := e.browser()
	res := b.do("GET", "/web/login", nil, nil)
	cb := e.kc.authorize(t, res.Header.Get("Location"), "bob")
	sealed := b.cookies[web.LoginCookie]
	if sealed == nil || len(sealed.Value) > 1024 || !sealed.HttpOnly || !sealed.Secure {
		t.Fatalf("login cookie %v", sealed)
	}
	u, _ := url.Parse(cb)
	if strings.Contains(sealed.Value, u.Query().Get("state")) {
		t.Fatal("the login cookie shows the state in clear")
	}
	// A bit flipped anywhere in the cookie: refused, no session.
	raw := []byte(sealed.Value)
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} {
		changed := append([]byte(nil), raw...)
		changed[i] ^= 1
		if changed[i] == '.' || changed[i] == '/' {
			changed[i] = 'A'
		}
		c := e.browser()
		c.cookies[web.LoginCookie] = &http.Cookie{Name: web.LoginCookie, Value: string(changed)}
		wantPage(t, c.do("GET", cb, nil, nil), 400, "Log in again")
		if c.cookies[web.SessionCookie] != nil {
			t.Fatal("a changed login cookie gave a session")
		}
	}
	// Sealed by another process (another page, another key).
	other := newEnv(t)
	ob := other.browser()
	ores := ob.do("GET", "/web/login", nil, nil)
	ocb := other.kc.authorize(t, ores.Header.Get("Location"), "bob")
	c := e.browser()
	c.cookies[web.LoginCookie] = ob.cookies[web.LoginCookie]
	wantPage(t, c.do("GET", ocb, nil, nil), 400, "Log in again")
	// Too old: the time is sealed in.
	e.advance(web.LoginTimeout + time.Second)
	wantPage(t, b.do("GET", cb, nil, nil), 400, "took too long")
	// An honest login right after.
	b = e.browser()
	b.login(t, "bob")
	wantPage(t, b.do("GET", "/web/", nil, nil), 200, "Your Incoming is empty")
}

// TestOneSessionPerUser: a new login of a user ends that user's older
// session, so a user looping login and callback holds one session, not
// thousands (review F5); other users' sessions stay.
func TestOneSessionPerUser(t *testing.T) {
	e := newEnv(t)
	carol := e.browser()
	carol.login(t, "carol")
	first := e.browser()
	first.login(t, "bob")
	for i := 0; i < 20; i++ {
		e.browser().login(t, "bob")
	}
	last := e.browser()
	last.login(t, "bob")
	wantPage(t, first.do("GET", "/web/", nil, nil), 200, `href="/web/login"`)
	wantPage(t, last.do("GET", "/web/", nil, nil), 200, "Incoming of <span id=\"owner\">bob</span>")
	wantPage(t, carol.do("GET", "/web/", nil, nil), 200, "Incoming of <span id=\"owner\">carol</span>")
}
