// Package web is the owner's page on the Resource Server: Bob logs in at
// his realm (authorization code + PKCE, with state and nonce, through the
// realm's public client), sees his Incoming newest first, downloads and
// deletes messages and edits his rules, in server-side HTML without script.
//
// The page has no owner check of its own. Every read, download, delete and
// rules change is a request to the Resource Server's own API, made in
// process through the same handler chain, carrying the access token of the
// session: the page applies exactly the API's checks (token, client, owner)
// and shows their refusals with their status. What the page adds is the
// login (ID token verified by rpt.Verifier.IDToken, access token by the
// reader check; the login in progress sealed in its cookie, nothing kept on
// the server until it comes back), the session (server-side, bounded, one
// per user, ending with the token, in a Secure, HttpOnly, SameSite cookie)
// and a CSRF token on every form.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/keycloak/token"
	"github.com/umawide/umawide/internal/pkce"
	"github.com/umawide/umawide/resource-server/internal/owner"
	"github.com/umawide/umawide/resource-server/internal/rpt"
)

// Prefix is where the page lives on the Resource Server.
const Prefix = "/web"

// CallbackPath is the page's redirect URI path: <public-url>/web/callback
// must be a redirect URI of the client, exactly.
const CallbackPath = Prefix + "/callback"

// Cookie names. The __Host- prefix makes the browser refuse them unless
// Secure, Path=/ and without Domain: no sibling host can set or shadow them.
const (
	SessionCookie = "__Host-umawide-session"
	LoginCookie   = "__Host-umawide-login"
)

// Bounds.
const (
	DefaultMaxSessions = 10000
	// DefaultMaxSessionAge caps a session whatever the token's lifetime.
	DefaultMaxSessionAge = time.Hour
	// LoginTimeout: how long a login may stay at Keycloak.
	LoginTimeout = 10 * time.Minute
	// MaxFormBytes bounds a POSTed form.
	MaxFormBytes = 64 << 10
	// ListLimit: the page shows the newest this many messages.
	ListLimit = 100
)

// Tokens verifies the realm's tokens (rpt.Verifier): the same reader check
// as the API, and ID tokens.
type Tokens interface {
	IDToken(ctx context.Context, raw, clientID, nonce string) (rpt.Reader, error)
	Reader(ctx context.Context, raw string) (rpt.Reader, error)
}

// Config of the page.
type Config struct {
	// API is the Resource Server's handler (server.Server): the page's
	// every read and change goes through it.
	API http.Handler
	// Tokens verifies the ID token and the access token of a login.
	Tokens Tokens
	// Issuer is the realm's issuer URL as browsers reach it: the
	// authorization and end-session endpoints are under it.
	Issuer string
	// TokenEndpoint is the realm's token endpoint as this server reaches it.
	TokenEndpoint string
	// ClientID is the realm's public client the page logs in with.
	ClientID string
	// PublicURL is this server's base URL (scheme://host[:port]): the
	// redirect URI is PublicURL + CallbackPath.
	PublicURL string
	// HTTPClient for the token endpoint; default http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxSessions, MaxSessionAge: defaults above.
	MaxSessions   int
	MaxSessionAge time.Duration
}

// Handler serves the page under Prefix.
type Handler struct {
	cfg      Config
	sessions *bounded[*session]
	logins   *loginSealer
	csp      string
	origin   string // PublicURL's origin, which a POST's Origin must be
}

//go:embed templates/*.html templates/style.css
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"size": humanSize, "when": when,
}).ParseFS(files, "templates/*.html"))

var styleCSS = func() []byte {
	b, err := files.ReadFile("templates/style.css")
	if err != nil {
		panic(err)
	}
	return b
}()

