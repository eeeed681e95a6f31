package uma

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Challenge is the UMA 2.0 permission-ticket challenge (UMA Grant 3.2.1,
// seed step 2): WWW-Authenticate: UMA realm="bar", as_uri="...", ticket="...".
type Challenge struct {
	Realm  string
	ASURI  string
	Ticket string
}

// String renders the header value, each parameter a quoted string.
func (c Challenge) String() string {
	var b strings.Builder
	// One allocation: the parameters, their names and quotes (a ticket is
	// over a kilobyte; growing byte by byte cost more than the rest).
	b.Grow(len("UMA realm=\"\", as_uri=\"\", ticket=\"\"") + len(c.Realm) + len(c.ASURI) + len(c.Ticket) + 8)
	b.WriteString("UMA ")
	params := [][2]string{{"realm", c.Realm}, {"as_uri", c.ASURI}, {"ticket", c.Ticket}}
	first := true
	for _, p := range params {
		if p[1] == "" && p[0] == "realm" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(p[0])
		b.WriteString("=")
		writeQuoted(&b, p[1])
	}
	return b.String()
}

// writeQuoted writes s as an RFC 9110 quoted-string.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for len(s) > 0 {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteByte('\\')
		b.WriteByte(s[i])
		s = s[i+1:]
	}
	b.WriteByte('"')
}

// AuthChallenge is one challenge of a WWW-Authenticate header (RFC 7235):
// a scheme with parameters (names lower-cased) or a token68.
type AuthChallenge struct {
	Scheme  string
	Params  map[string]string
	Token68 string
}

// Bounds of what ParseWWWAuthenticate reads.
const (
	MaxChallengeHeaderBytes = 16 << 10
	MaxChallenges           = 16
	MaxChallengeParams      = 32
)

// ErrChallenge wraps every parse refusal.
var ErrChallenge = errors.New("uma: malformed WWW-Authenticate")

// ParseWWWAuthenticate parses every WWW-Authenticate value (one per header
// line, each holding one or more challenges) per RFC 7235 section 4.1:
// schemes and parameter names case-insensitive, values tokens or quoted
// strings with backslash escapes, parameters in any order, commas and optional
// white space between them.
func ParseWWWAuthenticate(values []string) ([]AuthChallenge, error) {
	total := 0
	var out []AuthChallenge
	for _, v := range values {
		total += len(v)
		if total > MaxChallengeHeaderBytes {
			return nil, fmt.Errorf("%w: longer than %d bytes", ErrChallenge, MaxChallengeHeaderBytes)
		}
		cs, err := parseChallenges(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(out) > MaxChallenges {
			return nil, fmt.Errorf("%w: more than %d challenges", ErrChallenge, MaxChallenges)
		}
	}
	return out, nil
}

// ParseChallenge finds the UMA challenge among a response's WWW-Authenticate
// headers; as_uri and ticket are required and must not repeat. The first UMA
// challenge wins. Header lines are parsed one by one: a malformed line (say,
// another scheme's challenge from a proxy) does not hide a well-formed UMA
// challenge on another line; within one line a parse error ends the line,
// since nothing after it can be read reliably. The size bound applies to
// all lines together.
func ParseChallenge(h http.Header) (Challenge, error) {
	values := h.Values("WWW-Authenticate")
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > MaxChallengeHeaderBytes {
		return Challenge{}, fmt.Errorf("%w: longer than %d bytes", ErrChallenge, MaxChallengeHeaderBytes)
	}
	var firstErr error
	for _, v := range values {
		cs, err := ParseWWWAuthenticate([]string{v})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, c := range cs {
			if !strings.EqualFold(c.Scheme, "UMA") {
				continue
			}
			ch := Challenge{Realm: c.Params["realm"], ASURI: c.Params["as_uri"], Ticket: c.Params["ticket"]}
			if ch.ASURI == "" || ch.Ticket == "" {
				return Challenge{}, fmt.Errorf("%w: UMA challenge without as_uri and ticket", ErrChallenge)
			}
			return ch, nil
		}
	}
	if firstErr != nil {
		return Challenge{}, firstErr
	}
	return Challenge{}, fmt.Errorf("%w: no UMA challenge", ErrChallenge)
}

// challengeParser walks one header value.
type challengeParser struct {
	s string
	i int
}

func parseChallenges(v string) ([]AuthChallenge, error) {
	p := &challengeParser{s: v}
	var out []AuthChallenge
	for {
		p.skipListSeparators()
		if p.done() {
			return out, nil
		}
		c, err := p.challenge()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if len(out) > MaxChallenges {
			return nil, fmt.Errorf("%w: more than %d challenges", ErrChallenge, MaxChallenges)
		}
	}
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) skipWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipListSeparators skips white space and empty list elements (",,").
func (p *challengeParser) skipListSeparators() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrChallenge, p.i, fmt.Sprintf(format, args...))
}

// challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
func (p *challengeParser) challenge() (AuthChallenge, error) {
	scheme := p.token()
	if scheme == "" {
		return AuthChallenge{}, p.errorf("expected an auth-scheme")
	}
	c := AuthChallenge{Scheme: scheme, Params: map[string]string{}}
	p.skipWS()
	if p.done() || p.s[p.i] == ',' {
		return c, nil
	}
	// token68 or the first auth-param: both start like a token.
	start := p.i
	name := p.token()
	if name == "" {
		return AuthChallenge{}, p.errorf("expected a parameter or token68")
	}
	save := p.i
	p.skipWS()
	if p.done() || p.s[p.i] != '=' || p.isToken68End(save) {
		// token68: the token plus trailing '='s, then end or a comma.
		p.i = start
		if t := p.token68(); t != "" {
			c.Token68 = t
			return c, nil
		}
		return AuthChallenge{}, p.errorf("expected '=' after %q", name)
	}
	for {
		p.i++ // '='
		p.skipWS()
		val, err := p.value()
		if err != nil {
			return AuthChallenge{}, err
		}
		key := strings.ToLower(name)
		if _, dup := c.Params[key]; dup {
			return AuthChallenge{}, p.errorf("parameter %q repeated", key)
		}
		if len(c.Params) >= MaxChallengeParams {
			return AuthChallenge{}, p.errorf("more than %d parameters", MaxChallengeParams)
		}
		c.Params[key] = val
		// Next: ", name=value" continues this challenge; ", Scheme ..." starts
		// the next one; the end ends all.
		p.skipWS()
		if p.done() {
			return c, nil
		}
		if p.s[p.i] != ',' {
			return AuthChallenge{}, p.errorf("expected ',' after a parameter")
		}
		save := p.i
		p.skipListSeparators()
		if p.done() {
			return c, nil
		}
		name = p.token()
		if name == "" {
			return AuthChallenge{}, p.errorf("expected a parameter name")
		}
		p.skipWS()
		if p.done() || p.s[p.i] != '=' {
			p.i = save // a new challenge begins at this token
			return c, nil
		}
		// "name=" could still be a new scheme followed by a token68 ending in
		// '=', as in `Basic, Foo abc=`; a parameter name is followed by '='
		// directly (after optional white space), so that is what it is.
	}
}

// isToken68End reports whether the '=' at p.i belongs to a token68: '=' runs
// up to the end or a comma with nothing but white space after them, and no
// white space between the token and the '='.
func (p *challengeParser) isToken68End(tokenEnd int) bool {
	if p.i != tokenEnd {
		return false // "name =" is a parameter with white space
	}
	j := p.i
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j == len(p.s) || p.s[j] == ','
}

func (p *challengeParser) token68() string {
	start := p.i
	for !p.done() && isToken68Char(p.s[p.i]) {
		p.i++
	}
	for !p.done() && p.s[p.i] == '=' {
		p.i++
	}
	if p.i == start {
		return ""
	}
	end := p.i
	p.skipWS()
	if !p.done() && p.s[p.i] != ',' {
		p.i = start
		return ""
	}
	return p.s[start:end]
}

func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) value() (string, error) {
	if p.done() {
		return "", p.errorf("expected a value")
	}
	if p.s[p.i] != '"' {
		if v := p.token(); v != "" {
			return v, nil
		}
		return "", p.errorf("expected a token or quoted string")
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			if p.done() {
				return "", p.errorf("unterminated escape")
			}
			c = p.s[p.i]
			if !isQuotedChar(c) {
				return "", p.errorf("invalid escaped character %#x", c)
			}
		case !isQuotedChar(c):
			return "", p.errorf("invalid character %#x in quoted string", c)
		}
		b.WriteByte(c)
		p.i++
	}
	return "", p.errorf("unterminated quoted string")
}

// tchar of RFC 7230.
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// qdtext / quoted-pair characters: HTAB, SP, VCHAR, obs-text.
func isQuotedChar(c byte) bool {
	return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f)
}
