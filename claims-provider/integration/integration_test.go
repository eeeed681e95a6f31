package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/claims-provider/internal/app"
	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

func TestMain(m *testing.M) { kctest.Main(m) }

// Demo credentials: the realm file's placeholders, overridable as there.
var (
	alicePassword = envOr("UMAWIDE_ALICE_PASSWORD", "alice-password")
	rqpSecret     = envOr("UMAWIDE_FOO_RQP_CLIENT_SECRET", "rqp-client-secret")
	cpSecret      = envOr("UMAWIDE_CLAIMS_PROVIDER_SECRET", "claims-provider-secret")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newTicket() string { return "ticket-" + kctest.RandomHex(16) }

// --- a Claims Provider in-process ---

type instance struct {
	base string // where to connect
	url  string // its issuer URL
	app  *app.App
	cfg  app.Config
	stop func()
}

// start runs a Claims Provider on a free port against the package's Keycloak;
// edit adjusts the configuration (zero fields get the defaults below).
func start(t *testing.T, edit func(*app.Config)) *instance {
	t.Helper()
	kc := kctest.Keycloak(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{
		Listen:          l.Addr().String(),
		Issuer:          "http://" + l.Addr().String(),
		KeycloakURL:     kc.BaseURL,
		Realm:           "foo",
		ClientID:        "claims-provider",
		ClientSecret:    cpSecret,
		OnBehalfClients: []string{"rqp-client"},
		Domains:         []string{"foo.example"},
		KeyDir:          filepath.Join(t.TempDir(), "keys"),
		Alg:             keys.ES256,
		RSABits:         2048,
		CallerLeeway:    2 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	cfg.Listen = l.Addr().String()
	cfg.Defaults()
	a, err := app.New(cfg, testLogger())
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	var once sync.Once
	inst := &instance{base: "http://" + l.Addr().String(), url: strings.TrimRight(cfg.Issuer, "/"), app: a, cfg: cfg}
	inst.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(inst.stop)
	return inst
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

func (i *instance) post(t *testing.T, bearer string, form url.Values) answer {
	t.Helper()
	return i.postRaw(t, bearer, "application/x-www-form-urlencoded", form.Encode())
}

func (i *instance) postRaw(t *testing.T, bearer, contentType, body string) answer {
	t.Helper()
	return send(t, http.MethodPost, i.base+"/claims/token", bearer, []byte(body), http.Header{"Content-Type": {contentType}})
}

func (i *instance) get(t *testing.T, path string) answer {
	t.Helper()
	return send(t, http.MethodGet, i.base+path, "", nil, nil)
}

func send(t *testing.T, method, u, bearer string, body []byte, hdr http.Header) answer {
	t.Helper()
	a := testhttp.Send(t, context.Background(), method, u, bearer, body, hdr)
	return answer{a.Status, a.Header, a.Body}
}

// wantError checks the status and the JSON error body {"error","error_description"}.
func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("answer %v, want %d %s", a, status, code)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var e map[string]any
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	desc, _ := e["error_description"].(string)
	if e["error"] != code || desc == "" || len(e) != 2 {
		t.Fatalf("error body %s, want {\"error\":%q,\"error_description\":...}", a.body, code)
	}
}

func form(ticket, audience string, kv ...string) url.Values {
	f := url.Values{}
	if ticket != "" {
		f.Set(uma.FormTicketDigest, uma.TicketDigest(ticket))
	}
	if audience != "" {
		f.Set(uma.FormAudience, audience)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// --- tokens of realm foo ---

func aliceToken(t *testing.T, realm string) string {
	t.Helper()
	kc := kctest.Keycloak(t)
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kctest.LoginForTokens(ctxT(t), kctest.CodeFlow{
		Issuer: kc.IssuerURL(realm), ClientID: "rqp-client", ClientSecret: rqpSecret,
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/cb", port),
		Scope:       "openid " + uma.ClaimsProviderScope,
	}, "alice", alicePassword)
	if err != nil {
		t.Fatalf("alice's login: %v", err)
	}
	return tok.AccessToken
}

func clientToken(t *testing.T, realm, clientID, secret, scope string) string {
	t.Helper()
	tok, err := kctest.ClientCredentials(ctxT(t), kctest.Keycloak(t).IssuerURL(realm), clientID, secret, scope)
	if err != nil {
		t.Fatalf("client credentials of %s: %v", clientID, err)
	}
	return tok.AccessToken
}

func rqpToken(t *testing.T) string {
	return clientToken(t, "foo", "rqp-client", rqpSecret, uma.ClaimsProviderScope)
}

// --- Keycloak objects the tests need (unique names, removed afterwards) ---

// userRep is a user as the admin API returns it.
type userRep struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
	FirstName     string `json:"firstName"`
	LastName      string `json:"lastName"`
	Enabled       bool   `json:"enabled"`
}

func findUser(t *testing.T, realm, username string) userRep {
	t.Helper()
	var found []userRep
	if err := kctest.Keycloak(t).Admin(ctxT(t), http.MethodGet, "/"+realm+"/users?exact=true&username="+url.QueryEscape(username), nil, &found); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("user %s in %s: %d found", username, realm, len(found))
	}
	return found[0]
}

func createUser(t *testing.T, realm string, rep map[string]any) userRep {
	t.Helper()
	kc := kctest.Keycloak(t)
	if err := kc.Admin(ctxT(t), http.MethodPost, "/"+realm+"/users", rep, nil); err != nil {
		t.Fatalf("create user: %v", err)
	}
	u := findUser(t, realm, rep["username"].(string))
	t.Cleanup(func() {
		if err := kc.Admin(context.Background(), http.MethodDelete, "/"+realm+"/users/"+u.ID, nil, nil); err != nil {
			t.Errorf("delete user %s: %v", u.Username, err)
		}
	})
	return u
}

// --- checking a claims token ---

// issued is a verified claims token.
type issued struct {
	claims issuer.Claims
	kid    string
	raw    string
}

// verify checks a 200 answer: shape, headers, and that the token verifies
// against the instance's /jwks for audience.
func (i *instance) verify(t *testing.T, a answer, audience string) issued {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("answer %v, want 200", a)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
	}
	var ans uma.ClaimsTokenResponse
	if err := json.Unmarshal(a.body, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.TokenType != uma.TokenTypeClaimsToken || ans.ExpiresIn != int64(i.cfg.Lifetime/time.Second) || ans.ClaimsToken == "" {
		t.Fatalf("answer %s", a.body)
	}
	c, err := i.check(ans.ClaimsToken, audience)
	if err != nil {
		t.Fatalf("claims token does not verify against %s/jwks: %v", i.base, err)
	}
	header := segment(t, ans.ClaimsToken, 0)
	kid, _ := header["kid"].(string)
	if header["alg"] != i.app.Keys.Current().Alg || header["typ"] != "JWT" {
		t.Fatalf("header %v", header)
	}
	return issued{claims: c, kid: kid, raw: ans.ClaimsToken}
}

// check verifies a claims token against the instance's JWKS as an AS would.
func (i *instance) check(raw, audience string) (issuer.Claims, error) {
	ks := jwtverify.NewRemoteKeySet(i.base+"/jwks", jwtverify.KeySetOptions{})
	v, err := jwtverify.New(jwtverify.Config{Issuer: i.url, Audience: audience, Algorithms: keys.Algorithms, Keys: ks, Leeway: time.Second})
	if err != nil {
		return issuer.Claims{}, err
	}
	var c issuer.Claims
	err = v.Verify(context.Background(), raw, &c)
	return c, err
}

func segment(t *testing.T, raw string, n int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantUserClaims checks the claims are the user's as Keycloak holds them.
func wantUserClaims(t *testing.T, c issuer.Claims, u userRep, issuerURL, audience, ticket string) {
	t.Helper()
	want := issuer.Claims{
		Issuer: issuerURL, Subject: u.ID, Audience: audience,
		IssuedAt: c.IssuedAt, ExpiresAt: c.IssuedAt + 120, ID: c.ID,
		TicketDigest: uma.TicketDigest(ticket),
		Email:        u.Email, EmailVerified: u.EmailVerified,
		Name:      strings.TrimSpace(u.FirstName + " " + u.LastName),
		GivenName: u.FirstName, FamilyName: u.LastName,
	}
	if c != want {
		t.Fatalf("claims\n got %+v\nwant %+v", c, want)
	}
	if len(c.ID) < 22 || c.IssuedAt < time.Now().Add(-time.Minute).Unix() {
		t.Fatalf("jti %q iat %d", c.ID, c.IssuedAt)
	}
}

// ==== the tests ====

func TestBothVariants(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := start(t, nil)
	alice := findUser(t, "foo", "alice")
	if alice.Email != "alice@foo.example" || !alice.EmailVerified || alice.FirstName != "Alice" || alice.LastName != "Liddell" {
		t.Fatalf("alice in Keycloak: %+v", alice)
	}
	bar := kc.IssuerURL("bar")

	t.Run("Alice involved: her own token", func(t *testing.T) {
		ticket := newTicket()
		got := cp.verify(t, cp.post(t, aliceToken(t, "foo"), form(ticket, bar)), bar)
		wantUserClaims(t, got.claims, alice, cp.url, bar, ticket)
		if got.kid != cp.app.Keys.Current().Kid {
			t.Fatalf("kid %s, want the current key %s", got.kid, cp.app.Keys.Current().Kid)
		}
		// Her own email in the field is fine too.
		got = cp.verify(t, cp.post(t, aliceToken(t, "foo"), form(ticket, bar, "email", "Alice@foo.example")), bar)
		wantUserClaims(t, got.claims, alice, cp.url, bar, ticket)
	})
	t.Run("Alice not involved: rqp-client's own token", func(t *testing.T) {
		ticket := newTicket()
		got := cp.verify(t, cp.post(t, rqpToken(t), form(ticket, bar, "email", "alice@foo.example")), bar)
		wantUserClaims(t, got.claims, alice, cp.url, bar, ticket)
	})
	t.Run("jti fresh per token", func(t *testing.T) {
		tok := rqpToken(t)
		seen := map[string]bool{}
		for range 3 {
			c := cp.verify(t, cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example")), bar).claims
			if seen[c.ID] {
				t.Fatalf("jti %s repeated", c.ID)
			}
			seen[c.ID] = true
		}
	})
	t.Run("unverified email is issued as unverified", func(t *testing.T) {
		name := "cp-itest-unverified-" + kctest.RandomHex(4)
		u := createUser(t, "foo", map[string]any{
			"username": name, "enabled": true, "email": name + "@foo.example", "emailVerified": false, "firstName": "Una",
		})
		ticket := newTicket()
		c := cp.verify(t, cp.post(t, rqpToken(t), form(ticket, bar, "email", u.Email)), bar).claims
		wantUserClaims(t, c, u, cp.url, bar, ticket)
		if c.EmailVerified || c.FamilyName != "" || c.Name != "Una" {
			t.Fatalf("claims %+v", c)
		}
	})
	t.Run("discovery, JWKS, health, readiness", func(t *testing.T) {
		var d map[string]any
		a := cp.get(t, uma.DiscoveryPath)
		if err := json.Unmarshal(a.body, &d); err != nil || a.status != 200 {
			t.Fatalf("discovery %v", a)
		}
		if d["issuer"] != cp.url || d["claims_endpoint"] != cp.url+"/claims/token" || d["jwks_uri"] != cp.url+"/jwks" ||
			fmt.Sprint(d["domains"]) != "[foo.example]" || fmt.Sprint(d["signing_alg_values_supported"]) != "[ES256]" {
			t.Fatalf("discovery %s", a.body)
		}
		a = cp.get(t, "/jwks")
		keys, err := jwk.ParseSet(a.body)
		if err != nil || len(keys) != 1 {
			t.Fatalf("JWKS %v: %v", a, err)
		}
		tp, _ := jwk.Thumbprint(keys[0].Public)
		if keys[0].Kid != tp || keys[0].Alg != "ES256" {
			t.Fatalf("JWKS key kid %s alg %s, want the thumbprint %s", keys[0].Kid, keys[0].Alg, tp)
		}
		if a := cp.get(t, "/healthz"); a.status != 200 {
			t.Fatalf("healthz %v", a)
		}
		if a := cp.get(t, "/readyz"); a.status != 200 {
			t.Fatalf("readyz against the real Keycloak: %v", a)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		a := cp.get(t, "/metrics")
		for _, want := range []string{
			`claims_provider_tokens_issued_total{alg="ES256",caller="user"} 2`,
			`claims_provider_tokens_issued_total{alg="ES256",caller="client"} 5`,
			`claims_provider_http_request_duration_seconds_bucket{route="/claims/token",status="200"`,
		} {
			if !strings.Contains(string(a.body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestRefusals(t *testing.T) {
	kc := kctest.Keycloak(t)
	cp := start(t, nil)
	bar := kc.IssuerURL("bar")
	alice := aliceToken(t, "foo")
	rqp := rqpToken(t)
	good := form(newTicket(), bar)
	const challenge = `Bearer realm="claims-provider", error="invalid_token"`

	t.Run("no bearer token", func(t *testing.T) {
		a := cp.post(t, "", good)
		wantError(t, a, 401, uma.ErrInvalidToken)
		if got := a.header.Get("WWW-Authenticate"); got != `Bearer realm="claims-provider"` {
			t.Fatalf("WWW-Authenticate %q: RFC 6750 3.1 wants no error code without credentials", got)
		}
	})
	t.Run("bad bearer token", func(t *testing.T) {
		// alice's token with its signature replaced by another token's.
		other := strings.Split(rqp, ".")
		parts := strings.Split(alice, ".")
		forged := parts[0] + "." + parts[1] + "." + other[2]
		for _, tok := range []string{"garbage", forged} {
			a := cp.post(t, tok, good)
			wantError(t, a, 401, uma.ErrInvalidToken)
			if got := a.header.Get("WWW-Authenticate"); got != challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
			}
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		// rqp-client's token without scope claims-provider: aud lacks it.
		tok := clientToken(t, "foo", "rqp-client", rqpSecret, "")
		a := cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example"))
		wantError(t, a, 401, uma.ErrInvalidToken)
		if a.header.Get("WWW-Authenticate") != challenge {
			t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
		}
		// A token of another realm (bar) is no token of realm foo.
		bobs := clientToken(t, "bar", "rqp-client", envOr("UMAWIDE_BAR_RQP_CLIENT_SECRET", "rqp-client-secret"), "")
		wantError(t, cp.post(t, bobs, form(newTicket(), bar, "email", "alice@foo.example")), 401, uma.ErrInvalidToken)
	})
	t.Run("expired token", func(t *testing.T) {
		id := "cp-itest-short-" + kctest.RandomHex(4)
		if err := kc.Admin(ctxT(t), http.MethodPost, "/foo/clients", map[string]any{
			"clientId": id, "enabled": true, "publicClient": false, "secret": "short-secret",
			"serviceAccountsEnabled": true, "standardFlowEnabled": false,
			"attributes":          map[string]string{"access.token.lifespan": "1"},
			"defaultClientScopes": []string{"basic", "service_account", uma.ClaimsProviderScope},
		}, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteClient(t, id) })
		tok := clientToken(t, "foo", id, "short-secret", "")
		claims, _ := kctest.Claims(tok)
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat > 1 {
			t.Fatalf("token lifetime %v s, want 1", exp-iat)
		}
		time.Sleep(time.Second + cp.cfg.CallerLeeway + 500*time.Millisecond)
		a := cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example"))
		wantError(t, a, 401, uma.ErrInvalidToken)
		if a.header.Get("WWW-Authenticate") != challenge {
			t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("missing ticket_digest", func(t *testing.T) {
		wantError(t, cp.post(t, alice, form("", bar)), 400, uma.ErrInvalidRequest)
	})
	t.Run("malformed ticket_digest", func(t *testing.T) {
		d := uma.TicketDigest(newTicket())
		for _, bad := range []string{d[:42], d + "A", d[:42] + "=", strings.Repeat("+", 43), newTicket()} {
			f := url.Values{uma.FormTicketDigest: {bad}, uma.FormAudience: {bar}}
			wantError(t, cp.post(t, alice, f), 400, uma.ErrInvalidRequest)
		}
	})
	t.Run("missing audience", func(t *testing.T) {
		wantError(t, cp.post(t, alice, form(newTicket(), "")), 400, uma.ErrInvalidRequest)
		wantError(t, cp.post(t, alice, form(newTicket(), "not a url")), 400, uma.ErrInvalidRequest)
	})
	t.Run("email mismatch with a user token", func(t *testing.T) {
		wantError(t, cp.post(t, alice, form(newTicket(), bar, "email", "bob@foo.example")), 403, uma.ErrAccessDenied)
	})
	t.Run("client token without email", func(t *testing.T) {
		wantError(t, cp.post(t, rqp, form(newTicket(), bar)), 400, uma.ErrInvalidRequest)
	})
	t.Run("on-behalf request from a client not allowed", func(t *testing.T) {
		strict := start(t, func(c *app.Config) { c.OnBehalfClients = nil })
		a := strict.post(t, rqp, form(newTicket(), bar, "email", "alice@foo.example"))
		wantError(t, a, 403, uma.ErrInsufficientScope)
		if got := a.header.Get("WWW-Authenticate"); got != `Bearer realm="claims-provider", error="insufficient_scope"` {
			t.Fatalf("WWW-Authenticate %q", got)
		}
		// Alice's own token still works there: she is involved.
		strict.verify(t, strict.post(t, alice, form(newTicket(), bar)), bar)
	})
	var unknownBody []byte
	t.Run("unknown user", func(t *testing.T) {
		a := cp.post(t, rqp, form(newTicket(), bar, "email", "nobody-"+kctest.RandomHex(4)+"@foo.example"))
		wantError(t, a, 403, uma.ErrAccessDenied)
		unknownBody = a.body
	})
	t.Run("disabled user", func(t *testing.T) {
		name := "cp-itest-disabled-" + kctest.RandomHex(4)
		u := createUser(t, "foo", map[string]any{
			"username": name, "enabled": false, "email": name + "@foo.example", "emailVerified": true,
		})
		a := cp.post(t, rqp, form(newTicket(), bar, "email", u.Email))
		wantError(t, a, 403, uma.ErrAccessDenied)
		if string(a.body) != string(unknownBody) {
			t.Fatalf("disabled %s differs from unknown %s: the answer tells them apart", a.body, unknownBody)
		}
	})
	t.Run("email domain not served", func(t *testing.T) {
		wantError(t, cp.post(t, rqp, form(newTicket(), bar, "email", "bob@bar.example")), 403, uma.ErrAccessDenied)
	})
	t.Run("body over 64 KiB", func(t *testing.T) {
		f := form(newTicket(), bar, "email", "alice@foo.example", "padding", strings.Repeat("x", 64<<10))
		wantError(t, cp.post(t, rqp, f), 413, uma.ErrTooLarge)
	})
	t.Run("not a form", func(t *testing.T) {
		wantError(t, cp.postRaw(t, rqp, "application/json", `{"ticket_digest":"x"}`), 400, uma.ErrInvalidRequest)
	})
	t.Run("refusals counted by reason", func(t *testing.T) {
		body := string(cp.get(t, "/metrics").body)
		for _, want := range []string{
			`claims_provider_refusals_total{reason="missing_token"} 1`,
			`claims_provider_refusals_total{reason="invalid_token"} `,
			`claims_provider_refusals_total{reason="email_mismatch"} 1`,
			`claims_provider_refusals_total{reason="user_unknown"} 1`,
			`claims_provider_refusals_total{reason="user_disabled"} 1`,
			`claims_provider_refusals_total{reason="body_too_large"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func deleteClient(t *testing.T, clientID string) {
	kc := kctest.Keycloak(t)
	var found []struct {
		ID string `json:"id"`
	}
	ctx := context.Background()
	if err := kc.Admin(ctx, http.MethodGet, "/foo/clients?clientId="+url.QueryEscape(clientID), nil, &found); err != nil || len(found) != 1 {
		t.Errorf("find client %s: %v (%d)", clientID, err, len(found))
		return
	}
	if err := kc.Admin(ctx, http.MethodDelete, "/foo/clients/"+found[0].ID, nil, nil); err != nil {
		t.Errorf("delete client %s: %v", clientID, err)
	}
}

// An ambiguous result needs two users with one email: a realm with duplicate
// emails allowed (a copy of realm foo under a fresh name, deleted afterwards).
func TestAmbiguousUser(t *testing.T) {
	kc := kctest.Keycloak(t)
	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(launcher.RealmDir(root), "foo-realm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(launcher.ExpandPlaceholders(raw, nil), &rep); err != nil {
		t.Fatal(err)
	}
	realm := "foo-dup-" + kctest.RandomHex(4)
	rep["realm"] = realm
	delete(rep, "id")
	rep["duplicateEmailsAllowed"] = true
	rep["loginWithEmailAllowed"] = false
	list := rep["users"].([]any)
	for _, n := range []string{"twin-a", "twin-b"} {
		list = append(list, map[string]any{"username": n, "enabled": true, "email": "twin@foo.example", "emailVerified": true})
	}
	rep["users"] = list
	kctest.ImportRealm(t, kc, rep)

	cp := start(t, func(c *app.Config) { c.Realm = realm })
	bar := kc.IssuerURL("bar")
	tok := clientToken(t, realm, "rqp-client", rqpSecret, uma.ClaimsProviderScope)
	// The instance works for a unique email of that realm...
	alice := findUser(t, realm, "alice")
	ticket := newTicket()
	c := cp.verify(t, cp.post(t, tok, form(ticket, bar, "email", "alice@foo.example")), bar).claims
	wantUserClaims(t, c, alice, cp.url, bar, ticket)
	// ...and refuses the shared one, as it refuses an unknown user.
	amb := cp.post(t, tok, form(newTicket(), bar, "email", "twin@foo.example"))
	wantError(t, amb, 403, uma.ErrAccessDenied)
	unknown := cp.post(t, tok, form(newTicket(), bar, "email", "nobody@foo.example"))
	if string(amb.body) != string(unknown.body) {
		t.Fatalf("ambiguous %s differs from unknown %s", amb.body, unknown.body)
	}
	if !strings.Contains(string(cp.get(t, "/metrics").body), `claims_provider_refusals_total{reason="user_ambiguous"} 1`) {
		t.Fatal("ambiguous refusal not counted as such")
	}
}

// Keycloak unreachable: 503 temporarily_unavailable, whether the realm's keys
// cannot be fetched or the user lookup fails.
func TestKeycloakUnreachable(t *testing.T) {
	kc := kctest.Keycloak(t)
	bar := kc.IssuerURL("bar")
	tok := rqpToken(t)

	t.Run("closed port from the start", func(t *testing.T) {
		port, err := launcher.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cp := start(t, func(c *app.Config) {
			c.KeycloakURL = fmt.Sprintf("http://127.0.0.1:%d", port)
			c.RealmIssuer = kc.IssuerURL("foo") // the tokens are the real Keycloak's
			c.KeycloakTimeout = 2 * time.Second
		})
		a := cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example"))
		wantError(t, a, 503, uma.ErrUnavailable)
		if a.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		wantError(t, cp.get(t, "/readyz"), 503, uma.ErrUnavailable)
		if a := cp.get(t, "/healthz"); a.status != 200 {
			t.Fatalf("healthz %v: the process is up", a)
		}
	})

	t.Run("Keycloak goes away after the keys were cached", func(t *testing.T) {
		proxy := newFlakyProxy(t, kc.BaseURL)
		cp := start(t, func(c *app.Config) {
			c.KeycloakURL = proxy.URL
			c.RealmIssuer = kc.IssuerURL("foo")
			c.KeycloakTimeout = 2 * time.Second
		})
		cp.verify(t, cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example")), bar)
		proxy.down.Store(true)
		a := cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example"))
		wantError(t, a, 503, uma.ErrUnavailable)
		wantError(t, cp.get(t, "/readyz"), 503, uma.ErrUnavailable)
		body := string(cp.get(t, "/metrics").body)
		if !strings.Contains(body, `claims_provider_refusals_total{reason="keycloak_unavailable"} 1`) {
			t.Error("refusal not counted as keycloak_unavailable")
		}
		// Back up: served again, no restart needed.
		proxy.down.Store(false)
		cp.verify(t, cp.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example")), bar)
	})
}

// flakyProxy forwards to Keycloak, or drops every connection while down.
type flakyProxy struct {
	*httptest.Server
	down atomic.Bool
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &flakyProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// A restart keeps the kid; after a rotation the JWKS serves both keys, tokens
// of the old key still verify and new tokens carry the new kid.
func TestRestartAndRotation(t *testing.T) {
	kc := kctest.Keycloak(t)
	bar := kc.IssuerURL("bar")
	tok := rqpToken(t)
	for _, alg := range []string{keys.ES256, keys.RS256} {
		t.Run(alg, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			edit := func(c *app.Config) {
				c.KeyDir, c.Alg = dir, alg
				c.Issuer = "http://cp-restart.test" // the same public URL across restarts
				c.KeyReloadInterval = time.Second
			}
			first := start(t, edit)
			kid := first.app.Keys.Current().Kid
			before := first.verify(t, first.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example")), bar)
			if before.kid != kid {
				t.Fatalf("kid %s, want %s", before.kid, kid)
			}
			first.stop()

			second := start(t, edit)
			if got := second.app.Keys.Current().Kid; got != kid {
				t.Fatalf("restart changed the kid %s -> %s", kid, got)
			}
			if kids := jwksKids(t, second); len(kids) != 1 || kids[0] != kid {
				t.Fatalf("JWKS after restart %v, want [%s]", kids, kid)
			}
			if _, err := second.check(before.raw, bar); err != nil {
				t.Fatalf("token of the first run does not verify after the restart: %v", err)
			}

			// Rotate from outside, as 'claims-provider rotate' does; the
			// running server picks it up within KeyReloadInterval.
			newKid, err := keys.Rotate(dir, alg, second.cfg.KeyOptions(testLogger()))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for second.app.Keys.Current().Kid != newKid {
				if time.Now().After(deadline) {
					t.Fatal("the running server did not pick up the rotation")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if kids := jwksKids(t, second); len(kids) != 2 || kids[0] != newKid || kids[1] != kid {
				t.Fatalf("JWKS after rotation %v, want [%s %s]", kids, newKid, kid)
			}
			after := second.verify(t, second.post(t, tok, form(newTicket(), bar, "email", "alice@foo.example")), bar)
			if after.kid != newKid {
				t.Fatalf("token after rotation has kid %s, want %s", after.kid, newKid)
			}
			if _, err := second.check(before.raw, bar); err != nil {
				t.Fatalf("token of the retired key does not verify during the grace period: %v", err)
			}
		})
	}
}

func jwksKids(t *testing.T, i *instance) []string {
	t.Helper()
	var set jwk.Set
	if err := json.Unmarshal(i.get(t, "/jwks").body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}
