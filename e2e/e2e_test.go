package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// The CLI's documented contract (rqp-client -h, rqp-client/README.md).
const (
	exitUsage       = 2
	exitDenied      = 3
	exitRefused     = 4
	exitUnreachable = 5
	exitLogin       = 6
	loginURLPrefix  = "login URL: "
)

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// content is a distinct file per push, so each stored message is traceable.
func content(t *testing.T) []byte {
	return []byte(fmt.Sprintf("Hello Bob,\nthis is %s, pushed by the end-to-end test at %s.\n", t.Name(), time.Now().Format(time.RFC3339Nano)))
}

// pushResult is the CLI's --json output.
type pushResult struct {
	OK       bool
	Attempts int
	Location string
	Message  e2etest.Message
	Content  struct {
		SHA256 string
		Length int64
		Type   string
	}
	FirstRequestBodyBytes *int64 `json:"first_request_body_bytes"`
	Steps                 []struct {
		Step   int
		OK     bool
		Status string
	}
	Error *struct {
		Step       int
		Kind, Code string
		Status     int
	}
}

// stored finds the message as Bob sees it and checks it against data.
func (w *world) assertStored(t *testing.T, id string, data []byte, sender string) {
	t.Helper()
	token := w.BobToken(t)
	body, _ := w.BobGet(t, token, "/messages?limit=1000")
	var list struct{ Messages []e2etest.Message }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var m *e2etest.Message
	for i := range list.Messages {
		if list.Messages[i].ID == id {
			m = &list.Messages[i]
		}
	}
	if m == nil {
		t.Fatalf("message %s is not in Bob's Incoming: %+v", id, list.Messages)
	}
	if m.SenderEmail != sender || m.SHA256 != hexSHA(data) || m.Size != int64(len(data)) || m.Owner != "bob" || m.SenderIss != w.CPURL {
		t.Errorf("Bob sees %+v; want sender %s, sha256 %s, %d bytes, sender_iss %s", m, sender, hexSHA(data), len(data), w.CPURL)
	}
	got, h := w.BobGet(t, token, "/messages/"+id)
	if string(got) != string(data) || h.Get("ETag") != `"`+hexSHA(data)+`"` {
		t.Errorf("Bob reads %q (ETag %s), want %q", got, h.Get("ETag"), data)
	}
}

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)

	t.Run("client credentials", func(t *testing.T) {
		// The first challenge registers Bob's Incoming at Keycloak, which
		// on a loaded machine can outlast the transport's 2 s wait for
		// 100 Continue: the client holds the data back regardless (issue 16).
		data := content(t)
		r := w.CLI(t, nil, w.PushArgs(writeFile(t, "minutes.txt", data), "--email", e2etest.AliceEmail, "--json")...)
		if r.Code != 0 {
			t.Fatal(r)
		}
		var res pushResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		if !res.OK || res.Attempts != 1 || len(res.Steps) != 10 || res.Message.SenderEmail != e2etest.AliceEmail || res.Message.SHA256 != hexSHA(data) {
			t.Fatalf("result %+v", res)
		}
		if !strings.HasPrefix(res.Location, w.RSURL+"/incoming/bob/messages/"+res.Message.ID) {
			t.Errorf("Location %q", res.Location)
		}
		// Expect: 100-continue against the real Resource Server: step 1
		// carried none of the data.
		if res.FirstRequestBodyBytes == nil || *res.FirstRequestBodyBytes != 0 {
			t.Errorf("step 1 sent %v content bytes", res.FirstRequestBodyBytes)
		}
		for i, s := range res.Steps {
			if s.Step != i+1 || !s.OK {
				t.Errorf("step %+v", s)
			}
		}
		if res.Steps[0].Status != "401 Unauthorized" || res.Steps[8].Status != "201 Created" {
			t.Errorf("steps %+v", res.Steps)
		}
		w.assertStored(t, res.Message.ID, data, e2etest.AliceEmail)
		for _, secret := range []string{e2etest.RQPSecret, "eyJ"} {
			if strings.Contains(r.Stdout+r.Stderr, secret) {
				t.Errorf("the output contains %q", secret)
			}
		}
	})

	t.Run("discovery and human output", func(t *testing.T) {
		data := content(t)
		args := w.PushArgs(writeFile(t, "notes.md", data), "--email", e2etest.AliceEmail, "-v")
		for i := range args {
			if args[i] == "--claims-provider" {
				args[i], args[i+1] = "--discovery-base", w.CPURL
			}
		}
		r := w.CLI(t, nil, args...)
		if r.Code != 0 {
			t.Fatal(r)
		}
		n := 0
		for _, l := range strings.Split(r.Stderr, "\n") {
			if strings.Contains(l, "/10 ") && strings.HasSuffix(l, "ok") {
				n++
			}
		}
		if n != 10 || !strings.Contains(r.Stderr, "discovered for foo.example") {
			t.Errorf("%d step lines ok\n%s", n, r)
		}
		loc, ok := strings.CutPrefix(strings.SplitN(r.Stdout, "\n", 2)[0], "201 Created ")
		if !ok {
			t.Fatalf("stdout %q", r.Stdout)
		}
		w.assertStored(t, loc[strings.LastIndexByte(loc, '/')+1:], data, e2etest.AliceEmail)
	})

	t.Run("login through the browser", func(t *testing.T) {
		data := content(t)
		ctx := e2etest.Timeout(t, 3*time.Minute)
		cmd := exec.CommandContext(ctx, w.Bin["rqp-client"], w.PushArgs(writeFile(t, "login.txt", data), "--login", "--no-browser", "--login-timeout", "2m", "--json")...)
		cmd.Env = e2etest.CleanEnv()
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout strings.Builder
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		urls := make(chan string, 1)
		var errText strings.Builder
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stderr)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				errText.WriteString(sc.Text() + "\n")
				if u, ok := strings.CutPrefix(sc.Text(), loginURLPrefix); ok {
					urls <- u
				}
			}
		}()
		var authURL string
		select {
		case authURL = <-urls:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatal("no login URL printed")
		}
		// Alice logs in at Keycloak's form; her browser then follows the
		// redirect to the client's loopback receiver.
		loc, err := kctest.NewBrowser().Login(ctx, authURL, "alice", e2etest.AlicePassword)
		if err != nil {
			_ = cmd.Process.Kill()
			t.Fatal(err)
		}
		if loc.Hostname() != "127.0.0.1" || loc.Query().Get("code") == "" || loc.Query().Get("state") == "" {
			t.Errorf("redirect %s", loc.Redacted())
		}
		resp, err := http.Get(loc.String())
		if err != nil {
			_ = cmd.Process.Kill()
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), "Logged in") {
			t.Errorf("receiver: %s %s", resp.Status, page)
		}
		wg.Wait()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v\n%s\n%s", err, stdout.String(), errText.String())
		}
		var res pushResult
		if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil || !res.OK {
			t.Fatalf("%v %s", err, stdout.String())
		}
		w.assertStored(t, res.Message.ID, data, e2etest.AliceEmail)
	})

	t.Run("login through the form, no browser", func(t *testing.T) {
		data := content(t)
		r := w.CLI(t, []string{"RQP_CLIENT_LOGIN_PASSWORD=" + e2etest.AlicePassword},
			w.PushArgs(writeFile(t, "scripted.txt", data), "--login", "--login-user", "alice", "--json")...)
		if r.Code != 0 {
			t.Fatal(r)
		}
		var res pushResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatal(err)
		}
		w.assertStored(t, res.Message.ID, data, e2etest.AliceEmail)
		if strings.Contains(r.Stdout+r.Stderr, e2etest.AlicePassword) {
			t.Error("the password shows in the output")
		}
	})

	t.Run("Bob's inbox", func(t *testing.T) {
		data := content(t)
		r := w.CLI(t, nil, w.PushArgs(writeFile(t, "for-inbox.txt", data), "--email", e2etest.AliceEmail, "--json")...)
		var res pushResult
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &res) != nil {
			t.Fatal(r)
		}
		env := []string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD=" + e2etest.BobPassword}
		base := []string{"inbox", "--incoming", w.RSURL + "/incoming/bob", "--issuer", w.KC.IssuerURL(w.Realm), "--login-user", "bob"}
		r = w.CLI(t, env, base...)
		if r.Code != 0 {
			t.Fatal(r)
		}
		if !strings.Contains(r.Stdout, "bob's Incoming") || !strings.Contains(r.Stdout, res.Message.ID) || !strings.Contains(r.Stdout, "for-inbox.txt") {
			t.Errorf("inbox:\n%s", r)
		}
		out := filepath.Join(t.TempDir(), "got")
		r = w.CLI(t, env, append(base, "--get", res.Message.ID, "--out", out)...)
		got, _ := os.ReadFile(out)
		if r.Code != 0 || string(got) != string(data) || !strings.Contains(r.Stderr, hexSHA(data)) {
			t.Errorf("get: %q\n%s", got, r)
		}
		// Alice cannot read Bob's Incoming (she is no user of Bob's realm).
		r = w.CLI(t, []string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD=" + e2etest.AlicePassword}, "inbox", "--incoming", w.RSURL+"/incoming/bob",
			"--issuer", w.KC.IssuerURL(w.Realm), "--login-user", "alice")
		if r.Code != exitLogin {
			t.Errorf("alice at Bob's realm: %s", r)
		}
	})

	// Refusals: the CLI's exit status and one-line reason, nothing stored.
	refused := func(t *testing.T, env []string, args []string, code int, want ...string) {
		t.Helper()
		before := len(w.BobMessages(t))
		r := w.CLI(t, env, args...)
		if r.Code != code {
			t.Fatalf("exit %d, want %d\n%s", r.Code, code, r)
		}
		last := r.LastLine()
		for _, s := range want {
			if !strings.Contains(last, s) {
				t.Errorf("reason %q lacks %q", last, s)
			}
		}
		if r.Stdout != "" {
			t.Errorf("stdout on failure: %q", r.Stdout)
		}
		if after := len(w.BobMessages(t)); after != before {
			t.Errorf("Bob's Incoming went from %d to %d messages", before, after)
		}
	}
	file := writeFile(t, "refused.txt", []byte("must not arrive"))

	t.Run("Alice unknown to the Claims Provider", func(t *testing.T) {
		refused(t, nil, w.PushArgs(file, "--email", "nobody-"+e2etest.RandomHex(3)+"@foo.example"), exitRefused,
			"step 5 (claims token request): refused by the claims provider", "403 access_denied")
	})
	t.Run("AS denies an untrusted domain", func(t *testing.T) {
		refused(t, nil, w.PushArgs(file, "--email", w.Outsider), exitDenied,
			"step 7 (UMA grant): denied by the authorization server", "403 access_denied: not_authorized")
	})
	t.Run("RS unreachable", func(t *testing.T) {
		args := w.PushArgs(file, "--email", e2etest.AliceEmail)
		args[2] = "http://" + e2etest.FreeAddr(t) + "/incoming/bob"
		refused(t, nil, args, exitUnreachable, "step 1 (request without token): the resource server at", "is unreachable")
	})
	t.Run("owner unknown", func(t *testing.T) {
		args := w.PushArgs(file, "--email", e2etest.AliceEmail)
		args[2] = w.RSURL + "/incoming/nobody"
		refused(t, nil, args, exitRefused, "step 1", "404 not_found")
	})
	t.Run("wrong secret at Bob's AS", func(t *testing.T) {
		refused(t, []string{"RQP_CLIENT_AS_CLIENT_SECRET=wrong"}, w.PushArgs(file, "--email", e2etest.AliceEmail), exitUsage,
			"step 7", "401 unauthorized_client")
	})
	// The client holds a registration at realm bar only; the challenge names
	// the test's realm: it registers there dynamically (issue 14), and this
	// realm (a copy of the demo's bar, Keycloak's default anonymous
	// registration policies, Trusted Hosts among them) refuses it. Nothing
	// of bar's registration is sent to the other AS.
	t.Run("AS of another realm", func(t *testing.T) {
		args := append(w.PushArgs(file, "--email", e2etest.AliceEmail), "--as-issuer", w.KC.IssuerURL("bar"),
			"--registrations-dir", t.TempDir())
		refused(t, nil, args, exitUsage, "step 7", "dynamic client registration at "+w.KC.IssuerURL(w.Realm)+" refused")
	})

	t.Run("Keycloak refuses bad tickets with invalid_ticket", func(t *testing.T) { w.badTickets(t) })
	t.Run("expired ticket: the flow starts over once", func(t *testing.T) { w.expiredTicket(t) })
	t.Run("slow challenge to large content", func(t *testing.T) { w.slowChallenge(t) })

	// Last, since it stops the Claims Provider.
	t.Run("Claims Provider down", func(t *testing.T) {
		if err := w.CP.Stop(e2etest.Timeout(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		refused(t, nil, w.PushArgs(file, "--email", e2etest.AliceEmail), exitUnreachable,
			"step 5 (claims token request): the claims provider at "+w.CPURL, "is unreachable")
	})
}

// badTickets shows what Keycloak answers for a ticket it cannot use (what
// the client's retry relies on): 403 invalid_ticket, before any policy runs.
func (w *world) badTickets(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, w.RSURL+"/incoming/bob", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ch, err := uma.ParseChallenge(resp.Header)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(ch.Ticket, ".")
	if len(parts) != 3 {
		t.Fatalf("ticket is no JWS")
	}
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	for name, ticket := range map[string]string{"garbage": "not-a-ticket", "bad signature": tampered} {
		form := url.Values{uma.FormGrantType: {uma.GrantTypeUMATicket}, uma.FormTicket: {ticket}, uma.FormSubmitRequest: {"false"},
			uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT}, uma.FormClaimToken: {"e30"}}
		_, err := kctest.PostToken(e2etest.Timeout(t, time.Minute), w.KC.IssuerURL(w.Realm), "rqp-client", e2etest.RQPSecret, form)
		var te *keycloak.Error
		if !errors.As(err, &te) || te.StatusCode != 403 || !strings.Contains(te.Body, `"invalid_ticket"`) {
			t.Errorf("%s ticket: %v", name, err)
		} else {
			t.Logf("%s ticket: Keycloak answers %d %s", name, te.StatusCode, te.Body)
		}
	}
}

