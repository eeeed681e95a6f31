// Package rpt verifies, locally, the tokens the Resource Server accepts, all
// issued by the owners' realm: RPTs (seed step 9) and the owner's own access
// token for reading an Incoming.
//
// An RPT is accepted for an owner's Incoming when its signature verifies with
// a key of the realm's JWKS (asymmetric algorithms only), iss is the realm's
// issuer, exp has not passed, aud names this resource server (when
// configured), typ is Bearer, and exactly one of its
// authorization.permissions names the owner's resource id (rsid) with scope
// create. That permission's claims (each an array of one string, as the
// claims-token policy writes them) must then carry, in this order of checks
// (issue 12, whatever road Keycloak took to the RPT):
//
//   - sender_email, sender_iss, sender_sub: the verified sender
//     (else ReasonSenderUnverified);
//   - content_sha256 (64 lower-case hex) and content_length (canonical
//     decimal): the content the grant is for (else ReasonContentUnbound);
//   - incoming_uri: exactly the Incoming URL the request is for (else
//     ReasonIncomingURIMismatch);
//   - grant_id: the grant's id, the key of single use (else
//     ReasonGrantUnbound);
//   - grant_mac: the policy's attestation of all of the above for this
//     resource id (internal/grantmac, keyed with this Resource Server's
//     client secret), so claims that a road skipping the policy copied from
//     the client's pushed claims are refused (else ReasonGrantUnattested).
//
// content_type and file_name stay optional. Such refusals are
// *RefusedError (errors.Is ErrRefused): the token is genuine but does not
// allow storing a message.
package rpt

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/internal/grantmac"
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
	// ErrRefused: a valid RPT with a permission for this Incoming whose
	// claims do not bind a verified sender, one content, this Incoming URL
	// and one grant. Always a *RefusedError.
	ErrRefused = errors.New("rpt: the permission does not allow storing a message")
)

// Reasons of a RefusedError (the Resource Server's error_description).
const (
	ReasonSenderUnverified    = "sender_unverified"
	ReasonContentUnbound      = "content_unbound"
	ReasonIncomingURIMismatch = "incoming_uri_mismatch"
	ReasonGrantUnbound        = "grant_unbound"
	ReasonGrantUnattested     = "grant_unattested"
)

