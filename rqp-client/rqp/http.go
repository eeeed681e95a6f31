package rqp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/uma"
)

// Bounds of what the client reads from a service.
const (
	maxJSONBytes      = 1 << 20  // token and claims answers, receipts
	maxDiscoveryBytes = 64 << 10 // discovery documents
	maxErrorBytes     = 64 << 10 // error bodies
	maxTokenBytes     = 64 << 10 // one token
)

// DefaultHTTPClient returns a new client as New uses it when
// Config.HTTPClient is nil: Expect: 100-continue honoured (with any client,
// the content is held back until the server asks for it or answers, see
// continuePatience; ExpectContinueTimeout only starts that wait), bounded dial, TLS
// and header waits (whole requests are bounded by contexts); New turns
// redirects off on its copy (a token or the data must never follow a
// redirect to somewhere else). Start from it to change the transport.
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = 2 * time.Second
	t.ResponseHeaderTimeout = 2 * time.Minute
	t.MaxResponseHeaderBytes = 64 << 10
	// Concurrent pushes on one Client keep their connections: Go's default
	// keeps 2 idle ones per host and closes the rest after each exchange.
	t.MaxIdleConnsPerHost = httpclient.MaxIdleConnsPerHost
	t.MaxIdleConns = 4 * httpclient.MaxIdleConnsPerHost
	return &http.Client{Transport: t}
}

// noRedirects copies hc with redirects turned off.
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var errAnswerTooLong = errors.New("answer too long")

// readLimited reads at most max bytes; more is an error.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	return limited(data, err, max)
}

// readAnswer is readLimited for an answer's body, in one buffer when its
// length is announced (httpclient.ReadBody).
func readAnswer(resp *http.Response, max int64) ([]byte, error) {
	data, err := httpclient.ReadBody(resp, max+1)
	return limited(data, err, max)
}

func limited(data []byte, err error, max int64) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", errAnswerTooLong, max)
	}
	return data, nil
}

// checkURL accepts an absolute http(s) URL with a host, without user info or
// fragment; plain http only for loopback hosts unless insecure is set.
func checkURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%q has user info or a fragment", raw)
	}
	if u.Scheme == "http" && !insecure && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%q uses plain http for a host that is not loopback (https required)", raw)
	}
	return u, nil
}

// IsLoopback reports whether host (no port) is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact drops query and fragment from a URL for messages.
func redact(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// exchange is one HTTP request of a step with its own timeout; the answer's
// body is read (bounded) and closed.
type answer struct {
	resp     *http.Response
	body     []byte
	duration time.Duration
}

func (c *Client) do(ctx context.Context, step int, service string, req *http.Request, timeout time.Duration, maxBody int64) (*answer, *StepError) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, answered := gateBody(ctx, req)
	defer answered() // after the answer's body is read (deferred below)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &StepError{Step: step, Name: StepName(step), Service: service, Kind: KindUnreachable,
			URL: redact(req.URL.String()), Err: transportCause(err), Attempt: attemptOf(ctx)}
	}
	defer resp.Body.Close()
	limit := maxBody
	if resp.StatusCode/100 != 2 {
		limit = maxErrorBytes
	}
	body, err := readAnswer(resp, limit)
	d := time.Since(start)
	if err != nil {
		kind := KindUnreachable
		if errors.Is(err, errAnswerTooLong) {
			kind = KindProtocol
		}
		return nil, &StepError{Step: step, Name: StepName(step), Service: service, Kind: kind,
			URL: redact(req.URL.String()), StatusCode: resp.StatusCode, Err: transportCause(err), Attempt: attemptOf(ctx)}
	}
	return &answer{resp: resp, body: body, duration: d}, nil
}

// transportCause shortens url.Error ("Post \"http://...\": dial tcp ...") to
// its cause: the URL is in the StepError already.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError classifies a non-success answer: the JSON error body's code
// and description, 5xx and "temporarily_unavailable" as KindServer,
// "invalid_client" as KindConfig, other 4xx as KindRefused, the rest as
// KindProtocol.
func statusError(ctx context.Context, step int, service string, req *http.Request, a *answer) *StepError {
	e := &StepError{Step: step, Name: StepName(step), Service: service, URL: redact(req.URL.String()),
		StatusCode: a.resp.StatusCode, Attempt: attemptOf(ctx)}
	if pe := uma.ParseError(a.resp.StatusCode, a.body); pe != nil {
		if a.resp.StatusCode >= 400 {
			e.answer = pe
		}
		if json.Valid(a.body) && pe.Code != http.StatusText(a.resp.StatusCode) {
			e.Code, e.Description = clip(pe.Code, 100), clip(pe.Description, 300)
		} else if len(a.body) > 0 {
			e.Description = clip(strings.TrimSpace(string(a.body)), 200)
		}
	}
	switch s := a.resp.StatusCode; {
	case e.Code == uma.ErrUnavailable || s >= 500:
		e.Kind = KindServer
	case e.Code == "invalid_client" || e.Code == "unauthorized_client":
		e.Kind = KindConfig
	case s >= 400:
		e.Kind = KindRefused
	default:
		e.Kind = KindProtocol
		if e.Description == "" {
			e.Description = "unexpected status " + a.resp.Status
		}
	}
	return e
}

// clip bounds a string from a service before it reaches a message and
// removes control characters (a terminal is on the other side).
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		cut := n
		for cut > 0 && (s[cut]&0xc0) == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func protocolError(ctx context.Context, step int, service, u string, status int, format string, args ...any) *StepError {
	return &StepError{Step: step, Name: StepName(step), Service: service, Kind: KindProtocol, URL: redact(u),
		StatusCode: status, Err: fmt.Errorf(format, args...), Attempt: attemptOf(ctx)}
}

// flowInfo is what the steps of one attempt of a push share through its
// context: the attempt's number, the push's progress callback and where the
// steps' times add up.
type flowInfo struct {
	attempt  int
	progress func(Event)                  // Request.Progress, nil without
	times    *[NumSteps + 1]time.Duration // Result.StepTimes, nil outside a push
}

type flowKey struct{}

func withFlow(ctx context.Context, fi *flowInfo) context.Context {
	return context.WithValue(ctx, flowKey{}, fi)
}

func flowOf(ctx context.Context) *flowInfo {
	fi, _ := ctx.Value(flowKey{}).(*flowInfo)
	return fi
}

func attemptOf(ctx context.Context) int {
	if fi := flowOf(ctx); fi != nil {
		return fi.attempt
	}
	return 1
}

// decodeJSON decodes one JSON object into v.
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}
