// Package umafake is an in-process stand-in for the whole UMA wide
// ecosystem, for the RqP client's unit tests: a Keycloak-like server with
// realm foo (Alice's AuthN server) and realm bar (Bob's AS, UMA grant), a
// Claims Provider and a Resource Server, each an httptest.Server. It follows
// the wire contract (docs/PROTOCOL.md) and Keycloak's observable answers;
// tokens are JWT-shaped but unsigned (the client never verifies them, the
// fakes check them by lookup). Hooks let a test make any endpoint answer
// differently; counters and records let it see what was sent.
package umafake

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// Credentials and users of the fake.
const (
	ClientID       = "rqp-client"
	AuthNSecret    = "authn-secret-of-rqp-client"
	ASSecret       = "as-secret-of-rqp-client"
	InboxClientID  = "incoming-app"
	AliceEmail     = "alice@foo.example"
	AlicePassword  = "alice-pw"
	AliceID        = "11111111-alice"
	BobPassword    = "bob-pw"
	Owner          = "bob"
	TrustedDomain  = "foo.example"
	ClaimsTokenTTL = 120
)

// Hook answers a request instead of the fake when it returns true.
type Hook func(w http.ResponseWriter, r *http.Request) bool

// Message is what the Resource Server stored.
type Message struct {
	ID, Owner, SenderEmail, ContentType, FileName, SHA256 string
	Body                                                  []byte
}

// Stack is the running fake ecosystem.
type Stack struct {
	// KC serves realms foo and bar (/realms/{realm}/...), CP the Claims
	// Provider, RS the Resource Server.
	KC, CP, RS *httptest.Server

	mu      sync.Mutex
	hooks   map[string]Hook
	counts  map[string]int
	tickets map[string]*ticket
	codes   map[string]*authCode
	pending map[string]*authCode // login sessions by id
	tokens  map[string]tokenInfo // access tokens issued by KC
	rpts    map[string]*rpt
	n       int

	// Records.
	cpForms  []url.Values
	pushed   []uma.PushedClaims
	asForms  []url.Values
	stored   []Message
	unauthed int // POSTs to the Incoming without a token
	// TicketTTL is the life of new tickets; default 5 minutes.
	TicketTTL time.Duration
	// TicketIncomingURI, when set, is the incoming_uri new tickets carry
	// instead of the Resource Server's own Incoming URL (IncomingURL);
	// OmitTicketIncomingURI makes them carry none, as a Resource Server
	// from before incoming_uri did. Set them before the push.
	TicketIncomingURI     string
	OmitTicketIncomingURI bool
	// TicketIssuer, when set, is the iss of new tickets (Keycloak 26 sets
	// none).
	TicketIssuer string
	// Registration, when set before the push, makes realm bar offer RFC
	// 7591 dynamic client registration (registration_endpoint) as
	// Keycloak's anonymous registration does; such clients may use the
	// uma-ticket grant.
	Registration bool
	registered   map[string]string // client id -> secret
	registerReqs []uma.ClientRegistrationRequest
}

// RegistrationPath is realm bar's registration endpoint, below its issuer.
const RegistrationPath = "/clients-registrations/openid-connect"

// Registered returns the registration requests received.
func (s *Stack) Registered() []uma.ClientRegistrationRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uma.ClientRegistrationRequest(nil), s.registerReqs...)
}

// ForgetRegistrations deletes every dynamically registered client, as an
// AS that expired them or lost its database would.
func (s *Stack) ForgetRegistrations() {
	s.mu.Lock()
	s.registered = nil
	s.mu.Unlock()
}

