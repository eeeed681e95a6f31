package uma

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// OAuth 2.0 / UMA 2.0 error codes used across the services.
const (
	ErrInvalidRequest    = "invalid_request"
	ErrInvalidToken      = "invalid_token"
	ErrInsufficientScope = "insufficient_scope"
	ErrRequestDenied     = "request_denied"
	ErrAccessDenied      = "access_denied"
	ErrNotFound          = "not_found"
	ErrTooLarge          = "request_too_large"
	// ErrInsufficientStorage (507): the owner's storage quota would be
	// exceeded (reason storage_quota_exceeded).
	ErrInsufficientStorage = "insufficient_storage"
	ErrUnavailable         = "temporarily_unavailable"
	ErrServerError         = "server_error"
)

// Error is "the other side said no", in the spirit of oauth2.RetrieveError:
// the JSON error body every umawide service answers with
// ({"error": ..., "error_description": ...}) and the error every Go caller
// gets back for a refusal, from a umawide service or from Keycloak (whose
// keycloak.Error wraps one). Find it with errors.As: the RqP client's
// *rqp.StepError yields the answer of the step that failed.
type Error struct {
	// StatusCode is the HTTP status it travels with.
	StatusCode int `json:"-"`
	// Code is the OAuth 2.0 / UMA error code ("access_denied"), or the
	// status text when the body is not the JSON shape.
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Body is the answer's body as read (bounded by the reader), for logs
	// and tests; empty for an Error built to be sent.
	Body string `json:"-"`
	// Method and URL (without query) of the request that got the answer,
	// where the caller keeps them (Keycloak's APIs).
	Method, URL string `json:"-"`
}

// NewError builds an Error.
func NewError(status int, code, format string, args ...any) *Error {
	return &Error{StatusCode: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.URL != "" {
		return fmt.Sprintf("%s %s: %d %.300s", e.Method, e.URL, e.StatusCode, e.Body)
	}
	if e.Description == "" {
		return fmt.Sprintf("%d %s", e.StatusCode, e.Code)
	}
	return fmt.Sprintf("%d %s: %s", e.StatusCode, e.Code, e.Description)
}

// Write sends the error as JSON with its status.
func (e *Error) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.StatusCode)
	_ = json.NewEncoder(w).Encode(e)
}

// ParseError reads an error body of the given status; a body that is not the
// JSON shape still gives an Error carrying the status.
func ParseError(status int, body []byte) *Error {
	e := &Error{StatusCode: status, Body: string(body)}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e.Code = http.StatusText(status)
		if len(body) > 200 {
			body = body[:200]
		}
		e.Description = string(body)
	}
	return e
}
