package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/rqp-client/rqp"
)

// Defaults: the demo stack of this repository (make up).
const (
	DefaultAuthNIssuer    = "http://127.0.0.1:8080/realms/foo"
	DefaultASIssuer       = "http://127.0.0.1:8080/realms/bar"
	DefaultClientID       = "rqp-client"
	DefaultClientSecret   = "rqp-client-secret"
	DefaultMaxStdinBytes  = 64 << 20
	DefaultInboxIssuer    = "http://127.0.0.1:8080/realms/bar"
	DefaultInboxClientID  = "incoming-app"
	pushEnvPrefix         = EnvPrefix
	inboxEnvPrefix        = EnvPrefix + "INBOX_"
	defaultRequestTimeout = 30 * time.Second
)

type pushFlags struct {
	to, file, email                   string
	login                             bool
	lf                                loginFlags
	authnIssuer, authnID, authnSec    string
	scope                             string
	asIssuer, asID, asSec             string
	claimsProvider, discoveryBase     string
	contentType, name                 string
	progress                          string
	maxStdin                          int64
	timeout, uploadTimeout            time.Duration
	insecure, jsonOut, verbose, quiet bool
	caFile, registrationsDir          string
}

func push(ctx context.Context, args []string, sio IO) int {
	var f pushFlags
	fs := newFlagSet("push", pushEnvPrefix, "push --to <address>|<Incoming URL> [--file] <path>|- [--email <address> | --login] [flags]", sio.Stderr)
	fs.StringVar(&f.to, "to", "", "the recipient's address, e.g. bob@bar.example (its Incoming and authorization server are found by WebFinger at https://bar.example), or an Incoming URL, e.g. http://127.0.0.1:8082/incoming/bob (required)")
	fs.StringVar(&f.file, "file", "", "the file to push, or - for standard input (required; or as the one argument)")
	fs.StringVar(&f.email, "email", "", "the sender's email address: required without --login (the Claims Provider vouches for it); its domain is where the Claims Provider is discovered")
	fs.BoolVar(&f.login, "login", false, "the sender logs in (authorization code + PKCE, loopback redirect on 127.0.0.1) instead of client credentials")
	f.lf.define(fs.FlagSet, pushEnvPrefix)
	fs.StringVar(&f.authnIssuer, "authn-issuer", DefaultAuthNIssuer, "issuer URL of the sender's AuthN server (step 3)")
	fs.StringVar(&f.authnID, "authn-client-id", DefaultClientID, "client id at the AuthN server")
	fs.StringVar(&f.authnSec, "authn-client-secret", DefaultClientSecret, "client secret at the AuthN server (prefer the variable or the -file flag)")
	fs.String("authn-client-secret-file", "", "file holding the client secret at the AuthN server")
	fs.StringVar(&f.scope, "scope", rqp.DefaultScope, "scope asked of the AuthN server (puts the Claims Provider into aud)")
	fs.StringVar(&f.asIssuer, "as-issuer", DefaultASIssuer, "the owner's authorization server this client is registered at: the Resource Server's as_uri must equal it (\"*\": accept any as_uri; the secret then goes wherever the Resource Server points)")
	fs.StringVar(&f.asID, "as-client-id", DefaultClientID, "client id at the owner's authorization server (step 7)")
	fs.StringVar(&f.asSec, "as-client-secret", DefaultClientSecret, "client secret at the owner's authorization server (prefer the variable or the -file flag)")
	fs.String("as-client-secret-file", "", "file holding the client secret at the owner's authorization server")
	fs.StringVar(&f.claimsProvider, "claims-provider", "", "base URL of the sender's Claims Provider (claims tokens from <URL>/claims/token); empty: discover it from the email's domain")
	fs.StringVar(&f.discoveryBase, "discovery-base", "", "for local development: read the discovery document from <URL>/.well-known/uma-wide-ecosystem-claims-provider instead of https://<email domain>/...")
	fs.StringVar(&f.contentType, "content-type", "", "media type of the content; default: from the file name's extension, else sniffed")
	fs.StringVar(&f.name, "name", "", "file name sent with the content; default: the file's base name (none for standard input)")
	fs.Int64Var(&f.maxStdin, "max-stdin-bytes", DefaultMaxStdinBytes, "largest standard input accepted (it is held in memory)")
	fs.DurationVar(&f.timeout, "timeout", defaultRequestTimeout, "timeout of each request except the two that carry the content")
	fs.DurationVar(&f.uploadTimeout, "upload-timeout", 10*time.Minute, "timeout of each of the two requests that carry the content")
	fs.BoolVar(&f.insecure, "insecure-http", false, "allow plain http to hosts that are not loopback (compose networks); never for production")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of more certificate authorities to trust (besides the system's; SSL_CERT_FILE replaces the system's)")
	fs.StringVar(&f.registrationsDir, "registrations-dir", "", "where the client keeps its dynamic registrations, one per authorization server (default: <user config dir>/umawide/rqp-client/registrations)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result (or the failure) as JSON on standard output")
	fs.BoolVar(&f.verbose, "v", false, "verbose: details of every step (never tokens or secrets)")
	fs.BoolVar(&f.quiet, "q", false, "quiet: no step lines, only the result or the one-line failure")
	fs.StringVar(&f.progress, "progress", progressAuto, "progress of hashing and of each upload (bytes, rate, time left) on standard error: auto (content of 8 MiB or more, standard error a terminal, not -q), always or never")
	// The file may come last, after the flags (push --to bob@bar.example FILE).
	positional := ""
	if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") && (n == 1 || !takesValue(fs.FlagSet, args[n-2])) {
		positional, args = args[n-1], args[:n-1]
	}
	if err := fs.parse(args, sio.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(sio.Stderr, "rqp-client push: %s\n", oneLine(err.Error()))
		return ExitUsage
	}
	out := newReporter(sio, f.jsonOut, f.verbose, f.quiet)
	fail := func(format string, args ...any) int {
		return out.failUsage(fmt.Sprintf(format, args...))
	}
	if positional != "" {
		if fs.isSet("file", sio.Getenv) {
			return fail("give the file either as --file or as the last argument, not both")
		}
		f.file = positional
	}
	if f.to == "" || f.file == "" {
		return fail("--to and --file are required")
	}
	addressed := rqp.IsAddress(f.to)
	authnSecret, err := fs.secret(f.authnSec, "authn-client-secret-file", sio.Getenv)
	if err != nil {
		return fail("%v", err)
	}
	asSecret, err := fs.secret(f.asSec, "as-client-secret-file", sio.Getenv)
	if err != nil {
		return fail("%v", err)
	}
	cfg := rqp.Config{
		AuthN: rqp.AuthN{Issuer: f.authnIssuer, ClientID: f.authnID, ClientSecret: authnSecret, Scope: f.scope},
		ClaimsProvider: rqp.ClaimsProvider{
			URL: f.claimsProvider, DiscoveryBaseURL: f.discoveryBase,
		},
		AllowInsecureHTTP: f.insecure,
		Timeout:           f.timeout,
		UploadTimeout:     f.uploadTimeout,
		Progress:          out.step,
	}
	// A configured registration: --as-issuer given, or (as before
	// addresses) the demo's default for an Incoming URL. Any other AS gets a
	// dynamic registration of its own.
	if !addressed || fs.isSet("as-issuer", sio.Getenv) {
		cfg.Registrations = []rqp.Registration{{Issuer: f.asIssuer, ClientID: f.asID, ClientSecret: asSecret}}
	}
	// Dynamic registrations are kept in a folder: without one (no
	// --registrations-dir, no $HOME or $XDG_CONFIG_HOME, as in a container)
	// the client registers nowhere and pushes only to the AS configured
	// above; an addressed push without --as-issuer needs one.
	dir := f.registrationsDir
	if dir == "" {
		if base, err := os.UserConfigDir(); err == nil {
			dir = filepath.Join(base, "umawide", "rqp-client", "registrations")
		} else if len(cfg.Registrations) == 0 {
			return fail("no folder for dynamic registrations (give --registrations-dir): %v", err)
		}
	}
	if dir != "" {
		cfg.Register = &rqp.DynamicRegistration{Dir: dir}
	}
	if f.caFile != "" {
		hc, err := httpClientWithCA(f.caFile)
		if err != nil {
			return fail("--ca-file: %v", err)
		}
		cfg.HTTPClient = hc
	}
	if f.login {
		lg, err := f.lf.login(pushEnvPrefix, sio, sio.Getenv)
		if err != nil {
			return fail("%v", err)
		}
		cfg.AuthN.Login = lg
	} else if f.email == "" {
		return fail("--email is required without --login")
	}
	client, err := rqp.New(cfg)
	if err != nil {
		return out.failure(err)
	}

	var content *rqp.Content
	if f.file == "-" {
		content, err = rqp.ReadContent(sio.Stdin, f.maxStdin, "")
		if err != nil {
			return fail("standard input: %v", err)
		}
	} else {
		c, fh, err := rqp.FileContent(f.file)
		if err != nil {
			return fail("--file: %v", err)
		}
		defer fh.Close()
		content = c
	}
	if f.name != "" {
		content.Name = f.name
	}
	content.Type = f.contentType
	show, err := wantProgress(f.progress, f.quiet, sio.Stderr, content.Size)
	if err != nil {
		return fail("%v", err)
	}

	req := rqp.Request{To: f.to, Content: content, Email: f.email}
	if addressed {
		rc, err := client.Resolve(ctx, f.to)
		if err != nil {
			return out.failure(err)
		}
		out.resolved(rc)
		req.To, req.AS = rc.Incoming, rc.AS
	}
	out.start(req.To, content)
	if show {
		out.bar = &progressLine{w: sio.Stderr, now: time.Now}
		req.Transfer = out.transfer
	}
	res, err := client.Push(ctx, req)
	if err != nil {
		return out.failure(err)
	}
	out.success(res)
	return ExitOK
}