// register is Keycloak's anonymous OIDC client registration.
func (s *Stack) register(w http.ResponseWriter, r *http.Request) {
	if s.hit("kc.register", w, r) {
		return
	}
	var req uma.ClientRegistrationRequest
	if r.Method != http.MethodPost || json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req) != nil {
		Error(w, 400, "invalid_client_metadata", "fake: POST a JSON client")
		return
	}
	if len(req.GrantTypes) != 1 || req.GrantTypes[0] != uma.GrantTypeUMATicket || len(req.ResponseTypes) != 1 || req.ResponseTypes[0] != "none" {
		Error(w, 400, "invalid_client_metadata", "fake: only the uma-ticket grant, response_types [\"none\"] (as the organisation realm's registration policy)")
		return
	}
	s.mu.Lock()
	id, secret, rat := "dyn-"+s.next("c"), s.next("secret"), s.next("rat")
	if s.registered == nil {
		s.registered = map[string]string{}
	}
	s.registered[id] = secret
	s.registerReqs = append(s.registerReqs, req)
	s.mu.Unlock()
	writeJSON(w, 201, uma.ClientRegistrationResponse{ClientID: id, ClientSecret: secret, ClientSecretExpiresAt: 0,
		RegistrationClientURI: s.Issuer("bar") + RegistrationPath + "/" + id, RegistrationAccessToken: rat})
}

type ticket struct {
	owner       string
	incomingURI string // "" when the ticket carries none
	exp         time.Time
	used        bool
}

type authCode struct {
	realm, clientID, redirectURI, challenge, state, scope, user string
}

type tokenInfo struct {
	realm, clientID, user string // user "" for client credentials
	scope                 string
}

type rpt struct {
	owner, sha256, contentType, fileName, senderEmail, incomingURI string
	length                                                         int64
	used                                                           bool
}

// New starts the fake; it stops with the test.
func New(t testing.TB) *Stack {
	s := &Stack{
		hooks: map[string]Hook{}, counts: map[string]int{}, tickets: map[string]*ticket{},
		codes: map[string]*authCode{}, pending: map[string]*authCode{}, tokens: map[string]tokenInfo{}, rpts: map[string]*rpt{},
		TicketTTL: 5 * time.Minute,
	}
	s.KC = httptest.NewServer(http.HandlerFunc(s.keycloak))
	s.CP = httptest.NewServer(http.HandlerFunc(s.claimsProvider))
	s.RS = httptest.NewServer(http.HandlerFunc(s.resourceServer))
	t.Cleanup(func() { s.KC.Close(); s.CP.Close(); s.RS.Close() })
	return s
}

// Issuer of a realm.
func (s *Stack) Issuer(realm string) string { return s.KC.URL + "/realms/" + realm }

// Incoming is Bob's Incoming URL.
func (s *Stack) Incoming() string { return s.RS.URL + "/incoming/" + Owner }

// IncomingURL is the canonical Incoming URL of an owner at the fake
// Resource Server: the incoming_uri it puts on its tickets and requires in
// RPTs, as the real one does.
func (s *Stack) IncomingURL(owner string) string {
	u, err := uma.CanonicalIncomingURL(s.RS.URL + uma.IncomingPath(owner))
	if err != nil {
		panic("umafake: " + err.Error())
	}
	return u
}

// Hook replaces an endpoint: "kc.token" (both realms), "kc.auth",
// "kc.metadata", "cp.discovery", "cp.token", "as.token" (the uma-ticket
// grant), "rs.post", "rs.list", "rs.get".
func (s *Stack) Hook(name string, h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[name] = h
}

// Count is how often an endpoint (hook name) was asked.
func (s *Stack) Count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[name]
}

// StoredMessages is a copy of what the Resource Server stored.
func (s *Stack) StoredMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.stored...)
}

// CPForms are the forms the Claims Provider received.
func (s *Stack) CPForms() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.cpForms...)
}

// ASForms are the uma-ticket grant forms the AS received.
func (s *Stack) ASForms() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.asForms...)
}

// Pushed are the decoded pushed claims the AS received.
func (s *Stack) Pushed() []uma.PushedClaims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uma.PushedClaims(nil), s.pushed...)
}

// UnauthedPosts counts POSTs to an Incoming without a token.
func (s *Stack) UnauthedPosts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthed
}

