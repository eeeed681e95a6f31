package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// maxInboxList bounds the list answer; maxMessage bounds a fetched message.
const (
	maxInboxList = 8 << 20
	maxMessage   = 1 << 30
)

type inboxFlags struct {
	incoming, issuer, clientID, clientSecret string
	lf                                       loginFlags
	get, out                                 string
	limit                                    int
	timeout                                  time.Duration
	insecure, jsonOut                        bool
}

// inbox is the owner's side: log in (incoming-app, authorization code +
// PKCE), then list the Incoming or fetch one message.
func inbox(ctx context.Context, args []string, sio IO) int {
	var f inboxFlags
	fs := newFlagSet("inbox", inboxEnvPrefix, "inbox --incoming <your Incoming URL> [--get <id> [--out <path>]] [flags]", sio.Stderr)
	fs.StringVar(&f.incoming, "incoming", "", "your Incoming URL, e.g. http://127.0.0.1:8082/incoming/bob (required)")
	fs.StringVar(&f.issuer, "issuer", DefaultInboxIssuer, "issuer URL of your authorization server (where you log in)")
	fs.StringVar(&f.clientID, "client-id", DefaultInboxClientID, "client id to log in with (a public client with PKCE and loopback redirects)")
	fs.StringVar(&f.clientSecret, "client-secret", "", "client secret, for a confidential client")
	f.lf.define(fs.FlagSet, inboxEnvPrefix)
	fs.StringVar(&f.get, "get", "", "fetch the message with this id instead of listing")
	fs.StringVar(&f.out, "out", "-", "with --get: write the content to this file (- for standard output)")
	fs.IntVar(&f.limit, "limit", 0, "list at most this many messages (newest first); 0: the server's default")
	fs.DurationVar(&f.timeout, "timeout", defaultRequestTimeout, "timeout of each request")
	fs.BoolVar(&f.insecure, "insecure-http", false, "allow plain http to hosts that are not loopback")
	fs.BoolVar(&f.jsonOut, "json", false, "print the list as JSON on standard output")
	if err := fs.parse(args, sio.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(sio.Stderr, "rqp-client inbox: %s\n", oneLine(err.Error()))
		return ExitUsage
	}
	failf := func(code int, format string, args ...any) int {
		fmt.Fprintf(sio.Stderr, "rqp-client: %s\n", oneLine(fmt.Sprintf(format, args...)))
		return code
	}
	if f.incoming == "" {
		return failf(ExitUsage, "--incoming is required")
	}
	inURL, err := url.Parse(strings.TrimSuffix(f.incoming, "/"))
	if err != nil || (inURL.Scheme != "http" && inURL.Scheme != "https") || inURL.Host == "" {
		return failf(ExitUsage, "--incoming %q is not an http(s) URL", f.incoming)
	}
	if inURL.Scheme == "http" && !f.insecure && !rqp.IsLoopback(inURL.Hostname()) {
		return failf(ExitUsage, "--incoming %q uses plain http for a host that is not loopback (--insecure-http)", f.incoming)
	}
	lg, err := f.lf.login(inboxEnvPrefix, sio, sio.Getenv)
	if err != nil {
		return failf(ExitUsage, "%v", err)
	}
	owner := ownerOf(f.incoming)
	fmt.Fprintf(sio.Stderr, "rqp-client: logging in at %s to read %s's Incoming\n", f.issuer, owner)
	tok, err := rqp.AuthorizationCodeLogin(ctx, rqp.LoginOptions{
		Issuer: f.issuer, ClientID: f.clientID, ClientSecret: f.clientSecret, Scope: "openid",
		Login: *lg, AllowInsecureHTTP: f.insecure, Timeout: f.timeout,
	})
	if err != nil {
		return failf(exitStatus(err), "%v", err)
	}
	hc := &http.Client{Timeout: f.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if f.get != "" {
		return getMessage(ctx, hc, inURL, f, tok.AccessToken, sio, failf)
	}

	list := *inURL
	list.Path += "/messages"
	if f.limit > 0 {
		list.RawQuery = "limit=" + strconv.Itoa(f.limit)
	}
	body, status, err := fetch(ctx, hc, list.String(), tok.AccessToken, maxInboxList, nil)
	if err != nil {
		return failf(ExitUnreachable, "GET %s: %v", list.String(), err)
	}
	if status != http.StatusOK {
		return failf(statusExit(status), "GET %s: %s", list.String(), uma.ParseError(status, body).Error())
	}
	var msgs uma.MessageList
	if err := json.Unmarshal(body, &msgs); err != nil {
		return failf(ExitProtocol, "GET %s: malformed list: %v", list.String(), err)
	}
	if f.jsonOut {
		enc := json.NewEncoder(sio.Stdout)
		enc.SetIndent("", "  ")
		if msgs.Messages == nil {
			msgs.Messages = []uma.Message{}
		}
		_ = enc.Encode(msgs)
		return ExitOK
	}
	fmt.Fprintf(sio.Stdout, "%s's Incoming at %s, as %s sees it: %d message(s), newest first\n", owner, f.incoming, owner, len(msgs.Messages))
	if len(msgs.Messages) == 0 {
		return ExitOK
	}
	tw := tabwriter.NewWriter(sio.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tTYPE\tSIZE\tSHA-256\tNAME")
	for _, m := range msgs.Messages {
		sum := m.SHA256
		if len(sum) > 16 {
			sum = sum[:16] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", safe(m.ID), safe(m.ReceivedAt), safe(m.SenderEmail), safe(m.ContentType), m.Size, safe(sum), safe(m.FileName))
	}
	_ = tw.Flush()
	return ExitOK
}

func getMessage(ctx context.Context, hc *http.Client, inURL *url.URL, f inboxFlags, token string, sio IO, failf func(int, string, ...any) int) int {
	u := *inURL
	u.Path += "/messages/" + url.PathEscape(f.get)
	var w io.Writer = sio.Stdout
	var fh *os.File
	if f.out != "-" {
		var err error
		if fh, err = os.OpenFile(f.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return failf(ExitUsage, "--out: %v", err)
		}
		w = fh
	}
	h := sha256.New()
	_, status, err := fetch(ctx, hc, u.String(), token, maxMessage, io.MultiWriter(w, h))
	if fh != nil {
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil && status != http.StatusOK && fh != nil {
		_ = os.Remove(f.out)
	}
	if err != nil {
		return failf(ExitUnreachable, "GET %s: %v", u.String(), err)
	}
	if status != http.StatusOK {
		return failf(statusExit(status), "GET %s: %d %s", u.String(), status, http.StatusText(status))
	}
	fmt.Fprintf(sio.Stderr, "rqp-client: message %s, sha256 %s\n", f.get, hex.EncodeToString(h.Sum(nil)))
	return ExitOK
}

// fetch GETs u with the bearer token; a 200 body goes to w when given (else
// it is returned), bounded by max.
func fetch(ctx context.Context, hc *http.Client, u, token string, max int64, w io.Writer) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && w != nil {
		n, err := io.Copy(w, io.LimitReader(resp.Body, max+1))
		if err == nil && n > max {
			err = fmt.Errorf("longer than %d bytes", max)
		}
		return nil, resp.StatusCode, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max))
	return data, resp.StatusCode, err
}

func statusExit(status int) int {
	switch {
	case status >= 500:
		return ExitServer
	case status >= 400:
		return ExitRefused
	}
	return ExitProtocol
}

// safe keeps what a service sent from driving the terminal.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
