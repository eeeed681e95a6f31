package rqp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// countingReader counts what the transport read of a body, and reports it
// to the push's Transfer callback (meter, nil without one).
type countingReader struct {
	r     io.Reader
	n     *atomic.Int64
	meter *transferMeter
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.meter.add(n)
	return n, err
}

// dataRequest builds the POST of the content (steps 1 and 9), with
// Expect: 100-continue so that a body larger than SmallContentMax waits for
// the server's go-ahead.
// transfer, if set, is told how far the body has been sent (a fresh pass
// for each body the transport asks for).
func (c *Client) dataRequest(to string, p *prepared, rpt string, sent *atomic.Int64, transfer func() *transferMeter) (*http.Request, error) {
	newBody := func() io.ReadCloser {
		var m *transferMeter
		if transfer != nil {
			m = transfer()
		}
		return io.NopCloser(countingReader{r: p.body(), n: sent, meter: m})
	}
	req, err := http.NewRequest(http.MethodPost, to, newBody())
	if err != nil {
		return nil, err
	}
	req.ContentLength = p.size
	req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	if p.size == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	req.Header.Set("Content-Type", p.typ)
	if cd := p.contentDisposition(); cd != "" {
		req.Header.Set("Content-Disposition", cd)
	}
	req.Header.Set("Accept", "application/json")
	if p.size > SmallContentMax {
		req.Header.Set("Expect", "100-continue")
	}
	if rpt != "" {
		req.Header.Set("Authorization", "Bearer "+rpt)
	}
	return req, nil
}

// uploadMeter makes the meter of one upload of the content in step 1 or 9,
// nil when the push has no Transfer callback.
func uploadMeter(ctx context.Context, at *attempt, step int) func() *transferMeter {
	fn := at.push.req.Transfer
	if fn == nil {
		return nil
	}
	return func() *transferMeter {
		return newTransferMeter(fn, PhaseUpload, step, attemptOf(ctx), at.push.content.size)
	}
}

// attempt is one run of steps 1-10 (a push has at most two): what each step
// hands on to the later ones. What outlives an attempt is in pushState.
type attempt struct {
	push   *pushState
	result *Result
	// unauthorized is step 1's answer (401), whose challenge step 2 reads.
	unauthorized *answer
	// challenge and registration: step 2's permission ticket and as_uri,
	// and the client's registration there.
	challenge    uma.Challenge
	registration Registration
	// tokenStatus is step 3's status ("200 OK", "cached", "reused"), which
	// step 4 reports on.
	tokenStatus string
	// ticketDigest is sub-step 5.1's digest of the ticket.
	ticketDigest string
	// claimsAnswer is step 5's 200 answer, checked by step 6 into claims
	// (the answer) and claimsTokenClaims (the claims token's payload).
	claimsAnswer      *answer
	claims            *uma.ClaimsTokenResponse
	claimsTokenClaims map[string]any
	// rpt is step 7's answer, the RPT of step 8.
	rpt string
	// post is step 9's request and its 201 answer, whose receipt step 10 reads.
	postRequest *http.Request
	post        *answer
}

// attempt runs the steps in order; each reports itself (Config.Progress) and
// the first failure ends the attempt.
func (c *Client) attempt(ctx context.Context, st *pushState) (*Result, *StepError) {
	p := st.content
	at := &attempt{push: st, result: &Result{ContentSHA256: p.sha256, ContentLength: p.size, ContentType: p.typ, FileName: p.name}}
	for _, step := range []func(context.Context, *attempt) *StepError{
		c.step1RequestWithoutToken,
		c.step2Challenge,
		c.step3AccessTokenRequest,
		c.step4AccessToken,
		c.step5ClaimsTokenRequest,
		c.step6ClaimsToken,
		c.step7Grant,
		c.step8RPT,
		c.step9PostWithRPT,
		c.step10Created,
	} {
		if se := step(ctx, at); se != nil {
			return nil, se
		}
	}
	return at.result, nil
}

