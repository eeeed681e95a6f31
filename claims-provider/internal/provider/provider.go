// Package provider decides a claims-token request (docs/PROTOCOL.md step 5,
// and the user lookup of 6.3-6.4): who
// may ask for whose claims, which fields are acceptable, and what each
// refusal answers. It knows no HTTP framework: the server turns a Refusal
// into the JSON error body and status.
//
// Decisions, in order:
//
//  1. The caller's access token verifies (package caller), else 401
//     invalid_token (503 when the realm's keys cannot be fetched).
//  2. The form fields are well-formed, else 400 invalid_request.
//  3. A user token: the email is the token's; an email field that differs is
//     403 access_denied; a token without email is 403 insufficient_scope.
//     A client token: the client (azp) must be on the on-behalf allow list,
//     else 403 insufficient_scope; the email field is required, else 400.
//  4. The email's domain must be one this provider speaks for, else 403
//     access_denied.
//  5. Keycloak holds exactly one enabled person with this email, and for a
//     user token that person is the token's subject; otherwise 403
//     access_denied with one description for every case (unknown, disabled,
//     ambiguous, another person): the caller learns no more than "no".
//     Keycloak unreachable: 503 temporarily_unavailable.
//  6. The claims token is signed with the user's claims as Keycloak holds them.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/claims-provider/internal/users"
	"github.com/umawide/umawide/internal/uma"
)

// Bounds of the form fields.
const (
	MaxAudienceLength = 1024
	MaxEmailLength    = users.MaxEmailLength
	maxLocalPart      = 64
)

// Reasons label refusals in logs and metrics; the set is fixed.
const (
	ReasonMissingToken        = "missing_token"
	ReasonInvalidToken        = "invalid_token"
	ReasonKeysUnavailable     = "authn_keys_unavailable"
	ReasonBadRequest          = "invalid_request"
	ReasonBodyTooLarge        = "body_too_large"
	ReasonEmailRequired       = "email_required"
	ReasonEmailMismatch       = "email_mismatch"
	ReasonTokenWithoutEmail   = "token_without_email"
	ReasonClientNotAllowed    = "client_not_allowed"
	ReasonDomainNotServed     = "email_domain_not_served"
	ReasonUserUnknown         = "user_unknown"
	ReasonUserDisabled        = "user_disabled"
	ReasonUserAmbiguous       = "user_ambiguous"
	ReasonUserNotSubject      = "user_not_token_subject"
	ReasonKeycloakUnavailable = "keycloak_unavailable"
	ReasonInternal            = "internal_error"
)

// Reasons lists every reason, for metrics initialisation.
var Reasons = []string{
	ReasonMissingToken, ReasonInvalidToken, ReasonKeysUnavailable, ReasonBadRequest,
	ReasonBodyTooLarge, ReasonEmailRequired, ReasonEmailMismatch, ReasonTokenWithoutEmail,
	ReasonClientNotAllowed, ReasonDomainNotServed, ReasonUserUnknown, ReasonUserDisabled,
	ReasonUserAmbiguous, ReasonUserNotSubject, ReasonKeycloakUnavailable, ReasonInternal,
}

// Refusal is a refused request: what the caller is told (Status, Code,
// Description), why in the logs and metrics (Reason, Err).
type Refusal struct {
	Status      int
	Code        string
	Description string
	Reason      string
	// Err is the internal cause: logged, never sent.
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("%d %s (%s): %v", r.Status, r.Code, r.Reason, r.Err)
	}
	return fmt.Sprintf("%d %s (%s): %s", r.Status, r.Code, r.Reason, r.Description)
}

func (r *Refusal) Unwrap() error { return r.Err }

// UMA is the JSON error body.
func (r *Refusal) UMA() *uma.Error {
	return &uma.Error{StatusCode: r.Status, Code: r.Code, Description: r.Description}
}

func refuse(status int, code, reason, desc string, cause error) *Refusal {
	return &Refusal{Status: status, Code: code, Description: desc, Reason: reason, Err: cause}
}

// BadRequest is a 400 invalid_request.
func BadRequest(desc string) *Refusal {
	return refuse(http.StatusBadRequest, uma.ErrInvalidRequest, ReasonBadRequest, desc, nil)
}