// RefusedError says which part of the invariant a permission lacks.
type RefusedError struct {
	Reason string // one of the Reason constants
	Detail string // for the log, never shown to the caller
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("rpt: permission refused (%s): %s", e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Unwrap() error { return ErrRefused }

func refused(reason, format string, args ...any) error {
	return &RefusedError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Bounds of permission claims copied into a stored message.
const (
	MaxSenderLen      = 320
	MaxContentTypeLen = 255
	MaxFileNameLen    = 255
	MaxPermissions    = 64
	// MaxIncomingURILen is the claims-token policy's bound on incoming_uri.
	MaxIncomingURILen = 2048
	// GrantIDLen: the policy's grant_id is BASE64URL of 16 random bytes.
	GrantIDLen = 22
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
	// GrantMACKey keys grant_mac: this Resource Server's client secret, the
	// key the claims-token policy uses. Required.
	GrantMACKey []byte
}

// Verifier checks RPTs, readers' tokens and the ID tokens of the owner's
// web page.
type Verifier struct {
	rpt, reader *jwtverify.Verifier
	base        jwtverify.Config
	macKey      []byte
}

// New builds a Verifier.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.GrantMACKey) == 0 {
		return nil, errors.New("rpt: a grant_mac key (the client secret) is required")
	}
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
	return &Verifier{rpt: r, reader: reader, base: base, macKey: bytes.Clone(cfg.GrantMACKey)}, nil
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
	Nonce             string `json:"nonce"`
	Authorization     *struct {
		Permissions []Permission `json:"permissions"`
	} `json:"authorization"`
}

// Sender is who the AS says sent the message.
type Sender struct {
	Email, Iss, Sub string
}

// Binding is the content an RPT is bound to: SHA256 and Length always,
// ContentType and FileName where the grant bound them.
type Binding struct {
	SHA256      string // lower-case hex
	Length      int64
	ContentType string // "" when unbound
	FileName    string // "" when unbound
}

// Grant is what a verified RPT allows for one owner's Incoming: one message
// of the bound content from the sender, once per GrantID.
type Grant struct {
	// GrantID is the policy's id of the grant: the single-use key.
	GrantID   string
	JTI       string
	ExpiresAt time.Time
	Sender    Sender
	Content   Binding
}

// Authorize verifies raw as an RPT for the resource resourceID with scope
// create, posted to incomingURL (the Resource Server's canonical URL of
// that Incoming). Errors wrap ErrInvalid, ErrInsufficient or ErrRefused.
func (v *Verifier) Authorize(ctx context.Context, raw, resourceID, incomingURL string) (Grant, error) {
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
	if c.ExpiresAt == nil {
		// jwtverify requires exp; the single-use record lives until it.
		return Grant{}, fmt.Errorf("%w: no exp", ErrInvalid)
	}
	g.ExpiresAt = c.ExpiresAt.Time

	var err error
	g.Sender.Email, err = claimValue(p.Claims, uma.ClaimSenderEmail, MaxSenderLen)
	if err == nil {
		g.Sender.Iss, err = claimValue(p.Claims, uma.ClaimSenderIss, MaxSenderLen)
	}
	if err == nil {
		g.Sender.Sub, err = claimValue(p.Claims, uma.ClaimSenderSub, MaxSenderLen)
	}
	if err == nil && (g.Sender.Email == "" || g.Sender.Iss == "" || g.Sender.Sub == "") {
		err = errors.New("sender_email, sender_iss and sender_sub are required")
	}
	if err != nil {
		return Grant{}, refused(ReasonSenderUnverified, "%v", err)
	}

	sum, err := claimValue(p.Claims, uma.ClaimContentSHA256, 64)
	if err == nil && !lowerHex64(sum) {
		err = fmt.Errorf("content_sha256 %q is not 64 lower-case hex digits", sum)
	}
	var length string
	if err == nil {
		length, err = claimValue(p.Claims, uma.ClaimContentLength, 19)
	}
	if err == nil {
		g.Content.Length, err = canonicalCount(length)
	}
	if err != nil {
		return Grant{}, refused(ReasonContentUnbound, "%v", err)
	}
	g.Content.SHA256 = sum

	uri, err := claimValue(p.Claims, uma.ClaimIncomingURI, MaxIncomingURILen)
	if err == nil && (incomingURL == "" || uri != incomingURL) {
		err = fmt.Errorf("incoming_uri %q, this Incoming is %q", uri, incomingURL)
	}
	if err != nil {
		return Grant{}, refused(ReasonIncomingURIMismatch, "%v", err)
	}

	g.GrantID, err = claimValue(p.Claims, uma.ClaimGrantID, GrantIDLen)
	if err == nil && !grantIDShape(g.GrantID) {
		err = fmt.Errorf("grant_id %q is not %d BASE64URL characters", g.GrantID, GrantIDLen)
	}
	if err != nil {
		return Grant{}, refused(ReasonGrantUnbound, "%v", err)
	}

	// Optional metadata: malformed is an invalid token, as before (the
	// policy drops malformed values, so only a forger sends them).
	g.Content.ContentType, err = optionalValue(p.Claims, uma.ClaimContentType, MaxContentTypeLen)
	if err == nil {
		g.Content.FileName, err = optionalValue(p.Claims, uma.ClaimFileName, MaxFileNameLen)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}

	mac, err := claimValue(p.Claims, grantmac.Claim, 64)
	if err == nil {
		err = grantmac.Verify(v.macKey, p.RSID, map[string]string{
			uma.ClaimGrantID: g.GrantID, uma.ClaimSenderEmail: g.Sender.Email, uma.ClaimSenderIss: g.Sender.Iss,
			uma.ClaimSenderSub: g.Sender.Sub, uma.ClaimContentSHA256: sum, uma.ClaimContentLength: length,
			uma.ClaimIncomingURI: uri, uma.ClaimContentType: g.Content.ContentType, uma.ClaimFileName: g.Content.FileName,
			grantmac.Claim: mac,
		})
	}
	if err != nil {
		return Grant{}, refused(ReasonGrantUnattested, "%v", err)
	}
	return g, nil
}

func lowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// canonicalCount parses a canonical decimal byte count: "0" or digits
// without a leading zero, within int64.
func canonicalCount(s string) (int64, error) {
	bad := s == "" || len(s) > 1 && s[0] == '0' || strings.TrimLeft(s, "0123456789") != ""
	n, err := strconv.ParseInt(s, 10, 64)
	if bad || err != nil || n < 0 {
		return 0, fmt.Errorf("content_length %q is not a canonical byte count", s)
	}
	return n, nil
}

func grantIDShape(s string) bool {
	if len(s) != GrantIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// optionalValue is claimValue where absence is fine ("").
func optionalValue(cl map[string]json.RawMessage, name string, max int) (string, error) {
	if _, ok := cl[name]; !ok {
		return "", nil
	}
	return claimValue(cl, name, max)
}

// claimValue reads a required permission claim: an array of exactly one
// string (Keycloak's form) or a string gives it; absence, anything else, a
// value over max bytes, invalid UTF-8 or control characters is an error.
func claimValue(cl map[string]json.RawMessage, name string, max int) (string, error) {
	raw, ok := cl[name]
	if !ok {
		return "", fmt.Errorf("claim %s is missing", name)
	}
	var s string
	// Keycloak writes arrays: try the form the value starts with (a failed
	// string decoding first cost an error value per claim).
	if raw = bytes.TrimLeft(raw, " \t\r\n"); len(raw) > 0 && raw[0] == '[' {
		var arr []string
		if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 1 {
			return "", fmt.Errorf("claim %s is not one string", name)
		}
		s = arr[0]
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("claim %s is not one string", name)
	}
	if s == "" || len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return "", fmt.Errorf("claim %s is empty, longer than %d bytes or not printable", name, max)
	}
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Reader is the verified identity of someone reading an Incoming.
type Reader struct {
	Subject  string // sub: the user id, which owners are keyed by
	Username string // preferred_username, for the log only
	ClientID string // azp
}

// Reader verifies raw as an access token of the realm (signature, iss, exp,
// typ Bearer) and returns its sub, preferred_username and azp.
func (v *Verifier) Reader(ctx context.Context, raw string) (Reader, error) {
	var c claims
	if err := v.reader.Verify(ctx, raw, &c); err != nil {
		return Reader{}, err
	}
	if !strings.EqualFold(c.Typ, "Bearer") {
		return Reader{}, fmt.Errorf("%w: typ %q, want Bearer", ErrInvalid, c.Typ)
	}
	if c.Subject == "" {
		return Reader{}, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	return Reader{Subject: c.Subject, Username: c.PreferredUsername, ClientID: c.Azp}, nil
}

// ErrNonce: an ID token whose nonce is not the one of the login that asked
// for it (a token injected from another login). Wraps ErrInvalid.
var ErrNonce = fmt.Errorf("%w: nonce does not match the login", ErrInvalid)

// IDToken verifies raw as an OpenID Connect ID token of the realm for the
// public client clientID, from the login that sent nonce (OpenID Connect
// Core 3.1.3.7): signature with a key of the realm, iss, exp, iat, typ ID,
// aud containing clientID, azp (when present) equal to it, a sub, and the
// nonce. It returns the same identity Reader does, ClientID being clientID.
func (v *Verifier) IDToken(ctx context.Context, raw, clientID, nonce string) (Reader, error) {
	if clientID == "" || nonce == "" {
		return Reader{}, errors.New("rpt: IDToken needs a client id and a nonce")
	}
	cfg := v.base
	cfg.Audience = clientID
	jv, err := jwtverify.New(cfg)
	if err != nil {
		return Reader{}, fmt.Errorf("rpt: %w", err)
	}
	var c claims
	if err := jv.Verify(ctx, raw, &c); err != nil {
		return Reader{}, err
	}
	if c.Typ != "ID" {
		return Reader{}, fmt.Errorf("%w: typ %q, want ID", ErrInvalid, c.Typ)
	}
	if c.Azp != "" && c.Azp != clientID {
		return Reader{}, fmt.Errorf("%w: azp %q, want %q", ErrInvalid, c.Azp, clientID)
	}
	if c.Subject == "" {
		return Reader{}, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 {
		return Reader{}, ErrNonce
	}
	return Reader{Subject: c.Subject, Username: c.PreferredUsername, ClientID: clientID}, nil
}
