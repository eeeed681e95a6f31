// Package rpt verifies, locally, the tokens the Resource Server accepts, all
// issued by the owners' realm: RPTs (seed step 9) and the owner's own access
// token for reading an Incoming.
//
// An RPT is accepted for an owner's Incoming when its signature verifies with
// a key of the realm's JWKS (asymmetric algorithms only), iss is the realm's
// issuer, exp has not passed, aud names this resource server (when
// configured), typ is Bearer, and exactly one of its
// authorization.permissions names the owner's resource id (rsid) with scope
// create. That permission's claims give the sender (sender_email, sender_iss,
// sender_sub) and an optional content binding (content_sha256,
// content_length, content_type, file_name), each an array of one string.
package rpt

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/uma"
)

var (
	// ErrInvalid: the token is not a valid token of the realm (signature,
	// iss, exp, alg, typ, malformed claims). Wraps jwtverify.ErrInvalidToken.
	ErrInvalid = jwtverify.ErrInvalidToken
	// ErrInsufficient: a valid RPT without a permission for this resource and
	// scope create.
	ErrInsufficient = errors.New("rpt: no permission for this Incoming with scope create")
)

// Bounds of permission claims copied into a stored message.
const (
	MaxSenderLen      = 320
	MaxContentTypeLen = 255
	MaxFileNameLen    = 255
	MaxPermissions    = 64
)

// Config of a Verifier.
type Config struct {
	// Issuer of the realm as it appears in tokens (and in as_uri).
	Issuer string
	// Audience an RPT's aud must contain (the resource server's client id);
	// empty skips the check.
	Audience string
	// Keys: the realm's JWKS (jwtverify.NewRemoteKeySet).
	Keys jwtverify.KeySource
	// Algorithms allowed; default jwtverify.DefaultAlgorithms.
	Algorithms []string
	// Leeway for exp/iat/nbf; default jwtverify's.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks RPTs and readers' tokens.
type Verifier struct {
	rpt, reader *jwtverify.Verifier
}

// New builds a Verifier.
func New(cfg Config) (*Verifier, error) {
	base := jwtverify.Config{Issuer: cfg.Issuer, Algorithms: cfg.Algorithms, Leeway: cfg.Leeway, Keys: cfg.Keys, Now: cfg.Now}
	reader, err := jwtverify.New(base)
	if err != nil {
		return nil, fmt.Errorf("rpt: %w", err)
	}
	withAud := base
	withAud.Audience = cfg.Audience
	r, err := jwtverify.New(withAud)
	if err != nil {
		return nil, fmt.Errorf("rpt: %w", err)
	}
	return &Verifier{rpt: r, reader: reader}, nil
}

// Permission is one entry of an RPT's authorization.permissions.
type Permission struct {
	RSID   string                     `json:"rsid"`
	RSName string                     `json:"rsname"`
	Scopes []string                   `json:"scopes"`
	Claims map[string]json.RawMessage `json:"claims"`
}

type claims struct {
	jwt.RegisteredClaims
	Typ               string `json:"typ"`
	Azp               string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
	Authorization     *struct {
		Permissions []Permission `json:"permissions"`
	} `json:"authorization"`
}

// Sender is who the AS says sent the message.
type Sender struct {
	Email, Iss, Sub string
}

// Binding is the content an RPT is bound to; a zero-value field is unbound.
type Binding struct {
	SHA256      string // lower-case hex; "" when unbound
	Length      int64  // -1 when unbound
	ContentType string // "" when unbound
	FileName    string // "" when unbound
}

// Bound says whether the RPT is bound to one content (and so single-use).
func (b Binding) Bound() bool { return b.SHA256 != "" || b.Length >= 0 }

// Grant is what a verified RPT allows for one owner's Incoming.
type Grant struct {
	JTI       string
	ExpiresAt time.Time
	Sender    Sender
	Content   Binding
}

// Authorize verifies raw as an RPT for the resource resourceID with scope
// create. Errors wrap ErrInvalid or ErrInsufficient.
func (v *Verifier) Authorize(ctx context.Context, raw, resourceID string) (Grant, error) {
	var c claims
	if err := v.rpt.Verify(ctx, raw, &c); err != nil {
		return Grant{}, err
	}
	if !strings.EqualFold(c.Typ, "Bearer") {
		return Grant{}, fmt.Errorf("%w: typ %q, want Bearer", ErrInvalid, c.Typ)
	}
	if c.Authorization == nil {
		return Grant{}, fmt.Errorf("%w: token carries no UMA authorization", ErrInsufficient)
	}
	if len(c.Authorization.Permissions) > MaxPermissions {
		return Grant{}, fmt.Errorf("%w: %d permissions", ErrInvalid, len(c.Authorization.Permissions))
	}
	var match []Permission
	for _, p := range c.Authorization.Permissions {
		if p.RSID == resourceID && slices.Contains(p.Scopes, uma.ScopeCreate) {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		return Grant{}, ErrInsufficient
	case 1:
	default:
		return Grant{}, fmt.Errorf("%w: %d permissions for the resource", ErrInsufficient, len(match))
	}
	p := match[0]
	g := Grant{JTI: c.ID}
	if c.ExpiresAt != nil {
		g.ExpiresAt = c.ExpiresAt.Time
	}
	var err error
	text := func(name string, max int) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = claimValue(p.Claims, name, max)
		return s
	}
	g.Sender = Sender{
		Email: text(uma.ClaimSenderEmail, MaxSenderLen),
		Iss:   text(uma.ClaimSenderIss, MaxSenderLen),
		Sub:   text(uma.ClaimSenderSub, MaxSenderLen),
	}
	sum := text(uma.ClaimContentSHA256, 64)
	length := text(uma.ClaimContentLength, 19)
	g.Content.ContentType = text(uma.ClaimContentType, MaxContentTypeLen)
	g.Content.FileName = text(uma.ClaimFileName, MaxFileNameLen)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	g.Content.Length = -1
	if sum != "" {
		if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
			return Grant{}, fmt.Errorf("%w: content_sha256 is not 64 hex digits", ErrInvalid)
		}
		g.Content.SHA256 = strings.ToLower(sum)
	}
	if length != "" {
		n, err := strconv.ParseInt(length, 10, 64)
		if err != nil || n < 0 || strings.TrimLeft(length, "0123456789") != "" {
			return Grant{}, fmt.Errorf("%w: content_length %q is not a byte count", ErrInvalid, length)
		}
		g.Content.Length = n
	}
	if g.Content.Bound() && (g.JTI == "" || g.ExpiresAt.IsZero()) {
		return Grant{}, fmt.Errorf("%w: a content-bound RPT needs jti and exp to be single-use", ErrInvalid)
	}
	return g, nil
}

