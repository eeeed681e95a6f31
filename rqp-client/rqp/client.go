package rqp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// Config of a Client. The zero value is not usable: AuthN and Registrations
// are required.
type Config struct {
	// AuthN is the sender's AuthN server and the client's registration
	// there (step 3).
	AuthN AuthN
	// ClaimsProvider: where to ask for the claims token (step 5).
	ClaimsProvider ClaimsProvider
	// Registrations are the client's registrations at owners' authorization
	// servers (step 7): the one whose Issuer equals the challenge's as_uri
	// is used. An as_uri without a registration fails before any secret is
	// sent.
	Registrations []Registration
	// Register, when set, gets a registration by itself (RFC 7591) at an
	// AS none of Registrations is for, and keeps it (DynamicRegistration).
	Register *DynamicRegistration
	// HTTPClient for every request; default a client with bounded dial, TLS
	// and header waits. Redirects are never followed (the client is copied
	// to turn them off). Its Transport must set ExpectContinueTimeout for
	// step 1 to hold back the body.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits plain http to hosts that are not loopback
	// (compose networks); loopback hosts are always allowed.
	AllowInsecureHTTP bool
	// Timeout of each exchange except the two that carry the data; default
	// 30 seconds.
	Timeout time.Duration
	// UploadTimeout of steps 1 and 9; default 10 minutes.
	UploadTimeout time.Duration
	// Progress, if set, is called after every step of every push, on the
	// goroutine that called Push (see also Request.Progress).
	Progress func(Event)
	// Logger receives debug logs (never tokens or secrets); default none.
	Logger *slog.Logger
	// UserAgent of every request; default "umawide-rqp-client".
	UserAgent string
}

// AuthN is how step 3 gets the access token for the Claims Provider.
type AuthN struct {
	// Issuer of the AuthN server, e.g. https://sso.foo.example/realms/foo;
	// its endpoints come from Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret of the client's registration there.
	ClientID, ClientSecret string
	// Scope asked for; default "claims-provider" (puts the Claims Provider
	// into the token's aud). With Login, "openid" is added.
	Scope string
	// Login, when set, makes step 3 an authorization code + PKCE login of the
	// person (Alice involved); nil means client credentials (Alice not
	// involved, Request.Email required).
	Login *Login
}

// Registration is the client's registration at one owner's authorization
// server (the RqP client's client at Bob's AS).
type Registration struct {
	// Issuer is the as_uri it is valid for. "*" matches any as_uri: the
	// secret then goes to whatever AS a Resource Server names, so use it
	// only with Resource Servers you trust.
	Issuer string
	// ClientID and ClientSecret (HTTP basic at the token endpoint).
	ClientID, ClientSecret string

	// dynamic: made by DynamicRegistration (renewed on invalid_client).
	dynamic bool
}

// Request is one push.
type Request struct {
	// To is the Incoming URL, e.g. https://rs.bar.example/incoming/bob.
	// The client POSTs to its canonical form (uma.CanonicalIncomingURL),
	// pushes that as incoming_uri, and refuses a challenge whose permission
	// ticket was asked for another Incoming.
	To string
	// Content to push.
	Content *Content
	// Email of the sender: required with client credentials (the Claims
	// Provider vouches for this address); with Login it is optional and
	// must then be the address the person logged in with. Its domain is
	// where the Claims Provider is discovered.
	Email string
	// AS, when set, is the authorization server the recipient's domain
	// names for this Incoming (Recipient.AS, from WebFinger): the
	// challenge's as_uri must equal it, else the push fails with
	// challenge_mismatch before anything is sent for it.
	AS string
	// Progress, if set, is called after every step of this push, before
	// Config.Progress, on the goroutine that called Push: it tells the
	// steps of concurrent pushes on one Client apart.
	Progress func(Event)
	// Transfer, if set, is told how far hashing the content and each upload
	// of it have come (every MiB and at the end of a pass). Hashing reports
	// on the goroutine that called Push, an upload on the HTTP transport's
	// goroutine that writes the body: keep it quick, and synchronise with
	// Progress if both print.
	Transfer func(Transfer)
}

// Receipt is the Resource Server's 201 answer (step 10).
type Receipt = uma.Message

