// Package server is the Claims Provider's HTTP face (gin): thin handlers over
// package provider, the discovery document, the JWKS, health, readiness and
// Prometheus metrics on a private registry.
//
//	POST /claims/token                                  claims token (docs/PROTOCOL.md steps 5-6)
//	GET  /.well-known/uma-wide-ecosystem-claims-provider discovery document
//	GET  /jwks                                          public keys (current and retired in grace)
//	GET  /healthz                                       the process is up
//	GET  /readyz                                        Keycloak answers the service account, a key is loaded
//	GET  /metrics                                       Prometheus
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/provider"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/uma"
)

// Paths served.
const (
	PathClaimsToken = "/claims/token"
	PathJWKS        = "/jwks"
	PathHealth      = "/healthz"
	PathReady       = "/readyz"
	PathMetrics     = "/metrics"
)

// DefaultMaxBodyBytes bounds a claims-token request body.
const DefaultMaxBodyBytes = 64 << 10

// MaxAuthorizationBytes bounds the Authorization header value.
const MaxAuthorizationBytes = 16 << 10

// Realm is the realm parameter of the Bearer challenges.
const Realm = "claims-provider"

// Keys is what the server needs of the key store.
type Keys interface {
	Current() *keys.Key
	JWKS() (jwk.Set, error)
	Algs() []string
}

// Config of a Server.
type Config struct {
	// Issuer is the Claims Provider's public URL (no trailing slash).
	Issuer   string
	Provider *provider.Provider
	Keys     Keys
	// Ready reports whether Keycloak answers the service account.
	Ready func(ctx context.Context) error
	// ReadyCacheFor caches a readiness answer; default 5 seconds.
	ReadyCacheFor time.Duration
	// MaxBodyBytes; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Server serves the Claims Provider's endpoints.
type Server struct {
	cfg     Config
	engine  *gin.Engine
	metrics *Metrics

	readyMu   sync.Mutex
	readyErr  error
	readyAt   time.Time
	readyOnce bool
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.Provider == nil || cfg.Keys == nil || cfg.Ready == nil {
		return nil, errors.New("server: issuer, provider, keys and readiness check are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ReadyCacheFor == 0 {
		cfg.ReadyCacheFor = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, metrics: NewMetrics()}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	e.Use(s.observe, s.recover)
	e.POST(PathClaimsToken, s.claimsToken)
	e.GET(uma.DiscoveryPath, s.discovery)
	e.GET(PathJWKS, s.jwks)
	e.GET(PathHealth, s.health)
	e.GET(PathReady, s.ready)
	e.GET(PathMetrics, gin.WrapH(promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})))
	e.NoRoute(func(c *gin.Context) {
		writeError(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such endpoint"))
	})
	e.NoMethod(func(c *gin.Context) {
		writeError(c, uma.NewError(http.StatusMethodNotAllowed, uma.ErrInvalidRequest, "method not allowed"))
	})
	s.engine = e
	return s, nil
}

// Handler is the HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Metrics are the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// HTTPServer wraps the handler with timeouts and header bounds.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.engine,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
}

