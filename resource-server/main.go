// Command resource-server is Bob's Resource Server (seed steps 1-2 and 9-10):
// POST /incoming/{owner} answers a UMA challenge without an RPT and stores the
// message with one; the owner reads the Incoming with his own token. It only
// reads configuration and wires the packages under resource-server/internal.
//
// Every flag has an environment fallback RESOURCE_SERVER_<NAME> (upper case,
// '-' as '_'); a flag given on the command line wins (internal/flagenv).
// See README.md.
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
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/flagenv"
	"github.com/umawide/umawide/internal/healthcheck"
	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/keycloak/token"
	"github.com/umawide/umawide/internal/service"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/server"
	"github.com/umawide/umawide/resource-server/internal/store"
	"github.com/umawide/umawide/resource-server/internal/web"
)

const envPrefix = "RESOURCE_SERVER_"

// maxMaxBody bounds -max-body (1 TiB): a body streams to storage whatever
// its size, so the bound only catches a typing error.
const maxMaxBody = 1 << 40

type config struct {
	listen        string
	publicURL     string
	keycloakURL   string
	realm         string
	domain        string
	issuer        string
	clientID      string
	clientSecret  string
	rptAudience   string
	readerClients string
	db            string
	databaseURL   string
	maxBody       int64
	quota         int64
	pprofListen   string
	webClientID   string
	logging       service.Logging
	// ignored are the environment variables set but empty (flagenv).
	ignored []string
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "resource-server:", err)
		os.Exit(1)
	}
}

const usage = `Usage: resource-server [flags]
       resource-server healthcheck [flags]   exit 0 when the server on -listen answers GET /readyz with 200

Bob's UMA Resource Server: POST /incoming/{owner} (UMA challenge, RPT enforced, message stored),
GET /incoming/{owner}/messages[/{id}], DELETE /incoming/{owner}/messages/{id} (owner's token),
the owner's web page /web/ (login at the realm),
/.well-known/webfinger (with -domain), /healthz, /readyz, /metrics.
`

