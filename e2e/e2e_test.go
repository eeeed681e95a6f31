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

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
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
	Message  message
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
	token := w.bobToken(t)
	body, _ := w.bobGet(t, token, "/messages?limit=1000")
	var list struct{ Messages []message }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var m *message
	for i := range list.Messages {
		if list.Messages[i].ID == id {
			m = &list.Messages[i]
		}
	}
	if m == nil {
		t.Fatalf("message %s is not in Bob's Incoming: %+v", id, list.Messages)
	}
	if m.SenderEmail != sender || m.SHA256 != hexSHA(data) || m.Size != int64(len(data)) || m.Owner != "bob" || m.SenderIss != w.cpURL {
		t.Errorf("Bob sees %+v; want sender %s, sha256 %s, %d bytes, sender_iss %s", m, sender, hexSHA(data), len(data), w.cpURL)
	}
	got, h := w.bobGet(t, token, "/messages/"+id)
	if string(got) != string(data) || h.Get("ETag") != `"`+hexSHA(data)+`"` {
		t.Errorf("Bob reads %q (ETag %s), want %q", got, h.Get("ETag"), data)
	}
}

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)

	t.Run("client credentials", func(t *testing.T) {
		data := content(t)
		r := w.cli(t, nil, w.pushArgs(writeFile(t, "minutes.txt", data), "--email", aliceEmail, "--json")...)
		if r.code != 0 {
			t.Fatal(r)
		}
		var res pushResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		if !res.OK || res.Attempts != 1 || len(res.Steps) != 10 || res.Message.SenderEmail != aliceEmail || res.Message.SHA256 != hexSHA(data) {
			t.Fatalf("result %+v", res)
		}
		if !strings.HasPrefix(res.Location, w.rsURL+"/incoming/bob/messages/"+res.Message.ID) {
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
		w.assertStored(t, res.Message.ID, data, aliceEmail)
		for _, secret := range []string{rqpSecret, "eyJ"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("the output contains %q", secret)
			}
		}
	})

	t.Run("discovery and human output", func(t *testing.T) {
		data := content(t)
		args := w.pushArgs(writeFile(t, "notes.md", data), "--email", aliceEmail, "-v")
		for i := range args {
			if args[i] == "--claims-provider" {
				args[i], args[i+1] = "--discovery-base", w.cpURL
			}
		}
		r := w.cli(t, nil, args...)
		if r.code != 0 {
			t.Fatal(r)
		}
		n := 0
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, "/10 ") && strings.HasSuffix(l, "ok") {
				n++
			}
		}
		if n != 10 || !strings.Contains(r.stderr, "discovered for foo.example") {
			t.Errorf("%d step lines ok\n%s", n, r)
		}
		loc, ok := strings.CutPrefix(strings.SplitN(r.stdout, "\n", 2)[0], "201 Created ")
		if !ok {
			t.Fatalf("stdout %q", r.stdout)
		}
		w.assertStored(t, loc[strings.LastIndexByte(loc, '/')+1:], data, aliceEmail)
	})

	t.Run("login through the browser", func(t *testing.T) {
		data := content(t)
		ctx := timeout(t, 3*time.Minute)
		cmd := exec.CommandContext(ctx, w.bin["rqp-client"], w.pushArgs(writeFile(t, "login.txt", data), "--login", "--no-browser", "--login-timeout", "2m", "--json")...)
		cmd.Env = cleanEnv()
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
		loc, err := kctest.NewBrowser().Login(ctx, authURL, "alice", alicePassword)
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
		w.assertStored(t, res.Message.ID, data, aliceEmail)
	})

	t.Run("login through the form, no browser", func(t *testing.T) {
		data := content(t)
		r := w.cli(t, []string{"RQP_CLIENT_LOGIN_PASSWORD=" + alicePassword},
			w.pushArgs(writeFile(t, "scripted.txt", data), "--login", "--login-user", "alice", "--json")...)
		if r.code != 0 {
			t.Fatal(r)
		}
		var res pushResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatal(err)
		}
		w.assertStored(t, res.Message.ID, data, aliceEmail)
		if strings.Contains(r.stdout+r.stderr, alicePassword) {
			t.Error("the password shows in the output")
		}
	})

	t.Run("Bob's inbox", func(t *testing.T) {
		data := content(t)
		r := w.cli(t, nil, w.pushArgs(writeFile(t, "for-inbox.txt", data), "--email", aliceEmail, "--json")...)
		var res pushResult
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
			t.Fatal(r)
		}
		env := []string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD=" + bobPassword}
		base := []string{"inbox", "--incoming", w.rsURL + "/incoming/bob", "--issuer", w.kc.IssuerURL(w.realm), "--login-user", "bob"}
		r = w.cli(t, env, base...)
		if r.code != 0 {
			t.Fatal(r)
		}
		if !strings.Contains(r.stdout, "bob's Incoming") || !strings.Contains(r.stdout, res.Message.ID) || !strings.Contains(r.stdout, "for-inbox.txt") {
			t.Errorf("inbox:\n%s", r)
		}
		out := filepath.Join(t.TempDir(), "got")
		r = w.cli(t, env, append(base, "--get", res.Message.ID, "--out", out)...)
		got, _ := os.ReadFile(out)
		if r.code != 0 || string(got) != string(data) || !strings.Contains(r.stderr, hexSHA(data)) {
			t.Errorf("get: %q\n%s", got, r)
		}
		// Alice cannot read Bob's Incoming (she is no user of Bob's realm).
		r = w.cli(t, []string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD=" + alicePassword}, "inbox", "--incoming", w.rsURL+"/incoming/bob",
			"--issuer", w.kc.IssuerURL(w.realm), "--login-user", "alice")
		if r.code != exitLogin {
			t.Errorf("alice at Bob's realm: %s", r)
		}
	})

	// Refusals: the CLI's exit status and one-line reason, nothing stored.
	refused := func(t *testing.T, env []string, args []string, code int, want ...string) {
		t.Helper()
		before := len(w.bobMessages(t))
		r := w.cli(t, env, args...)
		if r.code != code {
			t.Fatalf("exit %d, want %d\n%s", r.code, code, r)
		}
		last := r.lastLine()
		for _, s := range want {
			if !strings.Contains(last, s) {
				t.Errorf("reason %q lacks %q", last, s)
			}
		}
		if r.stdout != "" {
			t.Errorf("stdout on failure: %q", r.stdout)
		}
		if after := len(w.bobMessages(t)); after != before {
			t.Errorf("Bob's Incoming went from %d to %d messages", before, after)
		}
	}
	file := writeFile(t, "refused.txt", []byte("must not arrive"))

	t.Run("Alice unknown to the Claims Provider", func(t *testing.T) {
		refused(t, nil, w.pushArgs(file, "--email", "nobody-"+randomHex(3)+"@foo.example"), exitRefused,
			"step 5 (claims token request): refused by the claims provider", "403 access_denied")
	})
	t.Run("AS denies an untrusted domain", func(t *testing.T) {
		refused(t, nil, w.pushArgs(file, "--email", w.outsider), exitDenied,
			"step 7 (UMA grant): denied by the authorization server", "403 access_denied: not_authorized")
	})
	t.Run("RS unreachable", func(t *testing.T) {
		args := w.pushArgs(file, "--email", aliceEmail)
		args[2] = "http://" + freeAddr(t) + "/incoming/bob"
		refused(t, nil, args, exitUnreachable, "step 1 (request without token): the resource server at", "is unreachable")
	})
	t.Run("owner unknown", func(t *testing.T) {
		args := w.pushArgs(file, "--email", aliceEmail)
		args[2] = w.rsURL + "/incoming/nobody"
		refused(t, nil, args, exitRefused, "step 1", "404 not_found")
	})
	t.Run("wrong secret at Bob's AS", func(t *testing.T) {
		refused(t, []string{"RQP_CLIENT_AS_CLIENT_SECRET=wrong"}, w.pushArgs(file, "--email", aliceEmail), exitUsage,
			"step 7", "401 unauthorized_client")
	})
	t.Run("AS of another realm", func(t *testing.T) {
		args := append(w.pushArgs(file, "--email", aliceEmail), "--as-issuer", w.kc.IssuerURL("bar"))
		refused(t, nil, args, exitUsage, "step 2", "no registration there")
	})

	t.Run("Keycloak refuses bad tickets with invalid_ticket", func(t *testing.T) { w.badTickets(t) })
	t.Run("expired ticket: the flow starts over once", func(t *testing.T) { w.expiredTicket(t) })

	// Last, since it stops the Claims Provider.
	t.Run("Claims Provider down", func(t *testing.T) {
		if err := w.cp.Stop(timeout(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		refused(t, nil, w.pushArgs(file, "--email", aliceEmail), exitUnreachable,
			"step 5 (claims token request): the claims provider at "+w.cpURL, "is unreachable")
	})
}

// badTickets shows what Keycloak answers for a ticket it cannot use (what
// the client's retry relies on): 403 invalid_ticket, before any policy runs.
func (w *world) badTickets(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, w.rsURL+"/incoming/bob", strings.NewReader("x"))
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
		form := url.Values{"grant_type": {uma.GrantTypeUMATicket}, "ticket": {ticket}, "submit_request": {"false"},
			"claim_token_format": {uma.ClaimTokenFormatJWT}, "claim_token": {"e30"}}
		_, err := kctest.PostToken(timeout(t, time.Minute), w.kc.IssuerURL(w.realm), "rqp-client", rqpSecret, form)
		var te *kctest.TokenError
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
	realm := importBar(t, w.kc, "bar-e2e-short-"+randomHex(4), w.cpURL, func(rep map[string]any) {
		rs := findClient(rep, "resource-server")
		attrs, _ := rs["attributes"].(map[string]any)
		if attrs == nil {
			attrs = map[string]any{}
			rs["attributes"] = attrs
		}
		attrs["access.token.lifespan"] = "15"
	})
	rsAddr := freeAddr(t)
	w.startRS(t, rsAddr, realm, "resource-server-short")

	rec := &ticketRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	rec.next.(*http.Transport).ExpectContinueTimeout = 2 * time.Second
	var events []rqp.Event
	waited := false
	c, err := rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: w.kc.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: rqpSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: w.cpURL},
		Registrations:  []rqp.Registration{{Issuer: w.kc.IssuerURL(realm), ClientID: "rqp-client", ClientSecret: rqpSecret}},
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
	res, err := c.Push(timeout(t, 2*time.Minute), rqp.Request{To: "http://" + rsAddr + "/incoming/bob", Content: rqp.BytesContent(data, "late.txt"), Email: aliceEmail})
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
	if res.Receipt.SenderEmail != aliceEmail || res.Receipt.SHA256 != hexSHA(data) {
		t.Errorf("receipt %+v", res.Receipt)
	}
}