// claimValue reads a permission claim: absent gives "", an array of exactly
// one string (Keycloak's form) or a string gives it; anything else, a value
// over max bytes, invalid UTF-8 or control characters is an error.
func claimValue(cl map[string]json.RawMessage, name string, max int) (string, error) {
	raw, ok := cl[name]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var arr []string
		if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 1 {
			return "", fmt.Errorf("claim %s is not one string", name)
		}
		s = arr[0]
	}
	if s == "" || len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return "", fmt.Errorf("claim %s is empty, longer than %d bytes or not printable", name, max)
	}
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Reader is the verified identity of someone reading an Incoming.
type Reader struct {
	Username string // preferred_username
	ClientID string // azp
}

// Reader verifies raw as an access token of the realm (signature, iss, exp,
// typ Bearer) and returns its preferred_username and azp.
func (v *Verifier) Reader(ctx context.Context, raw string) (Reader, error) {
	var c claims
	if err := v.reader.Verify(ctx, raw, &c); err != nil {
		return Reader{}, err
	}
	if !strings.EqualFold(c.Typ, "Bearer") {
		return Reader{}, fmt.Errorf("%w: typ %q, want Bearer", ErrInvalid, c.Typ)
	}
	if c.PreferredUsername == "" {
		return Reader{}, fmt.Errorf("%w: no preferred_username", ErrInvalid)
	}
	return Reader{Username: c.PreferredUsername, ClientID: c.Azp}, nil
}