// SmallContentMax: content of at most this many bytes is small. Step 1
// does not offer it at all: the POST without a token then has no body
// (Content-Length: 0), and the Resource Server's 401 leaves the connection
// open for the next request. (Held back behind Expect: 100-continue, an
// offered body that the 401 leaves unread makes the server close the
// connection, since HTTP/1.1 cannot tell the rest of an unsent body from
// the next request, so that every push opened a new one, which cost more
// CPU than the rest of the step on both sides.) Step 9 sends it with its
// headers, without Expect: 100-continue, whose wait for the go-ahead costs
// a round trip and a write on each side to save at most this many bytes
// when the RPT is refused. Larger content is offered in step 1 (the
// Resource Server can refuse it at once, 413, before anything is spent on a
// grant; for it a new connection is nothing next to the upload) and held
// back in both steps until the server asks for it.
const SmallContentMax = 64 << 10

// firstRequest is step 1's POST without a token: without a body for content
// up to SmallContentMax, else the content held back (dataRequest).
func (c *Client) firstRequest(ctx context.Context, at *attempt, to string, p *prepared, sent *atomic.Int64) (*http.Request, error) {
	if p.size > SmallContentMax {
		return c.dataRequest(to, p, "", sent, uploadMeter(ctx, at, StepRequest))
	}
	req, err := http.NewRequest(http.MethodPost, to, http.NoBody)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// step1RequestWithoutToken POSTs without a token (firstRequest); only a 401
// goes on (to step 2's challenge).
func (c *Client) step1RequestWithoutToken(ctx context.Context, at *attempt) *StepError {
	to, p := at.push.req.To, at.push.content
	var sent atomic.Int64
	req, err := c.firstRequest(ctx, at, to, p, &sent)
	if err != nil {
		return c.failed(ctx, &StepError{Step: StepRequest, Name: StepName(StepRequest), Service: ServiceResourceServer,
			Kind: KindConfig, URL: redact(to), Err: err, Attempt: attemptOf(ctx)}, 0)
	}
	a, se := c.do(ctx, StepRequest, ServiceResourceServer, req, c.cfg.UploadTimeout, maxJSONBytes)
	if se != nil {
		return c.failed(ctx, se, 0)
	}
	at.result.FirstRequestBodyBytes = sent.Load()
	switch {
	case a.resp.StatusCode == http.StatusUnauthorized:
	case a.resp.StatusCode/100 == 2:
		return c.failed(ctx, protocolError(ctx, StepRequest, ServiceResourceServer, to, a.resp.StatusCode,
			"the Resource Server accepted the data without a token: it does not protect this Incoming with UMA"), a.duration)
	default:
		return c.failed(ctx, statusError(ctx, StepRequest, ServiceResourceServer, req, a), a.duration)
	}
	at.unauthorized = a
	c.emit(ctx, StepRequest, true, a.resp.Status, a.duration, func() string {
		if req.ContentLength == 0 && p.size > 0 {
			return fmt.Sprintf("POST %s without token and without the content (%d bytes, sent with the RPT)", redact(to), p.size)
		}
		return fmt.Sprintf("POST %s without token; %d of %d content bytes sent (Expect: 100-continue)", redact(to), at.result.FirstRequestBodyBytes, p.size)
	}, nil)
	return nil
}

// step2Challenge reads the UMA challenge of step 1's 401, refuses one that
// does not belong to this push's Incoming (challengeMatches:
// challenge_mismatch) and finds the client's registration at its as_uri.
func (c *Client) step2Challenge(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	to, status := at.push.req.To, at.unauthorized.resp.StatusCode
	ch, err := uma.ParseChallenge(at.unauthorized.resp.Header)
	if err != nil {
		return c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, to, status, "%v", err), time.Since(t0))
	}
	if _, err := checkURL(ch.ASURI, c.cfg.AllowInsecureHTTP); err != nil {
		return c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, to, status, "as_uri: %v", err), time.Since(t0))
	}
	if len(ch.Ticket) > maxTokenBytes {
		return c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, to, status, "ticket of %d bytes", len(ch.Ticket)), time.Since(t0))
	}
	// A challenge must belong to the Incoming this push goes to: a Resource
	// Server that relays another one's challenge would otherwise get an RPT
	// and the content to replay there. Nothing is sent for it.
	if se := challengeMatches(ctx, to, ch); se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	// An addressed push accepts only the AS the recipient's domain named
	// (WebFinger): a Resource Server cannot send the client, its claims
	// token or its credentials to another one.
	if want := at.push.req.AS; want != "" && !sameIssuer(want, ch.ASURI) {
		return c.failed(ctx, &StepError{Step: StepChallenge, Name: StepName(StepChallenge), Service: ServiceResourceServer, Kind: KindProtocol,
			URL: redact(to), Reason: ReasonChallengeMismatch, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("%w: the challenge names the authorization server %s, but the recipient's domain names %s for %s; refusing the challenge, nothing was sent to the Claims Provider or the authorization server",
				ErrChallengeMismatch, ch.ASURI, want, to)}, time.Since(t0))
	}
	if _, ok := c.registration(ch.ASURI); !ok && c.cfg.Register == nil {
		return c.failed(ctx, &StepError{Step: StepChallenge, Name: StepName(StepChallenge), Service: ServiceAuthZ, Kind: KindConfig,
			URL: ch.ASURI, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("the Resource Server names the authorization server %s, and this client has no registration there", ch.ASURI)}, time.Since(t0))
	}
	at.challenge = ch
	at.result.ASURI = ch.ASURI
	c.emit(ctx, StepChallenge, true, "ticket received", time.Since(t0), func() string {
		return fmt.Sprintf("UMA realm=%q as_uri=%s, ticket of %d characters", ch.Realm, ch.ASURI, len(ch.Ticket))
	}, nil)
	return nil
}