// parseFlags reads flags, then environment variables for flags not given,
// then the client secret file (internal/flagenv), and derives the defaults
// that depend on other flags.
func parseFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (config, error) {
	var c config
	fs := flagenv.New("resource-server", envPrefix, usage, out)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8082", "address to listen on")
	fs.StringVar(&c.publicURL, "public-url", "", "this server's base URL as clients reach it, scheme://host[:port] without path (default http://<listen>): tickets carry, and RPTs must name, <public-url>/incoming/{owner}")
	fs.StringVar(&c.keycloakURL, "keycloak-url", "http://127.0.0.1:8080", "Keycloak base URL this server calls (JWKS, protection API, admin API)")
	fs.StringVar(&c.realm, "realm", "bar", "the owners' realm: its users own Incomings; realm attribute of the UMA challenge")
	fs.StringVar(&c.domain, "domain", "", "the organisation's email domain (bar.example): GET /.well-known/webfinger answers acct:{owner}@{domain} for the realm's users; empty answers none")
	fs.StringVar(&c.issuer, "issuer", "", "the realm's issuer URL as clients see it: as_uri of the challenge and the iss tokens must carry (default <keycloak-url>/realms/<realm>)")
	fs.StringVar(&c.clientID, "client-id", "resource-server", "this resource server's client id in the realm")
	fs.Secret(&c.clientSecret, "client-secret", "its client secret")
	fs.StringVar(&c.rptAudience, "rpt-audience", "", "audience an RPT's aud must contain (default the client id; \"-\" skips the check)")
	fs.StringVar(&c.readerClients, "reader-clients", "incoming-app", "comma-separated client ids (azp) whose tokens may read an Incoming; \"*\" allows any client of the realm")
	fs.StringVar(&c.db, "db", "data/resource-server.db", "SQLite database file (created with its directory), used unless -database-url is set")
	fs.StringVar(&c.databaseURL, "database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db; a secret: prefer the environment); when set, messages are stored there instead of SQLite")
	fs.Int64Var(&c.maxBody, "max-body", server.DefaultMaxBody, "largest message body in bytes (413 beyond); bodies stream to storage, so this bounds disk, not memory")
	fs.Int64Var(&c.quota, "quota", server.DefaultQuota, "most bytes one owner's Incoming may hold (507 insufficient_storage beyond); 0 is no quota")
	fs.StringVar(&c.pprofListen, "pprof-listen", "", "serve Go's runtime profiles (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060, for make bench; empty: off")
	fs.StringVar(&c.webClientID, "web-client-id", "incoming-app", "the realm's public client the owner's web page (/web/) logs in with; <public-url>/web/callback must be one of its redirect URIs, exactly; \"-\" turns the page off")
	c.logging.Flags(fs.FlagSet)
	if err := fs.Parse(args, lookupEnv); err != nil {
		return c, err
	}
	c.ignored = fs.Ignored()
	if c.maxBody < 1 || c.maxBody > maxMaxBody {
		return c, fmt.Errorf("-max-body %d: want 1 to %d bytes", c.maxBody, int64(maxMaxBody))
	}
	if c.quota < 0 {
		return c, fmt.Errorf("-quota %d: want 0 (no quota) or more bytes", c.quota)
	}
	for name, v := range map[string]string{"listen": c.listen, "keycloak-url": c.keycloakURL, "realm": c.realm, "client-id": c.clientID} {
		if v == "" {
			return c, fmt.Errorf("-%s is empty", name)
		}
	}
	if err := service.CheckProfilingAddr(c.pprofListen); err != nil {
		return c, fmt.Errorf("-pprof-listen: %w", err)
	}
	if c.db == "" && c.databaseURL == "" {
		return c, errors.New("-db is empty and no -database-url is set")
	}
	if c.domain != "" && !uma.ValidDomain(c.domain) {
		return c, fmt.Errorf("-domain %q: want a lower-case DNS name with a dot, like bar.example", c.domain)
	}
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
	if c.clientSecret == "" {
		return c, errors.New("a client secret is required: -client-secret-file, -client-secret or " + flagenv.EnvName(envPrefix, "client-secret"))
	}
	return c, nil
}

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), out io.Writer) error {
	health := len(args) > 0 && args[0] == "healthcheck"
	if health {
		args = args[1:]
	}
	c, err := parseFlags(args, lookupEnv, out)
	if err != nil {
		return err
	}
	if health {
		if healthcheck.Run(ctx, c.listen, service.PathReady, out) != 0 {
			return errors.New("not ready")
		}
		return nil
	}
	logger, err := c.logging.New(os.Stderr)
	if err != nil {
		return err
	}
	for _, name := range c.ignored {
		logger.Warn("environment variable set but empty: ignored, the flag keeps its default", "variable", name)
	}
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
		Realm: c.realm, Domain: c.domain, ASURI: c.issuer, PublicURL: c.publicURL, MaxBody: c.maxBody, Quota: c.quota, ReaderClients: readers,
		IsUnknownOwner: func(err error) bool { return errors.Is(err, protection.ErrUnknownOwner) },
		Store:          st, Protection: prot, Verifier: verifier, Logger: logger,
	})
	if err != nil {
		return err
	}

	if c.webClientID != "-" {
		page, err := web.New(web.Config{
			API: srv, Tokens: verifier, Issuer: c.issuer, ClientID: c.webClientID, PublicURL: c.publicURL,
			TokenEndpoint: token.Endpoint(c.keycloakURL + "/realms/" + c.realm), HTTPClient: hc, Logger: logger,
		})
		if err != nil {
			return err
		}
		srv.Handle(web.Prefix, page)
		logger.Info("owner's web page", "url", c.publicURL+web.Prefix+"/", "client_id", c.webClientID, "redirect_uri", page.RedirectURI())
	}

	// Warm the key cache; Keycloak may still be starting, which is no error.
	warm, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := keys.Refresh(warm); err != nil {
		logger.Warn("realm keys not fetched yet (fetched on first use)", "jwks", keys.URL(), "err", err)
	}
	cancel()

	if _, err := service.ServeProfiling(ctx, c.pprofListen, logger); err != nil {
		return err
	}
	go srv.RunMaintenance(ctx, time.Hour)
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("resource server listening", "addr", c.listen, "public_url", c.publicURL, "issuer", c.issuer, "keycloak", c.keycloakURL,
		"realm", c.realm, "domain", c.domain, "store", backend, "max_body", c.maxBody, "quota", c.quota)
	return srv.Serve(ctx, l)
}
