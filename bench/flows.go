package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// The step groups reported, as the issue names them.
const (
	grpTicket = iota // steps 1-2: POST without token, UMA challenge
	grpAuthN         // steps 3-4: access token for the Claims Provider
	grpClaims        // steps 5-6: claims token
	grpRPT           // steps 7-8: uma-ticket grant, RPT
	grpPost          // steps 9-10: POST with the RPT, receipt
	numGroups
)

var groupNames = [numGroups]string{"ticket", "authn_token", "claims_token", "rpt", "post"}

// groupOf maps an rqp step to its group (-1: not reported).
func groupOf(step int) int {
	switch step {
	case rqp.StepRequest, rqp.StepChallenge:
		return grpTicket
	case rqp.StepAccessToken, rqp.StepAccessTokenReturned:
		return grpAuthN
	case rqp.StepClaimsRequest, rqp.StepClaimsToken:
		return grpClaims
	case rqp.StepGrant, rqp.StepRPT:
		return grpRPT
	case rqp.StepPost, rqp.StepCreated:
		return grpPost
	}
	return -1
}

// sample is one push: its wall time and the time of each step group (summed
// over both attempts when the flow started over).
type sample struct {
	total    time.Duration
	groups   [numGroups]time.Duration
	has      [numGroups]bool
	attempts int
}

// flow is one variant's push.
type flow interface {
	push(ctx context.Context, data []byte) (sample, error)
}

const (
	fileName    = "bench.bin"
	contentType = "application/octet-stream"
	senderEmail = "alice@foo.example"
)

// ourFlow is the umawide flow: the rqp library, steps 1-10, the claims-token
// policy at the AS.
type ourFlow struct {
	client *rqp.Client
	to     string
}

// The step times come from the Result (no progress callback: the library
// then describes no step, as for any caller that shows no progress).
func (f *ourFlow) push(ctx context.Context, data []byte) (sample, error) {
	var s sample
	start := time.Now()
	res, err := f.client.Push(ctx, rqp.Request{
		To: f.to, Email: senderEmail,
		Content: &rqp.Content{Data: bytes.NewReader(data), Size: int64(len(data)), Name: fileName, Type: contentType},
	})
	s.total = time.Since(start)
	if err != nil {
		return s, err
	}
	for step := rqp.StepRequest; step <= rqp.NumSteps; step++ {
		if g := groupOf(step); g >= 0 {
			s.groups[g] += res.StepTimes[step]
			s.has[g] = true
		}
	}
	s.attempts = res.Attempts
	return s, nil
}

// stockFlow is the baseline: stock Keycloak UMA. The same ticket (steps 1-2),
// the same uma-ticket grant (7-8) with the same content metadata pushed, but
// the sender pushed as unsigned claims (sender_email, sender_iss, and what
// else the Resource Server requires, with a grant_mac the bench computes)
// that a stock client policy admits as they come, and no AuthN token or Claims
// Provider (3-6). The same POST with the RPT (9-10). HTTP through a client
// configured as rqp's default.
type stockFlow struct {
	hc                    *http.Client
	to                    string
	tokenEndpoint         string
	clientID, secret      string
	senderEmail, senderIs string
}

const maxAnswer = 1 << 20

// newStockFlow reads the AS's token endpoint from its UMA metadata.
func newStockFlow(ctx context.Context, hc *http.Client, to, asIssuer, clientID, secret, senderIss string) (*stockFlow, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, asIssuer+"/.well-known/uma2-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&meta); err != nil || resp.StatusCode != http.StatusOK || meta.TokenEndpoint == "" {
		return nil, fmt.Errorf("UMA metadata of %s: %s %v", asIssuer, resp.Status, err)
	}
	return &stockFlow{hc: hc, to: to, tokenEndpoint: meta.TokenEndpoint, clientID: clientID, secret: secret,
		senderEmail: senderEmail, senderIs: senderIss}, nil
}

