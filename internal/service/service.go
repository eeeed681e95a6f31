// Package service is the skeleton both umawide services (the Claims Provider
// and the Resource Server) are built on: a gin engine with the same
// middleware (security header, request log, request metrics, panic
// recovery), the same /healthz, /readyz and /metrics, JSON errors for
// unknown routes and methods, an HTTP server with bounded timeouts, and
// serving with a graceful shutdown. A service adds its own routes to Engine.
package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umawide/umawide/internal/uma"
)

// Paths the skeleton serves.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
)

// Reasons the skeleton gives Config.Fail.
const (
	ReasonNoRoute = "no_route"
	ReasonMethod  = "method"
	ReasonPanic   = "panic"
)

// Timeouts bound the HTTP server: how long a client may take to send the
// headers, the whole request, to read the answer, how long an idle
// keep-alive connection stays open, how long a shutdown waits for requests
// in flight; and how large the request headers may be.
type Timeouts struct {
	ReadHeader, Read, Write, Idle, Shutdown time.Duration
	MaxHeaderBytes                          int
}

// Config of a Service.
type Config struct {
	// Namespace prefixes the request metrics:
	// <Namespace>_http_requests_total{method,route,code} and
	// <Namespace>_http_request_duration_seconds{route,status}.
	Namespace string
	// Registry receives the metrics; default NewRegistry().
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Ready is the readiness check of /readyz; every failure is logged. The
	// first *uma.Error in its chain is the answer (wrap the cause with %w
	// after it to log both); any other error answers 503
	// temporarily_unavailable "not ready", keeping the cause out of the
	// answer.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds one readiness check; default 5 seconds.
	ReadyTimeout time.Duration
	// ReadyCacheFor keeps a readiness answer this long, so that probes
	// cannot hammer what it checks; 0 checks on every probe.
	ReadyCacheFor time.Duration
	// Timeouts of the HTTP server; each one zero is refused.
	Timeouts Timeouts
	// Middleware of the service's own runs after the skeleton's, for every
	// route (the skeleton's too) and for unknown routes and methods.
	Middleware []gin.HandlerFunc
	// Fail answers a refusal of the skeleton's own (unknown route, method
	// not allowed, panic) with e; default writes e and aborts. A service
	// sets it to count its refusals by reason.
	Fail func(c *gin.Context, e *uma.Error, reason string)
}

// Service is the skeleton of one service.
type Service struct {
	// Engine is the gin engine: the service adds its routes.
	Engine   *gin.Engine
	Registry *prometheus.Registry

	cfg      Config
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	readyMu   sync.Mutex
	readyErr  error
	readyAt   time.Time
	readyOnce bool
}

// NewRegistry is a private metrics registry with the Go and process
// collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// DurationBuckets of the request duration histogram: from a cached answer
// (a millisecond) to a large upload (ten seconds).
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New builds the engine with the skeleton's middleware and routes.
func New(cfg Config) (*Service, error) {
	t := cfg.Timeouts
	if cfg.Namespace == "" || cfg.Ready == nil {
		return nil, errors.New("service: Namespace and Ready are required")
	}
	if t.ReadHeader <= 0 || t.Read <= 0 || t.Write <= 0 || t.Idle <= 0 || t.Shutdown <= 0 || t.MaxHeaderBytes <= 0 {
		return nil, errors.New("service: every timeout and MaxHeaderBytes must be set")
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 5 * time.Second
	}
	if cfg.Fail == nil {
		cfg.Fail = func(c *gin.Context, e *uma.Error, _ string) {
			e.Write(c.Writer)
			c.Abort()
		}
	}
	s := &Service{
		cfg:      cfg,
		Registry: cfg.Registry,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: cfg.Namespace + "_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: cfg.Namespace + "_http_request_duration_seconds", Help: "HTTP request latency, by route and status.",
			Buckets: DurationBuckets,
		}, []string{"route", "status"}),
	}
	if err := cfg.Registry.Register(s.requests); err != nil {
		return nil, err
	}
	if err := cfg.Registry.Register(s.duration); err != nil {
		return nil, err
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// Answer exactly what was asked: no redirects to another path, 405 for
	// a known path with another method, the client address from the
	// connection only (no proxy headers trusted).
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.RemoveExtraSlash = false
	e.UseRawPath = false
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	e.Use(s.observe, s.recover)
	e.Use(cfg.Middleware...)
	e.NoRoute(func(c *gin.Context) {
		cfg.Fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such endpoint"), ReasonNoRoute)
	})
	e.NoMethod(func(c *gin.Context) {
		cfg.Fail(c, uma.NewError(http.StatusMethodNotAllowed, uma.ErrInvalidRequest, "method not allowed"), ReasonMethod)
	})
	e.GET(PathHealth, s.health)
	e.GET(PathReady, s.ready)
	e.GET(PathMetrics, gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry})))
	s.Engine = e
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Engine.ServeHTTP(w, r) }

// observe sets the security header every answer carries, then counts, times
// and logs the request by route (the pattern, so that the metrics' label
// values stay bounded).
func (s *Service) observe(c *gin.Context) {
	start := time.Now()
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	took := time.Since(start)
	s.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.duration.WithLabelValues(route, strconv.Itoa(status)).Observe(took.Seconds())
	s.cfg.Logger.Info("request", "method", c.Request.Method, "route", route, "status", status,
		"duration_ms", took.Milliseconds(), "remote", c.Request.RemoteAddr)
}

// recover turns a panic into a 500 with the JSON error body (unless an
// answer was already started); http.ErrAbortHandler keeps its meaning.
func (s *Service) recover(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.cfg.Logger.Error("panic in handler", "panic", v, "method", c.Request.Method, "path", c.Request.URL.Path)
		if c.Writer.Written() {
			c.Abort()
			return
		}
		s.cfg.Fail(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"), ReasonPanic)
	}()
	c.Next()
}

func (s *Service) health(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Service) ready(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	err := s.readiness(c.Request.Context())
	if err == nil {
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
		return
	}
	var ue *uma.Error
	if !errors.As(err, &ue) {
		ue = uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "not ready")
	}
	ue.Write(c.Writer)
	c.Abort()
}

func (s *Service) readiness(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.readyOnce && time.Since(s.readyAt) < s.cfg.ReadyCacheFor {
		return s.readyErr
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	err := s.cfg.Ready(ctx)
	if err != nil {
		s.cfg.Logger.Warn("not ready", "err", err)
	}
	s.readyErr, s.readyAt, s.readyOnce = err, time.Now(), true
	return err
}
