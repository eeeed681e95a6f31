package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/umawide/umawide/internal/uma"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
)

// insideEnv marks the re-executed test binary inside its namespaces.
const insideEnv = "UMAWIDE_DEPLOY_INSIDE_NETNS"

// TestComposeStackAsProcesses runs compose.yaml without Docker: Keycloak,
// the Claims Provider and the Resource Server as processes with exactly the
// environment compose.yaml gives their containers, and the RqP client with
// the commands docs/DEPLOYMENT.md gives Docker users. It runs in a private
// network namespace whose /etc/hosts names 127.0.0.1 keycloak,
// claims-provider and resource-server, and where the compose ports (8080,
// 9000, 8081, 8082) are free: so the host names, ports, issuers (KC_HOSTNAME)
// and secrets of compose.yaml are what the parts really use. Only the
// images, the container boundaries and the state paths (temporary folders
// here) differ. It needs root (unshare); elsewhere it skips.
func TestComposeStackAsProcesses(t *testing.T) {
	if os.Getenv(insideEnv) == "" {
		reexecInNamespace(t)
		return
	}
	runComposeStack(t)
}

func reexecInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("compose.yaml as processes NOT run: -short (it starts a Keycloak of its own)")
	}
	if os.Geteuid() != 0 {
		t.Skip("compose.yaml as processes NOT run: it needs root for a private network and mount namespace (unshare)")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("compose.yaml as processes NOT run: no %s", tool)
		}
	}
	tl := getTools(t) // builds the binaries and fetches Keycloak outside (no network inside)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := launcher.DefaultProviders(ctx, tl.root, nil); err != nil {
		t.Fatal(err)
	}
	args := []string{"--mount", "--net", "--kill-child", "--", os.Args[0],
		"-test.run=^TestComposeStackAsProcesses$", "-test.v", "-test.timeout=14m"}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), insideEnv+"=1", "UMAWIDE_ROOT="+tl.root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("inside the namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("compose.yaml as processes: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestComposeStackAsProcesses") {
		t.Fatal("the run inside the namespace did not pass")
	}
}

