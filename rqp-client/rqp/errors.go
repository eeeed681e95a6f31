package rqp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/umawide/umawide/internal/uma"
)

// Kind classifies a failure so that a caller can tell the refusals of the
// flow apart without parsing messages.
type Kind int

const (
	// KindConfig: the configuration or the input is unusable (a missing
	// secret, a malformed URL, a file that cannot be read, credentials the
	// server does not accept).
	KindConfig Kind = iota + 1
	// KindUnreachable: a service did not answer (connection refused, DNS,
	// TLS, timeout).
	KindUnreachable
	// KindRefused: a service refused the request (4xx): the Claims Provider
	// does not vouch for the sender, the Resource Server refuses the message.
	KindRefused
	// KindDenied: the owner's authorization server denied the RPT (403 from
	// its token endpoint): its policy does not admit this sender or content.
	KindDenied
	// KindLogin: the interactive login failed, was cancelled or timed out.
	KindLogin
	// KindProtocol: an answer breaks the contract (malformed, unexpected
	// status, a discovery document that does not match).
	KindProtocol
	// KindServer: a service failed (5xx) or said it is unavailable.
	KindServer
)

var kindNames = map[Kind]string{
	KindConfig:      "config",
	KindUnreachable: "unreachable",
	KindRefused:     "refused",
	KindDenied:      "denied",
	KindLogin:       "login",
	KindProtocol:    "protocol",
	KindServer:      "server",
}

// String is the kind's short name (as in the CLI's JSON output).
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Sentinels, one per Kind: errors.Is(err, rqp.ErrDenied) holds for every
// *StepError of KindDenied.
var (
	ErrConfig      = errors.New("rqp: bad configuration")
	ErrUnreachable = errors.New("rqp: service unreachable")
	ErrRefused     = errors.New("rqp: request refused")
	ErrDenied      = errors.New("rqp: denied by the authorization server")
	ErrLogin       = errors.New("rqp: login failed")
	ErrProtocol    = errors.New("rqp: protocol violation")
	ErrServer      = errors.New("rqp: service failure")
)

// ReasonChallengeMismatch is StepError.Reason when the client refused a UMA
// challenge that does not belong to the Incoming it was asked to push to:
// the permission ticket names another Incoming URL (incoming_uri) or none,
// or was issued by another authorization server than the challenge's as_uri.
// A Resource Server that relays another one's challenge gets this, and
// nothing is sent to the Claims Provider or the authorization server.
const ReasonChallengeMismatch = "challenge_mismatch"

// ReasonOwnerRefused and ReasonQuotaExceeded are StepError.Reason when the
// owner's authorization server refused the grant (step 7) by the owner's
// rules, after it had verified the sender, and said so (uma.RefusalHeader):
// the rules refuse this sender, or the sender's quota on this Incoming for
// the UTC day is used up. Their Kind is KindDenied and their Err wraps
// ErrOwnerRefused. A refusal for any other cause (a token found forged,
// say) is never told apart by the AS: it stays a plain denial.
const (
	ReasonOwnerRefused  = uma.RefusalOwnerRefused
	ReasonQuotaExceeded = uma.RefusalQuotaExceeded
)

// ErrOwnerRefused is wrapped by the Err of every StepError with
// ReasonOwnerRefused or ReasonQuotaExceeded.
var ErrOwnerRefused = errors.New("rqp: refused by the owner's rules")

// ErrChallengeMismatch is wrapped by the Err of every StepError with
// ReasonChallengeMismatch (its Kind is KindProtocol).
var ErrChallengeMismatch = errors.New(ReasonChallengeMismatch)

func (k Kind) sentinel() error {
	switch k {
	case KindConfig:
		return ErrConfig
	case KindUnreachable:
		return ErrUnreachable
	case KindRefused:
		return ErrRefused
	case KindDenied:
		return ErrDenied
	case KindLogin:
		return ErrLogin
	case KindProtocol:
		return ErrProtocol
	case KindServer:
		return ErrServer
	}
	return nil
}

// Services, as StepError.Service names them.
const (
	ServiceResourceServer = "resource server"
	ServiceAuthN          = "AuthN server"
	ServiceClaimsProvider = "claims provider"
	ServiceAuthZ          = "authorization server"
	ServiceClient         = "client" // the failure is local (config, input)
)

