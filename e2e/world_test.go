package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Demo values of the realm files (keycloak/realms).
const (
	rqpSecret     = "rqp-client-secret"
	alicePassword = "alice-password"
	bobPassword   = "bob-password"
	aliceEmail    = "alice@foo.example"
)

// world is one run's ecosystem: Keycloak (shared), a private copy of realm
// bar trusting this run's Claims Provider, and the two services as processes.
type world struct {
	kc       *launcher.Keycloak
	dir      string
	bin      map[string]string
	realm    string // the copy of bar the Resource Server serves
	cpURL    string
	rsURL    string
	cp, rs   *stack.Service
	outsider string // a user of realm foo in a domain the AS does not trust
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newWorld builds the binaries, imports the realm copy, adds the outsider
// user and starts the Claims Provider and the Resource Server; everything is
// undone when t ends.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := timeout(t, 5*time.Minute)
	w := &world{kc: kctest.Keycloak(t), dir: t.TempDir()}
	var err error
	w.bin, err = stack.Build(ctx, filepath.Join(w.dir, "bin"), "claims-provider", "resource-server", "rqp-client")
	if err != nil {
		t.Fatal(err)
	}
	cpAddr, rsAddr := freeAddr(t), freeAddr(t)
	w.cpURL, w.rsURL = "http://"+cpAddr, "http://"+rsAddr
	w.realm = importBar(t, w.kc, "bar-e2e-"+randomHex(4), w.cpURL, nil)
	w.outsider = addFooUser(t, w.kc, "e2e-dave-"+randomHex(4), "evil.example")

	w.cp = startService(t, stack.ClaimsProvider{
		Binary: w.bin["claims-provider"], Listen: cpAddr, KeycloakURL: w.kc.BaseURL, Realm: "foo",
		KeyDir: stack.KeyDir(w.dir), Domains: []string{"foo.example", "evil.example"},
		LogPath: stack.LogPath(w.dir, "claims-provider"),
	}.Spec())
	w.rs = w.startRS(t, rsAddr, w.realm, "resource-server")
	return w
}

func (w *world) startRS(t *testing.T, addr, realm, name string) *stack.Service {
	t.Helper()
	return startService(t, stack.ResourceServer{
		Binary: w.bin["resource-server"], Listen: addr, KeycloakURL: w.kc.BaseURL, Realm: realm,
		DB: filepath.Join(w.dir, name+".db"), LogPath: stack.LogPath(w.dir, name),
	}.Spec())
}

// startService starts a service and stops it (and shows its log on failure)
// when t ends.
func startService(t *testing.T, spec stack.Spec) *stack.Service {
	t.Helper()
	svc, err := stack.Start(timeout(t, 2*time.Minute), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(context.Background()); err != nil {
			t.Errorf("stopping %s: %v", spec.Name, err)
		}
		if t.Failed() {
			if log, err := os.ReadFile(spec.LogPath); err == nil {
				if len(log) > 6000 {
					log = log[len(log)-6000:]
				}
				t.Logf("--- %s log (tail) ---\n%s", spec.Name, log)
			}
		}
	})
	return svc
}

// importBar imports bar-realm.json as realm name, its claims-token policy
// trusting the Claims Provider at cpURL for foo.example; mutate may change
// the representation further. The realm is deleted when t ends.
func importBar(t *testing.T, kc *launcher.Keycloak, name, cpURL string, mutate func(rep map[string]any)) string {
	t.Helper()
	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(launcher.RealmDir(root), "bar-realm.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw = launcher.ExpandPlaceholders(raw, map[string]string{
		"UMAWIDE_CLAIMS_PROVIDER_ISSUER":           cpURL,
		"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI":         cpURL + "/jwks",
		"UMAWIDE_CLAIMS_TOKEN_ALLOW_INSECURE_URLS": "true",
	})
	var rep map[string]any
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	rep["realm"] = name
	delete(rep, "id")
	// The copy must apply the claims-token policy to scope create, trusting
	// this run's Claims Provider: check rather than assume.
	pol := findPolicy(rep, "claims-token")
	if pol == nil {
		t.Fatal("bar-realm.json has no claims-token policy")
	}
	conf, _ := pol["config"].(map[string]any)
	if s, _ := conf["claimsProviders"].(string); !strings.Contains(s, cpURL+"/jwks") {
		t.Fatalf("the claims-token policy does not trust %s: %v", cpURL, conf)
	}
	if mutate != nil {
		mutate(rep)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 2*time.Minute)
	if err := kc.ImportRealm(ctx, data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kc.DeleteRealm(ctx, name); err != nil {
			t.Errorf("deleting realm %s: %v", name, err)
		}
	})
	return name
}