// New checks the configuration and builds the page.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil || cfg.Tokens == nil || cfg.Issuer == "" || cfg.TokenEndpoint == "" || cfg.ClientID == "" || cfg.PublicURL == "" {
		return nil, errors.New("web: API, Tokens, Issuer, TokenEndpoint, ClientID and PublicURL are required")
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Host == "" || (iss.Scheme != "http" && iss.Scheme != "https") {
		return nil, fmt.Errorf("web: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https") {
		return nil, fmt.Errorf("web: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessionAge <= 0 {
		cfg.MaxSessionAge = DefaultMaxSessionAge
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	logins, err := newLoginSealer()
	if err != nil {
		return nil, err
	}
	return &Handler{
		cfg: cfg, sessions: newBounded[*session](cfg.MaxSessions), logins: logins,
		// No script at all; styles from our own file; forms post to the
		// page, and the logout form's answer redirects to Keycloak (which
		// browsers check against form-action too).
		csp: "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' " + iss.Scheme + "://" + iss.Host +
			"; frame-ancestors 'none'; base-uri 'none'",
		origin: pub.Scheme + "://" + pub.Host,
	}, nil
}

// RedirectURI is the page's redirect URI, to register at the client.
func (h *Handler) RedirectURI() string { return h.cfg.PublicURL + CallbackPath }

var messagePath = regexp.MustCompile(`^/messages/([A-Za-z0-9_-]{1,64})(/delete)?$`)

// ServeHTTP routes the page's paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		h.refuse(w, r, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	method := func(want string) bool {
		if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
		w.Header().Set("Allow", want)
		h.refuse(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page does not answer "+r.Method+".")
		return false
	}
	switch p {
	case "":
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	case "/":
		if method(http.MethodGet) {
			h.home(w, r)
		}
	case "/style.css":
		if method(http.MethodGet) {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=3600")
			_, _ = w.Write(styleCSS)
		}
	case "/login":
		if method(http.MethodGet) {
			h.login(w, r)
		}
	case "/callback":
		if method(http.MethodGet) {
			h.callback(w, r)
		}
	case "/logout":
		if method(http.MethodPost) {
			h.logout(w, r)
		}
	case "/rules":
		if method(http.MethodPost) {
			h.saveRules(w, r)
		}
	default:
		m := messagePath.FindStringSubmatch(p)
		switch {
		case m == nil:
			h.refuse(w, r, http.StatusNotFound, "Not found", "There is no such page.")
		case m[2] == "" && method(http.MethodGet):
			h.download(w, r, m[1])
		case m[2] != "" && method(http.MethodPost):
			h.deleteMessage(w, r, m[1])
		}
	}
}

// --- pages ---

// pageHeaders go on every HTML answer.
func (h *Handler) pageHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with the page's own forms, which post() refuses.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	h.pageHeaders(w)
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		h.cfg.Logger.Error("web: rendering", "page", name, "err", err)
	}
}

type refusal struct {
	Status      int
	Title, Text string
	Login       bool // offer to log in (again)
}

// refuse answers a page saying what was refused and why, with status.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	h.cfg.Logger.Info("web: refused", "path", r.URL.Path, "status", status, "title", title)
	h.render(w, status, "refusal.html", refusal{
		Status: status, Title: title, Text: text,
		Login: status == http.StatusUnauthorized || status == http.StatusBadRequest && strings.HasPrefix(r.URL.Path, CallbackPath),
	})
}

type homePage struct {
	Owner     string
	CSRF      string
	Messages  []messageView
	Full      bool
	Rules     *rulesView
	RulesNote string
	Notice    string
}

var notices = map[string]string{
	"deleted": "The message was deleted.",
	"rules":   "Your rules were saved; they apply to the next push.",
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, _ := h.session(r)
	if s == nil {
		h.render(w, http.StatusOK, "welcome.html", nil)
		return
	}
	list, e := h.list(r, s)
	if e != nil {
		h.apiRefused(w, r, s, e)
		return
	}
	page := homePage{Owner: s.owner, CSRF: s.csrf, Messages: list, Full: len(list) >= ListLimit, Notice: notices[r.URL.Query().Get("done")]}
	rules, e := h.rules(r, s)
	switch {
	case e == nil:
		page.Rules = rules
	case e.StatusCode == http.StatusNotFound && e.Code == "not_found" && e.Description == "no such endpoint":
		page.RulesNote = "This Resource Server has no rules API: every verified sender may push."
	default:
		h.apiRefused(w, r, s, e)
		return
	}
	h.render(w, http.StatusOK, "incoming.html", page)
}