// StepError is every error Push returns: which step failed, at which
// service, how (Kind), and what the service answered. Use errors.As to get
// it and errors.Is with the Err* sentinels to test the kind. Where a service
// said no, errors.As also finds its answer as the wire's *uma.Error (status,
// code, description and the body as read), as it does for every refusal in
// umawide.
type StepError struct {
	// Step is the step number of docs/PROTOCOL.md (1-10); 0 before the flow starts
	// (configuration, reading the content).
	Step int
	// Name is the step's name (StepName).
	Name string
	// Service that failed or refused.
	Service string
	// Kind of failure.
	Kind Kind
	// URL asked, without query (empty for local failures).
	URL string
	// StatusCode of the HTTP answer (0 when there was none).
	StatusCode int
	// Code and Description: the OAuth/UMA error of the answer's JSON body
	// ("access_denied", "not_authorized"), where it had one.
	Code        string
	Description string
	// Reason is the client's own reason for refusing an answer, where it
	// has one: ReasonChallengeMismatch.
	Reason string
	// Owner and Sender, where the owner's rules refused the push
	// (ReasonOwnerRefused, ReasonQuotaExceeded): the Incoming's owner (the
	// last segment of its URL) and the sender's address as the claims token
	// names it.
	Owner, Sender string
	// Attempt is 1, or 2 when the flow had started over with a fresh ticket.
	Attempt int
	// Err is the underlying cause, if any.
	Err error

	// retry marks an answer that asks for a fresh permission ticket.
	retry bool
	// answer is the service's refusal (StatusCode, Code and Description
	// are copied from it), found by errors.As.
	answer *uma.Error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Step > 0 {
		fmt.Fprintf(&b, "step %d (%s): ", e.Step, e.Name)
	}
	if plain := e.ownerRefusal(); plain != "" {
		// Said plainly: the owner decided, nothing is wrong with the sender's tokens.
		b.WriteString(plain)
		return b.String()
	}
	b.WriteString(e.summary())
	if e.StatusCode != 0 || e.Code != "" {
		b.WriteString(":")
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, " %d", e.StatusCode)
		}
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Description != "" {
			fmt.Fprintf(&b, ": %s", e.Description)
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// ownerRefusal is the sentence for a refusal by the owner's rules, "" for
// any other error.
func (e *StepError) ownerRefusal() string {
	owner := e.Owner
	if owner == "" {
		owner = "the owner"
	} else {
		owner = strings.ToUpper(owner[:1]) + owner[1:]
	}
	sender := e.Sender
	if sender == "" {
		sender = "this sender"
	}
	switch e.Reason {
	case ReasonOwnerRefused:
		return fmt.Sprintf("%s's rules refuse pushes from %s (%s)", owner, sender, e.Reason)
	case ReasonQuotaExceeded:
		return fmt.Sprintf("%s's rules refuse more pushes from %s today: the daily quota is used up until 00:00 UTC (%s)", owner, sender, e.Reason)
	}
	return ""
}

func (e *StepError) summary() string {
	svc := e.Service
	if svc == "" {
		svc = "service"
	}
	where := svc
	if e.URL != "" {
		where = svc + " at " + e.URL
	}
	switch e.Kind {
	case KindConfig:
		if e.URL != "" {
			return "bad configuration for the " + where
		}
		return "bad configuration"
	case KindUnreachable:
		return "the " + where + " is unreachable"
	case KindRefused:
		return "refused by the " + where
	case KindDenied:
		return "denied by the " + where
	case KindLogin:
		return "login at the " + where + " failed"
	case KindProtocol:
		return "unexpected answer from the " + where
	case KindServer:
		return "the " + where + " failed"
	}
	return "failed at the " + where
}

// Unwrap gives the cause.
func (e *StepError) Unwrap() error { return e.Err }

// As sets a **uma.Error target to the service's answer, where a service
// said no.
func (e *StepError) As(target any) bool {
	if p, ok := target.(**uma.Error); ok && e.answer != nil {
		*p = e.answer
		return true
	}
	return false
}

// Is matches the sentinel of the error's Kind.
func (e *StepError) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// Retryable reports whether the answer asked for a fresh permission ticket
// (Push has started over once for it already when it returns such an error).
func (e *StepError) Retryable() bool { return e.retry }

// configError is a KindConfig StepError before the flow starts.
func configError(format string, args ...any) *StepError {
	return &StepError{Service: ServiceClient, Kind: KindConfig, Err: fmt.Errorf(format, args...)}
}