// ExpireTickets makes every ticket issued so far expired.
func (s *Stack) ExpireTickets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tickets {
		t.exp = time.Now().Add(-time.Second)
	}
}

func (s *Stack) hit(name string, w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	s.counts[name]++
	h := s.hooks[name]
	s.mu.Unlock()
	return h != nil && h(w, r)
}

// next makes a unique id; call it with s.mu held.
func (s *Stack) next(prefix string) string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	s.n++
	return prefix + strconv.Itoa(s.n) + "-" + base64.RawURLEncoding.EncodeToString(b)
}

// JWT makes an unsigned-looking compact JWS with these claims.
func JWT(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "fake"})
	p, _ := json.Marshal(claims)
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "." + enc(sig)
}

func payload(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

// Error writes the JSON error body every service uses.
func Error(w http.ResponseWriter, status int, code, desc string) {
	uma.NewError(status, code, "%s", desc).Write(w)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// --- Keycloak: realms foo and bar ---

func (s *Stack) keycloak(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/realms/")
	if !ok {
		Error(w, 404, "not_found", "no such page")
		return
	}
	realm, path, _ := strings.Cut(rest, "/")
	if realm != "foo" && realm != "bar" {
		Error(w, 404, "not_found", "Realm does not exist")
		return
	}
	iss := s.Issuer(realm)
	switch path {
	case ".well-known/openid-configuration", ".well-known/uma2-configuration":
		if s.hit("kc.metadata", w, r) {
			return
		}
		if path == ".well-known/uma2-configuration" && realm != "bar" {
			Error(w, 404, "not_found", "no UMA here")
			return
		}
		m := map[string]string{
			"issuer": iss, "token_endpoint": iss + "/token", "authorization_endpoint": iss + "/auth",
		}
		if realm == "bar" && s.Registration {
			m["registration_endpoint"] = iss + RegistrationPath
		}
		writeJSON(w, 200, m)
	case strings.TrimPrefix(RegistrationPath, "/"):
		if realm != "bar" || !s.Registration {
			Error(w, 404, "not_found", "no registration here")
			return
		}
		s.register(w, r)
	case "auth":
		if s.hit("kc.auth", w, r) {
			return
		}
		s.authPage(w, r, realm)
	case "login":
		s.loginSubmit(w, r, realm)
	case "token":
		s.token(w, r, realm)
	default:
		Error(w, 404, "not_found", "no such page")
	}
}

// authPage starts a login: the Keycloak-like form (id kc-form-login).
func (s *Stack) authPage(w http.ResponseWriter, r *http.Request, realm string) {
	q := r.URL.Query()
	ac := &authCode{realm: realm, clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		challenge: q.Get("code_challenge"), state: q.Get("state"), scope: q.Get("scope")}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || ac.challenge == "" ||
		!strings.HasPrefix(ac.redirectURI, "http://127.0.0.1:") {
		http.Error(w, "bad authorization request", 400)
		return
	}
	s.mu.Lock()
	id := s.next("session-")
	s.pending[id] = ac
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<html><body><form id="kc-form-login" onsubmit="return true;" action="%s" method="post">
<input name="username"><input name="password" type="password"></form></body></html>`,
		html.EscapeString(s.Issuer(realm)+"/login?session="+id+"&tab_id=x"))
}

func (s *Stack) loginSubmit(w http.ResponseWriter, r *http.Request, realm string) {
	_ = r.ParseForm()
	s.mu.Lock()
	ac := s.pending[r.URL.Query().Get("session")]
	s.mu.Unlock()
	if ac == nil {
		http.Error(w, "no such session", 400)
		return
	}
	user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	ok := realm == "foo" && user == "alice" && pw == AlicePassword || realm == "bar" && user == Owner && pw == BobPassword
	if !ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><form id="kc-form-login" action="x"></form><span id="input-error" class="x">Invalid username or password.</span></html>`)
		return
	}
	s.mu.Lock()
	code := s.next("code-")
	ac.user = user
	s.codes[code] = ac
	s.mu.Unlock()
	q := url.Values{"state": {ac.state}, "code": {code}, "iss": {s.Issuer(realm)}, "session_state": {"x"}}
	http.Redirect(w, r, ac.redirectURI+"?"+q.Encode(), http.StatusFound)
}

