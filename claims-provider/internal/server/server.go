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
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umawide/umawide/claims-provider/internal/caller"
	"github.com/umawide/umawide/claims-provider/internal/keys"
	"github.com/umawide/umawide/claims-provider/internal/provider"
	"github.com/umawide/umawide/internal/jwk"
	"github.com/umawide/umawide/internal/service"
	"github.com/umawide/umawide/internal/uma"
)

// Paths served; health, readiness and metrics are the skeleton's
// (internal/service).
const (
	PathClaimsToken = uma.ClaimsTokenPath
	PathJWKS        = "/jwks"
	PathHealth      = service.PathHealth
	PathReady       = service.PathReady
	PathMetrics     = service.PathMetrics
)

// DefaultMaxBodyBytes bounds a claims-token request body.
const DefaultMaxBodyBytes = 64 << 10

// DefaultTimeouts of the HTTP server: requests and answers are small.
var DefaultTimeouts = service.Timeouts{
	ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second,
	Shutdown: 10 * time.Second, MaxHeaderBytes: 32 << 10,
}

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
	// Timeouts of the HTTP server; default DefaultTimeouts.
	Timeouts *service.Timeouts
	Logger   *slog.Logger
}

// Server serves the Claims Provider's endpoints.
type Server struct {
	cfg     Config
	svc     *service.Service
	metrics *Metrics
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
	if cfg.Timeouts == nil {
		cfg.Timeouts = &DefaultTimeouts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, metrics: NewMetrics()}
	svc, err := service.New(service.Config{
		Namespace: "claims_provider", Registry: s.metrics.Registry, Logger: cfg.Logger,
		Ready: s.ready, ReadyCacheFor: cfg.ReadyCacheFor, Timeouts: *cfg.Timeouts,
	})
	if err != nil {
		return nil, err
	}
	svc.Engine.POST(PathClaimsToken, s.claimsToken)
	svc.Engine.GET(uma.DiscoveryPath, s.discovery)
	svc.Engine.GET(PathJWKS, s.jwks)
	s.svc = svc
	return s, nil
}

// Handler is the HTTP handler.
func (s *Server) Handler() http.Handler { return s.svc }

// Metrics are the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// HTTPServer is the handler behind an HTTP server with the configured
// timeouts and header bound.
func (s *Server) HTTPServer(addr string) *http.Server { return s.svc.HTTPServer(addr) }

// Serve serves on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error { return s.svc.Serve(ctx, l) }

func (s *Server) claimsToken(c *gin.Context) {
	r := c.Request
	ctx := r.Context()
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")

	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuse(c, tooLarge(s.cfg.MaxBodyBytes), caller.Caller{})
		return
	}
	raw, bad := bearer(r)
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
	writeJSON(c, http.StatusOK, uma.ClaimsTokenResponse{
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
func bearer(r *http.Request) (string, *provider.Refusal) {
	token, err := uma.BearerToken(r)
	var be *uma.BearerError
	switch {
	case err == nil:
		return token, nil
	case !errors.As(err, &be) || be.Code == uma.ErrInvalidToken:
		return "", &provider.Refusal{
			Status: http.StatusUnauthorized, Code: uma.ErrInvalidToken, Reason: provider.ReasonInvalidToken,
			Description: "malformed bearer token",
		}
	case be.Missing():
		return "", &provider.Refusal{
			Status: http.StatusUnauthorized, Code: uma.ErrInvalidToken, Reason: provider.ReasonMissingToken,
			Description: "a bearer access token of the AuthN realm is required",
		}
	}
	return "", provider.BadRequest(be.Description)
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

func (s *Server) discovery(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	writeJSON(c, http.StatusOK, uma.ClaimsProviderDiscovery{
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

// ready: a signing key is loaded and Keycloak answers the service account
// (the skeleton caches the answer for ReadyCacheFor, so probes cannot
// hammer Keycloak).
func (s *Server) ready(ctx context.Context) error {
	if s.cfg.Keys.Current() == nil {
		return uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "no signing key loaded")
	}
	if err := s.cfg.Ready(ctx); err != nil {
		return fmt.Errorf("%w: %w", uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "Keycloak does not answer the service account"), err)
	}
	return nil
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

// Metrics of the Claims Provider, on a private registry; the request
// metrics are the skeleton's (claims_provider_http_requests_total and
// claims_provider_http_request_duration_seconds).
type Metrics struct {
	Registry *prometheus.Registry
	Issued   *prometheus.CounterVec
	Refusals *prometheus.CounterVec
}

// NewMetrics registers the metrics (and Go and process collectors) on a new
// registry; every refusal reason starts at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: service.NewRegistry(),
		Issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claims_provider_tokens_issued_total",
			Help: "Claims tokens issued, by signing algorithm and caller kind (user or client).",
		}, []string{"alg", "caller"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claims_provider_refusals_total",
			Help: "Claims-token requests refused, by reason.",
		}, []string{"reason"}),
	}
	m.Registry.MustRegister(m.Issued, m.Refusals)
	for _, r := range provider.Reasons {
		m.Refusals.WithLabelValues(r)
	}
	return m
}