// The description of every "no such person" refusal: one text for all cases.
const noSuchUser = "no single enabled user with this email"

// Request is a validated claims-token request.
type Request struct {
	TicketDigest string
	Audience     string
	// Email as given (lower-cased), "" when absent.
	Email string
}

// ParseForm validates the form fields: each at most once, ticket_digest 43
// BASE64URL characters, audience an absolute http(s) URL without user info,
// query or fragment, email (optional here) an address of bounded length.
// Other fields are ignored (RFC 6749 section 3.1), except access_token: a
// token in the body besides the header is refused (RFC 6750 section 2).
func ParseForm(form url.Values) (Request, *Refusal) {
	if _, ok := form["access_token"]; ok {
		return Request{}, BadRequest("send the access token in the Authorization header only")
	}
	get := func(name string) (string, *Refusal) {
		v := form[name]
		if len(v) > 1 {
			return "", BadRequest(name + " given more than once")
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	var r Request
	var bad *Refusal
	if r.TicketDigest, bad = get(uma.FormTicketDigest); bad != nil {
		return Request{}, bad
	}
	if r.Audience, bad = get(uma.FormAudience); bad != nil {
		return Request{}, bad
	}
	if r.Email, bad = get(uma.FormEmail); bad != nil {
		return Request{}, bad
	}
	switch {
	case r.TicketDigest == "":
		return Request{}, BadRequest("ticket_digest is required")
	case !uma.ValidTicketDigest(r.TicketDigest):
		return Request{}, BadRequest("ticket_digest must be BASE64URL(SHA-256(ticket)): 43 characters")
	case r.Audience == "":
		return Request{}, BadRequest("audience is required: the as_uri of the UMA challenge")
	}
	if err := ValidAudience(r.Audience); err != nil {
		return Request{}, BadRequest("audience: " + err.Error())
	}
	if r.Email != "" {
		if err := ValidEmail(r.Email); err != nil {
			return Request{}, BadRequest("email: " + err.Error())
		}
		r.Email = strings.ToLower(r.Email)
	}
	return r, nil
}

// ValidAudience accepts an absolute http or https URL with a host, no user
// info, query or fragment, printable ASCII only, at most MaxAudienceLength.
func ValidAudience(s string) error {
	if len(s) > MaxAudienceLength {
		return fmt.Errorf("longer than %d characters", MaxAudienceLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return errors.New("only printable ASCII without spaces")
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("not an http or https URL")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return errors.New("not an absolute URL with a host")
	case u.User != nil:
		return errors.New("user info not allowed")
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "?"):
		return errors.New("query not allowed")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("fragment not allowed")
	}
	return nil
}

// ValidEmail accepts local@domain in printable ASCII without spaces, quotes
// or brackets, local part at most 64 and the whole at most 254 characters.
func ValidEmail(s string) error {
	if len(s) > MaxEmailLength {
		return fmt.Errorf("longer than %d characters", MaxEmailLength)
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 || at > maxLocalPart {
		return errors.New("not an email address")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`"(),:;<>[\]`, c) >= 0 {
			return errors.New("not an email address")
		}
	}
	domain := s[at+1:]
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return errors.New("not an email address")
	}
	return nil
}

// Domain is the lower-cased domain part of a valid address.
func Domain(email string) string {
	return strings.ToLower(email[strings.LastIndexByte(email, '@')+1:])
}

// Authenticator authenticates bearer tokens (package caller).
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (caller.Caller, error)
}

// Directory finds people (package users).
type Directory interface {
	ByEmail(ctx context.Context, email string) (users.User, error)
}

// Config of a Provider.
type Config struct {
	// OnBehalfClients may ask with their own (client-credentials) token.
	OnBehalfClients []string
	// Domains this provider speaks for (lower case).
	Domains []string
}

// Provider decides claims-token requests.
type Provider struct {
	auth     Authenticator
	dir      Directory
	iss      *issuer.Issuer
	onBehalf []string
	domains  []string
}