// step3AccessTokenRequest gets the access token for the Claims Provider
// (accessToken), or none when the token of the first attempt is still
// fresh. A client-credentials token of an earlier push is kept (status
// "cached").
func (c *Client) step3AccessTokenRequest(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	st := at.push
	if st.token != "" && time.Until(st.tokenExp) > 30*time.Second {
		at.tokenStatus = "reused"
		c.emit(ctx, StepAccessToken, true, at.tokenStatus, time.Since(t0), func() string {
			return "the access token of the first attempt is still valid"
		}, nil)
		return nil
	}
	return c.fetchAccessToken(ctx, at, "")
}

// fetchAccessToken is step 3's request; why prefixes its detail when it
// is sent again.
func (c *Client) fetchAccessToken(ctx context.Context, at *attempt, why string) *StepError {
	t0 := time.Now()
	status, detail, se := c.accessToken(ctx, at.push)
	if se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	at.tokenStatus = status
	c.emit(ctx, StepAccessToken, true, status, time.Since(t0), func() string { return why + detail() }, nil)
	return nil
}

// step4AccessToken reports the access token step 3 got: "received", or step
// 3's status ("cached", "reused") when no request was sent. The token shows
// only as its length.
func (c *Client) step4AccessToken(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	st := at.push
	status := "received"
	if at.tokenStatus == "cached" || at.tokenStatus == "reused" {
		status = at.tokenStatus
	}
	c.emit(ctx, StepAccessTokenReturned, true, status, time.Since(t0), func() string {
		return fmt.Sprintf("access token of %d characters, expires in %s", len(st.token), time.Until(st.tokenExp).Round(time.Second))
	}, nil)
	return nil
}

// step5ClaimsTokenRequest computes 5.1, the ticket digest, finds the Claims
// Provider (once per push) and asks it for a claims token
// (requestClaimsToken). A cached client-credentials token it refuses (401)
// is replaced once: steps 3 and 4 run again, then the request.
func (c *Client) step5ClaimsTokenRequest(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	st := at.push
	at.ticketDigest = uma.TicketDigest(at.challenge.Ticket)
	if st.claimsEndpoint == "" {
		email := st.req.Email
		if email == "" {
			email = st.tokenMail
		}
		ep, how, se := c.claimsEndpoint(ctx, email)
		if se != nil {
			return c.failed(ctx, se, time.Since(t0))
		}
		st.claimsEndpoint, st.claimsHow = ep, how
	}
	at.result.ClaimsEndpoint = st.claimsEndpoint
	a, req, se := c.requestClaimsToken(ctx, st.claimsEndpoint, st.token, at.ticketDigest, at.challenge.ASURI, st.req.Email)
	if se != nil && se.StatusCode == http.StatusUnauthorized && st.tokenCached {
		// The Claims Provider refused the cached client-credentials token
		// (revoked, or Keycloak's keys changed): forget it, get a new one
		// and ask once more.
		c.cc.drop(st.token)
		st.token, st.tokenCached = "", false
		if se := c.fetchAccessToken(ctx, at, "the Claims Provider refused the cached token (401): "); se != nil {
			return se
		}
		_ = c.step4AccessToken(ctx, at)
		a, req, se = c.requestClaimsToken(ctx, st.claimsEndpoint, st.token, at.ticketDigest, at.challenge.ASURI, st.req.Email)
	}
	if se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	at.claimsAnswer = a
	c.emit(ctx, StepClaimsRequest, true, a.resp.Status, time.Since(t0), func() string {
		who := st.req.Email
		switch {
		case who != "":
		case st.tokenMail != "":
			who = st.tokenMail + " (from the login)"
		default:
			who = "the logged-in user"
		}
		return fmt.Sprintf("POST %s (%s) for %s, audience %s, ticket_digest %s", redact(req.URL.String()), st.claimsHow, who, at.challenge.ASURI, at.ticketDigest)
	}, nil)
	return nil
}