// post sends the data to the Incoming (steps 1 and 9) as rqp does: the
// content type and file name, Expect: 100-continue for content over
// rqp.SmallContentMax; step 1 (no RPT) without a body for smaller content.
func (f *stockFlow) post(ctx context.Context, data []byte, rpt string) (*http.Response, []byte, error) {
	small := len(data) <= rqp.SmallContentMax
	if rpt == "" && small {
		data = nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.to, bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if len(data) > 0 {
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fileName}))
		if !small {
			req.Header.Set("Expect", "100-continue")
		}
	}
	if rpt != "" {
		req.Header.Set("Authorization", "Bearer "+rpt)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return resp, body, err
}

func (f *stockFlow) push(ctx context.Context, data []byte) (s sample, err error) {
	s.attempts = 1
	start := time.Now()
	defer func() { s.total = time.Since(start) }()
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])

	// 1-2: the ticket.
	t0 := time.Now()
	resp, body, err := f.post(ctx, data, "")
	if err != nil {
		return s, fmt.Errorf("step 1: %w", err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return s, fmt.Errorf("step 1: %s %.200s", resp.Status, body)
	}
	ch, err := uma.ParseChallenge(resp.Header)
	if err != nil {
		return s, fmt.Errorf("step 2: %w", err)
	}
	s.groups[grpTicket], s.has[grpTicket] = time.Since(t0), true

	// 7-8: the RPT, unsigned pushed claims.
	t0 = time.Now()
	// The Resource Server requires what the claims-token policy writes
	// (issue 12): the stock client pushes all of it, unsigned, with the
	// grant_mac the policy would compute (the bench knows the Resource
	// Server's secret), so that both variants end in the same checks.
	tc, err := uma.UnverifiedTicketClaims(ch.Ticket)
	if err != nil || len(tc.IncomingURIs) != 1 || len(tc.ResourceIDs) != 1 {
		return s, fmt.Errorf("step 2: ticket %+v: %v", tc, err)
	}
	var grantID [16]byte
	_, _ = rand.Read(grantID[:])
	pushed := uma.PushedClaims(grantmac.Attest([]byte(rsSecret), tc.ResourceIDs[0], map[string][]string{
		uma.ClaimSenderEmail:   {f.senderEmail},
		uma.ClaimSenderIss:     {f.senderIs},
		uma.ClaimSenderSub:     {"stock-sender"},
		uma.ClaimContentSHA256: {digest},
		uma.ClaimContentLength: {strconv.Itoa(len(data))},
		uma.ClaimContentType:   {contentType},
		uma.ClaimFileName:      {fileName},
		uma.ClaimIncomingURI:   {tc.IncomingURIs[0]},
		uma.ClaimGrantID:       {base64.RawURLEncoding.EncodeToString(grantID[:])},
	}))
	ct, err := pushed.Encode()
	if err != nil {
		return s, err
	}
	form := url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ch.Ticket},
		uma.FormSubmitRequest:    {"false"},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {ct},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return s, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(f.clientID), url.QueryEscape(f.secret))
	tresp, err := f.hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("step 7: %w", err)
	}
	tbody, err := io.ReadAll(io.LimitReader(tresp.Body, maxAnswer))
	tresp.Body.Close()
	if err != nil || tresp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("step 7: %s %.200s %v", tresp.Status, tbody, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(tbody, &tok); err != nil || tok.AccessToken == "" {
		return s, fmt.Errorf("step 8: no RPT (%v)", err)
	}
	s.groups[grpRPT], s.has[grpRPT] = time.Since(t0), true

	// 9-10: the POST with the RPT.
	t0 = time.Now()
	resp, body, err = f.post(ctx, data, tok.AccessToken)
	if err != nil {
		return s, fmt.Errorf("step 9: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return s, fmt.Errorf("step 9: %s %.200s", resp.Status, body)
	}
	var rc uma.Message
	if err := json.Unmarshal(body, &rc); err != nil || rc.SHA256 != digest || rc.Size != int64(len(data)) {
		return s, fmt.Errorf("step 10: receipt %.200s does not match (%v)", body, err)
	}
	s.groups[grpPost], s.has[grpPost] = time.Since(t0), true
	return s, nil
}