func findPolicy(rep map[string]any, typ string) map[string]any {
	clients, _ := rep["clients"].([]any)
	for _, c := range clients {
		client, _ := c.(map[string]any)
		if client["clientId"] != "resource-server" {
			continue
		}
		authz, _ := client["authorizationSettings"].(map[string]any)
		policies, _ := authz["policies"].([]any)
		for _, p := range policies {
			if pol, _ := p.(map[string]any); pol["type"] == typ {
				return pol
			}
		}
	}
	return nil
}

func findClient(rep map[string]any, clientID string) map[string]any {
	clients, _ := rep["clients"].([]any)
	for _, c := range clients {
		if client, _ := c.(map[string]any); client["clientId"] == clientID {
			return client
		}
	}
	return nil
}

// addFooUser adds an enabled user with a verified email in domain to realm
// foo (shipped realm: the user is removed when t ends) and returns the email.
func addFooUser(t *testing.T, kc *launcher.Keycloak, username, domain string) string {
	t.Helper()
	ctx := timeout(t, time.Minute)
	email := username + "@" + domain
	user := map[string]any{"username": username, "email": email, "emailVerified": true, "enabled": true,
		"firstName": "Dave", "lastName": "Outsider"}
	if err := kc.Admin(ctx, http.MethodPost, "/foo/users", user, nil); err != nil {
		t.Fatal(err)
	}
	var found []struct{ ID string }
	if err := kc.Admin(ctx, http.MethodGet, "/foo/users?exact=true&username="+url.QueryEscape(username), nil, &found); err != nil || len(found) != 1 {
		t.Fatalf("user %s: %v %v", username, found, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kc.Admin(ctx, http.MethodDelete, "/foo/users/"+found[0].ID, nil, nil); err != nil {
			t.Errorf("deleting user %s: %v", username, err)
		}
	})
	return email
}

// cliResult is one run of the rqp-client binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

func (r cliResult) lastLine() string {
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

// cleanEnv is this process's environment without RQP_CLIENT_* variables (a
// developer's settings must not leak into the tests).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RQP_CLIENT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cli runs rqp-client with args and the extra environment.
func (w *world) cli(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx := timeout(t, 3*time.Minute)
	cmd := exec.CommandContext(ctx, w.bin["rqp-client"], args...)
	cmd.Env = cleanEnv(env...)
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
	return cliResult{code, stdout.String(), stderr.String()}
}

// pushArgs point `rqp-client push` at this world.
func (w *world) pushArgs(file string, extra ...string) []string {
	return append([]string{"push",
		"--to", w.rsURL + "/incoming/bob", "--file", file,
		"--authn-issuer", w.kc.IssuerURL("foo"),
		"--as-issuer", w.kc.IssuerURL(w.realm),
		"--claims-provider", w.cpURL,
	}, extra...)
}

// message is a stored message as the Resource Server lists it.
type message struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"`
	SenderEmail string `json:"sender_email"`
	SenderIss   string `json:"sender_iss"`
	ContentType string `json:"content_type"`
	FileName    string `json:"file_name"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// bobToken logs Bob in at the realm copy (incoming-app, code + PKCE), as a
// browser would.
func (w *world) bobToken(t *testing.T) string {
	t.Helper()
	tok, err := kctest.LoginForTokens(timeout(t, time.Minute), kctest.CodeFlow{
		Issuer: w.kc.IssuerURL(w.realm), ClientID: "incoming-app",
		RedirectURI: "http://127.0.0.1:43210/callback", Scope: "openid",
	}, "bob", bobPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// bobGet reads from Bob's Incoming with his token.
func (w *world) bobGet(t *testing.T, token, path string) ([]byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(timeout(t, time.Minute), http.MethodGet, w.rsURL+"/incoming/bob"+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as Bob: %s %s", path, resp.Status, body)
	}
	return body, resp.Header
}

// bobMessages lists Bob's Incoming as Bob sees it.
func (w *world) bobMessages(t *testing.T) []message {
	t.Helper()
	body, _ := w.bobGet(t, w.bobToken(t), "/messages?limit=1000")
	var list struct{ Messages []message }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	return list.Messages
}
