// Command resource-server is Bob's Resource Server (seed steps 1-2 and 9-10):
// POST /incoming/{owner} answers a UMA challenge without an RPT and stores the
// message with one; the owner reads the Incoming with his own token. It only
// reads configuration and wires the packages under resource-server/internal.
//
// Every flag has an environment fallback RESOURCE_SERVER_<NAME> (upper case,
// '-' as '_'); a flag given on the command line wins. See README.md.
//
// "resource-server healthcheck [flags]" exits 0 when the server listening on
// -listen answers GET /readyz with 200 (the container's health check).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/healthcheck"
	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/server"
	"github.com/umawide/umawide/resource-server/internal/store"
)

const envPrefix = "RESOURCE_SERVER_"

type config struct {
	listen           string
	publicURL        string
	keycloakURL      string
	realm            string
	issuer           string
	clientID         string
	clientSecret     string
	clientSecretFile string
	rptAudience      string
	readerClients    string
	db               string
	databaseURL      string
	maxBody          int64
	logLevel         string
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "resource-server:", err)
		os.Exit(1)
	}
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	type secretFlag struct {
		p    *string
		name string
	}
	var secrets []secretFlag
	fs := flag.NewFlagSet("resource-server", flag.ContinueOnError)
	fs.SetOutput(out)
	str := func(p *string, name, def, usage string) {
		if v := getenv(envName(name)); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+envName(name)+")")
	}
	str(&c.listen, "listen", "127.0.0.1:8082", "address to listen on")
	str(&c.publicURL, "public-url", "", "this server's base URL as clients reach it, scheme://host[:port] without path (default http://<listen>): tickets carry, and RPTs must name, <public-url>/incoming/{owner}")
	str(&c.keycloakURL, "keycloak-url", "http://127.0.0.1:8080", "Keycloak base URL this server calls (JWKS, protection API, admin API)")
	str(&c.realm, "realm", "bar", "the owners' realm: its users own Incomings; realm attribute of the UMA challenge")
	str(&c.issuer, "issuer", "", "the realm's issuer URL as clients see it: as_uri of the challenge and the iss tokens must carry (default <keycloak-url>/realms/<realm>)")
	str(&c.clientID, "client-id", "resource-server", "this resource server's client id in the realm")
	// Secrets: the environment value is applied after parsing, never shown
	// as a default by -h.
	secret := func(p *string, name, usage string) {
		fs.StringVar(p, name, "", usage+" (env "+envName(name)+")")
		secrets = append(secrets, secretFlag{p, name})
	}
	secret(&c.clientSecret, "client-secret", "its client secret (prefer -client-secret-file or the environment)")
	str(&c.clientSecretFile, "client-secret-file", "", "file holding the client secret")
	str(&c.rptAudience, "rpt-audience", "", "audience an RPT's aud must contain (default the client id; \"-\" skips the check)")
	str(&c.readerClients, "reader-clients", "incoming-app", "comma-separated client ids (azp) whose tokens may read an Incoming; \"*\" allows any client of the realm")
	str(&c.db, "db", "data/resource-server.db", "SQLite database file (created with its directory), used unless -database-url is set")
	secret(&c.databaseURL, "database-url", "PostgreSQL URL (postgres://user:pass@host:5432/db); when set, messages are stored there instead of SQLite")
	maxBody := strconv.Itoa(server.DefaultMaxBody)
	str(&maxBody, "max-body", maxBody, "largest message body in bytes (413 beyond)")
	str(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: resource-server [flags]\n       resource-server healthcheck [flags]   exit 0 when the server on -listen answers GET /readyz with 200\n\nBob's UMA Resource Server: POST /incoming/{owner} (UMA challenge, RPT enforced, message stored),\nGET /incoming/{owner}/messages[/{id}] (owner's token), /healthz, /readyz, /metrics.\n\nFlags (each falls back to its environment variable):\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, sf := range secrets {
		if !set[sf.name] {
			*sf.p = getenv(envName(sf.name))
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	n, err := strconv.ParseInt(maxBody, 10, 64)
	if err != nil || n < 1 || n > 1<<30 {
		return c, fmt.Errorf("-max-body %q: want 1 to %d bytes", maxBody, 1<<30)
	}
	c.maxBody = n
	if c.publicURL == "" {
		c.publicURL = "http://" + c.listen
	}
	if err := server.CheckPublicURL(c.publicURL); err != nil {
		return c, fmt.Errorf("-public-url: %w", err)
	}
	c.keycloakURL = strings.TrimRight(c.keycloakURL, "/")
	if c.issuer == "" {
		c.issuer = c.keycloakURL + "/realms/" + c.realm
	}
	c.issuer = strings.TrimRight(c.issuer, "/")
	if c.rptAudience == "" {
		c.rptAudience = c.clientID
	} else if c.rptAudience == "-" {
		c.rptAudience = ""
	}
	if c.clientSecretFile != "" {
		data, err := os.ReadFile(c.clientSecretFile)
		if err != nil {
			return c, fmt.Errorf("-client-secret-file: %w", err)
		}
		c.clientSecret = strings.TrimSpace(string(data))
	}
	if c.clientSecret == "" {
		return c, errors.New("a client secret is required: -client-secret-file, -client-secret or " + envName("client-secret"))
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	health := len(args) > 0 && args[0] == "healthcheck"
	if health {
		args = args[1:]
	}
	c, err := parseFlags(args, getenv, out)
	if err != nil {
		return err
	}
	if health {
		if healthcheck.Run(ctx, c.listen, "/readyz", out) != 0 {
			return errors.New("not ready")
		}
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, c.db, c.databaseURL)
	cancel()
	if err != nil {
		return err
	}
	defer st.Close()
	backend := "sqlite:" + c.db
	if c.databaseURL != "" {
		backend = "postgres"
	}

	hc := httpclient.New(10 * time.Second)
	keys := jwtverify.NewRemoteKeySet(c.keycloakURL+"/realms/"+c.realm+"/protocol/openid-connect/certs", jwtverify.KeySetOptions{HTTPClient: hc})
	verifier, err := rpt.New(rpt.Config{Issuer: c.issuer, Audience: c.rptAudience, Keys: keys, GrantMACKey: []byte(c.clientSecret)})
	if err != nil {
		return err
	}
	prot, err := protection.New(protection.Config{
		KeycloakURL: c.keycloakURL, Realm: c.realm, ClientID: c.clientID, ClientSecret: c.clientSecret,
		HTTPClient: hc, Logger: logger,
	})
	if err != nil {
		return err
	}
	var readers []string
	if c.readerClients != "*" {
		for _, r := range strings.Split(c.readerClients, ",") {
			if r = strings.TrimSpace(r); r != "" {
				readers = append(readers, r)
			}
		}
		if len(readers) == 0 {
			return errors.New("-reader-clients is empty: name the client(s) owners read with, or \"*\"")
		}
	}
	srv, err := server.New(server.Config{
		Realm: c.realm, ASURI: c.issuer, PublicURL: c.publicURL, MaxBody: c.maxBody, ReaderClients: readers,
		IsUnknownOwner: func(err error) bool { return errors.Is(err, protection.ErrUnknownOwner) },
		Store:          st, Protection: prot, Verifier: verifier, Logger: logger,
	})
	if err != nil {
		return err
	}

	// Warm the key cache; Keycloak may still be starting, which is no error.
	warm, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := keys.Refresh(warm); err != nil {
		logger.Warn("realm keys not fetched yet (fetched on first use)", "jwks", keys.URL(), "err", err)
	}
	cancel()

	go srv.RunMaintenance(ctx, time.Hour)
	hs := server.HTTPServer(c.listen, srv, server.DefaultTimeouts, logger)
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	logger.Info("resource server listening", "addr", c.listen, "public_url", c.publicURL, "issuer", c.issuer, "keycloak", c.keycloakURL,
		"realm", c.realm, "store", backend, "max_body", c.maxBody)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shut, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