// --- login ---

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	l := login{state: randomString(24), nonce: randomString(24), verifier: pkce.NewVerifier()}
	// Lax, not Strict: the cookie must come back with Keycloak's redirect,
	// a top-level navigation from another site.
	h.setCookie(w, LoginCookie, h.logins.seal(l, now.Add(LoginTimeout)), LoginTimeout, http.SameSiteLaxMode)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {h.cfg.ClientID},
		"redirect_uri":          {h.RedirectURI()},
		"scope":                 {"openid"},
		"state":                 {l.state},
		"nonce":                 {l.nonce},
		"code_challenge":        {pkce.Challenge(l.verifier)},
		"code_challenge_method": {pkce.Method},
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.cfg.Issuer+"/protocol/openid-connect/auth?"+q.Encode(), http.StatusSeeOther)
}

// callback checks, in order: the login this browser started (its sealed
// cookie, cleared here), the state, Keycloak's error answer, the issuer (RFC 9207),
// then exchanges the code with the PKCE verifier and verifies the ID token
// (nonce) and the access token (the reader check), both of one user.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	q := r.URL.Query()
	c, err := r.Cookie(LoginCookie)
	h.clearCookie(w, LoginCookie)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "This browser started no login here (or its login cookie is gone). Log in again.")
		return
	}
	l, ok, expired := h.logins.open(c.Value, now)
	if !ok || expired {
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "This login is unknown, was already completed or took too long. Log in again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.state)) != 1 {
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "The answer's state does not match the login this browser started. Log in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		h.refuse(w, r, http.StatusUnauthorized, "Login failed", "Keycloak answered "+clip(e, 100)+": "+clip(q.Get("error_description"), 300))
		return
	}
	if iss := q.Get("iss"); iss != "" && strings.TrimRight(iss, "/") != h.cfg.Issuer {
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "The answer comes from another issuer than this page's realm.")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "The answer carries no usable code. Log in again.")
		return
	}
	tok, err := token.Request(r.Context(), h.cfg.HTTPClient, h.cfg.TokenEndpoint, h.cfg.ClientID, "", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.RedirectURI()},
		"code_verifier": {l.verifier}, "client_id": {h.cfg.ClientID},
	})
	var ke *keycloak.Error
	switch {
	case errors.As(err, &ke) && ke.StatusCode == http.StatusBadRequest:
		h.cfg.Logger.Info("web: code refused", "err", err)
		h.refuse(w, r, http.StatusBadRequest, "Login refused", "Keycloak refused the code. Log in again.")
		return
	case err != nil:
		h.cfg.Logger.Warn("web: token endpoint", "err", err)
		h.refuse(w, r, http.StatusBadGateway, "Keycloak unavailable", "The login could not be completed: Keycloak did not answer as expected.")
		return
	}
	id, err := h.cfg.Tokens.IDToken(r.Context(), tok.IDToken, h.cfg.ClientID, l.nonce)
	if err != nil {
		h.cfg.Logger.Warn("web: ID token refused", "err", err)
		h.refuse(w, r, http.StatusUnauthorized, "Login refused", "The ID token is not valid for this login.")
		return
	}
	acc, err := h.cfg.Tokens.Reader(r.Context(), tok.AccessToken)
	if err != nil || acc.Subject != id.Subject || acc.ClientID != h.cfg.ClientID {
		h.cfg.Logger.Warn("web: access token refused", "err", err, "sub", acc.Subject, "id_sub", id.Subject, "azp", acc.ClientID)
		h.refuse(w, r, http.StatusUnauthorized, "Login refused", "The access token is not valid for this login.")
		return
	}
	if !owner.Valid(id.Username) {
		h.refuse(w, r, http.StatusForbidden, "No Incoming", "This account's name cannot own an Incoming ("+owner.Rules+").")
		return
	}
	age := min(time.Duration(tok.ExpiresIn)*time.Second, h.cfg.MaxSessionAge)
	if age <= 0 {
		h.refuse(w, r, http.StatusBadGateway, "Keycloak unavailable", "Keycloak issued a token without a lifetime.")
		return
	}
	s := &session{owner: id.Username, sub: id.Subject, access: tok.AccessToken, idToken: tok.IDToken, csrf: randomString(32), expires: now.Add(age)}
	// One session per user: a new login ends the older ones, so that no
	// user looping login and callback can fill the sessions (review F5).
	if n := h.sessions.delWhere(func(old *session) bool { return old.sub == s.sub }); n > 0 {
		h.cfg.Logger.Info("web: older session replaced", "owner", s.owner, "sub", s.sub, "sessions", n)
	}
	key, ok := h.sessions.put(now, s, s.expires)
	if !ok {
		h.refuse(w, r, http.StatusServiceUnavailable, "Too many sessions", "Too many people are logged in; try again later.")
		return
	}
	// Lax: the first page after the login is reached through Keycloak's
	// redirect; every change is a POST that also needs the CSRF token.
	h.setCookie(w, SessionCookie, key, age, http.SameSiteLaxMode)
	h.cfg.Logger.Info("web: owner logged in", "owner", s.owner, "sub", s.sub, "expires", s.expires)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, key, ok := h.post(w, r)
	if !ok {
		return
	}
	h.sessions.del(key)
	h.clearCookie(w, SessionCookie)
	h.cfg.Logger.Info("web: owner logged out", "owner", s.owner, "sub", s.sub)
	q := url.Values{
		"client_id":                {h.cfg.ClientID},
		"id_token_hint":            {s.idToken},
		"post_logout_redirect_uri": {h.cfg.PublicURL + Prefix + "/"},
	}
	http.Redirect(w, r, h.cfg.Issuer+"/protocol/openid-connect/logout?"+q.Encode(), http.StatusSeeOther)
}