func (s *Stack) token(w http.ResponseWriter, r *http.Request, realm string) {
	if err := r.ParseForm(); err != nil {
		Error(w, 400, "invalid_request", "bad form")
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == uma.GrantTypeUMATicket {
		s.umaGrant(w, r, realm)
		return
	}
	if s.hit("kc.token", w, r) {
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id = r.PostForm.Get("client_id")
	}
	iss := s.Issuer(realm)
	switch {
	case realm == "foo" && id == ClientID && secret == AuthNSecret:
	case realm == "bar" && id == InboxClientID && !basic:
	case realm == "bar" && id == ClientID && secret == ASSecret:
	default:
		Error(w, 401, "unauthorized_client", "Invalid client or Invalid client credentials")
		return
	}
	now := time.Now()
	switch grant {
	case "client_credentials":
		if realm != "foo" {
			Error(w, 400, "unauthorized_client", "not here")
			return
		}
		scope := r.PostForm.Get("scope")
		claims := map[string]any{"iss": iss, "sub": "sa-rqp-client", "azp": id, "client_id": id, "exp": now.Add(5 * time.Minute).Unix(), "scope": scope}
		if strings.Contains(scope, uma.ClaimsProviderScope) {
			claims["aud"] = uma.ClaimsProviderAudience
		}
		tok := JWT(claims)
		s.mu.Lock()
		s.tokens[tok] = tokenInfo{realm: realm, clientID: id, scope: scope}
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300})
	case "authorization_code":
		s.mu.Lock()
		ac := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case ac == nil || ac.realm != realm || ac.clientID != id:
			Error(w, 400, "invalid_grant", "Code not valid")
			return
		case ac.redirectURI != r.PostForm.Get("redirect_uri"):
			Error(w, 400, "invalid_grant", "Incorrect redirect_uri")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge:
			Error(w, 400, "invalid_grant", "PKCE verification failed: Invalid code verifier")
			return
		}
		email := AliceEmail
		if ac.user == Owner {
			email = "bob@bar.example"
		}
		claims := map[string]any{"iss": iss, "sub": ac.user + "-id", "azp": id, "exp": now.Add(5 * time.Minute).Unix(),
			"email": email, "email_verified": true, "preferred_username": ac.user, "scope": ac.scope}
		if strings.Contains(ac.scope, uma.ClaimsProviderScope) {
			claims["aud"] = uma.ClaimsProviderAudience
		}
		tok := JWT(claims)
		idt := JWT(map[string]any{"iss": iss, "sub": ac.user + "-id", "aud": id, "email": email, "exp": now.Add(5 * time.Minute).Unix()})
		s.mu.Lock()
		s.tokens[tok] = tokenInfo{realm: realm, clientID: id, user: ac.user, scope: ac.scope}
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": tok, "id_token": idt, "token_type": "Bearer", "expires_in": 300})
	default:
		Error(w, 400, "unsupported_grant_type", "Unsupported grant_type")
	}
}