// reporter prints progress and the outcome: step lines on stderr, the
// result on stdout (a line, or JSON with --json).
type reporter struct {
	sio                  IO
	json, verbose, quiet bool
	steps                []stepJSON
	// mu serialises what goes to stderr: an upload reports its progress
	// from the HTTP transport's goroutine.
	mu  sync.Mutex
	bar *progressLine // nil: no progress shown
}

// transfer shows the progress of hashing or an upload (Request.Transfer).
func (r *reporter) transfer(t rqp.Transfer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bar.update(t)
}

// endProgress erases a progress line left open; call with mu held.
func (r *reporter) endProgress() {
	if r.bar != nil {
		r.bar.clear()
	}
}

type stepJSON struct {
	Attempt    int     `json:"attempt"`
	Step       int     `json:"step"`
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Status     string  `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Detail     string  `json:"detail,omitempty"`
	Retry      bool    `json:"retry,omitempty"`
}

func newReporter(sio IO, jsonOut, verbose, quiet bool) *reporter {
	return &reporter{sio: sio, json: jsonOut, verbose: verbose, quiet: quiet}
}

func (r *reporter) start(to string, c *rqp.Content) {
	if r.quiet {
		return
	}
	what := "standard input"
	if c.Name != "" {
		what = c.Name
	}
	fmt.Fprintf(r.sio.Stderr, "rqp-client: pushing %s (%d bytes) to %s\n", what, c.Size, to)
}

// takesValue says whether arg is a flag of fs that consumes the next
// argument as its value (not -flag=value, not a boolean flag).
func takesValue(fs *flag.FlagSet, arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	fl := fs.Lookup(strings.TrimLeft(arg, "-"))
	if fl == nil {
		return false
	}
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// resolved shows what WebFinger said about the recipient.
func (r *reporter) resolved(rc *rqp.Recipient) {
	if r.quiet {
		return
	}
	fmt.Fprintf(r.sio.Stderr, "rqp-client: %s: Incoming %s, protected by %s (WebFinger)\n", rc.Address, rc.Incoming, rc.AS)
}

// httpClientWithCA is rqp's default client trusting the system's
// authorities and those in caFile.
func httpClientWithCA(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	hc := rqp.DefaultHTTPClient()
	t := hc.Transport.(*http.Transport)
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return hc, nil
}

func (r *reporter) step(ev rqp.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endProgress()
	r.steps = append(r.steps, stepJSON{Attempt: ev.Attempt, Step: ev.Step, Name: ev.Name, OK: ev.OK, Status: ev.Status,
		DurationMS: ms(ev.Duration), Detail: ev.Detail, Retry: ev.Retry})
	if r.quiet {
		return
	}
	mark := "ok"
	if !ev.OK {
		mark = "FAILED"
	}
	prefix := ""
	if ev.Attempt > 1 {
		prefix = fmt.Sprintf("(attempt %d) ", ev.Attempt)
	}
	fmt.Fprintf(r.sio.Stderr, "%s%2d/10 %-22s %-26s %8s  %s\n", prefix, ev.Step, ev.Name, oneLine(ev.Status), fmtDuration(ev.Duration), mark)
	if r.verbose && ev.Detail != "" {
		fmt.Fprintf(r.sio.Stderr, "      %s\n", oneLine(ev.Detail))
	}
	if r.verbose && ev.Err != nil {
		fmt.Fprintf(r.sio.Stderr, "      %s\n", oneLine(ev.Err.Error()))
	}
	if ev.Retry {
		fmt.Fprintln(r.sio.Stderr, "rqp-client: the authorization server refused the permission ticket; starting over once with a fresh one")
	}
}

type pushResultJSON struct {
	OK                    bool         `json:"ok"`
	Attempts              int          `json:"attempts,omitempty"`
	Location              string       `json:"location,omitempty"`
	Message               *rqp.Receipt `json:"message,omitempty"`
	ASURI                 string       `json:"as_uri,omitempty"`
	ClaimsEndpoint        string       `json:"claims_endpoint,omitempty"`
	Content               *contentJSON `json:"content,omitempty"`
	FirstRequestBodyBytes *int64       `json:"first_request_body_bytes,omitempty"`
	Error                 *errorJSON   `json:"error,omitempty"`
	Steps                 []stepJSON   `json:"steps"`
}

type contentJSON struct {
	SHA256   string `json:"sha256"`
	Length   int64  `json:"length"`
	Type     string `json:"type"`
	FileName string `json:"file_name,omitempty"`
}

type errorJSON struct {
	Step        int    `json:"step,omitempty"`
	Name        string `json:"name,omitempty"`
	Service     string `json:"service,omitempty"`
	Kind        string `json:"kind"`
	URL         string `json:"url,omitempty"`
	Status      int    `json:"status,omitempty"`
	Code        string `json:"code,omitempty"`
	Description string `json:"description,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message"`
	ExitStatus  int    `json:"exit_status"`
}

func (r *reporter) success(res *rqp.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endProgress()
	if r.json {
		n := res.FirstRequestBodyBytes
		r.writeJSON(pushResultJSON{OK: true, Attempts: res.Attempts, Location: res.Location, Message: &res.Receipt,
			ASURI: res.ASURI, ClaimsEndpoint: res.ClaimsEndpoint, FirstRequestBodyBytes: &n,
			Content: &contentJSON{SHA256: res.ContentSHA256, Length: res.ContentLength, Type: res.ContentType, FileName: res.FileName},
			Steps:   r.steps})
		return
	}
	rc := res.Receipt
	fmt.Fprintf(r.sio.Stdout, "201 Created %s\n", res.Location)
	if !r.quiet {
		fmt.Fprintf(r.sio.Stdout, "  message %s in %s's Incoming, from %s (%s), %s, %d bytes, sha256 %s\n",
			rc.ID, rc.Owner, rc.SenderEmail, rc.SenderIss, rc.ContentType, rc.Size, rc.SHA256)
	}
}

// failure reports an error of the flow (or of rqp.New) and returns the exit
// status of its kind.
func (r *reporter) failure(err error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endProgress()
	code := exitStatus(err)
	if r.json {
		ej := &errorJSON{Kind: "failure", Message: oneLine(err.Error()), ExitStatus: code}
		var se *rqp.StepError
		if errors.As(err, &se) {
			ej.Step, ej.Service, ej.Kind, ej.URL = se.Step, se.Service, se.Kind.String(), se.URL
			ej.Status, ej.Code, ej.Description, ej.Reason = se.StatusCode, se.Code, se.Description, se.Reason
			if se.Step > 0 {
				ej.Name = se.Name
			}
		}
		r.writeJSON(pushResultJSON{OK: false, Error: ej, Steps: r.stepsOrEmpty()})
	}
	fmt.Fprintf(r.sio.Stderr, "rqp-client: %s\n", oneLine(err.Error()))
	return code
}

func (r *reporter) failUsage(msg string) int {
	if r.json {
		r.writeJSON(pushResultJSON{OK: false, Error: &errorJSON{Kind: rqp.KindConfig.String(), Message: oneLine(msg), ExitStatus: ExitUsage}, Steps: r.stepsOrEmpty()})
	}
	fmt.Fprintf(r.sio.Stderr, "rqp-client: %s\n", oneLine(msg))
	return ExitUsage
}

func (r *reporter) stepsOrEmpty() []stepJSON {
	if r.steps == nil {
		return []stepJSON{}
	}
	return r.steps
}

func (r *reporter) writeJSON(v any) {
	enc := json.NewEncoder(r.sio.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ownerOf is the last path element of an Incoming URL, for messages.
func ownerOf(incoming string) string {
	u, err := url.Parse(incoming)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}
