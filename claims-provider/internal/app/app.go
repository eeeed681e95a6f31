// Package app wires the Claims Provider's parts from a validated
// configuration: signing keys, the AuthN realm's token verifier, the user
// directory, the issuer, the decisions and the HTTP server. main reads the
// configuration; the integration tests build the same App in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/issuer"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/provider"
	"github.com/umawide/umawide/claims-provider/internal/server"
	"github.com/umawide/umawide/claims-provider/internal/users"
	"github.com/umawide/umawide/internal/httpclient"
	"github.com/umawide/umawide/internal/jwtverify"
)

// CallerAlgorithms are the signing algorithms accepted on callers' access tokens.
var CallerAlgorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}

// Config is the Claims Provider's configuration (see main for flags).
type Config struct {
	Listen string
	// Issuer is the Claims Provider's public URL: iss of its tokens, base of
	// the discovery document's endpoints.
	Issuer string
	// KeycloakURL is where the Claims Provider reaches Keycloak.
	KeycloakURL string
	// Realm is the AuthN realm.
	Realm string
	// RealmIssuer is the iss of the realm's access tokens; default
	// KeycloakURL/realms/Realm (differs when Keycloak's public hostname is
	// not the URL the Claims Provider uses).
	RealmIssuer string
	// Audience the callers' tokens must carry; default ClientID.
	Audience string
	// ClientID and ClientSecret of the Claims Provider's service account.
	ClientID, ClientSecret string
	// OnBehalfClients may ask with their own client-credentials token.
	OnBehalfClients []string
	// Domains the Claims Provider speaks for.
	Domains []string
	// KeyDir holds the signing keys; Alg is the algorithm of new keys.
	KeyDir string
	Alg    string
	// RSABits of new RSA keys; default keys.DefaultRSABits.
	RSABits int
	// Lifetime of claims tokens.
	Lifetime time.Duration
	// RotationGrace keeps a retired key published.
	RotationGrace time.Duration
	// KeyReloadInterval: how often a rotation by another process is looked for.
	KeyReloadInterval time.Duration
	// KeycloakTimeout bounds each call to Keycloak.
	KeycloakTimeout time.Duration
	// CallerLeeway is the clock skew allowed on callers' exp, iat and nbf;
	// default 30 seconds.
	CallerLeeway time.Duration
	// UserCacheTTL keeps a user found in Keycloak this long (0: every
	// claims token asks Keycloak; main's default is DefaultUserCacheTTL).
	UserCacheTTL time.Duration
}

// DefaultUserCacheTTL is the -user-cache-ttl default: well below the
// lifetime of the claims tokens themselves (120 s by default), which already
// outlive a change in Keycloak by that long.
const DefaultUserCacheTTL = 30 * time.Second

// MaxUserCacheTTL bounds -user-cache-ttl.
const MaxUserCacheTTL = 5 * time.Minute

// Defaults fills empty derived values.
func (c *Config) Defaults() {
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	c.KeycloakURL = strings.TrimRight(c.KeycloakURL, "/")
	if c.RealmIssuer == "" {
		c.RealmIssuer = c.KeycloakURL + "/realms/" + url.PathEscape(c.Realm)
	}
	if c.Audience == "" {
		c.Audience = c.ClientID
	}
	if c.Lifetime == 0 {
		c.Lifetime = issuer.DefaultLifetime
	}
	if c.RotationGrace == 0 {
		c.RotationGrace = time.Hour
	}
	if c.KeyReloadInterval == 0 {
		c.KeyReloadInterval = 30 * time.Second
	}
	if c.KeycloakTimeout == 0 {
		c.KeycloakTimeout = 5 * time.Second
	}
	if c.RSABits == 0 {
		c.RSABits = keys.DefaultRSABits
	}
	if c.CallerLeeway == 0 {
		c.CallerLeeway = 30 * time.Second
	}
}

