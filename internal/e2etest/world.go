// Package e2etest builds the ecosystem the end-to-end suites run against:
// the real binaries (claims-provider, resource-server, rqp-client) built
// once per package run, a private copy of realm bar whose claims-token policy
// trusts this run's Claims Provider, the Claims Provider and the Resource
// Server as processes, and Bob's view of his Incoming. It is shared by the
// flow suite (e2e), the attack suite (e2e/attacks) and the fault and load
// suite (e2e/resilience).
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/umawide/umawide/internal/uma"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Demo values of the realm files (keycloak/realms).
const (
	RQPSecret     = "rqp-client-secret"
	AlicePassword = "alice-password"
	BobPassword   = "bob-password"
	AliceEmail    = "alice@foo.example"
)

// World is one run's ecosystem: Keycloak, a private copy of realm bar
// trusting this run's Claims Provider, and the two services as processes.
type World struct {
	KC       *launcher.Keycloak
	Dir      string
	Bin      map[string]string
	Realm    string // the copy of bar the Resource Server serves
	CPURL    string
	RSURL    string
	CP, RS   *stack.Service
	CPSpec   stack.ClaimsProvider
	RSSpec   stack.ResourceServer
	Outsider string // a user of realm foo in a domain the AS does not trust

	bobMu  sync.Mutex
	bobTok string
	bobExp time.Time
}

