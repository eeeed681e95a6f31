package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/provider"
	"github.com/umawide/umawide/claims-provider/internal/users"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/uma"
)

const (
	realmIss = "http://kc.test/realms/foo"
	cpIss    = "http://cp.test"
	asURI    = "http://kc.test/realms/bar"
)

var digest = uma.TicketDigest("the-ticket")

// realm signs access tokens like Keycloak's realm foo.
type realm struct {
	key *ecdsa.PrivateKey
	kid string
}

func newRealm() *realm {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kid, _ := jwk.Thumbprint(&k.PublicKey)
	return &realm{key: k, kid: kid}
}

func (r *realm) token(t testing.TB, edit func(jwt.MapClaims)) string {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": realmIss, "aud": []string{"claims-provider"}, "sub": "alice-id", "typ": "Bearer",
		"azp": "rqp-client", "preferred_username": "alice", "email": "alice@foo.example",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = r.kid
	raw, err := tok.SignedString(r.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func clientToken(c jwt.MapClaims) {
	c["sub"], c["preferred_username"], c["client_id"] = "sa-id", "service-account-rqp-client", "rqp-client"
	delete(c, "email")
}

type dir struct {
	err   error
	calls atomic.Int32
}

func (d *dir) ByEmail(_ context.Context, email string) (users.User, error) {
	d.calls.Add(1)
	if d.err != nil {
		return users.User{}, d.err
	}
	if email != "alice@foo.example" {
		return users.User{}, users.ErrNotFound
	}
	return users.User{ID: "alice-id", Username: "alice", Email: email, EmailVerified: true, FirstName: "Alice", LastName: "Liddell"}, nil
}

type fixture struct {
	realm *realm
	dir   *dir
	keys  *keys.Store
	srv   *Server
	http  *httptest.Server
	ready atomic.Value // error or nil
	calls atomic.Int32
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{realm: newRealm(), dir: &dir{}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	f.keys, err = keys.Open(filepath.Join(t.TempDir(), "k"), keys.ES256, keys.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(cpIss, f.keys, issuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtverify.New(jwtverify.Config{Issuer: realmIss, Audience: uma.ClaimsProviderAudience,
		Keys: jwtverify.StaticKeys{{Kid: f.realm.kid, Public: &f.realm.key.PublicKey}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(caller.New(v), f.dir, iss, provider.Config{OnBehalfClients: []string{"rqp-client"}, Domains: []string{"foo.example"}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = New(Config{
		Issuer: cpIss + "/", Provider: p, Keys: f.keys, Logger: quiet,
		Ready: func(context.Context) error {
			f.calls.Add(1)
			if e, _ := f.ready.Load().(error); e != nil {
				return e
			}
			return nil
		},
		ReadyCacheFor: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.http = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
}

// wantError checks status, JSON error body and code.
func (a answer) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d (%s), want %d", a.status, a.body, status)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e map[string]any
	a.json(t, &e)
	if e["error"] != code || e["error_description"] == "" || len(e) != 2 {
		t.Fatalf("error body %s, want {error: %s, error_description}", a.body, code)
	}
}

func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, data}
}

func (f *fixture) post(t *testing.T, token string, form url.Values) answer {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return f.do(t, http.MethodPost, PathClaimsToken, h, strings.NewReader(form.Encode()))
}

func goodForm() url.Values {
	return url.Values{uma.FormTicketDigest: {digest}, uma.FormAudience: {asURI}}
}

func TestClaimsTokenIssued(t *testing.T) {
	f := newFixture(t)
	for name, tc := range map[string]struct {
		token string
		form  url.Values
	}{
		"user token": {f.realm.token(t, nil), goodForm()},
		"client token": {f.realm.token(t, clientToken), url.Values{
			uma.FormTicketDigest: {digest}, uma.FormAudience: {asURI}, uma.FormEmail: {"alice@foo.example"}}},
	} {
		t.Run(name, func(t *testing.T) {
			a := f.post(t, tc.token, tc.form)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", a.header)
			}
			var resp map[string]any
			a.json(t, &resp)
			if len(resp) != 3 || resp["token_type"] != uma.TokenTypeClaimsToken || resp["expires_in"] != float64(120) {
				t.Fatalf("answer %s", a.body)
			}
			// The token verifies against the served JWKS.
			var set json.RawMessage
			f.do(t, http.MethodGet, PathJWKS, nil, nil).json(t, &set)
			parsed, err := jwk.ParseSet(set)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := jwtverify.New(jwtverify.Config{Issuer: cpIss, Audience: asURI, Keys: jwtverify.StaticKeys(parsed)})
			var c issuer.Claims
			if err := v.Verify(context.Background(), resp["claims_token"].(string), &c); err != nil {
				t.Fatal(err)
			}
			if c.Subject != "alice-id" || c.Email != "alice@foo.example" || c.TicketDigest != digest || c.Issuer != cpIss {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

func TestBearerRefusals(t *testing.T) {
	f := newFixture(t)
	form := goodForm().Encode()
	cases := []struct {
		name      string
		auth      []string
		status    int
		code      string
		challenge string
	}{
		{"no Authorization", nil, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider"`},
		{"Basic scheme", []string{"Basic cnFwOnNlY3JldA=="}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider"`},
		{"empty bearer", []string{"Bearer "}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
		{"bearer with a space inside", []string{"Bearer abc def"}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
		{"bad token", []string{"Bearer not.a.jwt"}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
		{"wrong audience", []string{"Bearer " + f.realm.token(t, func(c jwt.MapClaims) { c["aud"] = "account" })}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
		{"expired", []string{"Bearer " + f.realm.token(t, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-10*time.Minute).Unix()
		})}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
		{"two headers", []string{"Bearer " + f.realm.token(t, nil), "Bearer x"}, 400, uma.ErrInvalidRequest, ""},
		{"oversized header", []string{"Bearer " + strings.Repeat("a", uma.MaxAuthorizationBytes)}, 401, uma.ErrInvalidToken, `Bearer realm="claims-provider", error="invalid_token"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.http.URL+PathClaimsToken, strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, v := range tc.auth {
				req.Header.Add("Authorization", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			a := answer{resp.StatusCode, resp.Header, body}
			a.wantError(t, tc.status, tc.code)
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
		})
	}
	if n := f.dir.calls.Load(); n != 0 {
		t.Fatalf("%d directory lookups for unauthenticated requests", n)
	}
}

func TestBodyRefusals(t *testing.T) {
	f := newFixture(t)
	tok := f.realm.token(t, nil)
	big := goodForm()
	big.Set("padding", strings.Repeat("x", DefaultMaxBodyBytes))

	t.Run("over 64 KiB with Content-Length", func(t *testing.T) {
		f.post(t, tok, big).wantError(t, http.StatusRequestEntityTooLarge, uma.ErrTooLarge)
	})
	t.Run("over 64 KiB chunked", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte(big.Encode()))
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, f.http.URL+PathClaimsToken, pr)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.ContentLength = -1 // unknown: sent chunked, no Content-Length to refuse early
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answer{resp.StatusCode, resp.Header, body}.wantError(t, http.StatusRequestEntityTooLarge, uma.ErrTooLarge)
	})
	t.Run("just under the limit is read", func(t *testing.T) {
		form := goodForm()
		form.Set("padding", strings.Repeat("x", DefaultMaxBodyBytes-len(form.Encode())-len("&padding=")))
		if n := len(form.Encode()); n != DefaultMaxBodyBytes {
			t.Fatalf("body %d bytes", n)
		}
		if a := f.post(t, tok, form); a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		f.do(t, http.MethodPost, PathClaimsToken, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"},
			strings.NewReader(`{"ticket_digest":"`+digest+`","audience":"`+asURI+`"}`)).wantError(t, 400, uma.ErrInvalidRequest)
	})
	t.Run("malformed form", func(t *testing.T) {
		f.do(t, http.MethodPost, PathClaimsToken, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/x-www-form-urlencoded"},
			strings.NewReader("ticket_digest=%zz")).wantError(t, 400, uma.ErrInvalidRequest)
	})
	t.Run("missing ticket_digest", func(t *testing.T) {
		f.post(t, tok, url.Values{uma.FormAudience: {asURI}}).wantError(t, 400, uma.ErrInvalidRequest)
	})
	t.Run("malformed ticket_digest", func(t *testing.T) {
		f.post(t, tok, url.Values{uma.FormTicketDigest: {digest[:40]}, uma.FormAudience: {asURI}}).wantError(t, 400, uma.ErrInvalidRequest)
	})
	t.Run("missing audience", func(t *testing.T) {
		f.post(t, tok, url.Values{uma.FormTicketDigest: {digest}}).wantError(t, 400, uma.ErrInvalidRequest)
	})
}

func TestDecisionRefusals(t *testing.T) {
	f := newFixture(t)
	t.Run("email mismatch with a user token", func(t *testing.T) {
		form := goodForm()
		form.Set(uma.FormEmail, "bob@foo.example")
		a := f.post(t, f.realm.token(t, nil), form)
		a.wantError(t, 403, uma.ErrAccessDenied)
		if a.header.Get("WWW-Authenticate") != "" {
			t.Fatalf("challenge on access_denied: %q", a.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("client not allowed on behalf", func(t *testing.T) {
		form := goodForm()
		form.Set(uma.FormEmail, "alice@foo.example")
		a := f.post(t, f.realm.token(t, func(c jwt.MapClaims) {
			clientToken(c)
			c["azp"], c["client_id"], c["preferred_username"] = "other", "other", "service-account-other"
		}), form)
		a.wantError(t, 403, uma.ErrInsufficientScope)
		if got := a.header.Get("WWW-Authenticate"); got != `Bearer realm="claims-provider", error="insufficient_scope"` {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		form := goodForm()
		form.Set(uma.FormEmail, "nobody@foo.example")
		f.post(t, f.realm.token(t, clientToken), form).wantError(t, 403, uma.ErrAccessDenied)
	})
	t.Run("Keycloak unavailable", func(t *testing.T) {
		f.dir.err = fmt.Errorf("%w: connection refused", users.ErrUnavailable)
		defer func() { f.dir.err = nil }()
		a := f.post(t, f.realm.token(t, nil), goodForm())
		a.wantError(t, 503, uma.ErrUnavailable)
		if a.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	})
}

func TestDiscoveryAndJWKS(t *testing.T) {
	f := newFixture(t)
	var d map[string]any
	a := f.do(t, http.MethodGet, uma.DiscoveryPath, nil, nil)
	if a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	a.json(t, &d)
	want := map[string]any{
		"issuer": cpIss, "claims_endpoint": cpIss + "/claims/token", "jwks_uri": cpIss + "/jwks",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	if fmt.Sprint(d["domains"]) != "[foo.example]" || fmt.Sprint(d["signing_alg_values_supported"]) != "[ES256]" || len(d) != 5 {
		t.Errorf("discovery %s", a.body)
	}

	a = f.do(t, http.MethodGet, PathJWKS, nil, nil)
	if a.status != 200 || a.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS %d %v", a.status, a.header)
	}
	var set jwk.Set
	a.json(t, &set)
	if len(set.Keys) != 1 || set.Keys[0].Kid != f.keys.Current().Kid {
		t.Fatalf("JWKS %s", a.body)
	}
	if bytes.Contains(a.body, []byte(`"d"`)) {
		t.Fatal("JWKS publishes a private member")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := newFixture(t)
	if a := f.do(t, http.MethodGet, PathHealth, nil, nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	if a := f.do(t, http.MethodGet, PathReady, nil, nil); a.status != 200 {
		t.Fatalf("readyz %d %s", a.status, a.body)
	}
	f.ready.Store(errors.New("keycloak down"))
	time.Sleep(60 * time.Millisecond)
	f.do(t, http.MethodGet, PathReady, nil, nil).wantError(t, 503, uma.ErrUnavailable)
	// Cached: a burst of probes makes one call.
	before := f.calls.Load()
	for range 10 {
		f.do(t, http.MethodGet, PathReady, nil, nil)
	}
	if n := f.calls.Load() - before; n != 0 {
		t.Fatalf("%d readiness calls within the cache period", n)
	}

	// One issued, one refused; then the metrics say so.
	f.post(t, f.realm.token(t, nil), goodForm())
	f.post(t, "", goodForm())
	a := f.do(t, http.MethodGet, PathMetrics, nil, nil)
	if a.status != 200 {
		t.Fatalf("metrics %d", a.status)
	}
	for _, want := range []string{
		`claims_provider_tokens_issued_total{alg="ES256",caller="user"} 1`,
		`claims_provider_refusals_total{reason="missing_token"} 1`,
		`claims_provider_refusals_total{reason="user_disabled"} 0`,
		`claims_provider_http_request_duration_seconds_count{route="/claims/token",status="200"} 1`,
		`claims_provider_http_request_duration_seconds_count{route="/claims/token",status="401"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t)
	f.do(t, http.MethodGet, "/nope", nil, nil).wantError(t, 404, uma.ErrNotFound)
	f.do(t, http.MethodGet, PathClaimsToken, nil, nil).wantError(t, 405, uma.ErrInvalidRequest)
	f.do(t, http.MethodGet, PathJWKS+"/", nil, nil).wantError(t, 404, uma.ErrNotFound)
}

func TestPanicIsA500(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.Ready = func(context.Context) error { panic("boom") }
	f.do(t, http.MethodGet, PathReady, nil, nil).wantError(t, 500, uma.ErrServerError)
}

func TestHTTPServerTimeouts(t *testing.T) {
	f := newFixture(t)
	hs := f.srv.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout == 0 || hs.ReadTimeout == 0 || hs.WriteTimeout == 0 || hs.IdleTimeout == 0 || hs.MaxHeaderBytes == 0 {
		t.Fatalf("timeouts unset: %+v", hs)
	}
}

// BenchmarkClaimsTokenEndpoint measures one POST /claims/token through the
// whole HTTP stack (caller token verified with ES256, form parsed, claims
// token signed), with the user lookup faked: what a request costs the Claims
// Provider itself, Keycloak's share aside.
func BenchmarkClaimsTokenEndpoint(b *testing.B) {
	f := newFixture(b)
	body := goodForm().Encode()
	tok := f.realm.token(b, nil)
	h := f.srv.Handler()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathClaimsToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}
