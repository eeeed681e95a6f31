package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/umawide/umawide/internal/uma"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/umawide/umawide/internal/formlogin"
	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// syncBuffer is a bytes.Buffer safe for the login goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type run struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) run {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Main(context.Background(), args, IO{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	return run{code, stdout.String(), stderr.String()}
}

// pushArgs are the flags that point the CLI at the fake stack.
func pushArgs(s *umafake.Stack, file string, extra ...string) []string {
	return append([]string{"push",
		"--to", s.Incoming(), "--file", file,
		"--authn-issuer", s.Issuer("foo"), "--authn-client-secret", umafake.AuthNSecret,
		"--as-issuer", s.Issuer("bar"), "--as-client-secret", umafake.ASSecret,
		"--claims-provider", s.CP.URL, "--timeout", "5s",
	}, extra...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertClean(t *testing.T, r run) {
	t.Helper()
	for _, secret := range []string{umafake.AuthNSecret, umafake.ASSecret, umafake.AlicePassword, umafake.BobPassword, "eyJ"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output contains a secret or token %q:\n%s\n%s", secret, r.stdout, r.stderr)
		}
	}
}

func TestPushHuman(t *testing.T) {
	s := umafake.New(t)
	file := writeFile(t, "hello.txt", "hello Bob\n")
	r := runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail)...)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	msgs := s.StoredMessages()
	if len(msgs) != 1 || string(msgs[0].Body) != "hello Bob\n" || msgs[0].FileName != "hello.txt" {
		t.Fatalf("stored %+v", msgs)
	}
	if !strings.HasPrefix(r.stdout, "201 Created "+s.RS.URL+"/incoming/bob/messages/"+msgs[0].ID+"\n") {
		t.Errorf("stdout %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var steps []string
	for _, l := range lines {
		if strings.Contains(l, "/10 ") {
			steps = append(steps, l)
		}
	}
	if len(steps) != 10 {
		t.Fatalf("%d step lines:\n%s", len(steps), r.stderr)
	}
	for i, l := range steps {
		if !strings.HasPrefix(strings.TrimSpace(l), fmt.Sprintf("%d/10 ", i+1)) || !strings.HasSuffix(l, "ok") {
			t.Errorf("step line %d: %q", i+1, l)
		}
	}
	if !strings.Contains(steps[0], "401 Unauthorized") || !strings.Contains(steps[8], "201 Created") {
		t.Errorf("statuses:\n%s", r.stderr)
	}
	assertClean(t, r)
}

func TestPushVerboseJSON(t *testing.T) {
	s := umafake.New(t)
	file := writeFile(t, "data.bin", "\x00\x01\x02")
	r := runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail, "--json", "-v")...)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var out struct {
		OK       bool
		Location string
		Message  uma.Message
		Content  struct {
			SHA256, Type string
			Length       int64
		}
		Steps    []stepJSON
		Attempts int
		First    *int64 `json:"first_request_body_bytes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is no JSON: %v\n%s", err, r.stdout)
	}
	sum := sha256.Sum256([]byte("\x00\x01\x02"))
	if !out.OK || out.Message.SHA256 != hex.EncodeToString(sum[:]) || out.Content.Length != 3 || len(out.Steps) != 10 ||
		out.Attempts != 1 || out.First == nil || *out.First != 0 || out.Content.Type != "application/octet-stream" {
		t.Fatalf("result %+v", out)
	}
	for _, st := range out.Steps {
		if st.Detail == "" || !st.OK {
			t.Errorf("step %+v", st)
		}
	}
	// -v prints the details on stderr.
	if !strings.Contains(r.stderr, "ticket_digest ") || !strings.Contains(r.stderr, "content_sha256=") {
		t.Errorf("verbose output lacks details:\n%s", r.stderr)
	}
	assertClean(t, r)
}

func TestPushFromEnvironment(t *testing.T) {
	s := umafake.New(t)
	env := map[string]string{
		"RQP_CLIENT_TO":                  s.RS.URL + "/incoming/nobody", // the flag wins
		"RQP_CLIENT_FILE":                "-",
		"RQP_CLIENT_EMAIL":               umafake.AliceEmail,
		"RQP_CLIENT_AUTHN_ISSUER":        s.Issuer("foo"),
		"RQP_CLIENT_AUTHN_CLIENT_SECRET": umafake.AuthNSecret,
		"RQP_CLIENT_AS_ISSUER":           s.Issuer("bar"),
		"RQP_CLIENT_AS_CLIENT_SECRET":    umafake.ASSecret,
		"RQP_CLIENT_CLAIMS_PROVIDER":     s.CP.URL,
		"RQP_CLIENT_NAME":                "from-stdin.csv",
		"RQP_CLIENT_CONTENT_TYPE":        "text/csv",
		"RQP_CLIENT_Q":                   "true",
	}
	r := runCLI(t, env, "a,b\n1,2\n", "push", "--to", s.Incoming())
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	m := s.StoredMessages()[0]
	if string(m.Body) != "a,b\n1,2\n" || m.FileName != "from-stdin.csv" || m.ContentType != "text/csv" {
		t.Errorf("stored %+v", m)
	}
	if strings.Contains(r.stderr, "/10") {
		t.Errorf("-q still printed steps:\n%s", r.stderr)
	}
	bad := map[string]string{"RQP_CLIENT_TIMEOUT": "soon"}
	if r := runCLI(t, bad, "", "push"); r.code != ExitUsage || !strings.Contains(r.stderr, "$RQP_CLIENT_TIMEOUT") {
		t.Errorf("bad variable: exit %d %s", r.code, r.stderr)
	}
}

func TestPushSecrets(t *testing.T) {
	s := umafake.New(t)
	file := writeFile(t, "x.txt", "x")
	secretFile := writeFile(t, "secret", umafake.ASSecret+"\n")
	args := pushArgs(s, file, "--email", umafake.AliceEmail)
	// Drop the inline AS secret: it comes from the file.
	for i := range args {
		if args[i] == "--as-client-secret" {
			args = append(args[:i], args[i+2:]...)
			break
		}
	}
	if r := runCLI(t, nil, "", append(args, "--as-client-secret-file", secretFile)...); r.code != ExitOK {
		t.Fatalf("secret from file: exit %d\n%s", r.code, r.stderr)
	}
	r := runCLI(t, map[string]string{"RQP_CLIENT_AS_CLIENT_SECRET": "x"}, "", append(args, "--as-client-secret-file", secretFile)...)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "not both") {
		t.Errorf("secret twice: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "", append(args, "--as-client-secret-file", filepath.Join(t.TempDir(), "none"))...); r.code != ExitUsage {
		t.Errorf("missing secret file: exit %d %s", r.code, r.stderr)
	}
}

func TestPushExitStatuses(t *testing.T) {
	file := writeFile(t, "x.txt", "x")
	for _, tc := range []struct {
		name  string
		setup func(s *umafake.Stack) []string
		code  int
		msg   string
	}{
		{"denied", func(s *umafake.Stack) []string {
			s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
				umafake.Error(w, 403, "access_denied", "not_authorized")
				return true
			})
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitDenied, "step 7 (UMA grant): denied by the authorization server"},
		{"sender unknown", func(s *umafake.Stack) []string {
			return pushArgs(s, file, "--email", "carol@foo.example")
		}, ExitRefused, "step 5 (claims token request): refused by the claims provider"},
		{"claims provider down", func(s *umafake.Stack) []string {
			s.CP.Close()
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitUnreachable, "step 5 (claims token request): the claims provider at"},
		{"resource server down", func(s *umafake.Stack) []string {
			s.RS.Close()
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitUnreachable, "step 1 (request without token): the resource server at"},
		{"login fails", func(s *umafake.Stack) []string {
			return pushArgs(s, file, "--login", "--login-user", "alice", "--login-password-file", writeFile(t, "pw", "wrong"))
		}, ExitLogin, "Invalid username or password"},
		{"unexpected answer", func(s *umafake.Stack) []string {
			s.Hook("cp.token", func(w http.ResponseWriter, r *http.Request) bool { _, _ = io.WriteString(w, "<html>"); return true })
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitProtocol, "step 6 (claims token): unexpected answer"},
		{"challenge for another Incoming", func(s *umafake.Stack) []string {
			s.TicketIncomingURI = "https://rs.other.example/incoming/bob"
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitProtocol, "step 2 (UMA challenge): unexpected answer from the resource server at http://127.0.0.1:"},
		{"server failure", func(s *umafake.Stack) []string {
			s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
				umafake.Error(w, 500, "server_error", "boom")
				return true
			})
			return pushArgs(s, file, "--email", umafake.AliceEmail)
		}, ExitServer, "step 7 (UMA grant): the authorization server"},
		{"wrong AS secret", func(s *umafake.Stack) []string {
			return append(pushArgs(s, file, "--email", umafake.AliceEmail), "--as-client-secret", "nope")
		}, ExitUsage, "invalid_client"},
		{"no email", func(s *umafake.Stack) []string { return pushArgs(s, file) }, ExitUsage, "--email is required"},
		{"no file", func(s *umafake.Stack) []string {
			return pushArgs(s, filepath.Join(t.TempDir(), "missing"), "--email", umafake.AliceEmail)
		}, ExitUsage, "--file"},
		{"stdin too large", func(s *umafake.Stack) []string {
			return pushArgs(s, "-", "--email", umafake.AliceEmail, "--max-stdin-bytes", "3")
		}, ExitUsage, "larger than the limit"},
		{"unknown flag", func(s *umafake.Stack) []string { return []string{"push", "--bogus"} }, ExitUsage, "bogus"},
		{"stray argument", func(s *umafake.Stack) []string {
			return append(pushArgs(s, file, "--email", umafake.AliceEmail), "extra", "more") // one last argument is the file (TestPushFileArgument)
		}, ExitUsage, "unexpected arguments"},
		{"plain http to a remote AS", func(s *umafake.Stack) []string {
			return append(pushArgs(s, file, "--email", umafake.AliceEmail), "--as-issuer", "http://as.bar.example/realms/bar")
		}, ExitUsage, "https required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := umafake.New(t)
			args := tc.setup(s)
			for _, jsonOut := range []bool{false, true} {
				a := args
				if jsonOut {
					a = append(append([]string(nil), args...), "--json")
				}
				r := runCLI(t, nil, "abcdef", a...)
				if r.code != tc.code {
					t.Fatalf("json=%v: exit %d, want %d\n%s", jsonOut, r.code, tc.code, r.stderr)
				}
				last := lastLine(r.stderr)
				if !strings.HasPrefix(last, "rqp-client") || !strings.Contains(last, tc.msg) {
					t.Errorf("last line %q lacks %q", last, tc.msg)
				}
				if jsonOut && tc.name != "unknown flag" && tc.name != "stray argument" {
					var out pushResultJSON
					if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.OK || out.Error == nil || out.Error.ExitStatus != tc.code {
						t.Errorf("JSON %v: %s", err, r.stdout)
					}
					if mismatch := tc.name == "challenge for another Incoming"; out.Error != nil && (out.Error.Reason == rqp.ReasonChallengeMismatch) != mismatch {
						t.Errorf("JSON reason %q: %s", out.Error.Reason, r.stdout)
					}
				}
				if tc.name == "challenge for another Incoming" &&
					(!strings.Contains(last, "https://rs.other.example/incoming/bob") || !strings.Contains(last, s.IncomingURL(umafake.Owner)) ||
						!strings.Contains(last, rqp.ReasonChallengeMismatch)) {
					t.Errorf("last line %q does not name the reason and both Incoming URLs", last)
				}
				if !jsonOut && r.stdout != "" {
					t.Errorf("stdout on failure: %q", r.stdout)
				}
				assertClean(t, r)
			}
			if len(s.StoredMessages()) != 0 {
				t.Error("a message was stored")
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// browserWatcher is a stderr that plays the person: when the CLI prints the
// login URL, it logs in there like a browser.
type browserWatcher struct {
	syncBuffer
	once     sync.Once
	user, pw string
	loginErr chan error
	partial  string
}

func (b *browserWatcher) Write(p []byte) (int, error) {
	n, err := b.syncBuffer.Write(p)
	b.mu.Lock()
	b.partial += string(p)
	text := b.partial
	b.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), LoginURLPrefix); ok {
			b.once.Do(func() {
				go func() { b.loginErr <- formlogin.OpenURL(b.user, b.pw, nil)(context.Background(), u) }()
			})
		}
	}
	return n, err
}

func TestPushLoginPrintsURL(t *testing.T) {
	for _, noBrowser := range []bool{false, true} {
		s := umafake.New(t)
		file := writeFile(t, "x.txt", "x")
		stderr := &browserWatcher{user: "alice", pw: umafake.AlicePassword, loginErr: make(chan error, 1)}
		var stdout syncBuffer
		var opened []string
		args := pushArgs(s, file, "--login", "--login-timeout", "10s")
		if noBrowser {
			args = append(args, "--no-browser")
		}
		code := Main(context.Background(), args, IO{Stdout: &stdout, Stderr: stderr, Getenv: func(string) (string, bool) { return "", false },
			OpenBrowser: func(u string) bool { opened = append(opened, u); return true }})
		if code != ExitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
		if err := <-stderr.loginErr; err != nil {
			t.Fatal(err)
		}
		if len(s.StoredMessages()) != 1 || s.StoredMessages()[0].SenderEmail != umafake.AliceEmail {
			t.Fatalf("stored %+v", s.StoredMessages())
		}
		if noBrowser != (len(opened) == 0) {
			t.Errorf("--no-browser=%v, browser opened %d times", noBrowser, len(opened))
		}
		if f := s.CPForms()[0]; f.Has("email") {
			t.Error("email sent with a user token")
		}
	}
}

func TestInbox(t *testing.T) {
	s := umafake.New(t)
	file := writeFile(t, "minutes.txt", "the minutes")
	if r := runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail)...); r.code != ExitOK {
		t.Fatalf("push: %s", r.stderr)
	}
	env := map[string]string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD": umafake.BobPassword, "RQP_CLIENT_INBOX_ISSUER": s.Issuer("bar")}
	base := []string{"inbox", "--incoming", s.Incoming(), "--login-user", "bob"}
	r := runCLI(t, env, "", base...)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	id := s.StoredMessages()[0].ID
	if !strings.Contains(r.stdout, "bob's Incoming") || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, umafake.AliceEmail) ||
		!strings.Contains(r.stdout, "minutes.txt") {
		t.Errorf("list:\n%s", r.stdout)
	}
	assertClean(t, r)

	r = runCLI(t, env, "", append(base, "--json")...)
	var list uma.MessageList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Messages) != 1 || list.Messages[0].ID != id {
		t.Errorf("JSON list %v: %s", err, r.stdout)
	}

	out := filepath.Join(t.TempDir(), "got.txt")
	r = runCLI(t, env, "", append(base, "--get", id, "--out", out)...)
	got, _ := os.ReadFile(out)
	if r.code != ExitOK || string(got) != "the minutes" || !strings.Contains(r.stderr, list.Messages[0].SHA256) {
		t.Errorf("get: exit %d, %q\n%s", r.code, got, r.stderr)
	}
	if r := runCLI(t, env, "", append(base, "--get", "nope")...); r.code != ExitRefused {
		t.Errorf("unknown message: exit %d", r.code)
	}
	env["RQP_CLIENT_INBOX_LOGIN_PASSWORD"] = "wrong"
	if r := runCLI(t, env, "", base...); r.code != ExitLogin {
		t.Errorf("wrong password: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "", "inbox", "--incoming", s.Incoming(), "--login-user", "bob"); r.code != ExitUsage {
		t.Errorf("no password: exit %d", r.code)
	}
	if r := runCLI(t, nil, "", "inbox"); r.code != ExitUsage {
		t.Errorf("no --incoming: exit %d", r.code)
	}
}

func TestHelp(t *testing.T) {
	r := runCLI(t, nil, "", "push", "-h")
	if r.code != ExitOK {
		t.Fatalf("exit %d", r.code)
	}
	for _, f := range []string{"-to", "-file", "-email", "-login", "-authn-issuer", "-as-client-secret-file", "-claims-provider", "-discovery-base", "-json", "$RQP_CLIENT_AS_ISSUER"} {
		if !strings.Contains(r.stderr, f) {
			t.Errorf("push -h lacks %s", f)
		}
	}
	if r := runCLI(t, nil, "", "inbox", "-h"); r.code != ExitOK || !strings.Contains(r.stderr, "$RQP_CLIENT_INBOX_LOGIN_USER") {
		t.Errorf("inbox -h: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "", "help"); r.code != ExitOK || !strings.Contains(r.stdout, "exit status") {
		t.Errorf("help: %d", r.code)
	}
	if r := runCLI(t, nil, "", "frobnicate"); r.code != ExitUsage {
		t.Errorf("unknown command: %d", r.code)
	}
	if r := runCLI(t, nil, ""); r.code != ExitUsage {
		t.Errorf("no command: %d", r.code)
	}
}

// The file may come as the last argument, after the flags, also after a
// boolean flag; a flag's value is never taken for it.
func TestPushFileArgument(t *testing.T) {
	s := umafake.New(t)
	file := writeFile(t, "note.txt", "positional")
	args := pushArgs(s, "", "--email", umafake.AliceEmail, "-q", file)
	args = slices.Delete(args, 3, 5) // no --file
	if r := runCLI(t, nil, "", args...); r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := s.StoredMessages(); len(got) != 1 || string(got[0].Body) != "positional" {
		t.Fatalf("stored %+v", got)
	}
	if r := runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail, file)...); r.code != ExitUsage || !strings.Contains(r.stderr, "not both") {
		t.Errorf("--file and an argument: exit %d %s", r.code, r.stderr)
	}
	args = pushArgs(s, "", "--email", umafake.AliceEmail, "--name")
	args = slices.Delete(args, 3, 5)
	if r := runCLI(t, nil, "", append(args, file)...); r.code != ExitUsage {
		t.Errorf("a flag's value taken for the file: exit %d %s", r.code, r.stderr)
	}
}
