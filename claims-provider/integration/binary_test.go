package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umawide/umawide/claims-provider/internal/app"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// TestBinary builds claims-provider and runs it as an operator would:
// configuration from flags, the environment and a secret file; readiness
// against the real Keycloak; a token for Alice; `rotate` plus SIGHUP; a clean
// exit on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: no build")
	}
	kc := kctest.Keycloak(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "claims-provider")
	build := exec.Command("go", "build", "-o", bin, "github.com/umawide/umawide/claims-provider")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	secretFile := filepath.Join(tmp, "secret")
	if err := os.WriteFile(secretFile, []byte(cpSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	keyDir := filepath.Join(tmp, "keys")
	env := append(os.Environ(),
		"CLAIMS_PROVIDER_LISTEN="+addr,
		"CLAIMS_PROVIDER_ISSUER=http://"+addr,
		"CLAIMS_PROVIDER_KEYCLOAK_URL="+kc.BaseURL,
		"CLAIMS_PROVIDER_CLIENT_SECRET_FILE="+secretFile,
		"CLAIMS_PROVIDER_KEY_DIR="+keyDir,
		"CLAIMS_PROVIDER_LOG_FORMAT=json",
	)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-alg", "EdDSA", "-key-reload-interval", "1h")
	cmd.Env = env
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("claims-provider output:\n%s", logs.String())
		}
	})

	cp := &instance{base: "http://" + addr, url: "http://" + addr, cfg: app.Config{Lifetime: 120 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(cp.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	bar := kc.IssuerURL("bar")
	alice := findUser(t, "foo", "alice")
	ticket := newTicket()
	a := cp.post(t, aliceToken(t, "foo"), form(ticket, bar))
	if a.status != http.StatusOK {
		t.Fatalf("claims token: %v", a)
	}
	first := checkBinaryToken(t, cp, a, bar)
	wantUserClaims(t, first.claims, alice, cp.url, bar, ticket)
	if first.alg != "EdDSA" {
		t.Fatalf("alg %s, want EdDSA from -alg", first.alg)
	}

	// Rotate with the subcommand, then SIGHUP: the running server switches.
	rot := exec.Command(bin, "rotate", "-alg", "EdDSA")
	rot.Env = env
	out, err := rot.Output()
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	newKid := strings.TrimSpace(string(out))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		kids := jwksKids(t, cp)
		if len(kids) == 2 && kids[0] == newKid && kids[1] == first.kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JWKS after rotate + SIGHUP: %v, want [%s %s]", kids, newKid, first.kid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	second := checkBinaryToken(t, cp, cp.post(t, rqpToken(t), form(newTicket(), bar, "email", "alice@foo.example")), bar)
	if second.kid != newKid {
		t.Fatalf("kid after rotation %s, want %s", second.kid, newKid)
	}
	if _, err := cp.check(first.raw, bar); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15s after SIGTERM")
	}
	// The secret never reaches the logs.
	if strings.Contains(logs.String(), cpSecret) {
		t.Fatal("the client secret appears in the logs")
	}
}

type binaryToken struct {
	issued
	alg string
}

func checkBinaryToken(t *testing.T, cp *instance, a answer, audience string) binaryToken {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("answer %v", a)
	}
	var ans uma.ClaimsTokenResponse
	if err := json.Unmarshal(a.body, &ans); err != nil || ans.TokenType != uma.TokenTypeClaimsToken || ans.ExpiresIn != 120 {
		t.Fatalf("answer %s (%v)", a.body, err)
	}
	c, err := cp.check(ans.ClaimsToken, audience)
	if err != nil {
		t.Fatalf("token does not verify against the binary's JWKS: %v", err)
	}
	h := segment(t, ans.ClaimsToken, 0)
	kid, _ := h["kid"].(string)
	alg, _ := h["alg"].(string)
	return binaryToken{issued: issued{claims: c, kid: kid, raw: ans.ClaimsToken}, alg: alg}
}

// TestSetupScript runs keycloak-setup.sh (the README's admin REST calls) on a
// fresh realm that has users and a calling client but nothing for the Claims
// Provider, then serves that realm with the secret the script wrote.
func TestSetupScript(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	kc := kctest.Keycloak(t)
	ctx := ctxT(t)
	realm := "cp-setup-" + kctest.RandomHex(4)
	rep := map[string]any{
		"realm": realm, "enabled": true,
		"users": []any{map[string]any{
			"username": "carol", "enabled": true, "email": "carol@foo.example", "emailVerified": true,
			"firstName": "Carol", "lastName": "Kent",
		}},
		"clients": []any{map[string]any{
			"clientId": "rqp-client", "enabled": true, "publicClient": false, "secret": "setup-rqp-secret",
			"serviceAccountsEnabled": true, "standardFlowEnabled": false,
		}},
	}
	kctest.ImportRealm(t, kc, rep)

	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	script := exec.CommandContext(ctx, "sh", filepath.Join(root, "claims-provider", "keycloak-setup.sh"))
	script.Env = append(os.Environ(),
		"KC_URL="+kc.BaseURL, "KC_REALM="+realm,
		"KC_ADMIN_USER="+kc.AdminUser, "KC_ADMIN_PASSWORD="+kc.AdminPassword,
		"CALLER_CLIENTS=rqp-client", "SECRET_FILE="+secretFile,
	)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("keycloak-setup.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat(secretFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	secret, _ := os.ReadFile(secretFile)

	cp := start(t, func(c *app.Config) {
		c.Realm = realm
		c.ClientSecret = strings.TrimSpace(string(secret))
	})
	if a := cp.get(t, "/readyz"); a.status != http.StatusOK {
		t.Fatalf("readyz with the roles the script granted: %v", a)
	}
	tok := clientToken(t, realm, "rqp-client", "setup-rqp-secret", uma.ClaimsProviderScope)
	bar := kc.IssuerURL("bar")
	ticket := newTicket()
	carol := findUser(t, realm, "carol")
	c := cp.verify(t, cp.post(t, tok, form(ticket, bar, "email", "carol@foo.example")), bar).claims
	wantUserClaims(t, c, carol, cp.url, bar, ticket)
	// Without the scope, no audience: refused.
	plain := clientToken(t, realm, "rqp-client", "setup-rqp-secret", "")
	wantError(t, cp.post(t, plain, form(newTicket(), bar, "email", "carol@foo.example")), 401, uma.ErrInvalidToken)
}
