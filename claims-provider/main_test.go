package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/claims-provider/internal/app"
	"github.com/umawide/umawide/internal/flagenv"
)

var env = flagenv.MapEnv

func envName(flagName string) string { return flagenv.EnvName(EnvPrefix, flagName) }

func TestDefaults(t *testing.T) {
	o, err := parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Listen != "127.0.0.1:8081" || c.Issuer != "http://127.0.0.1:8081" || c.KeycloakURL != "http://127.0.0.1:8080" ||
		c.Realm != "foo" || c.ClientID != "claims-provider" || c.Alg != "ES256" || c.Lifetime != 120*time.Second ||
		c.RotationGrace != time.Hour || !slices.Equal(c.OnBehalfClients, []string{"rqp-client"}) ||
		!slices.Equal(c.Domains, []string{"foo.example"}) || o.rotate {
		t.Fatalf("defaults %+v", o)
	}
	// No secret by default: the configuration is refused until one is given.
	c.Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("Validate without secret: %v", err)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	e := env(map[string]string{
		"CLAIMS_PROVIDER_LISTEN":            "0.0.0.0:9999",
		"CLAIMS_PROVIDER_ISSUER":            "https://cp.foo.example",
		"CLAIMS_PROVIDER_CLIENT_SECRET":     "from-env",
		"CLAIMS_PROVIDER_LIFETIME":          "60s",
		"CLAIMS_PROVIDER_ON_BEHALF_CLIENTS": "-",
		"CLAIMS_PROVIDER_AUDIENCE":          "", // empty: unset, the default stays
		"CLAIMS_PROVIDER_DOMAINS":           "Foo.Example, sub.foo.example",
		"CLAIMS_PROVIDER_ALG":               "EdDSA",
		"CLAIMS_PROVIDER_ROTATE":            "true", // no environment variable for -rotate
	})
	o, err := parse([]string{"-listen", "127.0.0.1:1", "-alg=RS256"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Listen != "127.0.0.1:1" || c.Alg != "RS256" {
		t.Errorf("flags must win over the environment: %+v", c)
	}
	if c.Issuer != "https://cp.foo.example" || c.ClientSecret != "from-env" || c.Lifetime != time.Minute {
		t.Errorf("environment not applied: %+v", c)
	}
	if len(c.OnBehalfClients) != 0 {
		t.Errorf("CLAIMS_PROVIDER_ON_BEHALF_CLIENTS=- must allow none: %v", c.OnBehalfClients)
	}
	if !slices.Equal(o.ignored, []string{"CLAIMS_PROVIDER_AUDIENCE"}) {
		t.Errorf("ignored %v", o.ignored)
	}
	if !slices.Equal(c.Domains, []string{"foo.example", "sub.foo.example"}) {
		t.Errorf("domains %v", c.Domains)
	}
	if o.rotate {
		t.Error("CLAIMS_PROVIDER_ROTATE rotated: -rotate must have no environment variable")
	}

	if _, err := parse(nil, env(map[string]string{"CLAIMS_PROVIDER_LIFETIME": "soon"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "CLAIMS_PROVIDER_LIFETIME") {
		t.Errorf("bad environment value: %v", err)
	}
	// Profiles only on a loopback address.
	if _, err := parse([]string{"-pprof-listen", "0.0.0.0:6061"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("-pprof-listen on every interface accepted")
	}
	if o, err := parse(nil, env(map[string]string{"CLAIMS_PROVIDER_PPROF_LISTEN": "127.0.0.1:6061"}), &bytes.Buffer{}); err != nil || o.pprofListen != "127.0.0.1:6061" {
		t.Errorf("CLAIMS_PROVIDER_PPROF_LISTEN: %v", err)
	}
	if _, err := parse([]string{"extra"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("stray argument accepted")
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parse([]string{"-client-secret-file", path}, env(nil), &bytes.Buffer{})
	if err != nil || o.cfg.ClientSecret != "s3cret" {
		t.Fatalf("secret from file: %q, %v", o.cfg.ClientSecret, err)
	}
	o, err = parse(nil, env(map[string]string{"CLAIMS_PROVIDER_CLIENT_SECRET_FILE": path}), &bytes.Buffer{})
	if err != nil || o.cfg.ClientSecret != "s3cret" {
		t.Fatalf("secret file from env: %q, %v", o.cfg.ClientSecret, err)
	}
	if _, err := parse([]string{"-client-secret-file", path, "-client-secret", "x"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("two secrets accepted")
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := parse([]string{"-client-secret-file", empty}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("empty secret file accepted")
	}
	big := filepath.Join(dir, "big")
	_ = os.WriteFile(big, bytes.Repeat([]byte("x"), flagenv.MaxSecretFileBytes+1), 0o600)
	if _, err := parse([]string{"-client-secret-file", big}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("oversized secret file accepted")
	}
	if _, err := parse([]string{"-client-secret-file", filepath.Join(dir, "missing")}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("missing secret file accepted")
	}
}

// -h documents every flag with its environment variable.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parse([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := out.String()
	for _, name := range []string{"listen", "issuer", "keycloak-url", "realm", "realm-issuer", "client-id", "audience",
		"client-secret", "client-secret-file", "on-behalf-clients", "domains", "key-dir", "alg", "lifetime",
		"rotation-grace", "key-reload-interval", "keycloak-timeout", "pprof-listen", "log-level", "log-format"} {
		if !strings.Contains(help, "-"+name+"  [$"+envName(name)+"]") {
			t.Errorf("-h lacks -%s with $%s", name, envName(name))
		}
	}
	if !strings.Contains(help, "-rotate  [no environment variable]") || !strings.Contains(help, "rotate [flags]") {
		t.Error("-h lacks the rotate flag or subcommand")
	}
	if code := run([]string{"-h"}, env(nil), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Errorf("run -h = %d", code)
	}
}

func TestRotateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out1, out2, errs bytes.Buffer
	if code := run([]string{"rotate", "-key-dir", dir}, env(nil), &out1, &errs); code != 0 {
		t.Fatalf("rotate = %d: %s", code, errs.String())
	}
	if code := run([]string{"-rotate", "-key-dir", dir, "-alg", "EdDSA"}, env(nil), &out2, &errs); code != 0 {
		t.Fatalf("-rotate = %d: %s", code, errs.String())
	}
	k1, k2 := strings.TrimSpace(out1.String()), strings.TrimSpace(out2.String())
	if len(k1) != 43 || len(k2) != 43 || k1 == k2 {
		t.Fatalf("kids %q %q", k1, k2)
	}
	// The server then starts with the new algorithm and publishes both keys.
	cfg := app.Config{
		Listen: "127.0.0.1:0", Issuer: "http://127.0.0.1:1", KeycloakURL: "http://127.0.0.1:2", Realm: "foo",
		ClientID: "claims-provider", ClientSecret: "x", Domains: []string{"foo.example"}, KeyDir: dir, Alg: "EdDSA",
	}
	a, err := app.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := a.Keys.JWKS()
	if len(set.Keys) != 2 || set.Keys[0].Kid != k2 || set.Keys[1].Kid != k1 {
		t.Fatalf("JWKS after rotation %+v", set)
	}
	cfg.Alg = "ES256"
	if _, err := app.New(cfg, nil); err == nil {
		t.Fatal("start with an algorithm other than the current key's accepted")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	var errs bytes.Buffer
	code := run([]string{"-key-dir", filepath.Join(t.TempDir(), "k"), "-client-secret", "x", "-lifetime", "301s"}, env(nil), &bytes.Buffer{}, &errs)
	if code == 0 || !strings.Contains(errs.String(), "lifetime") {
		t.Fatalf("run = %d: %s", code, errs.String())
	}
	if code := run([]string{"-log-level", "loud"}, env(nil), &bytes.Buffer{}, &errs); code != 2 {
		t.Fatalf("bad log level = %d", code)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	var out, errs bytes.Buffer
	// The listen address comes from the environment, as in a container; the
	// unspecified address is asked on loopback.
	if code := run([]string{"healthcheck"}, env(map[string]string{"CLAIMS_PROVIDER_LISTEN": "0.0.0.0:" + port}), &out, &errs); code != 0 {
		t.Fatalf("healthcheck of a ready server = %d: %s %s", code, out.String(), errs.String())
	}
	status = http.StatusServiceUnavailable
	out.Reset()
	if code := run([]string{"healthcheck", "-listen", addr}, env(nil), &out, &errs); code != 1 || !strings.Contains(out.String(), "503") {
		t.Fatalf("healthcheck of an unready server = %d: %s", code, out.String())
	}
	srv.Close()
	if code := run([]string{"healthcheck", "-listen", addr}, env(nil), &out, &errs); code != 1 {
		t.Fatalf("healthcheck with nobody listening = %d", code)
	}
	if code := run([]string{"healthcheck", "-lifetime", "soon"}, env(nil), &out, &errs); code != 2 {
		t.Fatalf("healthcheck with a bad flag = %d", code)
	}
}
