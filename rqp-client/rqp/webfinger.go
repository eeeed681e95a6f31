package rqp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	domain, err := emailDomain(address)
	if err != nil {
		return nil, configError("recipient: %w", err)
	}
	local := address[:strings.LastIndexByte(address, '@')]
	if len(local) > 64 || strings.ContainsFunc(local, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, configError("recipient: %q is not an address", clip(address, 200))
	}
	address = local + "@" + domain // the domain as emailDomain normalises it
	u, err := uma.WebFingerURL(address)
	if err != nil {
		return nil, configError("recipient: %w", err)
	}
	fail := func(kind Kind, status int, format string, args ...any) *StepError {
		return &StepError{Service: ServiceWebFinger, Kind: kind, URL: redact(u), StatusCode: status,
			Err: fmt.Errorf("%s: "+format, append([]any{address}, args...)...)}
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, fail(KindConfig, 0, "%v", err)
	}
	req.Header.Set("Accept", uma.JRDMediaType+", application/json")
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
	if !strings.EqualFold(jrd.Subject, uma.AcctURI(address)) {
		return nil, fail(KindProtocol, a.resp.StatusCode, "the WebFinger answer is about %q, not %s", clip(jrd.Subject, 200), uma.AcctURI(address))
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
	as, se := one(uma.RelAuthorizationServer)
	if se != nil {
		return nil, se
	}
	return &Recipient{Address: address, Incoming: incoming, AS: as}, nil
}