// umaGrant is Keycloak's uma-ticket grant with a claims-token policy.
func (s *Stack) umaGrant(w http.ResponseWriter, r *http.Request, realm string) {
	if s.hit("as.token", w, r) {
		return
	}
	s.mu.Lock()
	s.asForms = append(s.asForms, r.PostForm)
	s.mu.Unlock()
	id, secret, basic := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	s.mu.Lock()
	dynSecret, dyn := s.registered[id]
	s.mu.Unlock()
	known := id == ClientID && secret == ASSecret || dyn && secret == dynSecret
	if realm != "bar" || !basic || !known {
		Error(w, 401, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	f := r.PostForm
	if f.Get(uma.FormClaimTokenFormat) != uma.ClaimTokenFormatJWT || f.Get(uma.FormSubmitRequest) != "false" {
		Error(w, 400, "invalid_request", "fake: claim_token_format and submit_request=false are required")
		return
	}
	s.mu.Lock()
	tk := s.tickets[f.Get(uma.FormTicket)]
	s.mu.Unlock()
	if tk == nil {
		Error(w, 403, "invalid_ticket", "Ticket verification failed")
		return
	}
	if time.Now().After(tk.exp) {
		Error(w, 403, "invalid_ticket", "Invalid permission ticket.")
		return
	}
	pushed, err := uma.DecodePushedClaims(f.Get(uma.FormClaimToken))
	if err != nil {
		Error(w, 400, "invalid_request", "Invalid claims")
		return
	}
	s.mu.Lock()
	s.pushed = append(s.pushed, pushed)
	s.mu.Unlock()
	ct := payload(pushed.Get(uma.ClaimClaimsToken))
	deny := func() { Error(w, 403, "access_denied", "not_authorized") }
	if ct == nil || ct["ticket_digest"] != uma.TicketDigest(f.Get(uma.FormTicket)) || ct["aud"] != s.Issuer("bar") || ct["iss"] != s.CP.URL {
		deny()
		return
	}
	email, _ := ct["email"].(string)
	if !strings.HasSuffix(email, "@"+TrustedDomain) || ct["email_verified"] != true {
		deny()
		return
	}
	// As the claims-token policy: the pushed incoming_uri must be the one
	// the Resource Server put on the ticket.
	if v := pushed[uma.ClaimIncomingURI]; len(v) != 1 || tk.incomingURI == "" || v[0] != tk.incomingURI {
		Error(w, 403, "access_denied", "not_authorized")
		return
	}
	s.mu.Lock()
	if tk.used {
		s.mu.Unlock()
		deny()
		return
	}
	tk.used = true
	length := int64(-1)
	if v := pushed.Get(uma.ClaimContentLength); v != "" {
		length, _ = strconv.ParseInt(v, 10, 64)
	}
	rp := &rpt{owner: tk.owner, sha256: pushed.Get(uma.ClaimContentSHA256), length: length,
		contentType: pushed.Get(uma.ClaimContentType), fileName: pushed.Get(uma.ClaimFileName), senderEmail: email,
		incomingURI: tk.incomingURI}
	tok := JWT(map[string]any{"iss": s.Issuer("bar"), "exp": time.Now().Add(5 * time.Minute).Unix(), "azp": ClientID,
		"authorization": map[string]any{"permissions": []any{map[string]any{"rsname": "incoming:" + tk.owner, "scopes": []string{"create"}}}}})
	s.rpts[tok] = rp
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300, "upgraded": false})
}

// --- Claims Provider ---

func (s *Stack) claimsProvider(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case uma.DiscoveryPath:
		if s.hit("cp.discovery", w, r) {
			return
		}
		writeJSON(w, 200, uma.ClaimsProviderDiscovery{Issuer: s.CP.URL, ClaimsEndpoint: s.CP.URL + uma.ClaimsTokenPath,
			JWKSURI: s.CP.URL + "/jwks", Domains: []string{TrustedDomain}, SigningAlgValuesSupported: []string{"ES256"}})
	case uma.ClaimsTokenPath:
		if s.hit("cp.token", w, r) {
			return
		}
		s.claimsToken(w, r)
	default:
		Error(w, 404, "not_found", "no such endpoint")
	}
}

