package deploy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
)

// composeVariables are the variables compose.yaml and compose.scale.yaml
// interpolate (${NAME...}).
func composeVariables(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range []string{"compose.yaml", "compose.scale.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(string(data), -1) {
			seen[m[1]] = true
		}
	}
	if len(seen) < 5 {
		t.Fatalf("only %d variables in the compose files: %v", len(seen), seen)
	}
	return sortedKeys(seen)
}

// customEnv sets every compose variable to its own value, so a check that
// compares two places (a secret in the realm import and in a service)
// proves both follow the same variable, not only the same default.
func customEnv(t *testing.T, root string) map[string]string {
	env := map[string]string{}
	for _, v := range composeVariables(t, root) {
		env[v] = "custom-" + strings.ToLower(strings.ReplaceAll(v, "_", "-"))
	}
	return env
}

// TestDeploymentFiles is the check CI can do without a Docker engine.
func TestDeploymentFiles(t *testing.T) {
	tl := getTools(t)
	for _, c := range []struct {
		name string
		env  map[string]string
	}{
		{"defaults", map[string]string{}},
		{"every variable set", customEnv(t, tl.root)},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range checkDeployment(tl.root, tl, c.env) {
				t.Error(p)
			}
		})
	}
}

// copyRepo copies the repository without VCS and build output.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	pm, err := patternmatcher.New([]string{".git", "bin", ".run", "**/target"})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := copyContext(root, dst, pm); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestBrokenCopiesAreCaught breaks a copy of the deployment files in one
// place at a time and expects the checks to say so.
func TestBrokenCopiesAreCaught(t *testing.T) {
	tl := getTools(t)
	env := customEnv(t, tl.root)

	t.Run("an intact copy passes", func(t *testing.T) {
		for _, p := range checkDeployment(copyRepo(t, tl.root), tl, env) {
			t.Error(p)
		}
	})

	for _, m := range []struct {
		name, file, old, new, want string
	}{
		{"variable of no flag", "compose.yaml",
			"CLAIMS_PROVIDER_DOMAINS: foo.example", "CLAIMS_PROVIDER_DOMAIN: foo.example",
			"CLAIMS_PROVIDER_DOMAIN is none that claims-provider reads"},
		{"value the binary refuses", "compose.yaml",
			"CLAIMS_PROVIDER_DOMAINS: foo.example", "CLAIMS_PROVIDER_DOMAINS: foo.example\n      CLAIMS_PROVIDER_LIFETIME: forever",
			"claims-provider refuses its compose environment"},
		{"RqP client without --insecure-http", "compose.yaml",
			`RQP_CLIENT_INSECURE_HTTP: "true"`, `RQP_CLIENT_INSECURE_HTTP: "false"`,
			"rqp-client refuses its compose environment"},
		{"Keycloak issuer the services do not expect", "compose.yaml",
			"KC_HOSTNAME: http://keycloak:8080", "KC_HOSTNAME: http://localhost:8080",
			"expects Alice's tokens from http://keycloak:8080/realms/foo, but Keycloak issues them as http://localhost:8080/realms/foo"},
		{"Resource Server as_uri off the issuer", "compose.yaml",
			"RESOURCE_SERVER_REALM: bar", "RESOURCE_SERVER_REALM: bar\n      RESOURCE_SERVER_ISSUER: http://localhost:8080/realms/bar",
			"announces as_uri http://localhost:8080/realms/bar"},
		{"realm that does not exist", "compose.yaml",
			"RESOURCE_SERVER_REALM: bar", "RESOURCE_SERVER_REALM: baz",
			`realm "baz": no such realm file`},
		{"policy trusting another Claims Provider", "compose.yaml",
			"UMAWIDE_CLAIMS_PROVIDER_ISSUER: http://claims-provider:8081", "UMAWIDE_CLAIMS_PROVIDER_ISSUER: http://cp.example:8081",
			"does not trust the Claims Provider http://claims-provider:8081"},
		{"unknown realm placeholder", "compose.yaml",
			"UMAWIDE_CLAIMS_PROVIDER_JWKS_URI:", "UMAWIDE_CLAIMS_PROVIDER_JWKS:",
			"UMAWIDE_CLAIMS_PROVIDER_JWKS is no import placeholder"},
		{"secret from another variable", "compose.yaml",
			"CLAIMS_PROVIDER_CLIENT_SECRET: ${UMAWIDE_CLAIMS_PROVIDER_SECRET:-claims-provider-secret}",
			"CLAIMS_PROVIDER_CLIENT_SECRET: ${CP_SECRET:-claims-provider-secret}",
			"the secret of client claims-provider differs"},
		{"Keycloak option that does not exist", "compose.yaml",
			`KC_HEALTH_ENABLED: "true"`, `KC_HEALTH_ENABLED: "true"` + "\n      KC_HOSTNAME_STRICT_HTTPS: \"false\"",
			"KC_HOSTNAME_STRICT_HTTPS names no Keycloak option"},
		{"unpinned image", "compose.scale.yaml",
			"image: postgres:17.6", "image: postgres:latest", `image "postgres:latest" is not pinned`},
		{"unpinned base image", "Dockerfile",
			"FROM golang:1.26.8 AS build", "FROM golang AS build", "FROM golang is not pinned"},
		{"another Keycloak version", "keycloak/Dockerfile",
			"FROM quay.io/keycloak/keycloak:26.5.6", "FROM quay.io/keycloak/keycloak:26.4.0", "but the project pins Keycloak"},
		{"image without the extension", "keycloak/Dockerfile",
			"/build/target/umawide-keycloak-extension.jar /opt/keycloak/providers/", "/build/target/umawide-keycloak-extension.jar /opt/keycloak/",
			"does not COPY umawide-keycloak-extension.jar"},
		{"no health check", "compose.yaml",
			`test: ["CMD", "/usr/local/bin/resource-server", "healthcheck"]`, `test: ["NONE"]`,
			"service resource-server: no health check"},
		{"health check with a wrong binary", "compose.yaml",
			`test: ["CMD", "/usr/local/bin/resource-server", "healthcheck"]`, `test: ["CMD", "/resource-server", "healthcheck"]`,
			"want [\"CMD\" \"/usr/local/bin/resource-server\" \"healthcheck\"]"},
		{"dependency only started", "compose.yaml",
			"      claims-provider:\n        condition: service_healthy", "      claims-provider:\n        condition: service_started",
			`depends on claims-provider with condition "service_started"`},
		{"mount of a missing path", "compose.yaml",
			"source: ./testdata/demo", "source: ./testdata/demos", "mounts testdata/demos, which does not exist"},
		{"published port it does not listen on", "compose.yaml",
			`"127.0.0.1:8081:8081"`, `"127.0.0.1:8081:8083"`, "publishes container port 8083, but it listens on 8081"},
		{"published on every address", "compose.yaml",
			`"127.0.0.1:8082:8082"`, `"8082:8082"`, "publish on the host's loopback (127.0.0.1) only"},
		{"root user", "Dockerfile",
			"COPY --from=build /out/resource-server /usr/local/bin/resource-server\nUSER 65532:65532",
			"COPY --from=build /out/resource-server /usr/local/bin/resource-server\nUSER root",
			"service resource-server: runs as root"},
		{"keys off the volume", "compose.yaml",
			"CLAIMS_PROVIDER_KEY_DIR: /var/lib/claims-provider/keys", "CLAIMS_PROVIDER_KEY_DIR: /keys",
			"keeps its state in /keys, which is on no named volume"},
		{"volume where the image prepared nothing", "compose.yaml",
			"claims-provider-keys:/var/lib/claims-provider", "claims-provider-keys:/var/lib",
			"which its image does not prepare"},
		{"dockerignore hides Go sources", ".dockerignore",
			"\ndeploy\n", "\ndeploy\ninternal\n", ".dockerignore excludes internal/"},
		{"dockerignore hides the extension", ".dockerignore",
			"\ndeploy\n", "\ndeploy\nkeycloak/extension/src\n", "excluded from the build context by .dockerignore"},
		{"replicas on a fixed host port", "compose.scale.yaml",
			"      replicas: 2\n    ports: !reset []\n    environment:", "      replicas: 2\n    environment:",
			"has 2 replicas but publishes the fixed host port 8082"},
		{"database password from another variable", "compose.scale.yaml",
			"postgres://incoming:${UMAWIDE_INCOMING_DB_PASSWORD:-", "postgres://incoming:${RS_DB_PASSWORD:-",
			"the password of database user incoming differs"},
		{"database nobody creates", "compose.scale.yaml",
			"@postgres:5432/incoming?", "@postgres:5432/messages?", "database messages is created by no init script"},
		{"Keycloak nodes on different databases", "compose.scale.yaml",
			"    <<: *keycloak-cluster\n    ports: !reset []", "    <<: *keycloak-cluster\n    environment:\n      KC_DB_URL: jdbc:postgresql://postgres:5432/other\n    ports: !reset []",
			"KC_DB_URL=\"jdbc:postgresql://postgres:5432/other\" differs"},
	} {
		t.Run(m.name, func(t *testing.T) {
			dir := copyRepo(t, tl.root)
			path := filepath.Join(dir, m.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(data), m.old) != 1 {
				t.Fatalf("%s does not contain %q exactly once: update this test", m.file, m.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(data), m.old, m.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := checkDeployment(dir, tl, env)
			for _, p := range problems {
				if strings.Contains(p, m.want) {
					t.Logf("caught:\n%s", strings.Join(problems, "\n"))
					return
				}
			}
			t.Errorf("broken %s not caught: no problem says %q; problems:\n%s", m.file, m.want, strings.Join(problems, "\n"))
		})
	}
}

// TestKeycloakHealthcheckScript runs compose.yaml's Keycloak health check
// (bash, no curl in the image) against a stand-in for the management port.
func TestKeycloakHealthcheckScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadProject(root, []string{"compose.yaml"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := p.GetService("keycloak")
	if err != nil {
		t.Fatal(err)
	}
	test := kc.HealthCheck.Test
	if len(test) != 4 || test[0] != "CMD" || test[1] != "bash" || test[2] != "-c" {
		t.Fatalf("health check %q: want [CMD bash -c <script>]", test)
	}
	status := http.StatusOK
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.WriteHeader(status)
		w.Write([]byte(`{"status": "UP", "checks": []}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	const mgmt = "/dev/tcp/127.0.0.1/9000"
	if !strings.Contains(test[3], mgmt) {
		t.Fatalf("script does not ask %s: %s", mgmt, test[3])
	}
	run := func(script string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "bash", "-c", script).Run()
	}
	script := strings.ReplaceAll(test[3], mgmt, "/dev/tcp/127.0.0.1/"+port)
	if err := run(script); err != nil {
		t.Fatalf("ready Keycloak judged unhealthy: %v", err)
	}
	if len(paths) != 1 || paths[0] != "/health/ready" {
		t.Fatalf("asked %q", paths)
	}
	status = http.StatusServiceUnavailable
	if err := run(script); err == nil {
		t.Fatal("Keycloak answering 503 judged healthy")
	}
	closed, err := closedAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closed)
	if err := run(strings.ReplaceAll(test[3], mgmt, "/dev/tcp/127.0.0.1/"+closedPort)); err == nil {
		t.Fatal("Keycloak not listening judged healthy")
	}
}
