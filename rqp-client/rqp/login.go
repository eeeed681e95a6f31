package rqp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/umawide/umawide/internal/pkce"
	"github.com/umawide/umawide/internal/uma"
	"html"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Login makes step 3 an authorization code grant with PKCE (S256) and a
// loopback redirect (RFC 8252 7.3): the person logs in at the AuthN server
// in a browser, which brings the code back to a one-shot HTTP receiver on
// 127.0.0.1 at a random port.
type Login struct {
	// OpenURL shows the authorization URL to the person: print it, open a
	// browser. It is called once, while the receiver is listening; the flow
	// then waits for the browser to come back. Required.
	OpenURL func(ctx context.Context, authURL string) error
	// Timeout for the person to finish; default 5 minutes.
	Timeout time.Duration
	// ListenAddr of the receiver; default "127.0.0.1:0" (a free port). It
	// must be a loopback address.
	ListenAddr string
}

// DefaultLoginTimeout bounds the wait for the browser.
const DefaultLoginTimeout = 5 * time.Minute

// CallbackPath is the receiver's path in the redirect URI.
const CallbackPath = "/callback"

func (l *Login) check() error {
	if l.OpenURL == nil {
		return errors.New("Login.OpenURL is required")
	}
	if l.ListenAddr != "" {
		host, _, err := net.SplitHostPort(l.ListenAddr)
		if err != nil {
			return fmt.Errorf("Login.ListenAddr: %w", err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("Login.ListenAddr %q is not a loopback IP address", l.ListenAddr)
		}
	}
	return nil
}

// randomString is n random bytes, BASE64URL without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// callback is what the browser brought back.
type callback struct {
	code string
	err  *StepError
}

// loginCode runs the browser part of the code flow and returns the code and
// the redirect URI and verifier the token request needs.
func (c *Client) loginCode(ctx context.Context, step int, issuer string, meta *serverMeta, clientID, scope string, l *Login) (code, redirectURI, verifier string, se *StepError) {
	fail := func(kind Kind, err error) *StepError {
		return &StepError{Step: step, Name: StepName(step), Service: ServiceAuthN, Kind: kind, URL: redact(meta.AuthorizationEndpoint), Err: err, Attempt: attemptOf(ctx)}
	}
	if meta.AuthorizationEndpoint == "" {
		return "", "", "", protocolError(ctx, step, ServiceAuthN, issuer, 0, "the AuthN server's metadata has no authorization_endpoint")
	}
	addr := l.ListenAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", "", "", fail(KindConfig, fmt.Errorf("loopback receiver: %w", err))
	}
	redirectURI = "http://" + ln.Addr().String() + CallbackPath
	state := randomString(24)
	verifier = pkce.NewVerifier()

	authURL, err := url.Parse(meta.AuthorizationEndpoint)
	if err != nil {
		ln.Close()
		return "", "", "", fail(KindProtocol, err)
	}
	q := authURL.Query()
	q.Set("response_type", "code")
	q.Set("client_id", clientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("scope", scope)
	q.Set("state", state)
	q.Set("code_challenge", pkce.Challenge(verifier))
	q.Set("code_challenge_method", pkce.Method)
	authURL.RawQuery = q.Encode()

	results := make(chan callback, 1)
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc(CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		res, status, page := judgeCallback(r.URL.Query(), state, issuer, fail)
		delivered := false
		once.Do(func() { results <- res; delivered = true })
		if !delivered {
			status, page = http.StatusGone, "This login has already been completed or has failed."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><title>rqp-client</title><p>%s</p>\n", html.EscapeString(page))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 32 << 10}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultLoginTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := l.OpenURL(wctx, authURL.String()); err != nil {
		return "", "", "", fail(KindLogin, fmt.Errorf("showing the login URL: %w", err))
	}
	select {
	case res := <-results:
		if res.err != nil {
			return "", "", "", res.err
		}
		return res.code, redirectURI, verifier, nil
	case <-wctx.Done():
		if ctx.Err() != nil {
			return "", "", "", fail(KindLogin, fmt.Errorf("login abandoned: %w", ctx.Err()))
		}
		return "", "", "", fail(KindLogin, fmt.Errorf("no login within %s", timeout))
	}
}

// judgeCallback checks the redirect's parameters: state first (a request
// with another state is not ours: CSRF or a stale tab), then an error
// answer, then the issuer (RFC 9207, where the server sends it), then the
// code.
func judgeCallback(q url.Values, state, issuer string, fail func(Kind, error) *StepError) (callback, int, string) {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return callback{err: fail(KindLogin, errors.New("the redirect's state does not match this login (refused)"))},
			http.StatusBadRequest, "Login refused: the state does not match. Start the login again."
	}
	if e := q.Get("error"); e != "" {
		se := fail(KindLogin, errors.New("the AuthN server answered with an error"))
		se.Code, se.Description = clip(e, 100), clip(q.Get("error_description"), 300)
		se.answer = &uma.Error{Code: se.Code, Description: se.Description}
		return callback{err: se}, http.StatusOK, "Login failed: " + se.Code + " " + se.Description
	}
	if iss := q.Get("iss"); iss != "" && !sameIssuer(iss, issuer) {
		return callback{err: fail(KindLogin, fmt.Errorf("the redirect names issuer %q, want %q (mix-up attack?)", clip(iss, 200), issuer))},
			http.StatusBadRequest, "Login refused: wrong issuer."
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return callback{err: fail(KindLogin, errors.New("the redirect carries no usable code"))},
			http.StatusBadRequest, "Login failed: no code."
	}
	return callback{code: code}, http.StatusOK, "Logged in. You can close this window and return to rqp-client."
}

// codeFlow is the whole of step 3 with a login: browser, then token request.
func (c *Client) codeFlow(ctx context.Context, step int, issuer, clientID, secret, scope string, l *Login) (*tokenAnswer, *StepError) {
	meta, se := c.metadata(ctx, step, ServiceAuthN, issuer, oidcConfigPath)
	if se != nil {
		return nil, se
	}
	code, redirectURI, verifier, se := c.loginCode(ctx, step, issuer, meta, clientID, scope, l)
	if se != nil {
		return nil, se
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	tok, _, _, se := c.tokenRequest(ctx, step, ServiceAuthN, meta.TokenEndpoint, clientID, secret, form)
	return tok, se
}

// LoginOptions configure AuthorizationCodeLogin.
type LoginOptions struct {
	// Issuer of the OpenID Connect server (e.g. a Keycloak realm's URL).
	Issuer string
	// ClientID, and ClientSecret for a confidential client ("" for a public one).
	ClientID, ClientSecret string
	// Scope asked for; default "openid".
	Scope string
	// Login: how the URL is shown and how long to wait.
	Login Login
	// HTTPClient, AllowInsecureHTTP and Timeout as in Config.
	HTTPClient        *http.Client
	AllowInsecureHTTP bool
	Timeout           time.Duration
}

// Tokens are a token endpoint's answer. Keep them out of logs.
type Tokens struct {
	AccessToken string
	IDToken     string
	ExpiresIn   time.Duration
	Scope       string
}

// AuthorizationCodeLogin logs a person in with authorization code + PKCE and
// a loopback redirect, outside a push: Bob uses it to read his Incoming.
// Errors are *StepError (Step 0).
func AuthorizationCodeLogin(ctx context.Context, o LoginOptions) (*Tokens, error) {
	if _, err := checkURL(o.Issuer, o.AllowInsecureHTTP); err != nil {
		return nil, configError("issuer: %w", err)
	}
	if o.ClientID == "" {
		return nil, configError("a client id is required")
	}
	if err := o.Login.check(); err != nil {
		return nil, configError("%w", err)
	}
	if o.Scope == "" {
		o.Scope = "openid"
	}
	c := newClientInternal(Config{HTTPClient: o.HTTPClient, AllowInsecureHTTP: o.AllowInsecureHTTP, Timeout: o.Timeout})
	tok, se := c.codeFlow(ctx, 0, o.Issuer, o.ClientID, o.ClientSecret, o.Scope, &o.Login)
	if se != nil {
		return nil, se
	}
	return &Tokens{AccessToken: tok.AccessToken, IDToken: tok.IDToken, ExpiresIn: time.Duration(tok.ExpiresIn) * time.Second, Scope: tok.Scope}, nil
}
