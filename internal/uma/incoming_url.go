package uma

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxIncomingURL is the longest Incoming URL, raw or canonical: the
// claims-token policy refuses a longer pushed incoming_uri.
const MaxIncomingURL = 2048

// ErrIncomingURL wraps every refusal of CanonicalIncomingURL.
var ErrIncomingURL = errors.New("uma: not an Incoming URL")

// CanonicalIncomingURL gives the one spelling of an Incoming URL that the
// client pushes as incoming_uri, the Resource Server puts on its permission
// tickets and checks in RPTs, and the claims-token policy compares (all
// exactly, as strings): scheme://host[:port]/incoming/{owner}, with scheme
// and host in lower case, the default port (80 for http, 443 for https)
// dropped, no trailing slash, no query, no fragment and no userinfo.
//
// Only a trailing slash, letter case of scheme and host, a default or
// zero-padded port, and the percent-encoding of the owner are normalised.
// Everything that could make two parties disagree about which Incoming is
// meant is refused rather than repaired: userinfo, a query or fragment (even
// empty), another path than /incoming/{owner}, dot segments, an encoded '/',
// control characters or invalid UTF-8 in the owner, a host that is not plain
// ASCII (no IDN, no zone id), and anything over MaxIncomingURL.
func CanonicalIncomingURL(raw string) (string, error) {
	if len(raw) > MaxIncomingURL {
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrIncomingURL, len(raw), MaxIncomingURL)
	}
	if raw == "" {
		return "", fmt.Errorf("%w: empty", ErrIncomingURL)
	}
	// url.Parse tolerates spaces and control characters in places; an
	// Incoming URL has none.
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return "", fmt.Errorf("%w: character %q at %d", ErrIncomingURL, raw[i], i)
		}
	}
	// A fragment or query, even empty, is refused: the URL the client
	// POSTs to must be the Incoming itself.
	if strings.ContainsAny(raw, "#?") {
		return "", fmt.Errorf("%w: %q has a query or fragment", ErrIncomingURL, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrIncomingURL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%w: %q is not an absolute http or https URL", ErrIncomingURL, raw)
	}
	if u.Opaque != "" || !strings.HasPrefix(raw[len(u.Scheme)+1:], "//") {
		return "", fmt.Errorf("%w: %q has no authority", ErrIncomingURL, raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %q has userinfo", ErrIncomingURL, raw)
	}
	host, err := canonicalHost(scheme, u.Host)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrIncomingURL, raw, err)
	}
	owner, err := incomingOwner(u.EscapedPath())
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrIncomingURL, raw, err)
	}
	out := scheme + "://" + host + IncomingPath(url.PathEscape(owner))
	if len(out) > MaxIncomingURL {
		return "", fmt.Errorf("%w: canonical form of %d characters, at most %d", ErrIncomingURL, len(out), MaxIncomingURL)
	}
	return out, nil
}

// canonicalHost is the lower-case host with the port, unless it is the
// scheme's default.
func canonicalHost(scheme, hostport string) (string, error) {
	var host, port string
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", errors.New("unclosed IPv6 literal")
		}
		host, port = hostport[:end+1], hostport[end+1:]
		for i := 1; i < len(host)-1; i++ {
			c := host[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return "", fmt.Errorf("IPv6 literal %q", host)
			}
		}
		if len(host) < 4 { // "[::]" is the shortest
			return "", fmt.Errorf("IPv6 literal %q", host)
		}
	} else {
		host, port = hostport, ""
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			host, port = hostport[:i], hostport[i:]
		}
		if host == "" {
			return "", errors.New("no host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '.') {
				return "", fmt.Errorf("host %q: character %q", host, c)
			}
		}
	}
	host = strings.ToLower(host)
	if port == "" {
		return host, nil
	}
	if port[0] != ':' {
		return "", fmt.Errorf("%q after the host", port)
	}
	digits := port[1:]
	if digits == "" || len(digits) > 5 {
		return "", fmt.Errorf("port %q", digits)
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", fmt.Errorf("port %q", digits)
		}
		n = n*10 + int(digits[i]-'0')
	}
	if n < 1 || n > 65535 {
		return "", fmt.Errorf("port %d out of range", n)
	}
	if n == 80 && scheme == "http" || n == 443 && scheme == "https" {
		return host, nil
	}
	return host + ":" + strconv.Itoa(n), nil
}

// maxOwnerSegment bounds the decoded owner; the Resource Server accepts far
// shorter names, this only keeps the canonical form within MaxIncomingURL.
const maxOwnerSegment = 255

// incomingOwner is the decoded owner of an escaped path /incoming/{owner}
// (one trailing slash tolerated).
func incomingOwner(escaped string) (string, error) {
	const prefix = "/incoming/"
	if !strings.HasPrefix(escaped, prefix) {
		return "", errors.New("the path is not /incoming/{owner}")
	}
	seg := strings.TrimSuffix(escaped[len(prefix):], "/")
	if seg == "" || strings.Contains(seg, "/") {
		return "", errors.New("the path is not /incoming/{owner}")
	}
	owner, err := url.PathUnescape(seg)
	if err != nil {
		return "", fmt.Errorf("owner %q: %v", seg, err)
	}
	switch {
	case len(owner) > maxOwnerSegment:
		return "", fmt.Errorf("owner of %d bytes, at most %d", len(owner), maxOwnerSegment)
	case owner == "." || owner == "..":
		return "", fmt.Errorf("owner %q is a dot segment", seg)
	case !utf8.ValidString(owner):
		return "", fmt.Errorf("owner %q is not UTF-8", seg)
	}
	for _, r := range owner {
		if r < ' ' || r == 0x7f || r == '/' || r == '\\' || (r >= 0x80 && r < 0xa0) {
			return "", fmt.Errorf("owner %q has the character %q", seg, r)
		}
	}
	return owner, nil
}