// Options change what New builds.
type Options struct {
	// KC is the Keycloak to use; default kctest.Keycloak(t).
	KC *launcher.Keycloak
	// RealmPrefix names the realm copy; default "bar-e2e-".
	RealmPrefix string
	// MutateRealm changes the realm copy before it is imported.
	MutateRealm func(rep map[string]any)
	// CPExtra and RSExtra are more flags for the services.
	CPExtra, RSExtra []string
	// Realm, when set, is served as it is (a realm imported from the files
	// at Keycloak's start, whose claims-token policy already trusts the
	// Claims Provider at CPAddr) instead of a copy of bar.
	Realm string
	// CPAddr is where the Claims Provider listens; default a free port.
	CPAddr string
	// RSAddr is where the Resource Server listens; default a free port (a
	// test that registers the page's redirect URI in MutateRealm picks it
	// first).
	RSAddr string
	// NoOutsider skips the user of realm foo in a domain the AS does not
	// trust (users added at run time are gone after a Keycloak restart).
	NoOutsider bool
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string { return kctest.RandomHex(n) }

// FreeAddr is a free 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

// Timeout is a context ending after d or with t.
func Timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Build compiles the three programs into dir/bin.
func Build(t testing.TB, dir string) map[string]string {
	t.Helper()
	bin, err := stack.Build(Timeout(t, 5*time.Minute), filepath.Join(dir, "bin"), "claims-provider", "resource-server", "rqp-client")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// New builds the binaries, imports the realm copy, adds the outsider user
// and starts the Claims Provider and the Resource Server; everything is
// undone when t ends.
func New(t testing.TB, o Options) *World {
	t.Helper()
	w := &World{KC: o.KC, Dir: t.TempDir()}
	if w.KC == nil {
		w.KC = kctest.Keycloak(t)
	}
	if o.RealmPrefix == "" {
		o.RealmPrefix = "bar-e2e-"
	}
	w.Bin = Build(t, w.Dir)
	cpAddr, rsAddr := o.CPAddr, o.RSAddr
	if cpAddr == "" {
		cpAddr = FreeAddr(t)
	}
	if rsAddr == "" {
		rsAddr = FreeAddr(t)
	}
	w.CPURL, w.RSURL = "http://"+cpAddr, "http://"+rsAddr
	if o.Realm != "" {
		w.Realm = o.Realm
	} else {
		w.Realm = ImportBar(t, w.KC, o.RealmPrefix+RandomHex(4), w.CPURL, o.MutateRealm)
	}
	if !o.NoOutsider {
		w.Outsider = AddUser(t, w.KC, "foo", "e2e-dave-"+RandomHex(4), "evil.example", true)
	}

	w.CPSpec = stack.ClaimsProvider{
		Binary: w.Bin["claims-provider"], Listen: cpAddr, KeycloakURL: w.KC.BaseURL, Realm: "foo",
		KeyDir: stack.KeyDir(w.Dir), Domains: []string{"foo.example", "evil.example"},
		LogPath: stack.LogPath(w.Dir, "claims-provider"), Extra: o.CPExtra,
	}
	w.CP = StartService(t, w.CPSpec.Spec())
	w.RSSpec = stack.ResourceServer{
		Binary: w.Bin["resource-server"], Listen: rsAddr, KeycloakURL: w.KC.BaseURL, Realm: w.Realm,
		DB: filepath.Join(w.Dir, "resource-server.db"), LogPath: stack.LogPath(w.Dir, "resource-server"), Extra: o.RSExtra,
	}
	w.RS = StartService(t, w.RSSpec.Spec())
	return w
}

// StartRS starts one more Resource Server for realm (its database and log
// named after name).
func (w *World) StartRS(t testing.TB, addr, realm, name string) *stack.Service {
	t.Helper()
	return StartService(t, stack.ResourceServer{
		Binary: w.Bin["resource-server"], Listen: addr, KeycloakURL: w.KC.BaseURL, Realm: realm,
		DB: filepath.Join(w.Dir, name+".db"), LogPath: stack.LogPath(w.Dir, name),
	}.Spec())
}

// StartService starts a service and stops it (and shows its log on failure)
// when t ends.
func StartService(t testing.TB, spec stack.Spec) *stack.Service {
	t.Helper()
	return StartServiceUntil(t, t, spec)
}

// StartServiceUntil starts a service for t and stops it when owner ends: a
// subtest restarts a service that outlives it.
func StartServiceUntil(t, owner testing.TB, spec stack.Spec) *stack.Service {
	t.Helper()
	svc, err := stack.Start(Timeout(t, 2*time.Minute), spec)
	if err != nil {
		t.Fatal(err)
	}
	owner.Cleanup(func() {
		if err := svc.Stop(context.Background()); err != nil {
			owner.Errorf("stopping %s: %v", spec.Name, err)
		}
		if owner.Failed() {
			ShowLog(owner, spec.Name, spec.LogPath)
		}
	})
	return svc
}

// ShowLog logs the tail of a service's log.
func ShowLog(t testing.TB, name, path string) {
	if log, err := os.ReadFile(path); err == nil {
		if len(log) > 6000 {
			log = log[len(log)-6000:]
		}
		t.Logf("--- %s log (tail) ---\n%s", name, log)
	}
}

// ImportBar imports a copy of realm bar named name whose claims-token policy
// trusts the Claims Provider at cpURL for foo.example (http on loopback
// allowed), changed by mutate, and deletes the realm when t ends.
func ImportBar(t testing.TB, kc *launcher.Keycloak, name, cpURL string, mutate func(rep map[string]any)) string {
	t.Helper()
	return kctest.ImportBarCopy(t, kc, launcher.BarCopy{Name: name, ClaimsProviderURL: cpURL, Mutate: mutate})
}

// AddUser adds an enabled user with an email in domain (verified or not) to
// realm, removes it when t ends and returns the email.
func AddUser(t testing.TB, kc *launcher.Keycloak, realm, username, domain string, verified bool) string {
	t.Helper()
	ctx := Timeout(t, time.Minute)
	email := username + "@" + domain
	user := map[string]any{"username": username, "email": email, "emailVerified": verified, "enabled": true,
		"firstName": "Test", "lastName": "User"}
	if err := kc.Admin(ctx, http.MethodPost, "/"+realm+"/users", user, nil); err != nil {
		t.Fatal(err)
	}
	var found []struct{ ID string }
	if err := kc.Admin(ctx, http.MethodGet, "/"+realm+"/users?exact=true&username="+url.QueryEscape(username), nil, &found); err != nil || len(found) != 1 {
		t.Fatalf("user %s: %v %v", username, found, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kc.Admin(ctx, http.MethodDelete, "/"+realm+"/users/"+found[0].ID, nil, nil); err != nil {
			t.Errorf("deleting user %s: %v", username, err)
		}
	})
	return email
}

// CLIResult is one run of the rqp-client binary.
type CLIResult struct {
	Code           int
	Stdout, Stderr string
}

func (r CLIResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.Code, r.Stdout, r.Stderr)
}

// LastLine is the last line of standard error (the CLI's reason).
func (r CLIResult) LastLine() string {
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

// CleanEnv is this process's environment without RQP_CLIENT_* variables (a
// developer's settings must not leak into the tests), plus extra.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RQP_CLIENT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// CLI runs rqp-client with args and the extra environment.
func (w *World) CLI(t testing.TB, env []string, args ...string) CLIResult {
	t.Helper()
	cmd := exec.CommandContext(Timeout(t, 3*time.Minute), w.Bin["rqp-client"], args...)
	cmd.Env = CleanEnv(env...)
	return RunCLI(t, cmd)
}

// RunCLI runs an rqp-client command and returns its exit code and output;
// a command that could not run at all fails the test.
func RunCLI(t testing.TB, cmd *exec.Cmd) CLIResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return CLIResult{code, stdout.String(), stderr.String()}
}

// PushArgs point `rqp-client push` at this world (Bob's Incoming).
func (w *World) PushArgs(file string, extra ...string) []string {
	return append([]string{"push",
		"--to", w.RSURL + "/incoming/bob", "--file", file,
		"--authn-issuer", w.KC.IssuerURL("foo"),
		"--as-issuer", w.KC.IssuerURL(w.Realm),
		"--claims-provider", w.CPURL,
	}, extra...)
}

// Message is a stored message as the Resource Server lists it.
type Message = uma.Message

// BobToken logs Bob in at the realm copy (incoming-app, code + PKCE), as a
// browser would.
func (w *World) BobToken(t testing.TB) string {
	t.Helper()
	tok, err := kctest.LoginForTokens(Timeout(t, time.Minute), kctest.CodeFlow{
		Issuer: w.KC.IssuerURL(w.Realm), ClientID: "incoming-app",
		RedirectURI: "http://127.0.0.1:43210/callback", Scope: "openid",
	}, "bob", BobPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// CachedBobToken is a token of Bob's that has at least a minute left: one
// login serves many reads.
func (w *World) CachedBobToken(t testing.TB) string {
	t.Helper()
	w.bobMu.Lock()
	defer w.bobMu.Unlock()
	if w.bobTok == "" || time.Until(w.bobExp) < time.Minute {
		w.bobTok = w.BobToken(t)
		claims, err := kctest.Claims(w.bobTok)
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := claims["exp"].(float64)
		w.bobExp = time.Unix(int64(exp), 0)
	}
	return w.bobTok
}

// BobGet reads from Bob's Incoming with his token.
func (w *World) BobGet(t testing.TB, token, path string) ([]byte, http.Header) {
	t.Helper()
	a := testhttp.Get(t, Timeout(t, time.Minute), w.RSURL+"/incoming/bob"+path, token)
	return a.Body, a.Header
}

// BobMessages lists Bob's Incoming as Bob sees it (at most 1000, newest
// first).
func (w *World) BobMessages(t testing.TB) []Message {
	t.Helper()
	body, _ := w.BobGet(t, w.CachedBobToken(t), "/messages?limit=1000")
	var list uma.MessageList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	return list.Messages
}