// Result of a push that ended in 201 Created.
type Result struct {
	Receipt Receipt
	// Location is the message's absolute URL.
	Location string
	// Attempts is 1, or 2 when the flow started over with a fresh ticket.
	Attempts int
	// ASURI is the owner's authorization server (from the challenge).
	ASURI string
	// ClaimsEndpoint is where the claims token came from.
	ClaimsEndpoint string
	// ContentSHA256 (hex), ContentLength, ContentType and FileName are what
	// was pushed with the claims token and sent.
	ContentSHA256 string
	ContentLength int64
	ContentType   string
	FileName      string
	// FirstRequestBodyBytes is how much of the content the transport sent
	// with step 1 (0 when Expect: 100-continue held it back).
	FirstRequestBodyBytes int64
	// StepTimes is the time of each step (Event.Duration) by its number,
	// summed over both attempts when the flow started over; index 0 is
	// preparing the content (checks and hashing) before step 1. It serves
	// a caller that wants the timings without the progress events.
	StepTimes [NumSteps + 1]time.Duration
}

// Client runs the push flow. It is safe for concurrent use; it caches server
// metadata, and with client credentials its own access token (step 3) until
// shortly before it expires. A person's token (Login) is never kept beyond
// its push.
type Client struct {
	cfg  Config
	hc   *http.Client
	meta metaCache
	cc   ccCache
	reg  registrar
}

// ccCache is the client-credentials token of step 3: the client's own, not a
// person's, so one serves every push while it is fresh.
type ccCache struct {
	fetchMu sync.Mutex // held while fetching: concurrent pushes wait for one fetch
	mu      sync.Mutex
	token   string
	exp     time.Time
	renewAt time.Time
}

// get returns the token while it is not due for renewal.
func (c *ccCache) get() (string, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || !time.Now().Before(c.renewAt) {
		return "", time.Time{}, false
	}
	return c.token, c.exp, true
}

// put keeps a token of the given lifetime; it is renewed when a fifth of its
// life, and at least 30 seconds, is left (at most half of its life is used
// for a short-lived one).
func (c *ccCache) put(token string, life time.Duration) {
	early := max(30*time.Second, life/5)
	if early >= life {
		early = life / 2
	}
	now := time.Now()
	c.mu.Lock()
	c.token, c.exp, c.renewAt = token, now.Add(life), now.Add(life-early)
	c.mu.Unlock()
}

// drop forgets token (and only it: a fresher one stays).
func (c *ccCache) drop(token string) {
	c.mu.Lock()
	if c.token == token {
		c.token = ""
	}
	c.mu.Unlock()
}

// DefaultScope is the AuthN scope that puts the Claims Provider into aud.
const DefaultScope = "claims-provider"

// New checks the configuration.
func New(cfg Config) (*Client, error) {
	a := &cfg.AuthN
	if _, err := checkURL(a.Issuer, cfg.AllowInsecureHTTP); err != nil {
		return nil, configError("AuthN issuer: %w", err)
	}
	if a.ClientID == "" {
		return nil, configError("AuthN client id is required")
	}
	if a.Login == nil && a.ClientSecret == "" {
		return nil, configError("AuthN client secret is required for client credentials")
	}
	if a.Login != nil {
		if err := a.Login.check(); err != nil {
			return nil, configError("%w", err)
		}
	}
	if cfg.ClaimsProvider.URL != "" {
		if _, err := checkURL(cfg.ClaimsProvider.URL, cfg.AllowInsecureHTTP); err != nil {
			return nil, configError("Claims Provider URL: %w", err)
		}
	}
	if cfg.ClaimsProvider.DiscoveryBaseURL != "" {
		if _, err := checkURL(cfg.ClaimsProvider.DiscoveryBaseURL, true); err != nil {
			return nil, configError("discovery base URL: %w", err)
		}
	}
	if len(cfg.Registrations) == 0 && cfg.Register == nil {
		return nil, configError("a registration at the owner's authorization server, or dynamic registration, is required")
	}
	if cfg.Register != nil && cfg.Register.Dir == "" {
		return nil, configError("dynamic registration needs a folder to keep its registrations")
	}
	for i, r := range cfg.Registrations {
		if r.Issuer != "*" {
			if _, err := checkURL(r.Issuer, cfg.AllowInsecureHTTP); err != nil {
				return nil, configError("registration %d: issuer: %w", i, err)
			}
		}
		if r.ClientID == "" || r.ClientSecret == "" {
			return nil, configError("registration %d (%s): client id and secret are required", i, r.Issuer)
		}
	}
	return newClientInternal(cfg), nil
}

