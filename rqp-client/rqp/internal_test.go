package rqp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/pkce"
)

// rawServer accepts one connection, reads the request head, then counts the
// body bytes that arrive for `wait` before it answers 401, and keeps counting
// until the client closes or a second passes. It reports the request head
// and the body bytes received: what really crossed the network.
func rawServer(t *testing.T, wait time.Duration) (string, <-chan string, <-chan int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	heads, counts := make(chan string, 1), make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		heads <- head.String()
		var n int64
		count := func(d time.Duration) {
			_ = conn.SetReadDeadline(time.Now().Add(d))
			m, _ := io.Copy(io.Discard, br)
			n += m
		}
		count(wait)
		fmt.Fprint(conn, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: UMA realm=\"bar\", as_uri=\"http://127.0.0.1:1/realms/bar\", ticket=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		count(time.Second)
		counts <- n
	}()
	return "http://" + ln.Addr().String() + "/incoming/bob", heads, counts
}

func TestExpectContinueHoldsTheBodyBack(t *testing.T) {
	const size = 1 << 20
	p, err := prepare(BytesContent(bytes.Repeat([]byte("x"), size), "big.bin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newClientInternal(Config{})
	// Issue 16: a 401 slower than the transport's wait for 100 Continue.
	slow := c.hc.Transport.(*http.Transport).ExpectContinueTimeout + 500*time.Millisecond
	for _, tc := range []struct {
		name   string
		expect bool
		wait   time.Duration
	}{
		{"with Expect: 100-continue", true, 300 * time.Millisecond},
		{"with Expect: 100-continue, 401 after ExpectContinueTimeout", true, slow},
		{"control: without", false, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, heads, counts := rawServer(t, tc.wait)
			var read atomic.Int64
			req, err := c.dataRequest(u, p, "", &read, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.expect {
				req.Header.Del("Expect")
			}
			a, se := c.do(context.Background(), StepRequest, ServiceResourceServer, req, 10*time.Second, maxJSONBytes)
			if se != nil {
				t.Fatal(se)
			}
			if a.resp.StatusCode != 401 {
				t.Fatalf("status %d", a.resp.StatusCode)
			}
			head := <-heads
			received := <-counts
			hasExpect := strings.Contains(strings.ToLower(head), "expect: 100-continue")
			if hasExpect != tc.expect {
				t.Fatalf("request head %q", head)
			}
			if tc.expect && (received != 0 || read.Load() != 0) {
				t.Fatalf("the server received %d body bytes (client read %d) although it answered 401 first", received, read.Load())
			}
			if !tc.expect && received != size {
				t.Fatalf("control: the server received %d body bytes, want %d (the measurement is blind)", received, size)
			}
		})
	}
}

// TestExpectContinueIgnored: a server that neither sends 100 Continue nor
// answers gets the body after continuePatience (RFC 9110 allows a client
// to send it then), and the exchange completes.
func TestExpectContinueIgnored(t *testing.T) {
	const size = 1 << 20
	p, err := prepare(BytesContent(bytes.Repeat([]byte("x"), size), "big.bin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { continuePatience = d }(continuePatience)
	continuePatience = 50 * time.Millisecond
	hc := DefaultHTTPClient()
	hc.Transport.(*http.Transport).ExpectContinueTimeout = 10 * time.Millisecond // the transport waits too
	c := newClientInternal(Config{HTTPClient: hc})
	u, _, counts := rawServer(t, time.Second)
	var read atomic.Int64
	req, err := c.dataRequest(u, p, "", &read, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, se := c.do(context.Background(), StepRequest, ServiceResourceServer, req, 10*time.Second, maxJSONBytes)
	if se != nil {
		t.Fatal(se)
	}
	if a.resp.StatusCode != 401 {
		t.Fatalf("status %d", a.resp.StatusCode)
	}
	if received := <-counts; received != size || read.Load() != size {
		t.Fatalf("the server received %d body bytes (client read %d), want %d", received, read.Load(), size)
	}
}

// loginCase runs loginCode with a browser stand-in that answers the
// authorization request with the given redirect query.
func runLogin(t *testing.T, l *Login, issuer string) (string, *url.URL, string, *StepError) {
	t.Helper()
	c := newClientInternal(Config{})
	meta := &serverMeta{Issuer: issuer, AuthorizationEndpoint: "http://127.0.0.1:1/realms/foo/auth?kc_idp_hint=x"}
	code, redirect, verifier, se := c.loginCode(context.Background(), StepAccessToken, issuer, meta, "rqp-client", "openid claims-provider", l)
	u, _ := url.Parse(redirect)
	return code, u, verifier, se
}

// visit is the browser following the redirect to the receiver.
func visit(t *testing.T, authURL string, params func(q url.Values) url.Values) (int, string) {
	t.Helper()
	au, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := params(au.Query())
	resp, err := http.Get(au.Query().Get("redirect_uri") + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestLoopbackReceiver(t *testing.T) {
	const issuer = "http://127.0.0.1:1/realms/foo"
	t.Run("code", func(t *testing.T) {
		var authURL string
		var status int
		l := &Login{Timeout: 5 * time.Second, OpenURL: func(ctx context.Context, u string) error {
			authURL = u
			status, _ = visit(t, u, func(q url.Values) url.Values {
				return url.Values{"state": {q.Get("state")}, "code": {"the-code"}, "iss": {issuer}}
			})
			return nil
		}}
		code, redirect, verifier, se := runLogin(t, l, issuer)
		if se != nil {
			t.Fatal(se)
		}
		if code != "the-code" || status != 200 {
			t.Fatalf("code %q, receiver status %d", code, status)
		}
		au, _ := url.Parse(authURL)
		q := au.Query()
		if redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Path != CallbackPath {
			t.Errorf("redirect URI %s", redirect)
		}
		if q.Get("redirect_uri") != redirect.String() || q.Get("response_type") != "code" || q.Get("client_id") != "rqp-client" ||
			q.Get("scope") != "openid claims-provider" || q.Get("kc_idp_hint") != "x" {
			t.Errorf("authorization request %v", q)
		}
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != pkce.Challenge(verifier) || len(verifier) < 43 {
			t.Errorf("PKCE: challenge %q, verifier %q", q.Get("code_challenge"), verifier)
		}
		if len(q.Get("state")) < 22 {
			t.Errorf("state %q is too short", q.Get("state"))
		}
		// The receiver is gone once the login is over.
		if _, err := net.DialTimeout("tcp", redirect.Host, time.Second); err == nil {
			t.Error("the receiver still listens after the login")
		}
	})
	for _, tc := range []struct {
		name   string
		params func(q url.Values) url.Values
		status int
		code   string
		msg    string
	}{
		{"state mismatch", func(q url.Values) url.Values {
			return url.Values{"state": {q.Get("state") + "x"}, "code": {"c"}}
		}, 400, "", "state does not match"},
		{"no state", func(q url.Values) url.Values { return url.Values{"code": {"c"}} }, 400, "", "state does not match"},
		{"error redirect", func(q url.Values) url.Values {
			return url.Values{"state": {q.Get("state")}, "error": {"access_denied"}, "error_description": {"User cancelled <b>login</b>"}}
		}, 200, "access_denied", "answered with an error"},
		{"issuer mix-up", func(q url.Values) url.Values {
			return url.Values{"state": {q.Get("state")}, "code": {"c"}, "iss": {"http://evil.example/realms/foo"}}
		}, 400, "", "names issuer"},
		{"no code", func(q url.Values) url.Values { return url.Values{"state": {q.Get("state")}} }, 400, "", "no usable code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var page string
			l := &Login{Timeout: 5 * time.Second, OpenURL: func(ctx context.Context, u string) error {
				status, page = visit(t, u, tc.params)
				return nil
			}}
			code, _, _, se := runLogin(t, l, issuer)
			if se == nil {
				t.Fatalf("accepted, code %q", code)
			}
			if se.Kind != KindLogin || se.Code != tc.code || !strings.Contains(se.Error(), tc.msg) || se.Step != StepAccessToken {
				t.Fatalf("error %#v: %v", se, se)
			}
			if status != tc.status {
				t.Errorf("receiver answered %d, want %d", status, tc.status)
			}
			if strings.Contains(page, "<b>") {
				t.Errorf("the receiver's page echoes HTML: %s", page)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, _, _, se := runLogin(t, &Login{Timeout: 200 * time.Millisecond, OpenURL: func(context.Context, string) error { return nil }}, issuer)
		if se == nil || se.Kind != KindLogin || !strings.Contains(se.Error(), "no login within 200ms") {
			t.Fatalf("err = %v", se)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
	})
	t.Run("wrong method then the real redirect", func(t *testing.T) {
		var postStatus int
		l := &Login{Timeout: 5 * time.Second, OpenURL: func(ctx context.Context, u string) error {
			au, _ := url.Parse(u)
			resp, err := http.Post(au.Query().Get("redirect_uri"), "text/plain", nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
			postStatus = resp.StatusCode
			visit(t, u, func(q url.Values) url.Values { return url.Values{"state": {q.Get("state")}, "code": {"c2"}} })
			return nil
		}}
		code, _, _, se := runLogin(t, l, issuer)
		if se != nil || code != "c2" || postStatus != 405 {
			t.Fatalf("code %q, err %v, POST status %d", code, se, postStatus)
		}
	})
	t.Run("OpenURL fails", func(t *testing.T) {
		_, _, _, se := runLogin(t, &Login{OpenURL: func(context.Context, string) error { return errors.New("no terminal") }}, issuer)
		if se == nil || se.Kind != KindLogin || !strings.Contains(se.Error(), "no terminal") {
			t.Fatalf("err = %v", se)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := newClientInternal(Config{})
		meta := &serverMeta{AuthorizationEndpoint: "http://127.0.0.1:1/auth"}
		_, _, _, se := c.loginCode(ctx, StepAccessToken, issuer, meta, "c", "openid", &Login{OpenURL: func(context.Context, string) error { cancel(); return nil }})
		if se == nil || se.Kind != KindLogin || !errors.Is(se, context.Canceled) {
			t.Fatalf("err = %v", se)
		}
	})
}

// tlsDiscovery serves a discovery document over https for any host name,
// through a client that dials the test server whatever the URL says.
func tlsDiscovery(t *testing.T, doc string) (*Client, *string) {
	t.Helper()
	var host string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host = r.Host + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, doc)
	}))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	tr := hc.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	return newClientInternal(Config{HTTPClient: &http.Client{Transport: tr}}), &host
}

func TestDiscoveryOverHTTPS(t *testing.T) {
	good := `{"issuer":"https://cp.foo.example","claims_endpoint":"https://cp.foo.example/claims/token","jwks_uri":"https://cp.foo.example/jwks","domains":["other.example","FOO.example"]}`
	c, asked := tlsDiscovery(t, good)
	ep, how, se := c.claimsEndpoint(context.Background(), "Alice@Foo.Example")
	if se != nil {
		t.Fatal(se)
	}
	if ep != "https://cp.foo.example/claims/token" || how != "discovered for foo.example" {
		t.Errorf("endpoint %q (%s)", ep, how)
	}
	if *asked != "foo.example/.well-known/uma-wide-ecosystem-claims-provider" {
		t.Errorf("asked %q", *asked)
	}
	for name, doc := range map[string]string{
		"plain http endpoint":    `{"issuer":"https://cp.foo.example","claims_endpoint":"http://cp.foo.example/claims/token","domains":["foo.example"]}`,
		"plain http issuer":      `{"issuer":"http://cp.foo.example","claims_endpoint":"https://cp.foo.example/claims/token","domains":["foo.example"]}`,
		"domain not listed":      `{"issuer":"https://cp.foo.example","claims_endpoint":"https://cp.foo.example/claims/token","domains":["sub.foo.example"]}`,
		"no domains":             `{"issuer":"https://cp.foo.example","claims_endpoint":"https://cp.foo.example/claims/token"}`,
		"endpoint with userinfo": `{"issuer":"https://cp.foo.example","claims_endpoint":"https://a:b@cp.foo.example/claims/token","domains":["foo.example"]}`,
	} {
		c, _ := tlsDiscovery(t, doc)
		if _, _, se := c.claimsEndpoint(context.Background(), "alice@foo.example"); se == nil || se.Kind != KindProtocol {
			t.Errorf("%s: err = %v, want a protocol error", name, se)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://rs.bar.example/incoming/bob": true,
		"http://127.0.0.1:8082/incoming/bob":  true,
		"http://localhost:8080/realms/foo":    true,
		"http://[::1]:8080/realms/foo":        true,
		"http://rs.bar.example/incoming/bob":  false,
		"ftp://rs.bar.example/x":              false,
		"https:///x":                          false,
		"/incoming/bob":                       false,
		"https://u@rs.bar.example/":           false,
		"https://rs.bar.example/#frag":        false,
		"mailto:bob@bar.example":              false,
		"http://127.0.0.1.evil.example/":      false,
	} {
		if _, err := checkURL(raw, false); (err == nil) != ok {
			t.Errorf("checkURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
	if _, err := checkURL("http://rs.bar.example/", true); err != nil {
		t.Errorf("insecure allowed: %v", err)
	}
}

func TestEmailDomain(t *testing.T) {
	for in, want := range map[string]string{
		"alice@foo.example":           "foo.example",
		"Alice@FOO.Example.":          "foo.example",
		"a@b@foo.example":             "foo.example",
		"alice@":                      "",
		"@foo.example":                "",
		"alice":                       "",
		"alice@localhost":             "",
		"alice@127.0.0.1":             "",
		"alice@foo.example:8443":      "",
		"alice@foo.example/evil":      "",
		"alice@-foo.example":          "",
		"alice@foo..example":          "",
		"alice@xn--bcher-kva.example": "xn--bcher-kva.example",
	} {
		got, err := emailDomain(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("emailDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPrepareContent(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 20)...)
	for _, tc := range []struct {
		name    string
		c       *Content
		typ     string
		file    string
		wantErr bool
	}{
		{"extension", BytesContent([]byte("hello"), "notes.txt"), "text/plain; charset=utf-8", "notes.txt", false},
		{"sniffed", BytesContent(png, ""), "image/png", "", false},
		{"sniffed text", BytesContent([]byte("hello"), ""), "text/plain; charset=utf-8", "", false},
		{"empty", BytesContent(nil, ""), "application/octet-stream", "", false},
		{"given type wins", &Content{Data: bytes.NewReader(png), Size: int64(len(png)), Type: "Application/X-Thing; A=1", Name: "dir/sub/x.txt"}, "application/x-thing; a=1", "x.txt", false},
		{"windows path", BytesContent([]byte("x"), `C:\Users\alice\report.pdf`), "application/pdf", "report.pdf", false},
		{"bad type", &Content{Data: bytes.NewReader(nil), Type: "text/"}, "", "", true},
		{"dot dot", BytesContent([]byte("x"), "a/.."), "", "", true},
		{"control character", BytesContent([]byte("x"), "a\nb"), "", "", true},
		{"bidi override", BytesContent([]byte("x"), "invoice\u202Etxt.exe"), "", "", true},
		{"long name", BytesContent([]byte("x"), strings.Repeat("n", 256)), "", "", true},
		{"negative size", &Content{Data: bytes.NewReader(nil), Size: -1}, "", "", true},
		{"short data", &Content{Data: bytes.NewReader([]byte("ab")), Size: 3}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := prepare(tc.c, nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.typ != tc.typ || p.name != tc.file || len(p.sha256) != 64 {
				t.Errorf("type %q name %q sha %q", p.typ, p.name, p.sha256)
			}
		})
	}
	p, _ := prepare(BytesContent([]byte("x"), "Größe \"1\".txt"), nil)
	if cd := p.contentDisposition(); !strings.HasPrefix(cd, "attachment; filename*=utf-8''Gr%C3%B6%C3%9Fe") {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func TestReadAndFileContent(t *testing.T) {
	if _, err := ReadContent(strings.NewReader("12345"), 4, ""); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadContent beyond the bound: %v", err)
	}
	c, err := ReadContent(strings.NewReader("1234"), 4, "")
	if err != nil || c.Size != 4 {
		t.Errorf("ReadContent at the bound: %+v %v", c, err)
	}
	dir := t.TempDir()
	if _, _, err := FileContent(dir); err == nil {
		t.Error("a directory was accepted as a file")
	}
	path := filepath.Join(dir, "report.csv")
	if err := os.WriteFile(path, []byte("a,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, f, err := FileContent(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c.Size != 4 || c.Name != "report.csv" {
		t.Errorf("%+v", c)
	}
}

func TestClip(t *testing.T) {
	if got := clip("a\x1b[31mb\nc", 100); got != "a [31mb c" {
		t.Errorf("clip kept control characters: %q", got)
	}
	if got := clip(strings.Repeat("é", 10), 5); got != "éé…" {
		t.Errorf("clip cut inside a rune: %q", got)
	}
}

func TestCCCacheRenewal(t *testing.T) {
	var c ccCache
	if _, _, ok := c.get(); ok {
		t.Fatal("empty cache hit")
	}
	// A 5-minute token is renewed with a minute left.
	c.put("long", 5*time.Minute)
	if tok, exp, ok := c.get(); !ok || tok != "long" || time.Until(exp) < 4*time.Minute {
		t.Fatalf("get = %q %v %v", tok, exp, ok)
	}
	if d := c.exp.Sub(c.renewAt); d != time.Minute {
		t.Fatalf("renewed %v before expiry, want 1m", d)
	}
	// A short-lived one is used for half its life.
	c.put("short", 100*time.Millisecond)
	if tok, _, ok := c.get(); !ok || tok != "short" {
		t.Fatal("fresh short token not returned")
	}
	time.Sleep(60 * time.Millisecond)
	if _, _, ok := c.get(); ok {
		t.Fatal("token past half its life still returned")
	}
	// drop forgets only the token it names.
	c.put("a", time.Hour)
	c.drop("b")
	if tok, _, ok := c.get(); !ok || tok != "a" {
		t.Fatal("drop of another token removed the cached one")
	}
	c.drop("a")
	if _, _, ok := c.get(); ok {
		t.Fatal("dropped token returned")
	}
}

func TestTransferReportsHashingAndUploadSeparately(t *testing.T) {
	const size = 3*transferEvery + transferEvery/2
	var got []Transfer
	record := func(tr Transfer) { got = append(got, tr) }
	p, err := prepare(BytesContent(bytes.Repeat([]byte("y"), size), "big.bin"), newTransferMeter(record, PhaseHash, 0, 1, size))
	if err != nil {
		t.Fatal(err)
	}
	check := func(phase Phase, step int) {
		t.Helper()
		if len(got) != 4 {
			t.Fatalf("%v: %d reports, want 4 (every MiB and the end): %+v", phase, len(got), got)
		}
		for i, tr := range got {
			if tr.Phase != phase || tr.Step != step || tr.Total != size || tr.Attempt != 1 {
				t.Fatalf("report %d: %+v", i, tr)
			}
			if i > 0 && tr.Done <= got[i-1].Done {
				t.Fatalf("report %d went back: %+v", i, got)
			}
			if tr.Final != (i == len(got)-1) {
				t.Fatalf("report %d: Final %v", i, tr.Final)
			}
		}
		if last := got[len(got)-1]; last.Done != size {
			t.Fatalf("last report %+v, want all %d bytes", last, size)
		}
	}
	check(PhaseHash, 0)

	got = nil
	at := &attempt{push: &pushState{req: Request{Transfer: record}, content: p}}
	var sent atomic.Int64
	c := newClientInternal(Config{})
	req, err := c.dataRequest("http://127.0.0.1:1/incoming/bob", p, "rpt", &sent, uploadMeter(withFlow(context.Background(), &flowInfo{attempt: 1}), at, StepPost))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		t.Fatal(err)
	}
	check(PhaseUpload, StepPost)

	// A body the transport asks for again (a redirect, a retry) is a new pass.
	got = nil
	body, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Fatal(err)
	}
	check(PhaseUpload, StepPost)
	if sent.Load() != 2*size {
		t.Fatalf("counted %d bytes sent, want %d", sent.Load(), 2*size)
	}
}

func TestNoTransferCallbackNoMeter(t *testing.T) {
	if m := newTransferMeter(nil, PhaseHash, 0, 1, 10); m != nil {
		t.Fatal("a meter without a callback")
	}
	var m *transferMeter
	m.add(5) // nil-safe: pushes without a callback pay nothing
}

func TestHashingReusesItsBuffer(t *testing.T) {
	c := BytesContent(bytes.Repeat([]byte("z"), 1024), "small.bin")
	if _, err := prepare(c, nil); err != nil { // the pool's first buffer
		t.Fatal(err)
	}
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := prepare(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// io.Copy allocated a 32 KiB buffer per call; what is left is the hash,
	// the section reader, the digest's hex and the media type.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 8<<10 {
		t.Fatalf("%d bytes allocated per prepare of 1 KiB, want under 8 KiB", per)
	}
}