func runComposeStack(t *testing.T) {
	tl := getTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// The namespace: loopback up, compose's service names on it.
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	p, err := loadProject(tl.root, []string{"compose.yaml"}, []string{toolProfile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	var names []string
	for _, s := range p.Services {
		names = append(names, s.Name)
	}
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost "+strings.Join(names, " ")+"\n::1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", hosts, "/etc/hosts").CombinedOutput(); err != nil {
		t.Fatalf("mount /etc/hosts: %v %s", err, out)
	}
	service := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dir := t.TempDir()

	// Keycloak with its compose environment, on its compose ports.
	kcEnv := envOf(service("keycloak"))
	kc, err := launcher.Start(ctx, launcher.Options{
		Mode: launcher.ModeProcess, HTTPPort: keycloakHTTPPort, ManagementPort: keycloakManagementPort,
		Env: kcEnv, LogPath: filepath.Join(dir, "keycloak.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Stop(context.Background())
	logTail := func(path string) string {
		b, _ := os.ReadFile(path)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		return string(b)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keycloak.log:\n%s", logTail(filepath.Join(dir, "keycloak.log")))
		}
	})

	// compose.yaml's own health check of Keycloak, unchanged.
	kcTest := service("keycloak").HealthCheck.Test
	if out, err := exec.CommandContext(ctx, kcTest[1], kcTest[2:]...).CombinedOutput(); err != nil {
		t.Fatalf("compose.yaml's Keycloak health check fails on a ready Keycloak: %v %s", err, out)
	}

	// Whatever address a caller uses, tokens carry KC_HOSTNAME's issuer.
	tok, err := kctest.ClientCredentials(ctx, "http://127.0.0.1:8080/realms/foo", "rqp-client", kcEnv["UMAWIDE_FOO_RQP_CLIENT_SECRET"], "")
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := kctest.Claims(tok.AccessToken)
	if want := kcEnv["KC_HOSTNAME"] + "/realms/foo"; claims["iss"] != want {
		t.Fatalf("token asked at 127.0.0.1 has iss %v, want %s (KC_HOSTNAME)", claims["iss"], want)
	}
	// The admin console answers on the published address (KC_HOSTNAME_ADMIN).
	if res, err := http.Get(kcEnv["KC_HOSTNAME_ADMIN"] + "/admin/master/console/"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), kcEnv["KC_HOSTNAME_ADMIN"]) {
			t.Errorf("admin console at %s: %s, page does not use its URL:\n%.600s", kcEnv["KC_HOSTNAME_ADMIN"], res.Status, body)
		}
	}

	// The Go services with their compose environment; only the state
	// folders (volumes in compose) are temporary folders here.
	state := map[string]map[string]string{
		"claims-provider": {"CLAIMS_PROVIDER_KEY_DIR": filepath.Join(dir, "keys")},
		"resource-server": {"RESOURCE_SERVER_DB": filepath.Join(dir, "rs", "resource-server.db")},
	}
	for _, name := range []string{"claims-provider", "resource-server"} {
		s := service(name)
		env := envOf(s)
		for k, v := range state[name] {
			env[k] = v
		}
		spec := stack.Spec{
			Name: name, Binary: tl.bins[name], Env: envList(env),
			ReadyURL: fmt.Sprintf("http://%s:%d/readyz", name, (&projectChecker{}).listenPort(s, name, env)),
			LogPath:  filepath.Join(dir, name+".log"),
		}
		svc, err := stack.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Stop(context.Background())
		// compose.yaml's health check command, with the same environment.
		hc := s.HealthCheck.Test
		if out, err := runIn(ctx, tl.bins[name], hc[2:], env); err != nil {
			t.Fatalf("%s: compose.yaml's health check %q fails on a ready server: %v %s", name, hc, err, out)
		}
	}

	// The RqP client as docs/DEPLOYMENT.md runs it: docker compose run
	// rqp-client push ... (its /demo mount is the repository's folder).
	rqp := service("rqp-client")
	rqpEnv := envOf(rqp)
	hostPath := func(arg string) string {
		for _, m := range rqp.Volumes {
			if strings.HasPrefix(arg, m.Target+"/") {
				return filepath.Join(m.Source, strings.TrimPrefix(arg, m.Target+"/"))
			}
		}
		return arg
	}
	push := []string{"push", "--to", "http://resource-server:8082/incoming/bob", "--file", hostPath("/demo/hello-bob.txt"), "--email", "alice@foo.example"}
	out, err := runIn(ctx, tl.bins["rqp-client"], push, rqpEnv)
	t.Logf("rqp-client %s\n%s", strings.Join(push, " "), out)
	if err != nil || !strings.Contains(out, "201 Created") {
		t.Fatalf("push (client credentials): %v", err)
	}
	login := append(append([]string{}, push[:5]...), "--login", "--login-user", "alice")
	loginEnv := map[string]string{"RQP_CLIENT_LOGIN_PASSWORD": kcEnv["UMAWIDE_ALICE_PASSWORD"]}
	for k, v := range rqpEnv {
		loginEnv[k] = v
	}
	out, err = runIn(ctx, tl.bins["rqp-client"], login, loginEnv)
	t.Logf("rqp-client %s\n%s", strings.Join(login, " "), out)
	if err != nil || !strings.Contains(out, "201 Created") {
		t.Fatalf("push (Alice logs in): %v", err)
	}
	inbox := []string{"inbox", "--incoming", "http://resource-server:8082/incoming/bob", "--login-user", "bob", "--json"}
	inboxEnv := map[string]string{"RQP_CLIENT_INBOX_LOGIN_PASSWORD": kcEnv["UMAWIDE_BOB_PASSWORD"]}
	for k, v := range rqpEnv {
		inboxEnv[k] = v
	}
	out, err = runIn(ctx, tl.bins["rqp-client"], inbox, inboxEnv)
	t.Logf("rqp-client %s\n%s", strings.Join(inbox, " "), out)
	var listed uma.MessageList
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:]), &listed) != nil || len(listed.Messages) != 2 {
		t.Fatalf("Bob's inbox does not list the two messages")
	}
	for _, m := range listed.Messages {
		if m.SenderEmail != "alice@foo.example" || m.SenderIss != envOf(service("claims-provider"))["CLAIMS_PROVIDER_ISSUER"] {
			t.Fatalf("message from %s via %s, want alice@foo.example via the compose Claims Provider", m.SenderEmail, m.SenderIss)
		}
	}
}

func envList(env map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// runIn runs a program with exactly env (plus PATH and HOME).
func runIn(ctx context.Context, bin string, args []string, env map[string]string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(envList(env), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