// step6ClaimsToken checks the Claims Provider's answer (checkClaimsToken):
// a claims token bound to this ticket and addressed to this AS.
func (c *Client) step6ClaimsToken(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	ct, claims, se := checkClaimsToken(ctx, at.push.claimsEndpoint, at.claimsAnswer, at.ticketDigest, at.challenge.ASURI)
	if se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	at.claims, at.claimsTokenClaims = ct, claims
	c.emit(ctx, StepClaimsToken, true, "bound to the ticket", time.Since(t0), func() string {
		return fmt.Sprintf("JWS of %d characters from %s: email %s, %s", len(ct.ClaimsToken), claimString(claims, "iss"), claimString(claims, "email"), expiresIn(claims))
	}, nil)
	return nil
}

// step7Grant asks the owner's authorization server for an RPT with the
// uma-ticket grant, pushing the claims token, the content's metadata and the
// Incoming URL. A refused ticket (invalid_ticket, expired_ticket,
// invalid_grant) makes Push start over once with a fresh one.
func (c *Client) step7Grant(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	p := at.push.content
	pushed := uma.PushedClaims{}
	pushed.Set(uma.ClaimClaimsToken, at.claims.ClaimsToken)
	pushed.Set(uma.ClaimContentSHA256, p.sha256)
	pushed.Set(uma.ClaimContentLength, strconv.FormatInt(p.size, 10))
	pushed.Set(uma.ClaimContentType, p.typ)
	pushed.Set(uma.ClaimIncomingURI, at.push.req.To)
	if p.name != "" {
		pushed.Set(uma.ClaimFileName, p.name)
	}
	claimToken, err := pushed.Encode()
	if err != nil {
		return c.failed(ctx, &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceClient, Kind: KindConfig, Err: err, Attempt: attemptOf(ctx)}, time.Since(t0))
	}
	meta, se := c.metadata(ctx, StepGrant, ServiceAuthZ, at.challenge.ASURI, umaConfigPath)
	if se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	form := url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {at.challenge.Ticket},
		uma.FormSubmitRequest:    {"false"},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {claimToken},
	}
	// The client's credentials at this AS go to its own token endpoint
	// only, whatever its metadata says.
	if !belongsTo(meta.TokenEndpoint, at.challenge.ASURI) {
		return c.failed(ctx, protocolError(ctx, StepGrant, ServiceAuthZ, at.challenge.ASURI, 0,
			"the token_endpoint %s is not a URL of the authorization server %s; no credentials were sent", clip(meta.TokenEndpoint, 300), at.challenge.ASURI), time.Since(t0))
	}
	reg, fresh, how, se := c.asRegistration(ctx, at.challenge.ASURI, meta)
	if se != nil {
		return c.failed(ctx, se, time.Since(t0))
	}
	tok, a, _, se := c.tokenRequest(ctx, StepGrant, ServiceAuthZ, meta.TokenEndpoint, reg.ClientID, reg.ClientSecret, form)
	if se != nil && (se.Code == "invalid_client" || se.Code == "unauthorized_client") && reg.dynamic && !fresh {
		// The AS no longer knows the stored registration (deleted, a new
		// database: invalid_client) or its secret expired (Keycloak:
		// unauthorized_client): register again, once.
		refused := se.Code
		reg, how, se = c.reregister(ctx, at.challenge.ASURI, meta, reg)
		if se != nil {
			return c.failed(ctx, se, time.Since(t0))
		}
		how = "the stored registration was refused (" + refused + "); " + how
		tok, a, _, se = c.tokenRequest(ctx, StepGrant, ServiceAuthZ, meta.TokenEndpoint, reg.ClientID, reg.ClientSecret, form)
	}
	at.registration = reg
	if se != nil {
		if se.StatusCode == http.StatusForbidden && se.Kind == KindRefused {
			se.Kind = KindDenied
		}
		if se.StatusCode == http.StatusForbidden && a != nil {
			at.ownerRefusal(se, a.resp.Header.Get(uma.RefusalHeader))
		}
		switch se.Code {
		case "invalid_ticket", "expired_ticket", "invalid_grant":
			// Keycloak: 403 invalid_ticket for an expired or unverifiable
			// ticket; UMA 2.0 Grant 3.3.6: invalid_grant. A fresh ticket
			// (and a claims token bound to it) may succeed.
			se.retry = true
		}
		return c.failed(ctx, se, time.Since(t0))
	}
	at.rpt = tok.AccessToken
	c.emit(ctx, StepGrant, true, a.resp.Status, time.Since(t0), func() string {
		return fmt.Sprintf("POST %s as %s (%s): pushed %s", redact(meta.TokenEndpoint), reg.ClientID, how, describePushed(pushed))
	}, nil)
	return nil
}