// --- sessions and forms ---

// session is the request's live session, or nil.
func (h *Handler) session(r *http.Request) (*session, string) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || len(c.Value) > 64 {
		return nil, ""
	}
	s, ok := h.sessions.get(h.cfg.Now(), c.Value)
	if !ok {
		return nil, ""
	}
	return s, c.Value
}

// post checks a form POST: a live session, a form of bounded size from this
// page's origin (when the browser says), and the session's CSRF token.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) (*session, string, bool) {
	s, key := h.session(r)
	if s == nil {
		h.refuse(w, r, http.StatusUnauthorized, "Not logged in", "Your session has ended (or never began). Log in again; nothing was changed.")
		return nil, "", false
	}
	if o := r.Header.Get("Origin"); o != "" && o != h.origin {
		h.refuse(w, r, http.StatusForbidden, "Refused", "This form was sent from another site; nothing was changed.")
		return nil, "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		h.refuse(w, r, http.StatusUnsupportedMediaType, "Refused", "Forms are sent as application/x-www-form-urlencoded; nothing was changed.")
		return nil, "", false
	}
	if err := r.ParseForm(); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "Refused", "The form could not be read (too large or malformed); nothing was changed.")
		return nil, "", false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		h.refuse(w, r, http.StatusForbidden, "Refused", "The form's CSRF token is missing or wrong (an old page, or a form from another site); nothing was changed. Reload the page and try again.")
		return nil, "", false
	}
	return s, key, true
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, age time.Duration, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(age / time.Second),
		Secure: true, HttpOnly: true, SameSite: same,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
