package rqp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// countingReader counts what the transport read of a body.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// dataRequest builds the POST of the content (steps 1 and 9), with
// Expect: 100-continue so the body waits for the server's go-ahead.
func (c *Client) dataRequest(to string, p *prepared, rpt string, sent *atomic.Int64) (*http.Request, error) {
	newBody := func() io.ReadCloser { return io.NopCloser(countingReader{r: p.body(), n: sent}) }
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
	if p.size > 0 {
		req.Header.Set("Expect", "100-continue")
	}
	if rpt != "" {
		req.Header.Set("Authorization", "Bearer "+rpt)
	}
	return req, nil
}

func (c *Client) attempt(ctx context.Context, st *pushState) (*Result, *StepError) {
	p := st.content
	res := &Result{ContentSHA256: p.sha256, ContentLength: p.size, ContentType: p.typ, FileName: p.name}

	// 1. POST without a token.
	var sent atomic.Int64
	req, err := c.dataRequest(st.req.To, p, "", &sent)
	if err != nil {
		return nil, c.failed(ctx, &StepError{Step: StepRequest, Name: StepName(StepRequest), Service: ServiceResourceServer,
			Kind: KindConfig, URL: redact(st.req.To), Err: err, Attempt: attemptOf(ctx)}, 0)
	}
	a, se := c.do(ctx, StepRequest, ServiceResourceServer, req, c.cfg.UploadTimeout, maxJSONBytes)
	if se != nil {
		return nil, c.failed(ctx, se, 0)
	}
	res.FirstRequestBodyBytes = sent.Load()
	switch {
	case a.resp.StatusCode == http.StatusUnauthorized:
	case a.resp.StatusCode/100 == 2:
		return nil, c.failed(ctx, protocolError(ctx, StepRequest, ServiceResourceServer, st.req.To, a.resp.StatusCode,
			"the Resource Server accepted the data without a token: it does not protect this Incoming with UMA"), a.duration)
	default:
		return nil, c.failed(ctx, statusError(ctx, StepRequest, ServiceResourceServer, req, a), a.duration)
	}
	c.emit(ctx, StepRequest, true, a.resp.Status, a.duration,
		fmt.Sprintf("POST %s without token; %d of %d content bytes sent (Expect: 100-continue)", redact(st.req.To), res.FirstRequestBodyBytes, p.size), nil)

	// 2. The UMA challenge.
	t0 := time.Now()
	ch, err := uma.ParseChallenge(a.resp.Header)
	if err != nil {
		return nil, c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, st.req.To, a.resp.StatusCode, "%v", err), time.Since(t0))
	}
	if _, err := checkURL(ch.ASURI, c.cfg.AllowInsecureHTTP); err != nil {
		return nil, c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, st.req.To, a.resp.StatusCode, "as_uri: %v", err), time.Since(t0))
	}
	if len(ch.Ticket) > maxTokenBytes {
		return nil, c.failed(ctx, protocolError(ctx, StepChallenge, ServiceResourceServer, st.req.To, a.resp.StatusCode, "ticket of %d bytes", len(ch.Ticket)), time.Since(t0))
	}
	// A challenge must belong to the Incoming this push goes to: a Resource
	// Server that relays another one's challenge would otherwise get an RPT
	// and the content to replay there. Nothing is sent for it.
	if se := challengeMatches(ctx, st.req.To, ch); se != nil {
		return nil, c.failed(ctx, se, time.Since(t0))
	}
	reg, ok := c.registration(ch.ASURI)
	if !ok {
		return nil, c.failed(ctx, &StepError{Step: StepChallenge, Name: StepName(StepChallenge), Service: ServiceAuthZ, Kind: KindConfig,
			URL: ch.ASURI, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("the Resource Server names the authorization server %s, and this client has no registration there", ch.ASURI)}, time.Since(t0))
	}
	res.ASURI = ch.ASURI
	c.emit(ctx, StepChallenge, true, "ticket received", time.Since(t0),
		fmt.Sprintf("UMA realm=%q as_uri=%s, ticket of %d characters", ch.Realm, ch.ASURI, len(ch.Ticket)), nil)

	// 3. The AuthN access token request (none when the token of the first
	// attempt is still fresh, or a client-credentials token of an earlier push
	// is kept).
	t0 = time.Now()
	status := "reused"
	if st.token != "" && time.Until(st.tokenExp) > 30*time.Second {
		c.emit(ctx, StepAccessToken, true, status, time.Since(t0), "the access token of the first attempt is still valid", nil)
	} else {
		var detail string
		var se *StepError
		status, detail, se = c.accessToken(ctx, st)
		if se != nil {
			return nil, c.failed(ctx, se, time.Since(t0))
		}
		c.emit(ctx, StepAccessToken, true, status, time.Since(t0), detail, nil)
	}

	// 4. The access token.
	c.emitAccessToken(ctx, st, status)

	// 5. The claims token request, with 5.1 the ticket digest.
	t0 = time.Now()
	digest := uma.TicketDigest(ch.Ticket)
	if st.claimsEndpoint == "" {
		email := st.req.Email
		if email == "" {
			email = st.tokenMail
		}
		ep, how, se := c.claimsEndpoint(ctx, email)
		if se != nil {
			return nil, c.failed(ctx, se, time.Since(t0))
		}
		st.claimsEndpoint, st.claimsHow = ep, how
	}
	res.ClaimsEndpoint = st.claimsEndpoint
	a, creq, se := c.requestClaimsToken(ctx, st.claimsEndpoint, st.token, digest, ch.ASURI, st.req.Email)
	if se != nil && se.StatusCode == http.StatusUnauthorized && st.tokenCached {
		// The Claims Provider refused the cached client-credentials token
		// (revoked, or Keycloak's keys changed): forget it, get a new one
		// and ask once more.
		c.cc.drop(st.token)
		st.token, st.tokenCached = "", false
		t3 := time.Now()
		status, detail, se3 := c.accessToken(ctx, st)
		if se3 != nil {
			return nil, c.failed(ctx, se3, time.Since(t3))
		}
		c.emit(ctx, StepAccessToken, true, status, time.Since(t3), "the Claims Provider refused the cached token (401): "+detail, nil)
		c.emitAccessToken(ctx, st, status)
		a, creq, se = c.requestClaimsToken(ctx, st.claimsEndpoint, st.token, digest, ch.ASURI, st.req.Email)
	}
	if se != nil {
		return nil, c.failed(ctx, se, time.Since(t0))
	}
	who := st.req.Email
	switch {
	case who != "":
	case st.tokenMail != "":
		who = st.tokenMail + " (from the login)"
	default:
		who = "the logged-in user"
	}
	c.emit(ctx, StepClaimsRequest, true, a.resp.Status, time.Since(t0),
		fmt.Sprintf("POST %s (%s) for %s, audience %s, ticket_digest %s", redact(creq.URL.String()), st.claimsHow, who, ch.ASURI, digest), nil)

	// 6. The claims token.
	t0 = time.Now()
	ca, claims, se := checkClaimsToken(ctx, st.claimsEndpoint, a, digest, ch.ASURI)
	if se != nil {
		return nil, c.failed(ctx, se, time.Since(t0))
	}
	c.emit(ctx, StepClaimsToken, true, "bound to the ticket", time.Since(t0),
		fmt.Sprintf("JWS of %d characters from %s: email %s, %s", len(ca.ClaimsToken), claimString(claims, "iss"), claimString(claims, "email"), expiresIn(claims)), nil)

	// 7. The UMA grant with the pushed claims.
	t0 = time.Now()
	pushed := uma.PushedClaims{}
	pushed.Set(uma.ClaimClaimsToken, ca.ClaimsToken)
	pushed.Set(uma.ClaimContentSHA256, p.sha256)
	pushed.Set(uma.ClaimContentLength, strconv.FormatInt(p.size, 10))
	pushed.Set(uma.ClaimContentType, p.typ)
	pushed.Set(uma.ClaimIncomingURI, st.req.To)
	if p.name != "" {
		pushed.Set(uma.ClaimFileName, p.name)
	}
	claimToken, err := pushed.Encode()
	if err != nil {
		return nil, c.failed(ctx, &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceClient, Kind: KindConfig, Err: err, Attempt: attemptOf(ctx)}, time.Since(t0))
	}
	meta, se := c.metadata(ctx, StepGrant, ServiceAuthZ, ch.ASURI, umaConfigPath)
	if se != nil {
		return nil, c.failed(ctx, se, time.Since(t0))
	}
	form := url.Values{
		"grant_type":         {uma.GrantTypeUMATicket},
		"ticket":             {ch.Ticket},
		"submit_request":     {"false"},
		"claim_token_format": {uma.ClaimTokenFormatJWT},
		"claim_token":        {claimToken},
	}
	tok, ta, _, se := c.tokenRequest(ctx, StepGrant, ServiceAuthZ, meta.TokenEndpoint, reg.ClientID, reg.ClientSecret, form)
	if se != nil {
		if se.StatusCode == http.StatusForbidden && se.Kind == KindRefused {
			se.Kind = KindDenied
		}
		switch se.Code {
		case "invalid_ticket", "expired_ticket", "invalid_grant":
			// Keycloak: 403 invalid_ticket for an expired or unverifiable
			// ticket; UMA 2.0 Grant 3.3.6: invalid_grant. A fresh ticket
			// (and a claims token bound to it) may succeed.
			se.retry = true
		}
		return nil, c.failed(ctx, se, time.Since(t0))
	}
	c.emit(ctx, StepGrant, true, ta.resp.Status, time.Since(t0),
		fmt.Sprintf("POST %s as %s: pushed %s", redact(meta.TokenEndpoint), reg.ClientID, describePushed(pushed)), nil)

	// 8. The RPT.
	t0 = time.Now()
	detail := fmt.Sprintf("RPT of %d characters", len(tok.AccessToken))
	if rc, err := unverifiedClaims(tok.AccessToken); err == nil {
		detail += ", " + expiresIn(rc) + describePermissions(rc)
	}
	c.emit(ctx, StepRPT, true, "received", time.Since(t0), detail, nil)

	// 9. POST with the RPT.
	var sent9 atomic.Int64
	req, err = c.dataRequest(st.req.To, p, tok.AccessToken, &sent9)
	if err != nil {
		return nil, c.failed(ctx, &StepError{Step: StepPost, Name: StepName(StepPost), Service: ServiceResourceServer,
			Kind: KindConfig, URL: redact(st.req.To), Err: err, Attempt: attemptOf(ctx)}, 0)
	}
	a, se = c.do(ctx, StepPost, ServiceResourceServer, req, c.cfg.UploadTimeout, maxJSONBytes)
	if se != nil {
		return nil, c.failed(ctx, se, 0)
	}
	if a.resp.StatusCode != http.StatusCreated {
		se := statusError(ctx, StepPost, ServiceResourceServer, req, a)
		if a.resp.StatusCode/100 == 2 {
			se.Kind, se.Err = KindProtocol, fmt.Errorf("want 201 Created")
		}
		return nil, c.failed(ctx, se, a.duration)
	}
	c.emit(ctx, StepPost, true, a.resp.Status, a.duration,
		fmt.Sprintf("POST %s with the RPT; %d content bytes sent", redact(st.req.To), sent9.Load()), nil)

	// 10. The receipt.
	t0 = time.Now()
	var rc Receipt
	if err := decodeJSON(a.body, &rc); err != nil {
		return nil, c.failed(ctx, protocolError(ctx, StepCreated, ServiceResourceServer, st.req.To, a.resp.StatusCode, "receipt: %v", err), time.Since(t0))
	}
	if rc.ID == "" || rc.SHA256 != p.sha256 || rc.Size != p.size {
		return nil, c.failed(ctx, protocolError(ctx, StepCreated, ServiceResourceServer, st.req.To, a.resp.StatusCode,
			"the receipt (id %q, %d bytes, sha256 %s) does not match what was sent (%d bytes, sha256 %s)",
			clip(rc.ID, 100), rc.Size, clip(rc.SHA256, 64), p.size, p.sha256), time.Since(t0))
	}
	res.Receipt = rc
	if loc := a.resp.Header.Get("Location"); loc != "" {
		if u, err := req.URL.Parse(loc); err == nil {
			res.Location = u.String()
		}
	}
	c.emit(ctx, StepCreated, true, "stored", time.Since(t0),
		fmt.Sprintf("message %s at %s, sender %s, sha256 %s", rc.ID, res.Location, rc.SenderEmail, rc.SHA256), nil)
	return res, nil
}