// New makes a Provider.
func New(auth Authenticator, dir Directory, iss *issuer.Issuer, cfg Config) (*Provider, error) {
	if auth == nil || dir == nil || iss == nil {
		return nil, errors.New("provider: authenticator, directory and issuer are required")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("provider: at least one email domain is required")
	}
	p := &Provider{auth: auth, dir: dir, iss: iss}
	for _, d := range cfg.Domains {
		p.domains = append(p.domains, strings.ToLower(d))
	}
	p.onBehalf = slices.Clone(cfg.OnBehalfClients)
	return p, nil
}

// Domains are the email domains this provider speaks for.
func (p *Provider) Domains() []string { return slices.Clone(p.domains) }

// Authenticate verifies the bearer token (already taken from the header).
func (p *Provider) Authenticate(ctx context.Context, raw string) (caller.Caller, *Refusal) {
	c, err := p.auth.Authenticate(ctx, raw)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, caller.ErrUnavailable):
		return caller.Caller{}, refuse(http.StatusServiceUnavailable, uma.ErrUnavailable, ReasonKeysUnavailable,
			"the AuthN server's keys cannot be fetched; try again later", err)
	default:
		return caller.Caller{}, refuse(http.StatusUnauthorized, uma.ErrInvalidToken, ReasonInvalidToken,
			"the access token is invalid, expired or not meant for the Claims Provider", err)
	}
}

// Issue decides a validated request of an authenticated caller and mints the
// claims token.
func (p *Provider) Issue(ctx context.Context, c caller.Caller, r Request) (*issuer.Token, users.User, *Refusal) {
	var email string
	switch c.Kind {
	case caller.User:
		if c.Email == "" {
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrInsufficientScope, ReasonTokenWithoutEmail,
				"the access token carries no email (request scope email)", nil)
		}
		if r.Email != "" && r.Email != c.Email {
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonEmailMismatch,
				"email differs from the access token's: a user may only ask for their own claims", nil)
		}
		email = c.Email
	case caller.Client:
		if !slices.Contains(p.onBehalf, c.ClientID) {
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrInsufficientScope, ReasonClientNotAllowed,
				"this client may not ask for claims on a user's behalf", fmt.Errorf("client %q", c.ClientID))
		}
		if r.Email == "" {
			return nil, users.User{}, refuse(http.StatusBadRequest, uma.ErrInvalidRequest, ReasonEmailRequired,
				"email is required with a client's own token", nil)
		}
		email = r.Email
	default:
		return nil, users.User{}, refuse(http.StatusUnauthorized, uma.ErrInvalidToken, ReasonInvalidToken,
			"the access token is invalid", fmt.Errorf("caller kind %v", c.Kind))
	}
	if ValidEmail(email) != nil || !slices.Contains(p.domains, Domain(email)) {
		return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonDomainNotServed,
			"this Claims Provider does not speak for this email domain", fmt.Errorf("email %q", email))
	}

	u, err := p.dir.ByEmail(ctx, email)
	if err != nil {
		switch {
		case errors.Is(err, users.ErrUnavailable):
			return nil, users.User{}, refuse(http.StatusServiceUnavailable, uma.ErrUnavailable, ReasonKeycloakUnavailable,
				"the user directory is unavailable; try again later", err)
		case errors.Is(err, users.ErrDisabled):
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonUserDisabled, noSuchUser, err)
		case errors.Is(err, users.ErrAmbiguous):
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonUserAmbiguous, noSuchUser, err)
		case errors.Is(err, users.ErrNotFound):
			return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonUserUnknown, noSuchUser, err)
		default:
			return nil, users.User{}, refuse(http.StatusInternalServerError, uma.ErrServerError, ReasonInternal, "internal error", err)
		}
	}
	if c.Kind == caller.User && u.ID != c.Subject {
		return nil, users.User{}, refuse(http.StatusForbidden, uma.ErrAccessDenied, ReasonUserNotSubject, noSuchUser,
			fmt.Errorf("token subject %q, Keycloak's user with this email is %q", c.Subject, u.ID))
	}

	tok, err := p.iss.Issue(issuer.Request{
		User: issuer.User{
			ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified,
			FirstName: u.FirstName, LastName: u.LastName,
		},
		TicketDigest: r.TicketDigest,
		Audience:     r.Audience,
	})
	if err != nil {
		return nil, users.User{}, refuse(http.StatusInternalServerError, uma.ErrServerError, ReasonInternal, "internal error", err)
	}
	return tok, u, nil
}