// TokenResponse is the answer of POST /claims/token.
type TokenResponse struct {
	ClaimsToken string `json:"claims_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (s *Server) claimsToken(c *gin.Context) {
	r := c.Request
	ctx := r.Context()
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")

	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuse(c, tooLarge(s.cfg.MaxBodyBytes), caller.Caller{})
		return
	}
	raw, bad := bearer(r.Header)
	if bad != nil {
		s.refuse(c, bad, caller.Caller{})
		return
	}
	who, bad := s.cfg.Provider.Authenticate(ctx, raw)
	if bad != nil {
		s.refuse(c, bad, who)
		return
	}
	form, bad := readForm(c, s.cfg.MaxBodyBytes)
	if bad != nil {
		s.refuse(c, bad, who)
		return
	}
	req, bad := provider.ParseForm(form)
	if bad != nil {
		s.refuse(c, bad, who)
		return
	}
	tok, user, bad := s.cfg.Provider.Issue(ctx, who, req)
	if bad != nil {
		s.refuse(c, bad, who)
		return
	}
	s.metrics.Issued.WithLabelValues(tok.Alg, who.Kind.String()).Inc()
	s.cfg.Logger.Info("claims token issued",
		"caller", who.Kind.String(), "client", who.ClientID, "user", user.ID,
		"aud", tok.Claims.Audience, "jti", tok.Claims.ID, "kid", tok.Kid, "alg", tok.Alg)
	writeJSON(c, http.StatusOK, TokenResponse{
		ClaimsToken: tok.Raw,
		TokenType:   uma.TokenTypeClaimsToken,
		ExpiresIn:   tok.ExpiresIn,
	})
}

// refuse answers a refusal: JSON body, RFC 6750 challenge where one fits,
// Retry-After on 503; counted and logged with its reason.
func (s *Server) refuse(c *gin.Context, r *provider.Refusal, who caller.Caller) {
	s.metrics.Refusals.WithLabelValues(r.Reason).Inc()
	level := slog.LevelInfo
	if r.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"status", r.Status, "error", r.Code, "reason", r.Reason}
	if who.Kind != 0 {
		attrs = append(attrs, "caller", who.Kind.String(), "client", who.ClientID, "sub", who.Subject)
	}
	if r.Err != nil {
		attrs = append(attrs, "cause", r.Err.Error())
	}
	s.cfg.Logger.Log(c.Request.Context(), level, "claims token refused", attrs...)

	switch {
	case r.Reason == provider.ReasonMissingToken:
		// RFC 6750 section 3.1: no error code when no credentials were sent.
		c.Header("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
	case r.Status == http.StatusUnauthorized || r.Code == uma.ErrInsufficientScope:
		c.Header("WWW-Authenticate", `Bearer realm="`+Realm+`", error="`+r.Code+`"`)
	case r.Status == http.StatusServiceUnavailable:
		c.Header("Retry-After", "5")
	}
	writeError(c, r.UMA())
}

func tooLarge(limit int64) *provider.Refusal {
	return &provider.Refusal{
		Status: http.StatusRequestEntityTooLarge, Code: uma.ErrTooLarge, Reason: provider.ReasonBodyTooLarge,
		Description: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes",
	}
}

// bearer takes the token from the one Authorization header (RFC 6750 2.1).
// No header, or another scheme: 401 without error code (section 3.1). More
// than one header: 400. A malformed token: 401 invalid_token.
func bearer(h http.Header) (string, *provider.Refusal) {
	values := h.Values("Authorization")
	missing := &provider.Refusal{
		Status: http.StatusUnauthorized, Code: uma.ErrInvalidToken, Reason: provider.ReasonMissingToken,
		Description: "a bearer access token of the AuthN realm is required",
	}
	if len(values) == 0 {
		return "", missing
	}
	if len(values) > 1 {
		r := provider.BadRequest("more than one Authorization header")
		return "", r
	}
	v := values[0]
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", missing
	}
	invalid := &provider.Refusal{
		Status: http.StatusUnauthorized, Code: uma.ErrInvalidToken, Reason: provider.ReasonInvalidToken,
		Description: "malformed bearer token",
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(v) > MaxAuthorizationBytes || !isB64Token(token) {
		return "", invalid
	}
	return token, nil
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// readForm reads an application/x-www-form-urlencoded body of bounded size.
func readForm(c *gin.Context, limit int64) (url.Values, *provider.Refusal) {
	r := c.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, provider.BadRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, provider.BadRequest("cannot read the request body")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, provider.BadRequest("malformed form body")
	}
	return form, nil
}

// Discovery is the discovery document.
type Discovery struct {
	Issuer                    string   `json:"issuer"`
	ClaimsEndpoint            string   `json:"claims_endpoint"`
	JWKSURI                   string   `json:"jwks_uri"`
	Domains                   []string `json:"domains"`
	SigningAlgValuesSupported []string `json:"signing_alg_values_supported"`
}

func (s *Server) discovery(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	writeJSON(c, http.StatusOK, Discovery{
		Issuer:                    s.cfg.Issuer,
		ClaimsEndpoint:            s.cfg.Issuer + PathClaimsToken,
		JWKSURI:                   s.cfg.Issuer + PathJWKS,
		Domains:                   s.cfg.Provider.Domains(),
		SigningAlgValuesSupported: s.cfg.Keys.Algs(),
	})
}

func (s *Server) jwks(c *gin.Context) {
	set, err := s.cfg.Keys.JWKS()
	if err != nil {
		s.cfg.Logger.Error("building the JWKS", "err", err)
		writeError(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"))
		return
	}
	// Short: verifiers refetch on an unknown kid anyway; a retired key
	// should not outlive its grace period in caches by much.
	c.Header("Cache-Control", "public, max-age=60")
	data, _ := json.Marshal(set)
	c.Data(http.StatusOK, "application/jwk-set+json", data)
}

func (s *Server) health(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// ready checks (cached for ReadyCacheFor, so probes cannot hammer Keycloak)
// that a signing key is loaded and Keycloak answers the service account.
func (s *Server) ready(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if s.cfg.Keys.Current() == nil {
		writeError(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "no signing key loaded"))
		return
	}
	if err := s.keycloakReady(c.Request.Context()); err != nil {
		writeError(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "Keycloak does not answer the service account"))
		return
	}
	writeJSON(c, http.StatusOK, map[string]string{"status": "ready", "kid": s.cfg.Keys.Current().Kid})
}

func (s *Server) keycloakReady(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.readyOnce && time.Since(s.readyAt) < s.cfg.ReadyCacheFor {
		return s.readyErr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := s.cfg.Ready(ctx)
	if err != nil {
		s.cfg.Logger.Warn("not ready", "err", err)
	}
	s.readyErr, s.readyAt, s.readyOnce = err, time.Now(), true
	return err
}

// recover turns a panic into a 500 with the JSON error body.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.cfg.Logger.Error("panic in handler", "panic", v, "path", c.Request.URL.Path)
			if !c.Writer.Written() {
				writeError(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// observe records the request duration by route and status.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.Duration.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
}

func writeJSON(c *gin.Context, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"))
		return
	}
	c.Data(status, "application/json", data)
}

func writeError(c *gin.Context, e *uma.Error) {
	e.Write(c.Writer)
	c.Abort()
}

// Metrics of the Claims Provider, on a private registry.
type Metrics struct {
	Registry *prometheus.Registry
	Issued   *prometheus.CounterVec
	Refusals *prometheus.CounterVec
	Duration *prometheus.HistogramVec
}

// NewMetrics registers the metrics (and Go and process collectors) on a new
// registry; every refusal reason starts at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claims_provider_tokens_issued_total",
			Help: "Claims tokens issued, by signing algorithm and caller kind (user or client).",
		}, []string{"alg", "caller"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claims_provider_refusals_total",
			Help: "Claims-token requests refused, by reason.",
		}, []string{"reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "claims_provider_http_request_duration_seconds",
			Help:    "HTTP request latency, by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "status"}),
	}
	m.Registry.MustRegister(m.Issued, m.Refusals, m.Duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range provider.Reasons {
		m.Refusals.WithLabelValues(r)
	}
	return m
}