func (s *Stack) claimsToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		Error(w, 405, "invalid_request", "method not allowed")
		return
	}
	_ = r.ParseForm()
	s.mu.Lock()
	s.cpForms = append(s.cpForms, r.PostForm)
	ti, known := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	if !known || ti.realm != "foo" || !strings.Contains(ti.scope, uma.ClaimsProviderScope) {
		Error(w, 401, "invalid_token", "the access token is invalid")
		return
	}
	f := r.PostForm
	digest, aud, email := f.Get(uma.FormTicketDigest), f.Get(uma.FormAudience), f.Get(uma.FormEmail)
	if !uma.ValidTicketDigest(digest) || aud == "" {
		Error(w, 400, "invalid_request", "ticket_digest and audience are required")
		return
	}
	if ti.user == "" && email == "" {
		Error(w, 400, "invalid_request", "email is required with a client token")
		return
	}
	if ti.user != "" {
		if email != "" && email != AliceEmail {
			Error(w, 403, "access_denied", "the email differs from the token's")
			return
		}
		email = AliceEmail
	}
	if email != AliceEmail {
		Error(w, 403, "access_denied", "no single enabled user with this email")
		return
	}
	now := time.Now()
	s.mu.Lock() // next counts under the lock: pushes may run concurrently
	jti := s.next("jti-")
	s.mu.Unlock()
	ct := JWT(map[string]any{"iss": s.CP.URL, "sub": AliceID, "aud": aud, "iat": now.Unix(), "exp": now.Add(ClaimsTokenTTL * time.Second).Unix(),
		"jti": jti, "ticket_digest": digest, "email": email, "email_verified": true, "name": "Alice Liddell"})
	writeJSON(w, 200, uma.ClaimsTokenResponse{ClaimsToken: ct, TokenType: uma.TokenTypeClaimsToken, ExpiresIn: ClaimsTokenTTL})
}

// --- Resource Server ---

func (s *Stack) resourceServer(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/incoming/")
	if !ok {
		Error(w, 404, "not_found", "no such endpoint")
		return
	}
	owner, sub, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodPost && sub == "":
		if s.hit("rs.post", w, r) {
			return
		}
		s.post(w, r, owner)
	case r.Method == http.MethodGet && sub == "messages":
		if s.hit("rs.list", w, r) {
			return
		}
		s.list(w, r, owner)
	case r.Method == http.MethodGet && strings.HasPrefix(sub, "messages/"):
		if s.hit("rs.get", w, r) {
			return
		}
		s.get(w, r, owner, strings.TrimPrefix(sub, "messages/"))
	default:
		Error(w, 404, "not_found", "no such endpoint")
	}
}

// Challenge answers 401 with a fresh ticket for the owner. The ticket is
// shaped like Keycloak 26.5.6's (signature not real): no iss, aud the realm's
// issuer, "permissions" [{"scopes", "rsid"}], and the claims the Resource
// Server sent with the permission in a top-level "claims" object, every
// value an array.
func (s *Stack) Challenge(w http.ResponseWriter, owner, errCode string) {
	incoming := s.IncomingURL(owner)
	s.mu.Lock()
	if s.TicketIncomingURI != "" {
		incoming = s.TicketIncomingURI
	}
	if s.OmitTicketIncomingURI {
		incoming = ""
	}
	now := time.Now()
	claims := map[string]any{"jti": s.next("ticket-"), "aud": s.Issuer("bar"), "sub": "service-account-resource-server",
		"azp": "resource-server", "iat": now.Unix(), "exp": now.Add(s.TicketTTL).Unix(),
		"permissions": []any{map[string]any{"scopes": []string{uma.ScopeCreate}, "rsid": "resource-" + owner}}}
	if incoming != "" {
		claims["claims"] = map[string][]string{uma.ClaimIncomingURI: {incoming}}
	}
	if s.TicketIssuer != "" {
		claims["iss"] = s.TicketIssuer
	}
	t := JWT(claims)
	s.tickets[t] = &ticket{owner: owner, incomingURI: incoming, exp: now.Add(s.TicketTTL)}
	s.mu.Unlock()
	h := uma.Challenge{Realm: "bar", ASURI: s.Issuer("bar"), Ticket: t}.String()
	if errCode != "" {
		h += `, error="` + errCode + `"`
	}
	w.Header().Set("WWW-Authenticate", h)
	code := errCode
	if code == "" {
		code = "unauthorized"
	}
	Error(w, 401, code, "an RPT is required")
}