// ownerRefusal marks a 403 of step 7 that the AS says the owner's rules
// decided (uma.RefusalHeader); any other value, or none, leaves the plain
// denial.
func (at *attempt) ownerRefusal(se *StepError, reason string) {
	if reason != ReasonOwnerRefused && reason != ReasonQuotaExceeded {
		return
	}
	se.Kind = KindDenied
	se.Reason = reason
	se.Err = ErrOwnerRefused
	if u, err := url.Parse(at.push.req.To); err == nil {
		se.Owner = clip(path.Base(u.Path), 64)
	}
	if email, ok := at.claimsTokenClaims["email"].(string); ok {
		se.Sender = clip(email, 254)
	}
}

// step8RPT reports the RPT step 7 got (unverified: it is the Resource
// Server's to check).
func (c *Client) step8RPT(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	// Decoding the RPT is for the description only.
	c.emit(ctx, StepRPT, true, "received", time.Since(t0), func() string {
		detail := fmt.Sprintf("RPT of %d characters", len(at.rpt))
		if rc, err := unverifiedClaims(at.rpt); err == nil {
			detail += ", " + expiresIn(rc) + describePermissions(rc)
		}
		return detail
	}, nil)
	return nil
}

// step9PostWithRPT POSTs the same data again with the RPT; only 201 Created
// goes on.
func (c *Client) step9PostWithRPT(ctx context.Context, at *attempt) *StepError {
	to, p := at.push.req.To, at.push.content
	var sent atomic.Int64
	req, err := c.dataRequest(to, p, at.rpt, &sent, uploadMeter(ctx, at, StepPost))
	if err != nil {
		return c.failed(ctx, &StepError{Step: StepPost, Name: StepName(StepPost), Service: ServiceResourceServer,
			Kind: KindConfig, URL: redact(to), Err: err, Attempt: attemptOf(ctx)}, 0)
	}
	a, se := c.do(ctx, StepPost, ServiceResourceServer, req, c.cfg.UploadTimeout, maxJSONBytes)
	if se != nil {
		return c.failed(ctx, se, 0)
	}
	if a.resp.StatusCode != http.StatusCreated {
		se := statusError(ctx, StepPost, ServiceResourceServer, req, a)
		if a.resp.StatusCode/100 == 2 {
			se.Kind, se.Err = KindProtocol, fmt.Errorf("want 201 Created")
		}
		return c.failed(ctx, se, a.duration)
	}
	at.postRequest, at.post = req, a
	c.emit(ctx, StepPost, true, a.resp.Status, a.duration, func() string {
		return fmt.Sprintf("POST %s with the RPT; %d content bytes sent", redact(to), sent.Load())
	}, nil)
	return nil
}