// Validate refuses configurations the Claims Provider must not run with.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Listen != "", "listen address required")
	check(baseURL(c.Issuer) == nil, "issuer %q: %v", c.Issuer, baseURL(c.Issuer))
	check(baseURL(c.KeycloakURL) == nil, "keycloak-url %q: %v", c.KeycloakURL, baseURL(c.KeycloakURL))
	check(baseURL(c.RealmIssuer) == nil, "realm-issuer %q: %v", c.RealmIssuer, baseURL(c.RealmIssuer))
	check(c.Realm != "" && !strings.ContainsAny(c.Realm, "/?#"), "realm %q invalid", c.Realm)
	check(c.ClientID != "", "client-id required")
	check(c.ClientSecret != "", "client secret required (-client-secret-file or CLAIMS_PROVIDER_CLIENT_SECRET)")
	check(c.Audience != "", "audience required")
	check(len(c.Domains) > 0, "at least one domain required")
	for _, d := range c.Domains {
		check(validDomain(d), "domain %q invalid", d)
	}
	for _, cl := range c.OnBehalfClients {
		check(cl != "" && len(cl) <= caller.MaxIDLength, "on-behalf client %q invalid", cl)
	}
	check(c.KeyDir != "", "key-dir required")
	check(keys.ValidAlg(c.Alg), "alg %q not supported (want one of %v)", c.Alg, keys.Algorithms)
	check(c.Lifetime >= time.Second && c.Lifetime <= issuer.MaxLifetime && c.Lifetime%time.Second == 0,
		"lifetime %v: whole seconds, 1s to %v", c.Lifetime, issuer.MaxLifetime)
	check(c.RotationGrace >= c.Lifetime+time.Minute,
		"rotation-grace %v: at least the token lifetime plus a minute (%v)", c.RotationGrace, c.Lifetime+time.Minute)
	check(c.KeyReloadInterval >= time.Second, "key-reload-interval %v: at least 1s", c.KeyReloadInterval)
	check(c.KeycloakTimeout > 0 && c.KeycloakTimeout <= time.Minute, "keycloak-timeout %v: up to 1m", c.KeycloakTimeout)
	check(c.CallerLeeway > 0 && c.CallerLeeway <= 5*time.Minute, "caller leeway %v: up to 5m", c.CallerLeeway)
	check(c.UserCacheTTL >= 0 && c.UserCacheTTL <= MaxUserCacheTTL, "user-cache-ttl %v: 0 to %v", c.UserCacheTTL, MaxUserCacheTTL)
	return errors.Join(errs...)
}

// baseURL: absolute http(s) URL with a host, no user info, query or fragment.
func baseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http or https URL")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("want scheme://host[:port][/path] only")
	}
	return nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || d != strings.ToLower(d) || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// KeyOptions are the key store options of a configuration.
func (c *Config) KeyOptions(logger *slog.Logger) keys.Options {
	return keys.Options{Grace: c.RotationGrace, RSABits: c.RSABits, Logger: logger}
}

// App is a wired Claims Provider.
type App struct {
	cfg    Config
	log    *slog.Logger
	Keys   *keys.Store
	Users  *users.Directory
	Server *server.Server
}

// New opens the keys (creating the first one when the directory is empty)
// and wires every part. Nothing contacts Keycloak yet.
func New(cfg Config, logger *slog.Logger) (*App, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	ks, err := keys.Open(cfg.KeyDir, cfg.Alg, cfg.KeyOptions(logger))
	if err != nil {
		return nil, err
	}
	jwks := jwtverify.NewRemoteKeySet(cfg.KeycloakURL+"/realms/"+url.PathEscape(cfg.Realm)+"/protocol/openid-connect/certs",
		jwtverify.KeySetOptions{HTTPClient: httpclient.New(cfg.KeycloakTimeout)})
	verifier, err := jwtverify.New(jwtverify.Config{
		Issuer:     cfg.RealmIssuer,
		Audience:   cfg.Audience,
		Algorithms: CallerAlgorithms,
		Leeway:     cfg.CallerLeeway,
		Keys:       jwks,
	})
	if err != nil {
		return nil, err
	}
	dir, err := users.New(users.Config{
		BaseURL: cfg.KeycloakURL, Realm: cfg.Realm,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Timeout:  cfg.KeycloakTimeout,
		CacheTTL: cfg.UserCacheTTL,
	})
	if err != nil {
		return nil, err
	}
	iss, err := issuer.New(cfg.Issuer, ks, issuer.Options{Lifetime: cfg.Lifetime})
	if err != nil {
		return nil, err
	}
	p, err := provider.New(caller.New(verifier), dir, iss, provider.Config{
		OnBehalfClients: cfg.OnBehalfClients,
		Domains:         cfg.Domains,
	})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Issuer: cfg.Issuer, Provider: p, Keys: ks, Logger: logger,
		Ready: dir.Ready,
	})
	if err != nil {
		return nil, err
	}
	for source, n := range map[string]func() int64{
		"keycloak": func() int64 { k, _ := dir.Stats(); return k },
		"cache":    func() int64 { _, c := dir.Stats(); return c },
	} {
		srv.Metrics().Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "claims_provider_user_lookups_total",
			Help:        "User lookups by email, by source: asked of Keycloak, or answered from the cache (-user-cache-ttl).",
			ConstLabels: prometheus.Labels{"source": source},
		}, func() float64 { return float64(n()) }))
	}
	return &App{cfg: cfg, log: logger, Keys: ks, Users: dir, Server: srv}, nil
}

// Handler is the HTTP handler.
func (a *App) Handler() http.Handler { return a.Server.Handler() }

// Serve serves on l until ctx ends, then shuts down gracefully (the
// skeleton's, internal/service). It reloads the keys on SIGHUP and every
// KeyReloadInterval.
func (a *App) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.Keys.Watch(ctx, a.cfg.KeyReloadInterval)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.Keys.ReloadAndLog()
			}
		}
	}()

	cur := a.Keys.Current()
	a.log.Info("claims provider listening", "addr", l.Addr().String(), "issuer", a.cfg.Issuer,
		"realm_issuer", a.cfg.RealmIssuer, "kid", cur.Kid, "alg", cur.Alg, "domains", a.cfg.Domains,
		"on_behalf_clients", a.cfg.OnBehalfClients)
	return a.Server.Serve(ctx, l)
}