func newClientInternal(cfg Config) *Client {
	if cfg.AuthN.Scope == "" {
		cfg.AuthN.Scope = DefaultScope
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = 10 * time.Minute
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "umawide-rqp-client"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	return &Client{cfg: cfg, hc: noRedirects(hc)}
}

// registration finds the client's registration for an as_uri.
// sameIssuer compares two issuer URLs as the client does everywhere: a
// trailing slash aside, exactly.
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

func (c *Client) registration(asURI string) (Registration, bool) {
	for _, r := range c.cfg.Registrations {
		if r.Issuer != "*" && sameIssuer(r.Issuer, asURI) {
			return r, true
		}
	}
	for _, r := range c.cfg.Registrations {
		if r.Issuer == "*" {
			return r, true
		}
	}
	return Registration{}, false
}

// Push runs steps 1-10 for one message and returns the receipt. When the
// owner's authorization server refuses the permission ticket (expired,
// invalid: Keycloak answers 403 invalid_ticket), it starts over once from
// step 1 with a fresh ticket; no other step is retried. Every error is a
// *StepError.
func (c *Client) Push(ctx context.Context, r Request) (*Result, error) {
	started := time.Now()
	if _, err := checkURL(r.To, c.cfg.AllowInsecureHTTP); err != nil {
		return nil, configError("Incoming URL: %w", err)
	}
	if r.AS != "" {
		if _, err := checkURL(r.AS, c.cfg.AllowInsecureHTTP); err != nil {
			return nil, configError("the recipient's authorization server: %w", err)
		}
	}
	incoming, err := uma.CanonicalIncomingURL(r.To)
	if err != nil {
		return nil, configError("Incoming URL: %w", err)
	}
	if c.cfg.AuthN.Login == nil {
		if _, err := emailDomain(r.Email); err != nil {
			return nil, configError("the sender's email is required with client credentials: %w", err)
		}
	} else if r.Email != "" {
		if _, err := emailDomain(r.Email); err != nil {
			return nil, configError("%w", err)
		}
	}
	p, err := prepare(r.Content, newTransferMeter(r.Transfer, PhaseHash, 0, 1, sizeOf(r.Content)))
	if err != nil {
		return nil, configError("content: %w", err)
	}
	r.To = incoming
	st := &pushState{req: r, content: p}
	var times [NumSteps + 1]time.Duration
	times[stepBeforeTheFlow] = time.Since(started)
	for attempt := 1; ; attempt++ {
		res, se := c.attempt(withFlow(ctx, &flowInfo{attempt: attempt, progress: r.Progress, times: &times}), st)
		if se == nil {
			res.Attempts = attempt
			res.StepTimes = times
			return res, nil
		}
		if se.retry && attempt == 1 && ctx.Err() == nil {
			c.cfg.Logger.Debug("the authorization server refused the ticket; starting over with a fresh one", "code", se.Code)
			continue
		}
		return nil, se
	}
}

// sizeOf is the content's size, 0 without content (prepare refuses it).
func sizeOf(c *Content) int64 {
	if c == nil {
		return 0
	}
	return c.Size
}

// pushState is kept across the (at most two) attempts of one push.
type pushState struct {
	req     Request
	content *prepared
	// the AuthN token, reused by a second attempt while it is fresh
	token       string
	tokenExp    time.Time
	tokenCached bool   // a client-credentials token of an earlier push
	tokenMail   string // the email in the AuthN token, if any
	// the Claims Provider's endpoint, found once
	claimsEndpoint, claimsHow string
}

// emit reports a finished step: its time goes to the push's StepTimes, and
// an Event to the progress callbacks, if any. detail (nil for none) is only
// called for them: describing a step (decoding the RPT, formatting URLs)
// costs more than the step's own local work.
func (c *Client) emit(ctx context.Context, step int, ok bool, status string, d time.Duration, detail func() string, err *StepError) {
	fi := flowOf(ctx)
	if fi != nil && fi.times != nil && step >= 0 && step < len(fi.times) {
		fi.times[step] += d
	}
	var perPush func(Event)
	if fi != nil {
		perPush = fi.progress
	}
	if c.cfg.Progress == nil && perPush == nil {
		return
	}
	ev := Event{Attempt: attemptOf(ctx), Step: step, Name: StepName(step), OK: ok, Status: status, Duration: d}
	if detail != nil {
		ev.Detail = detail()
	}
	if err != nil {
		ev.Err = err
		ev.Retry = err.retry && attemptOf(ctx) == 1
	}
	if perPush != nil {
		perPush(ev)
	}
	if c.cfg.Progress != nil {
		c.cfg.Progress(ev)
	}
}

// failed reports a failed step and returns its error.
func (c *Client) failed(ctx context.Context, se *StepError, d time.Duration) *StepError {
	status := "failed"
	switch {
	case se.Reason != "":
		status = se.Reason
	case se.StatusCode != 0 && se.Code != "":
		status = fmt.Sprintf("%d %s", se.StatusCode, se.Code)
	case se.StatusCode != 0:
		status = fmt.Sprintf("%d %s", se.StatusCode, http.StatusText(se.StatusCode))
	case se.Kind == KindUnreachable:
		status = "unreachable"
	}
	c.emit(ctx, se.Step, false, status, d, nil, se)
	return se
}
