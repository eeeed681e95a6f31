package uma

import (
	"errors"
	"strings"
)

// WebFinger (RFC 7033) as the wide ecosystem uses it: a sender addresses a
// person (bob@bar.example); the recipient's domain answers
// GET https://bar.example/.well-known/webfinger?resource=acct:bob@bar.example
// with a JRD naming the Incoming and the authorization server protecting it
// (docs/PROTOCOL.md, "Addressing a person"). The Resource Server serves it
// for its own users; the RqP client reads it.

// WebFingerPath is the well-known path of RFC 7033.
const WebFingerPath = "/.well-known/webfinger"

// WebFingerResourceParam and WebFingerRelParam are its query parameters.
const (
	WebFingerResourceParam = "resource"
	WebFingerRelParam      = "rel"
)

// ContentTypeJRD is the media type of a WebFinger answer.
const ContentTypeJRD = "application/jrd+json"

// Link relations of the JRD (URIs, as RFC 7033 section 4.4.4.1 wants for
// relations that are not registered).
const (
	// RelIncoming's href is the person's canonical Incoming URL
	// (CanonicalIncomingURL): where the client POSTs.
	RelIncoming = "https://umawide.dev/rel/incoming"
	// RelUMAAS's href is the issuer URL of the UMA authorization server that
	// protects that Incoming: the challenge's as_uri must equal it.
	RelUMAAS = "https://umawide.dev/rel/uma-as"
)

// JRD is a JSON Resource Descriptor (RFC 7033 section 4.4), the members
// the ecosystem uses.
type JRD struct {
	Subject string    `json:"subject"`
	Aliases []string  `json:"aliases,omitempty"`
	Links   []JRDLink `json:"links"`
}

// JRDLink is one link of a JRD.
type JRDLink struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href,omitempty"`
}

// Link is the href of the first link with relation rel ("" if none).
func (j JRD) Link(rel string) string {
	for _, l := range j.Links {
		if l.Rel == rel {
			return l.Href
		}
	}
	return ""
}

// MaxAddressLen bounds an address (RFC 5321's path limit).
const MaxAddressLen = 254

// ErrInvalidAddress: not one local@domain address the ecosystem accepts.
var ErrInvalidAddress = errors.New("uma: not an address local@domain")

// Address is a person's address in the ecosystem, local@domain, in the
// form both sides compare: lower case (Keycloak lower-cases usernames and
// DNS ignores case), domain an LDH host name with at least one dot.
type Address struct {
	Local, Domain string
}

// String is local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// AcctURI is the WebFinger resource of the address: acct:local@domain.
func (a Address) AcctURI() string { return "acct:" + a.String() }

// ParseAddress reads local@domain, optionally as an acct: URI (RFC 7565),
// and lower-cases it. The local part is 1 to 64 characters without '@',
// '/', '%', '?', '#', ':', white space or control characters (the Resource Server applies
// its stricter owner-name rules on top); the domain is checked by
// ValidDomain.
func ParseAddress(s string) (Address, error) {
	if len(s) > MaxAddressLen+len("acct:") {
		return Address{}, ErrInvalidAddress
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "acct:") {
		s = s[5:]
	}
	if len(s) > MaxAddressLen {
		return Address{}, ErrInvalidAddress
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.ContainsAny(local, "@/%?#:") {
		return Address{}, ErrInvalidAddress
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c <= ' ' || c >= 0x7f {
			return Address{}, ErrInvalidAddress
		}
	}
	domain = strings.ToLower(domain)
	if !ValidDomain(domain) {
		return Address{}, ErrInvalidAddress
	}
	return Address{Local: strings.ToLower(local), Domain: domain}, nil
}

// ValidDomain says whether d is a lower-case DNS host name with at least two
// labels: LDH labels of 1 to 63 characters, not starting or ending with
// '-', 253 characters at most, no trailing dot (the claims-token policy's
// Domains.normalize accepts the same names).
func ValidDomain(d string) bool {
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) < 1 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
