// Command claims-provider runs the UMA Wide Ecosystem Claims Provider next to
// a Keycloak realm: it signs short-lived, ticket-bound claims tokens about the
// realm's users (docs/PROTOCOL.md steps 5-6).
//
//	claims-provider [flags]          serve
//	claims-provider rotate [flags]   make a new signing key, keep the old one
//	                                 published for -rotation-grace, and exit
//	claims-provider healthcheck [flags]
//	                                 exit 0 when the server on -listen is ready
//	                                 (GET /readyz; the container health check)
//
// Every flag has an environment variable (CLAIMS_PROVIDER_ and the flag name
// in upper case, '-' as '_'); a flag given on the command line wins. Run
// claims-provider -h for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/umawide/umawide/claims-provider/internal/app"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/server"
	"github.com/umawide/umawide/internal/flagenv"
	"github.com/umawide/umawide/internal/healthcheck"
	"github.com/umawide/umawide/internal/service"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "CLAIMS_PROVIDER_"

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	cfg     app.Config
	rotate  bool
	health  bool // the healthcheck subcommand
	logging service.Logging
	// pprofListen serves Go's profiles there (make bench); "" is off.
	pprofListen string
	// ignored are the environment variables set but empty (flagenv).
	ignored []string
}

func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	opts, err := parse(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "claims-provider: %v\n", err)
		return 2
	}
	if opts.health {
		return healthcheck.Run(context.Background(), opts.cfg.Listen, server.PathReady, stdout)
	}
	logger, err := opts.logging.New(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "claims-provider: %v\n", err)
		return 2
	}
	for _, name := range opts.ignored {
		logger.Warn("environment variable set but empty: ignored, the flag keeps its default", "variable", name)
	}
	if opts.rotate {
		cfg := opts.cfg
		cfg.Defaults()
		kid, err := keys.Rotate(cfg.KeyDir, cfg.Alg, cfg.KeyOptions(logger))
		if err != nil {
			logger.Error("rotation failed", "err", err)
			return 1
		}
		fmt.Fprintln(stdout, kid)
		return 0
	}
	a, err := app.New(opts.cfg, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	l, err := net.Listen("tcp", opts.cfg.Listen)
	if err != nil {
		logger.Error("cannot listen", "addr", opts.cfg.Listen, "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := service.ServeProfiling(ctx, opts.pprofListen, logger); err != nil {
		logger.Error("cannot serve profiles", "err", err)
		return 1
	}
	if err := a.Serve(ctx, l); err != nil {
		logger.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

const usage = `Usage:
  claims-provider [flags]          serve
  claims-provider rotate [flags]   new signing key (the old one stays published for -rotation-grace), then exit
  claims-provider healthcheck [flags]  exit 0 when the server on -listen answers GET /readyz with 200 (container health check)
`

// parse reads flags, then environment variables for flags not given, then
// the client secret file (internal/flagenv); it validates nothing beyond
// syntax (app.New does).
func parse(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*options, error) {
	rotateCmd, healthCmd := false, false
	if len(args) > 0 && args[0] == "rotate" {
		rotateCmd, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "healthcheck" {
		healthCmd, args = true, args[1:]
	}
	o := &options{health: healthCmd}
	c := &o.cfg
	fs := flagenv.New("claims-provider", EnvPrefix, usage, stderr)

	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8081", "address to listen on (host:port)")
	fs.StringVar(&c.Issuer, "issuer", "http://127.0.0.1:8081", "public URL of this Claims Provider: iss of its tokens, base of its endpoints")
	fs.StringVar(&c.KeycloakURL, "keycloak-url", "http://127.0.0.1:8080", "base URL at which this service reaches Keycloak (without /realms/...)")
	fs.StringVar(&c.Realm, "realm", "foo", "the AuthN realm whose users the tokens speak about")
	fs.StringVar(&c.RealmIssuer, "realm-issuer", "", "iss of the realm's access tokens (default <keycloak-url>/realms/<realm>; set it when Keycloak's public hostname differs)")
	fs.StringVar(&c.ClientID, "client-id", "claims-provider", "client id of this service's service account (realm-management query-users, view-users)")
	fs.StringVar(&c.Audience, "audience", "", "audience callers' access tokens must carry (default the client id)")
	fs.Secret(&c.ClientSecret, "client-secret", "client secret")
	var onBehalf, domains string
	fs.StringVar(&onBehalf, "on-behalf-clients", "rqp-client", "comma-separated client ids that may ask with their own client-credentials token on a user's behalf (\"-\": none)")
	fs.StringVar(&domains, "domains", "foo.example", "comma-separated email domains this Claims Provider speaks for (published in discovery)")
	fs.StringVar(&c.KeyDir, "key-dir", "claims-provider-keys", "directory of the signing keys (created with mode 0700; keys PKCS#8 PEM, mode 0600)")
	fs.StringVar(&c.Alg, "alg", keys.ES256, "signing algorithm of new keys: ES256, RS256, PS256 or EdDSA (changing it needs a rotation)")
	fs.DurationVar(&c.Lifetime, "lifetime", 120*time.Second, "claims token lifetime (whole seconds, at most 300s)")
	fs.DurationVar(&c.RotationGrace, "rotation-grace", time.Hour, "how long a retired key stays in the JWKS after a rotation (at least lifetime + 1m)")
	fs.DurationVar(&c.KeyReloadInterval, "key-reload-interval", 30*time.Second, "how often the server looks for a rotation made by 'claims-provider rotate' (SIGHUP reloads at once)")
	fs.DurationVar(&c.KeycloakTimeout, "keycloak-timeout", 5*time.Second, "timeout of each call to Keycloak")
	fs.DurationVar(&c.UserCacheTTL, "user-cache-ttl", app.DefaultUserCacheTTL, "how long a user found in Keycloak is kept for further claims tokens (0: ask Keycloak for every token; at most 5m)")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "serve Go's runtime profiles (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6061, for make bench; empty: off")
	fs.BoolVar(&o.rotate, "rotate", false, "rotate the signing key and exit (same as the rotate subcommand; no environment variable)")
	fs.NoEnv("rotate")
	o.logging.Flags(fs.FlagSet)

	if err := fs.Parse(args, lookupEnv); err != nil {
		return nil, err
	}
	o.ignored = fs.Ignored()
	if err := service.CheckProfilingAddr(o.pprofListen); err != nil {
		return nil, fmt.Errorf("-pprof-listen: %w", err)
	}
	o.rotate = o.rotate || rotateCmd
	if onBehalf != "-" {
		c.OnBehalfClients = flagenv.List(onBehalf)
	}
	c.Domains = flagenv.List(strings.ToLower(domains))
	return o, nil
}