// step10Created reads the receipt of step 9's 201 and checks it describes
// the content sent.
func (c *Client) step10Created(ctx context.Context, at *attempt) *StepError {
	t0 := time.Now()
	to, p, a, res := at.push.req.To, at.push.content, at.post, at.result
	var rc Receipt
	if err := decodeJSON(a.body, &rc); err != nil {
		return c.failed(ctx, protocolError(ctx, StepCreated, ServiceResourceServer, to, a.resp.StatusCode, "receipt: %v", err), time.Since(t0))
	}
	if rc.ID == "" || rc.SHA256 != p.sha256 || rc.Size != p.size {
		return c.failed(ctx, protocolError(ctx, StepCreated, ServiceResourceServer, to, a.resp.StatusCode,
			"the receipt (id %q, %d bytes, sha256 %s) does not match what was sent (%d bytes, sha256 %s)",
			clip(rc.ID, 100), rc.Size, clip(rc.SHA256, 64), p.size, p.sha256), time.Since(t0))
	}
	res.Receipt = rc
	if loc := a.resp.Header.Get("Location"); loc != "" {
		if u, err := at.postRequest.URL.Parse(loc); err == nil {
			res.Location = u.String()
		}
	}
	c.emit(ctx, StepCreated, true, "stored", time.Since(t0), func() string {
		return fmt.Sprintf("message %s at %s, sender %s, sha256 %s", rc.ID, res.Location, rc.SenderEmail, rc.SHA256)
	}, nil)
	return nil
}

