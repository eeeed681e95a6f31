// Package keycloak is how umawide's Go code talks to Keycloak's HTTP APIs:
// one small package per API, all on the one request helper of this package.
//
//   - token: the OpenID Connect token endpoint (client credentials for the
//     services' own tokens, the password grant of the launcher's admin login,
//     the code flow and the uma-ticket grant of the tests).
//   - admin: the admin REST API (the user look-ups of the Claims Provider and
//     the Resource Server, realm import and delete for the launcher and the
//     tests).
//   - protection: the UMA protection API (resource registration, resource
//     look-up and permission tickets, for the Resource Server and the tests).
//
// Why by hand and not a client library such as gocloak (which the Claims
// Provider once used for its one user query while everything else was
// written by hand): the services use a handful of Keycloak's endpoints and
// must control what a library hides: every answer bounded in size, the HTTP
// client the service chooses (kept connections, timeouts, no redirects where
// it wants none), a refused bearer token renewed once and only once (401 on
// the admin API, 403 invalid_bearer_token on the protection API), a refusal
// that carries its status and body for logs and tests. A library covering
// hundreds of endpoints brings a second HTTP stack (resty), its own error
// type and a pointer for every field. Here each call is a few lines on Do,
// and the three APIs fail alike: *Error for a refusal, ErrUnreachable for no
// answer.
package keycloak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/uma"
)

// ErrUnreachable wraps the failures that are Keycloak's, not the caller's:
// no answer (transport error, timeout), an answer that cannot be read, or a
// server error (5xx, then with the *Error).
var ErrUnreachable = errors.New("keycloak: unreachable")

// ErrResponseTooLarge is an answer longer than the call's bound.
var ErrResponseTooLarge = errors.New("keycloak: response too large")

// Error is an answer of Keycloak with another status than the one expected:
// the wire's one refusal type, uma.Error, with the request's Method and URL
// (without query), Code and Description (the OAuth 2.0 "error" and
// "error_description" where the body has them) and Body, the whole answer as
// bounded by the call. errors.As finds it as *keycloak.Error and as
// *uma.Error alike.
type Error = uma.Error

// TokenSource hands out the bearer token of a call (tokensource.Cache
// satisfies it); Invalidate drops a token Keycloak refused.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// HTTP is how the client of one of Keycloak's APIs sends its calls.
type HTTP struct {
	// Client; default http.DefaultClient.
	Client *http.Client
	// MaxResponse bounds an answer; default DefaultMaxResponse.
	MaxResponse int64
}

// DefaultMaxResponse bounds an answer when a call sets no bound: 1 MiB.
const DefaultMaxResponse = 1 << 20

// Call is one request to Keycloak.
type Call struct {
	Method, URL string
	// Form is sent as application/x-www-form-urlencoded; JSON (if Form is
	// nil) as application/json; neither: no body.
	Form url.Values
	JSON any
	// BasicUser and BasicPassword, when BasicUser is set, authenticate the
	// client with HTTP basic (RFC 6749 2.3.1: both form-urlencoded first).
	BasicUser, BasicPassword string
	// Bearer, when set, authorizes the call. When Keycloak refuses the token
	// (Refused), it is invalidated and the call sent once more.
	Bearer TokenSource
	// Refused says the answer refuses the bearer token itself; default: 401.
	Refused func(status int, body []byte) bool
	// Want is the expected status; 0 accepts any 2xx.
	Want int
	// Out, when set, receives the JSON answer.
	Out any
	// Max bounds the answer; default DefaultMaxResponse.
	Max int64
}

// Do sends c with hc (http.DefaultClient when nil). A status other than the
// expected one is an *Error (wrapped in ErrUnreachable for 5xx); no answer
// is wrapped in ErrUnreachable.
func Do(ctx context.Context, hc *http.Client, c Call) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	if c.Max <= 0 {
		c.Max = DefaultMaxResponse
	}
	if c.Refused == nil {
		c.Refused = func(status int, _ []byte) bool { return status == http.StatusUnauthorized }
	}
	var payload []byte
	contentType := ""
	switch {
	case c.Form != nil:
		payload, contentType = []byte(c.Form.Encode()), "application/x-www-form-urlencoded"
	case c.JSON != nil:
		data, err := json.Marshal(c.JSON)
		if err != nil {
			return err
		}
		payload, contentType = data, "application/json"
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if contentType != "" {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, body)
		if err != nil {
			return err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Accept", "application/json")
		if c.BasicUser != "" {
			req.SetBasicAuth(url.QueryEscape(c.BasicUser), url.QueryEscape(c.BasicPassword))
		}
		if c.Bearer != nil {
			tok, err := c.Bearer.Token(ctx)
			if err != nil {
				return fmt.Errorf("bearer token: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		data, err := httpclient.ReadBody(resp, c.Max+1)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%w: reading the answer: %w", ErrUnreachable, err)
		}
		if int64(len(data)) > c.Max {
			return fmt.Errorf("%w: %s %s: more than %d bytes", ErrResponseTooLarge, c.Method, redacted(req.URL), c.Max)
		}
		ok := resp.StatusCode == c.Want || (c.Want == 0 && resp.StatusCode/100 == 2)
		if !ok {
			if c.Bearer != nil && attempt == 0 && c.Refused(resp.StatusCode, data) {
				c.Bearer.Invalidate()
				continue
			}
			e := &Error{Method: c.Method, URL: redacted(req.URL), StatusCode: resp.StatusCode, Body: string(data)}
			var oauth uma.Error // its JSON is the OAuth 2.0 error body
			if json.Unmarshal(data, &oauth) == nil {
				e.Code, e.Description = oauth.Code, oauth.Description
			}
			if resp.StatusCode >= 500 {
				return fmt.Errorf("%w: %w", ErrUnreachable, e)
			}
			return e
		}
		if c.Out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, c.Out); err != nil {
				return fmt.Errorf("%s %s: decoding the answer: %w", c.Method, redacted(req.URL), err)
			}
		}
		return nil
	}
}

// redacted is u without its query (which may carry an email address).
func redacted(u *url.URL) string {
	v := *u
	v.RawQuery = ""
	return strings.TrimSuffix(v.String(), "?")
}

// StaticToken is a bearer token that is never renewed (a test's, or a
// one-off call's): Invalidate does nothing, so a refused call is sent once
// more with the same token and then reported.
type StaticToken string

// Token returns the token.
func (s StaticToken) Token(context.Context) (string, error) { return string(s), nil }

// Invalidate does nothing.
func (StaticToken) Invalidate() {}