// emitAccessToken reports step 4, the access token step 3 got: "received",
// or step 3's status ("cached", "reused") when no request was sent. The
// token shows only as its length.
func (c *Client) emitAccessToken(ctx context.Context, st *pushState, status3 string) {
	t0 := time.Now()
	status := "received"
	if status3 == "cached" || status3 == "reused" {
		status = status3
	}
	detail := fmt.Sprintf("access token of %d characters, expires in %s", len(st.token), time.Until(st.tokenExp).Round(time.Second))
	c.emit(ctx, StepAccessTokenReturned, true, status, time.Since(t0), detail, nil)
}

// accessToken is steps 3-4: client credentials, or the person's login. It
// returns the step's status ("200 OK", or "cached" for a client-credentials
// token an earlier push fetched) and detail.
func (c *Client) accessToken(ctx context.Context, st *pushState) (string, string, *StepError) {
	an := c.cfg.AuthN
	var tok *tokenAnswer
	var how string
	if an.Login == nil {
		// The client's own token, not a person's: one serves every push
		// until shortly before it expires. Concurrent pushes wait for one
		// fetch.
		cached := func() (string, string, bool) {
			t, exp, ok := c.cc.get()
			if !ok {
				return "", "", false
			}
			st.token, st.tokenExp, st.tokenCached = t, exp, true
			return "cached", fmt.Sprintf("client credentials of %s at %s, scope %q: the token of an earlier push, expires in %s",
				an.ClientID, an.Issuer, an.Scope, time.Until(exp).Round(time.Second)), true
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
			return "", "", se
		}
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {an.Scope}}
		tok, _, _, se = c.tokenRequest(ctx, StepAccessToken, ServiceAuthN, meta.TokenEndpoint, an.ClientID, an.ClientSecret, form)
		if se != nil {
			return "", "", se
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
			return "", "", se
		}
		how = "authorization code + PKCE login, client " + an.ClientID
		for _, t := range []string{tok.IDToken, tok.AccessToken} {
			if cl, err := unverifiedClaims(t); err == nil && claimString(cl, "email") != "" {
				st.tokenMail = claimString(cl, "email")
				break
			}
		}
		if st.req.Email != "" && st.tokenMail != "" && !strings.EqualFold(st.req.Email, st.tokenMail) {
			return "", "", &StepError{Step: StepAccessToken, Name: StepName(StepAccessToken), Service: ServiceAuthN, Kind: KindConfig,
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
	detail := fmt.Sprintf("%s at %s, scope %q: token of %d characters, expires in %s", how, an.Issuer, an.Scope, len(tok.AccessToken), life)
	if st.tokenMail != "" {
		detail += ", logged in as " + st.tokenMail
	}
	return "200 OK", detail, nil
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
	if tc.Issuer != "" && strings.TrimSuffix(tc.Issuer, "/") != strings.TrimSuffix(ch.ASURI, "/") {
		return mismatch("the permission ticket was issued by %s, but the challenge names the authorization server %s (Incoming %s)",
			clip(tc.Issuer, 600), ch.ASURI, incoming)
	}
	// Keycloak's tickets carry no iss but name the realm that redeems them in
	// aud: a ticket for another AS than as_uri is another server's ticket.
	if len(tc.Audience) > 0 && !slices.ContainsFunc(tc.Audience, func(a string) bool {
		return strings.TrimSuffix(a, "/") == strings.TrimSuffix(ch.ASURI, "/")
	}) {
		return mismatch("the permission ticket is for the authorization server %s, but the challenge names %s (Incoming %s)",
			clip(strings.Join(tc.Audience, ", "), 600), ch.ASURI, incoming)
	}
	return nil
}
