package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/flagenv"
	"github.com/umawide/umawide/resource-server/internal/server"
)

func envName(flagName string) string { return flagenv.EnvName(envPrefix, flagName) }

var env = flagenv.MapEnv

func TestFlagsAndEnvironment(t *testing.T) {
	var out bytes.Buffer
	c, err := parseFlags([]string{"-realm", "bar2"}, env(map[string]string{
		"RESOURCE_SERVER_CLIENT_SECRET": "s3cret",
		"RESOURCE_SERVER_REALM":         "ignored",
		"RESOURCE_SERVER_KEYCLOAK_URL":  "http://kc:8080/",
		"RESOURCE_SERVER_MAX_BODY":      "2048",
		"RESOURCE_SERVER_QUOTA":         "0",
		"RESOURCE_SERVER_DATABASE_URL":  "postgres://u:pw@h/db",
	}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.realm != "bar2" || c.clientSecret != "s3cret" || c.keycloakURL != "http://kc:8080" || c.maxBody != 2048 || c.quota != 0 ||
		c.publicURL != "http://127.0.0.1:8082" ||
		c.issuer != "http://kc:8080/realms/bar2" || c.rptAudience != "resource-server" || c.databaseURL != "postgres://u:pw@h/db" {
		t.Fatalf("config %+v", c)
	}
	c, err = parseFlags([]string{"-client-secret", "flag-wins", "-rpt-audience", "-", "-issuer", "https://id.bar.example/realms/bar/"},
		env(map[string]string{"RESOURCE_SERVER_CLIENT_SECRET": "env"}), &out)
	if err != nil || c.clientSecret != "flag-wins" || c.rptAudience != "" || c.issuer != "https://id.bar.example/realms/bar" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = parseFlags([]string{"-client-secret", "x", "-listen", "0.0.0.0:9000"},
		env(map[string]string{"RESOURCE_SERVER_PUBLIC_URL": "https://rs.bar.example"}), &out)
	if err != nil || c.publicURL != "https://rs.bar.example" {
		t.Fatalf("public URL from the environment: %+v %v", c, err)
	}
	if c, err = parseFlags([]string{"-client-secret", "x", "-listen", "[::1]:9000"}, env(nil), &out); err != nil || c.publicURL != "http://[::1]:9000" {
		t.Fatalf("default public URL: %+v %v", c, err)
	}
	// Bodies stream: no cap below 64 GiB; the quota defaults on.
	if c, err = parseFlags([]string{"-client-secret", "x", "-max-body", "68719476736"}, env(nil), &out); err != nil ||
		c.maxBody != 64<<30 || c.quota != server.DefaultQuota || server.DefaultMaxBody != 1<<30 {
		t.Fatalf("64 GiB limit: %+v %v", c, err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	if c, err = parseFlags([]string{"-client-secret-file", file}, env(nil), &out); err != nil || c.clientSecret != "from-file" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestFlagErrors(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{}, // no secret
		{"-client-secret", "x", "-max-body", "0"},
		{"-client-secret", "x", "-max-body", "ten"},
		{"-client-secret", "x", "-quota", "-1"},
		{"-client-secret", "x", "extra"},
		{"-client-secret-file", "/nonexistent/secret"},
		// A public URL must be canonical, without path, query or userinfo.
		{"-client-secret", "x", "-public-url", "https://rs.bar.example/"},
		{"-client-secret", "x", "-public-url", "https://RS.bar.example"},
		{"-client-secret", "x", "-public-url", "https://rs.bar.example:443"},
		{"-client-secret", "x", "-public-url", "https://rs.bar.example/prefix"},
		{"-client-secret", "x", "-public-url", "https://u@rs.bar.example"},
		{"-client-secret", "x", "-public-url", "https://rs.bar.example?x"},
		{"-client-secret", "x", "-public-url", "ftp://rs.bar.example"},
		{"-client-secret", "x", "-public-url", "rs.bar.example"},
	} {
		if _, err := parseFlags(args, env(nil), &out); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestHelpDocumentsEveryFlagAndHidesSecrets(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"-h"}, env(map[string]string{
		"RESOURCE_SERVER_CLIENT_SECRET": "TOPSECRET", "RESOURCE_SERVER_DATABASE_URL": "postgres://u:PASSWORD@h/db",
	}), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	help := out.String()
	if strings.Contains(help, "TOPSECRET") || strings.Contains(help, "PASSWORD") {
		t.Fatal("-h shows a secret")
	}
	for _, f := range []string{"listen", "public-url", "keycloak-url", "realm", "issuer", "client-id", "client-secret", "client-secret-file",
		"rpt-audience", "reader-clients", "db", "database-url", "max-body", "quota", "log-level"} {
		if !strings.Contains(help, "-"+f+" ") || !strings.Contains(help, envName(f)) {
			t.Errorf("-h does not document -%s / %s", f, envName(f))
		}
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
	ctx := context.Background()
	var out bytes.Buffer
	// Configured through the environment, as in a container.
	e := env(map[string]string{"RESOURCE_SERVER_CLIENT_SECRET": "s", "RESOURCE_SERVER_LISTEN": "0.0.0.0:" + port})
	if err := run(ctx, []string{"healthcheck"}, e, &out); err != nil || !strings.Contains(out.String(), "ok") {
		t.Fatalf("healthcheck of a ready server: %v: %s", err, out.String())
	}
	status = http.StatusServiceUnavailable
	out.Reset()
	if err := run(ctx, []string{"healthcheck"}, e, &out); err == nil || !strings.Contains(out.String(), "503") {
		t.Fatalf("healthcheck of an unready server: %v: %s", err, out.String())
	}
	srv.Close()
	if err := run(ctx, []string{"healthcheck", "-listen", addr}, e, &out); err == nil {
		t.Fatal("healthcheck with nobody listening succeeded")
	}
	if err := run(ctx, []string{"healthcheck", "-max-body", "ten"}, e, &out); err == nil || !strings.Contains(err.Error(), "max-body") {
		t.Fatalf("healthcheck with a bad flag: %v", err)
	}
}
