package uma

import (
	"net/http"
	"strings"
)

// MaxAuthorizationBytes bounds the Authorization header value a service
// accepts: far above any token Keycloak or the Claims Provider issues.
const MaxAuthorizationBytes = 16 << 10

// BearerError says why a request carries no usable bearer token (RFC 6750
// section 3.1). Code is the error code for the answer: "" when the request
// has no bearer credentials at all (no Authorization header, or one of
// another scheme: "lacks any authentication information" for the bearer
// scheme, so no error code is sent), ErrInvalidRequest (400) when the
// request is malformed (more than one Authorization header), and
// ErrInvalidToken (401) when the bearer credentials are malformed.
type BearerError struct {
	Code        string
	Description string
}

func (e *BearerError) Error() string { return "bearer token: " + e.Description }

// Missing reports whether the request has no bearer credentials at all.
func (e *BearerError) Missing() bool { return e.Code == "" }

// Status is the HTTP status of the answer: 400 for a malformed request, 401
// otherwise.
func (e *BearerError) Status() int {
	if e.Code == ErrInvalidRequest {
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// BearerToken takes the bearer token from a request's one Authorization
// header (RFC 6750 section 2.1: "Bearer" in any case, one or more spaces,
// a token68). It is the one bearer parser of the services; a refusal is
// always a *BearerError. The header is the only place looked at: a token in
// the form body or the query is never accepted.
func BearerToken(r *http.Request) (token string, err error) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", &BearerError{Description: "no Authorization header"}
	case len(values) > 1:
		return "", &BearerError{Code: ErrInvalidRequest, Description: "more than one Authorization header"}
	}
	v := values[0]
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 section 3.1: credentials of another scheme are no bearer
		// credentials; the answer is the bare challenge, as with none.
		return "", &BearerError{Description: "no bearer credentials in the Authorization header"}
	}
	if len(v) > MaxAuthorizationBytes {
		return "", &BearerError{Code: ErrInvalidToken, Description: "Authorization header too long"}
	}
	token = strings.TrimLeft(rest, " ")
	if !isToken68(token) {
		return "", &BearerError{Code: ErrInvalidToken, Description: "malformed bearer token"}
	}
	return token, nil
}

// isToken68 reports whether s is a token68 (RFC 7235 section 2.1):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && isToken68Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