func (s *Stack) post(w http.ResponseWriter, r *http.Request, owner string) {
	if owner != Owner {
		Error(w, 404, "not_found", "no such Incoming")
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		s.mu.Lock()
		s.unauthed++
		s.mu.Unlock()
		s.Challenge(w, owner, "") // the body is not read
		return
	}
	s.mu.Lock()
	rp := s.rpts[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	if rp == nil || rp.owner != owner {
		s.Challenge(w, owner, "invalid_token")
		return
	}
	if rp.incomingURI != s.IncomingURL(owner) {
		Error(w, 403, "insufficient_scope", "the RPT is for another Incoming (incoming_uri_mismatch)")
		return
	}
	if rp.length >= 0 && r.ContentLength != rp.length {
		Error(w, 403, "insufficient_scope", "Content-Length differs from the content_length bound to the RPT")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		Error(w, 400, "invalid_request", "reading the body failed")
		return
	}
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	if rp.sha256 != "" && digest != rp.sha256 {
		Error(w, 403, "insufficient_scope", "the body's SHA-256 differs from the content_sha256 bound to the RPT")
		return
	}
	fileName := ""
	if cd := r.Header.Get("Content-Disposition"); cd != "" {
		_, params, _ := mime.ParseMediaType(cd)
		fileName = params["filename"]
	}
	if rp.fileName != "" && fileName != rp.fileName {
		Error(w, 403, "insufficient_scope", "file name differs from the file_name bound to the RPT")
		return
	}
	s.mu.Lock()
	if rp.used {
		s.mu.Unlock()
		s.Challenge(w, owner, "invalid_token")
		return
	}
	rp.used = true
	m := Message{ID: s.next("msg-"), Owner: owner, SenderEmail: rp.senderEmail, ContentType: r.Header.Get("Content-Type"),
		FileName: fileName, SHA256: digest, Body: body}
	s.stored = append(s.stored, m)
	s.mu.Unlock()
	w.Header().Set("Location", "/incoming/"+owner+"/messages/"+m.ID)
	writeJSON(w, 201, receipt(m, s.CP.URL))
}

func receipt(m Message, iss string) uma.Message {
	return uma.Message{ID: m.ID, Owner: m.Owner, SenderEmail: m.SenderEmail, SenderIss: iss,
		ContentType: m.ContentType, FileName: m.FileName, Size: int64(len(m.Body)), SHA256: m.SHA256,
		ReceivedAt: time.Now().UTC().Format(time.RFC3339Nano)}
}

// reader: a realm-bar token of the owner from incoming-app.
func (s *Stack) reader(w http.ResponseWriter, r *http.Request, owner string) bool {
	s.mu.Lock()
	ti, ok := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	if !ok || ti.realm != "bar" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bar", error="invalid_token"`)
		Error(w, 401, "invalid_token", "the token is invalid or expired")
		return false
	}
	if ti.user != owner || ti.clientID != InboxClientID {
		Error(w, 403, "access_denied", "only the owner may read this Incoming")
		return false
	}
	return true
}

func (s *Stack) list(w http.ResponseWriter, r *http.Request, owner string) {
	if !s.reader(w, r, owner) {
		return
	}
	out := []any{}
	msgs := s.StoredMessages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Owner == owner {
			out = append(out, receipt(msgs[i], s.CP.URL))
		}
	}
	writeJSON(w, 200, map[string]any{"messages": out})
}

func (s *Stack) get(w http.ResponseWriter, r *http.Request, owner, id string) {
	if !s.reader(w, r, owner) {
		return
	}
	for _, m := range s.StoredMessages() {
		if m.ID == id && m.Owner == owner {
			w.Header().Set("Content-Type", m.ContentType)
			_, _ = w.Write(m.Body)
			return
		}
	}
	Error(w, 404, "not_found", "no such message")
}
