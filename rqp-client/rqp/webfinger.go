package rqp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/umawide/umawide/internal/uma"
)

// ReasonUnknownRecipient is StepError.Reason when the recipient's domain
// says it has no such person (WebFinger 404): nothing is pushed.
const ReasonUnknownRecipient = "unknown_recipient"

// ErrUnknownRecipient is wrapped by the Err of every StepError with
// ReasonUnknownRecipient (its Kind is KindRefused).
var ErrUnknownRecipient = errors.New(ReasonUnknownRecipient)

// ServiceWebFinger names the recipient's domain's WebFinger service in errors.
const ServiceWebFinger = "recipient's WebFinger"

// maxJRDLinks bounds the links of a WebFinger answer.
const maxJRDLinks = 100

// Recipient is what the recipient's domain says about an address.
type Recipient struct {
	// Address as asked, e.g. bob@bar.example.
	Address string
	// Incoming is the person's Incoming URL (canonical).
	Incoming string
	// AS is the issuer of the authorization server that protects it: the
	// challenge's as_uri must equal it (Request.AS).
	AS string
}

// IsAddress reports whether to is an address (user@domain) rather than an
// Incoming URL.
func IsAddress(to string) bool {
	return !strings.Contains(to, "://") && strings.Count(to, "@") == 1
}

// Resolve asks the address's domain, by WebFinger over HTTPS with the
// client's normal certificate validation, where the person's Incoming is and
// which authorization server protects it. It is step 0 of an addressed push;
// nothing is sent to any other service.
func (c *Client) Resolve(ctx context.Context, address string) (*Recipient, error) {
	addr, err := uma.ParseAddress(address)
	if err != nil || strings.HasPrefix(strings.ToLower(address), "acct:") || !validDomain(addr.Domain) { // no address literals
		return nil, configError("recipient %q: %w", clip(address, 100), uma.ErrInvalidAddress)
	}
	address, domain := addr.String(), addr.Domain
	u := "https://" + domain + uma.WebFingerPath + "?" + url.Values{uma.WebFingerResourceParam: {addr.AcctURI()}}.Encode()
	fail := func(kind Kind, status int, format string, args ...any) *StepError {
		return &StepError{Service: ServiceWebFinger, Kind: kind, URL: redact(u), StatusCode: status,
			Err: fmt.Errorf("%s: "+format, append([]any{address}, args...)...)}
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, fail(KindConfig, 0, "%v", err)
	}
	req.Header.Set("Accept", uma.ContentTypeJRD+", application/json")
	// WebFinger is always HTTPS (RFC 7033 4): AllowInsecureHTTP does not
	// apply, and the URL is built with https above.
	a, se := c.do(ctx, 0, ServiceWebFinger, req, c.cfg.Timeout, maxDiscoveryBytes)
	if se != nil {
		se.Err = fmt.Errorf("looking up %s: %w", address, se.Err)
		return nil, se
	}
	switch a.resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		se := fail(KindRefused, a.resp.StatusCode, "%w: %s has no such recipient (WebFinger answered 404); nothing was pushed", ErrUnknownRecipient, domain)
		se.Reason = ReasonUnknownRecipient
		return nil, se
	default:
		se := statusError(ctx, 0, ServiceWebFinger, req, a)
		se.Err = fmt.Errorf("looking up %s at %s: nothing was pushed", address, domain)
		return nil, se
	}
	var jrd uma.JRD
	if err := decodeJSON(a.body, &jrd); err != nil {
		return nil, fail(KindProtocol, a.resp.StatusCode, "WebFinger answer: %v", err)
	}
	if !strings.EqualFold(jrd.Subject, addr.AcctURI()) {
		return nil, fail(KindProtocol, a.resp.StatusCode, "the WebFinger answer is about %q, not %s", clip(jrd.Subject, 200), addr.AcctURI())
	}
	if len(jrd.Links) > maxJRDLinks {
		return nil, fail(KindProtocol, a.resp.StatusCode, "the WebFinger answer has %d links", len(jrd.Links))
	}
	one := func(rel string) (string, *StepError) {
		var hrefs []string
		for _, l := range jrd.Links {
			if l.Rel == rel {
				hrefs = append(hrefs, l.Href)
			}
		}
		if len(hrefs) != 1 {
			return "", fail(KindProtocol, a.resp.StatusCode, "the WebFinger answer has %d links of relation %s, want exactly 1", len(hrefs), rel)
		}
		if _, err := checkURL(hrefs[0], c.cfg.AllowInsecureHTTP); err != nil {
			return "", fail(KindProtocol, a.resp.StatusCode, "link %s: %v", rel, err)
		}
		return hrefs[0], nil
	}
	incoming, se := one(uma.RelIncoming)
	if se != nil {
		return nil, se
	}
	if incoming, err = uma.CanonicalIncomingURL(incoming); err != nil {
		return nil, fail(KindProtocol, a.resp.StatusCode, "link %s: %v", uma.RelIncoming, err)
	}
	as, se := one(uma.RelUMAAS)
	if se != nil {
		return nil, se
	}
	return &Recipient{Address: address, Incoming: incoming, AS: as}, nil
}
