package rqp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// ClaimsProvider says where the sender's Claims Provider is (step 5).
type ClaimsProvider struct {
	// URL of a known Claims Provider (its base URL): the claims token is
	// asked for at URL + "/claims/token". Empty: discovery.
	URL string
	// DiscoveryBaseURL replaces "https://{domain}" in discovery, for local
	// development (e.g. http://127.0.0.1:8081): the document is read from
	// DiscoveryBaseURL + "/.well-known/uma-wide-ecosystem-claims-provider".
	// It still has to list the sender's domain.
	DiscoveryBaseURL string
}

// ClaimsTokenPath is where a Claims Provider issues claims tokens.
const ClaimsTokenPath = uma.ClaimsTokenPath

// Bounds of a claims token answer.
const (
	maxClaimsTokenBytes = 16 << 10
	maxDomainsListed    = 1000
)

// claimsEndpoint finds where to ask: the configured URL, or discovery from
// the email's domain. It says how it found it, for the progress detail.
func (c *Client) claimsEndpoint(ctx context.Context, email string) (string, string, *StepError) {
	step := StepClaimsRequest
	cp := c.cfg.ClaimsProvider
	if cp.URL != "" {
		return strings.TrimSuffix(cp.URL, "/") + ClaimsTokenPath, "configured", nil
	}
	domain, err := emailDomain(email)
	if err != nil {
		return "", "", &StepError{Step: step, Name: StepName(step), Service: ServiceClaimsProvider, Kind: KindConfig,
			Err: fmt.Errorf("discovery of the Claims Provider needs the sender's email: %w", err), Attempt: attemptOf(ctx)}
	}
	base := "https://" + domain
	insecure := c.cfg.AllowInsecureHTTP
	if cp.DiscoveryBaseURL != "" {
		base = strings.TrimSuffix(cp.DiscoveryBaseURL, "/")
		insecure = true // explicitly configured for development
	}
	u := base + uma.DiscoveryPath
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", "", &StepError{Step: step, Name: StepName(step), Service: ServiceClaimsProvider, Kind: KindConfig, URL: u, Err: err, Attempt: attemptOf(ctx)}
	}
	req.Header.Set("Accept", "application/json")
	a, se := c.do(ctx, step, ServiceClaimsProvider, req, c.cfg.Timeout, maxDiscoveryBytes)
	if se != nil {
		return "", "", se
	}
	if a.resp.StatusCode != http.StatusOK {
		se := statusError(ctx, step, ServiceClaimsProvider, req, a)
		if se.Kind == KindRefused {
			se.Kind = KindConfig // no Claims Provider published for this domain
			se.Err = fmt.Errorf("no Claims Provider discovery document for %s", domain)
		}
		return "", "", se
	}
	var d uma.ClaimsProviderDiscovery
	if err := decodeJSON(a.body, &d); err != nil {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode, "discovery document: %v", err)
	}
	if d.Issuer == "" || d.ClaimsEndpoint == "" {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode, "discovery document without issuer or claims_endpoint")
	}
	if _, err := checkURL(d.Issuer, insecure); err != nil {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode, "discovery document: issuer: %v", err)
	}
	if _, err := checkURL(d.ClaimsEndpoint, insecure); err != nil {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode, "discovery document: claims_endpoint: %v", err)
	}
	if len(d.Domains) > maxDomainsListed {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode, "discovery document lists %d domains", len(d.Domains))
	}
	listed := false
	for _, dd := range d.Domains {
		if strings.EqualFold(strings.TrimSuffix(dd, "."), domain) {
			listed = true
			break
		}
	}
	if !listed {
		return "", "", protocolError(ctx, step, ServiceClaimsProvider, u, a.resp.StatusCode,
			"the Claims Provider %s does not list the domain %s", clip(d.Issuer, 200), domain)
	}
	return d.ClaimsEndpoint, "discovered for " + domain, nil
}

// requestClaimsToken is step 5: POST the ticket digest, the audience and
// (for a client token) the sender's email.
func (c *Client) requestClaimsToken(ctx context.Context, endpoint, accessToken, digest, audience, email string) (*answer, *http.Request, *StepError) {
	step := StepClaimsRequest
	form := url.Values{uma.FormTicketDigest: {digest}, uma.FormAudience: {audience}}
	if email != "" {
		form.Set(uma.FormEmail, email)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, &StepError{Step: step, Name: StepName(step), Service: ServiceClaimsProvider, Kind: KindConfig, URL: redact(endpoint), Err: err, Attempt: attemptOf(ctx)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	a, se := c.do(ctx, step, ServiceClaimsProvider, req, c.cfg.Timeout, maxJSONBytes)
	if se != nil {
		return nil, req, se
	}
	if a.resp.StatusCode != http.StatusOK {
		return nil, req, statusError(ctx, step, ServiceClaimsProvider, req, a)
	}
	return a, req, nil
}

// checkClaimsToken is step 6: the answer's shape, and that the token is
// bound to this ticket and addressed to this AS (a Claims Provider bug
// would otherwise surface as an opaque denial at step 7).
func checkClaimsToken(ctx context.Context, endpoint string, a *answer, digest, audience string) (*uma.ClaimsTokenResponse, map[string]any, *StepError) {
	step := StepClaimsToken
	bad := func(format string, args ...any) *StepError {
		return protocolError(ctx, step, ServiceClaimsProvider, endpoint, a.resp.StatusCode, format, args...)
	}
	var ca uma.ClaimsTokenResponse
	if err := decodeJSON(a.body, &ca); err != nil {
		return nil, nil, bad("claims token answer: %v", err)
	}
	if ca.TokenType != uma.TokenTypeClaimsToken {
		return nil, nil, bad("token_type %q, want %s", clip(ca.TokenType, 100), uma.TokenTypeClaimsToken)
	}
	if ca.ClaimsToken == "" || len(ca.ClaimsToken) > maxClaimsTokenBytes {
		return nil, nil, bad("no usable claims_token")
	}
	claims, err := unverifiedClaims(ca.ClaimsToken)
	if err != nil {
		return nil, nil, bad("claims_token: %v", err)
	}
	if got := claimString(claims, "ticket_digest"); got != digest {
		return nil, nil, bad("the claims token is bound to ticket digest %q, not this ticket's %q", clip(got, 60), digest)
	}
	if !audContains(claims, audience) {
		return nil, nil, bad("the claims token is not addressed to %s", audience)
	}
	return &ca, claims, nil
}

// emailDomain is the lower-cased domain of an address, checked to be a DNS
// name (it becomes the host of an https URL).
func emailDomain(email string) (string, error) {
	if email == "" {
		return "", errors.New("no email address")
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", fmt.Errorf("%q is not an email address", email)
	}
	d := strings.ToLower(strings.TrimSuffix(email[at+1:], "."))
	if !validDomain(d) {
		return "", fmt.Errorf("%q: the domain is not a DNS name", email)
	}
	return d, nil
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	labels := strings.Split(d, ".")
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return false // an IP address, or a numeric top-level domain
	}
	for _, label := range labels {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}

// expiresIn describes a token's remaining life from its exp claim.
func expiresIn(claims map[string]any) string {
	exp, ok := claims["exp"].(float64)
	if !ok {
		return "no exp"
	}
	return "expires in " + time.Until(time.Unix(int64(exp), 0)).Round(time.Second).String()
}
