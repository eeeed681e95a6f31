// Package adopt tests add-umawide.sh, the kcadm.sh script that adds
// umawide's realm objects to two existing realms (docs/DEPLOYMENT.md,
// "Adopting umawide next to an existing Keycloak"): against a real Keycloak,
// on two realms that hold only users, then the Claims Provider, the
// Resource Server and the RqP client run on the result.
package adopt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
)

func TestMain(m *testing.M) { kctest.Main(m) }

// importRealm creates a realm that has users and nothing of umawide.
func importRealm(t *testing.T, kc *launcher.Keycloak, name string, users ...map[string]any) {
	t.Helper()
	kctest.ImportRealm(t, kc, map[string]any{"realm": name, "enabled": true, "users": users})
}

func user(name, email, password string) map[string]any {
	return map[string]any{
		"username": name, "enabled": true, "email": email, "emailVerified": true,
		"firstName": name, "lastName": "Test",
		"credentials": []map[string]any{{"type": "password", "value": password, "temporary": false}},
	}
}

func run(ctx context.Context, bin string, args, env []string) (string, int, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	return out.String(), 0, err
}

func TestAddUmawideToExistingRealms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	kc := kctest.Keycloak(t)
	root, err := launcher.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dist, err := launcher.Distribution(ctx)
	if err != nil {
		t.Fatal(err)
	}
	suffix := kctest.RandomHex(4)
	authn, authz := "adopt-senders-"+suffix, "adopt-owners-"+suffix
	importRealm(t, kc, authn,
		user("alice", "alice@foo.example", "alice-pw"),
		user("carol", "carol@other.example", "carol-pw"))
	importRealm(t, kc, authz, user("bob", "bob@bar.example", "bob-pw"))

	cpPort, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rsPort, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cpURL := fmt.Sprintf("http://127.0.0.1:%d", cpPort)
	secrets := map[string]string{}
	for _, k := range []string{"CLAIMS_PROVIDER_SECRET", "RQP_CLIENT_AUTHN_SECRET", "RQP_CLIENT_AS_SECRET", "RESOURCE_SERVER_SECRET"} {
		secrets[k] = "s-" + kctest.RandomHex(12)
	}
	env := []string{
		"KEYCLOAK_URL=" + kc.BaseURL, "KEYCLOAK_ADMIN_USER=" + kc.AdminUser, "KEYCLOAK_ADMIN_PASSWORD=" + kc.AdminPassword,
		"KCADM=" + filepath.Join(dist, "bin", "kcadm.sh"), "KCADM_CONFIG=",
		"AUTHN_REALM=" + authn, "AUTHZ_REALM=" + authz,
		// Only foo.example: carol@other.example must be refused by the policy.
		"CLAIMS_PROVIDER_ISSUER=" + cpURL, "CLAIMS_PROVIDER_DOMAINS=foo.example",
		"ALLOW_INSECURE_URLS=true", // the Claims Provider of this test speaks http on loopback
	}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	script := filepath.Join(root, "deploy", "adopt", "add-umawide.sh")
	began := time.Now()
	out, code, err := run(ctx, script, nil, env)
	if err != nil || code != 0 {
		t.Fatalf("add-umawide.sh: exit %d %v\n%s", code, err, out)
	}
	t.Logf("add-umawide.sh (%v):\n%s", time.Since(began).Round(time.Second), out)

	// Exactly umawide's authorization settings: no defaults of a new
	// authorization client (a "Default Policy" granting everything).
	var clients []struct {
		ID string `json:"id"`
	}
	if err := kc.Admin(ctx, "GET", "/"+authz+"/clients?clientId=resource-server", nil, &clients); err != nil || len(clients) != 1 {
		t.Fatalf("resource-server client: %v %v", clients, err)
	}
	var settings struct {
		Resources []struct{ Name string } `json:"resources"`
		Scopes    []struct{ Name string } `json:"scopes"`
		Policies  []struct {
			Name, Type string
			Config     map[string]string
		} `json:"policies"`
	}
	if err := kc.Admin(ctx, "GET", "/"+authz+"/clients/"+clients[0].ID+"/authz/resource-server/settings", nil, &settings); err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, p := range settings.Policies {
		policies = append(policies, p.Type+":"+p.Name)
	}
	sort.Strings(policies)
	if len(settings.Resources) != 0 || len(settings.Scopes) != 1 || settings.Scopes[0].Name != "create" ||
		strings.Join(policies, ",") != "claims-token:claims token,scope:create in Incoming" {
		t.Fatalf("authorization settings: resources %v, scopes %v, policies %v", settings.Resources, settings.Scopes, policies)
	}

	// Run again: it changes nothing and says so.
	out, code, err = run(ctx, script, nil, env)
	if err != nil || code != 1 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("add-umawide.sh on realms that have the objects: exit %d %v\n%s", code, err, out)
	}

	// The parts on the result.
	dir := t.TempDir()
	bins, err := stack.Build(ctx, dir, "claims-provider", "resource-server", "rqp-client")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := stack.Start(ctx, stack.ClaimsProvider{
		Binary: bins["claims-provider"], Listen: fmt.Sprintf("127.0.0.1:%d", cpPort), KeycloakURL: kc.BaseURL,
		Realm: authn, Secret: secrets["CLAIMS_PROVIDER_SECRET"], KeyDir: filepath.Join(dir, "keys"),
		// The Claims Provider vouches for other.example too; the policy does not trust it for that.
		Domains: []string{"foo.example", "other.example"},
		LogPath: filepath.Join(dir, "claims-provider.log"),
	}.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop(context.Background())
	rs, err := stack.Start(ctx, stack.ResourceServer{
		Binary: bins["resource-server"], Listen: fmt.Sprintf("127.0.0.1:%d", rsPort), KeycloakURL: kc.BaseURL,
		Realm: authz, Secret: secrets["RESOURCE_SERVER_SECRET"], DB: filepath.Join(dir, "rs.db"),
		LogPath: filepath.Join(dir, "resource-server.log"),
	}.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Stop(context.Background())

	file := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(file, []byte("hello from an adopted realm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	incoming := rs.URL + "/incoming/bob"
	rqpEnv := []string{
		"RQP_CLIENT_AUTHN_ISSUER=" + kc.IssuerURL(authn), "RQP_CLIENT_AUTHN_CLIENT_SECRET=" + secrets["RQP_CLIENT_AUTHN_SECRET"],
		"RQP_CLIENT_AS_ISSUER=" + kc.IssuerURL(authz), "RQP_CLIENT_AS_CLIENT_SECRET=" + secrets["RQP_CLIENT_AS_SECRET"],
		"RQP_CLIENT_CLAIMS_PROVIDER=" + cpURL, "RQP_CLIENT_INBOX_ISSUER=" + kc.IssuerURL(authz),
		"RQP_CLIENT_LOGIN_PASSWORD=alice-pw", "RQP_CLIENT_INBOX_LOGIN_PASSWORD=bob-pw",
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"client credentials", []string{"push", "--to", incoming, "--file", file, "--email", "alice@foo.example"}, 0, "201 Created"},
		{"Alice logs in", []string{"push", "--to", incoming, "--file", file, "--login", "--login-user", "alice"}, 0, "201 Created"},
		{"a domain the policy does not trust", []string{"push", "--to", incoming, "--file", file, "--email", "carol@other.example"}, 3, ""},
		{"Bob reads his Incoming", []string{"inbox", "--incoming", incoming, "--login-user", "bob", "--json"}, 0, `"sender_email": "alice@foo.example"`},
	} {
		out, code, err := run(ctx, bins["rqp-client"], c.args, rqpEnv)
		if err != nil || code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: rqp-client %s: exit %d (want %d) %v\n%s", c.name, strings.Join(c.args, " "), code, c.code, err, out)
		} else {
			t.Logf("%s: exit %d as expected", c.name, code)
		}
	}
}