// ticketRecorder is an http.RoundTripper that remembers the permission
// tickets the Resource Server hands out.
type ticketRecorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	tickets []string
}

func (r *ticketRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && resp.StatusCode == 401 {
		if ch, err := uma.ParseChallenge(resp.Header); err == nil {
			r.mu.Lock()
			r.tickets = append(r.tickets, ch.Ticket)
			r.mu.Unlock()
		}
	}
	return resp, err
}

func (r *ticketRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tickets[len(r.tickets)-1]
}

// expiredTicket: Keycloak gives a permission ticket the expiry of the
// Resource Server's PAT. A realm copy whose resource-server tokens live 15
// seconds makes tickets that expire within seconds; the push waits after
// step 2 until its ticket has expired, Keycloak refuses it at step 7, and
// the client starts over once with a fresh ticket (library, progress hook).
func (w *world) expiredTicket(t *testing.T) {
	realm := e2etest.ImportBar(t, w.KC, "bar-e2e-short-"+e2etest.RandomHex(4), w.CPURL, func(rep map[string]any) {
		rs := launcher.Client(rep, "resource-server")
		attrs, _ := rs["attributes"].(map[string]any)
		if attrs == nil {
			attrs = map[string]any{}
			rs["attributes"] = attrs
		}
		attrs["access.token.lifespan"] = "15"
	})
	rsAddr := e2etest.FreeAddr(t)
	w.StartRS(t, rsAddr, realm, "resource-server-short")

	rec := &ticketRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	rec.next.(*http.Transport).ExpectContinueTimeout = 2 * time.Second
	var events []rqp.Event
	waited := false
	c, err := rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: w.KC.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: w.CPURL},
		Registrations:  []rqp.Registration{{Issuer: w.KC.IssuerURL(realm), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret}},
		HTTPClient:     &http.Client{Transport: rec},
		Progress: func(ev rqp.Event) {
			events = append(events, ev)
			if ev.Step != rqp.StepChallenge || waited {
				return
			}
			waited = true
			claims, err := kctest.Claims(rec.last())
			if err != nil {
				t.Errorf("ticket: %v", err)
				return
			}
			exp, _ := claims["exp"].(float64)
			iat, _ := claims["iat"].(float64)
			t.Logf("first ticket: iat %v, exp %v (%v s of life)", iat, exp, exp-iat)
			time.Sleep(time.Until(time.Unix(int64(exp), 0)) + 1500*time.Millisecond)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := content(t)
	res, err := c.Push(e2etest.Timeout(t, 2*time.Minute), rqp.Request{To: "http://" + rsAddr + "/incoming/bob", Content: rqp.BytesContent(data, "late.txt"), Email: e2etest.AliceEmail})
	if err != nil {
		t.Fatalf("%v\nevents %+v", err, events)
	}
	if res.Attempts != 2 {
		t.Fatalf("attempts %d", res.Attempts)
	}
	var refusal *rqp.StepError
	for _, ev := range events {
		if ev.Attempt == 1 && !ev.OK {
			if !errors.As(ev.Err, &refusal) || !ev.Retry {
				t.Fatalf("first attempt failed with %+v", ev)
			}
		}
	}
	if refusal == nil || refusal.Step != rqp.StepGrant || refusal.StatusCode != 403 || refusal.Code != "invalid_ticket" {
		t.Fatalf("Keycloak's answer to the expired ticket: %+v", refusal)
	}
	t.Logf("Keycloak %s answers an expired ticket with %d %s: %s", "26.5", refusal.StatusCode, refusal.Code, refusal.Description)
	if res.Receipt.SenderEmail != e2etest.AliceEmail || res.Receipt.SHA256 != hexSHA(data) {
		t.Errorf("receipt %+v", res.Receipt)
	}
}