// accessToken is steps 3-4: client credentials, or the person's login. It
// returns the step's status ("200 OK", or "cached" for a client-credentials
// token an earlier push fetched) and its detail (computed when asked for).
func (c *Client) accessToken(ctx context.Context, st *pushState) (string, func() string, *StepError) {
	an := c.cfg.AuthN
	var tok *tokenAnswer
	var how string
	if an.Login == nil {
		// The client's own token, not a person's: one serves every push
		// until shortly before it expires. Concurrent pushes wait for one
		// fetch.
		cached := func() (string, func() string, bool) {
			t, exp, ok := c.cc.get()
			if !ok {
				return "", nil, false
			}
			st.token, st.tokenExp, st.tokenCached = t, exp, true
			return "cached", func() string {
				return fmt.Sprintf("client credentials of %s at %s, scope %q: the token of an earlier push, expires in %s",
					an.ClientID, an.Issuer, an.Scope, time.Until(exp).Round(time.Second))
			}, true
		}
		if status, detail, ok := cached(); ok {
			return status, detail, nil
		}
		c.cc.fetchMu.Lock()
		defer c.cc.fetchMu.Unlock()
		if status, detail, ok := cached(); ok {
			return status, detail, nil
		}
		meta, se := c.metadata(ctx, StepAccessToken, ServiceAuthN, an.Issuer, oidcConfigPath)
		if se != nil {
			return "", nil, se
		}
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {an.Scope}}
		tok, _, _, se = c.tokenRequest(ctx, StepAccessToken, ServiceAuthN, meta.TokenEndpoint, an.ClientID, an.ClientSecret, form)
		if se != nil {
			return "", nil, se
		}
		how = "client credentials of " + an.ClientID
	} else {
		scope := an.Scope
		if !hasScope(scope, "openid") {
			scope = "openid " + scope
		}
		var se *StepError
		tok, se = c.codeFlow(ctx, StepAccessToken, an.Issuer, an.ClientID, an.ClientSecret, scope, an.Login)
		if se != nil {
			return "", nil, se
		}
		how = "authorization code + PKCE login, client " + an.ClientID
		for _, t := range []string{tok.IDToken, tok.AccessToken} {
			if cl, err := unverifiedClaims(t); err == nil && claimString(cl, "email") != "" {
				st.tokenMail = claimString(cl, "email")
				break
			}
		}
		if st.req.Email != "" && st.tokenMail != "" && !strings.EqualFold(st.req.Email, st.tokenMail) {
			return "", nil, &StepError{Step: StepAccessToken, Name: StepName(StepAccessToken), Service: ServiceAuthN, Kind: KindConfig,
				Attempt: attemptOf(ctx), Err: fmt.Errorf("logged in as %s, but the sender's email is %s", st.tokenMail, st.req.Email)}
		}
	}
	st.token = tok.AccessToken
	life := time.Duration(tok.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Minute
	}
	st.tokenExp = time.Now().Add(life)
	if an.Login == nil {
		c.cc.put(tok.AccessToken, life)
	}
	n, mail := len(tok.AccessToken), st.tokenMail
	return "200 OK", func() string {
		detail := fmt.Sprintf("%s at %s, scope %q: token of %d characters, expires in %s", how, an.Issuer, an.Scope, n, life)
		if mail != "" {
			detail += ", logged in as " + mail
		}
		return detail
	}, nil
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// describePushed lists the pushed claims, the claims token by its length only.
func describePushed(p uma.PushedClaims) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := p.Get(k)
		if k == uma.ClaimClaimsToken {
			v = fmt.Sprintf("<%d characters>", len(v))
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// describePermissions summarises an RPT's authorization.permissions.
func describePermissions(claims map[string]any) string {
	authz, _ := claims["authorization"].(map[string]any)
	perms, _ := authz["permissions"].([]any)
	var out []string
	for _, p := range perms {
		pm, _ := p.(map[string]any)
		name, _ := pm["rsname"].(string)
		var scopes []string
		if ss, ok := pm["scopes"].([]any); ok {
			for _, s := range ss {
				if str, ok := s.(string); ok {
					scopes = append(scopes, str)
				}
			}
		}
		out = append(out, name+" "+strings.Join(scopes, ","))
	}
	if len(out) == 0 {
		return ""
	}
	return ", permissions: " + strings.Join(out, "; ")
}

// challengeMatches checks a challenge against the (canonical) Incoming URL
// the push goes to before anything is spent on it: the permission ticket
// must carry exactly one incoming_uri, equal to that URL (the Resource Server
// puts its own Incoming URL on the tickets it asks for), and its iss, where
// Keycloak sets one, must be the challenge's as_uri. The ticket's signature
// is not checked: a forged ticket fails at the authorization server anyway.
func challengeMatches(ctx context.Context, incoming string, ch uma.Challenge) *StepError {
	mismatch := func(format string, args ...any) *StepError {
		return &StepError{Step: StepChallenge, Name: StepName(StepChallenge), Service: ServiceResourceServer, Kind: KindProtocol,
			URL: redact(incoming), Reason: ReasonChallengeMismatch, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("%w: "+format+"; refusing the challenge, nothing was sent to the Claims Provider or the authorization server",
				append([]any{ErrChallengeMismatch}, args...)...)}
	}
	tc, err := uma.UnverifiedTicketClaims(ch.Ticket)
	if err != nil {
		return mismatch("the permission ticket cannot be read (%v), so it names no Incoming; this push goes to %s", err, incoming)
	}
	switch len(tc.IncomingURIs) {
	case 0:
		return mismatch("the permission ticket names no Incoming (no %s claim); this push goes to %s", uma.ClaimIncomingURI, incoming)
	case 1:
	default:
		return mismatch("the permission ticket names %d Incomings (%s); this push goes to %s",
			len(tc.IncomingURIs), clip(strings.Join(tc.IncomingURIs, ", "), 600), incoming)
	}
	if got := tc.IncomingURIs[0]; got != incoming {
		return mismatch("the permission ticket is for the Incoming %s, but this push goes to %s", clip(got, uma.MaxIncomingURL), incoming)
	}
	if tc.Issuer != "" && !sameIssuer(tc.Issuer, ch.ASURI) {
		return mismatch("the permission ticket was issued by %s, but the challenge names the authorization server %s (Incoming %s)",
			clip(tc.Issuer, 600), ch.ASURI, incoming)
	}
	// Keycloak's tickets carry no iss but name the realm that redeems them in
	// aud: a ticket for another AS than as_uri is another server's ticket.
	if len(tc.Audience) > 0 && !slices.ContainsFunc(tc.Audience, func(a string) bool {
		return sameIssuer(a, ch.ASURI)
	}) {
		return mismatch("the permission ticket is for the authorization server %s, but the challenge names %s (Incoming %s)",
			clip(strings.Join(tc.Audience, ", "), 600), ch.ASURI, incoming)
	}
	return nil
}
