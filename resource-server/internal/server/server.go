// Package server holds the Resource Server's HTTP handlers (gin): the UMA
// challenge and RPT enforcement on POST /incoming/{owner}, the owner's reading
// of the Incoming, health, readiness and metrics. Protocol logic lives in the
// protection, rpt and store packages; handlers only sequence it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// Protector is the protection-API side (protection.Client).
type Protector interface {
	// Owner resolves a username to the owner's user id and Incoming resource
	// id, registering the resource on first use; an error IsUnknownOwner
	// accepts when the owner is no user of the realm.
	Owner(ctx context.Context, owner string) (protection.Owner, error)
	// Refresh is Owner looked up again now (the cached user id may be of a
	// user deleted since).
	Refresh(ctx context.Context, owner string) (protection.Owner, error)
	// Ticket is a fresh permission ticket for scope create on the owner's
	// Incoming, carrying incoming_uri = incomingURL.
	Ticket(ctx context.Context, owner, incomingURL string) (ticket string, o protection.Owner, err error)
}

// Verifier checks tokens (rpt.Verifier).
type Verifier interface {
	Authorize(ctx context.Context, raw, resourceID, incomingURL string) (rpt.Grant, error)
	Reader(ctx context.Context, raw string) (rpt.Reader, error)
}

// Config of the handlers.
type Config struct {
	// Realm is the realm attribute of the UMA challenge ("bar").
	Realm string
	// ASURI is the realm's issuer URL as clients see it (as_uri).
	ASURI string
	// PublicURL is this server's base URL as clients reach it
	// (scheme://host[:port], no path): the Incoming URL of owner o is
	// uma.CanonicalIncomingURL(PublicURL + "/incoming/" + o), the
	// incoming_uri of its tickets and the one an RPT must carry.
	PublicURL string
	// MaxBody is the largest message in bytes; default 10 MiB.
	MaxBody int64
	// ReaderClients are the client ids (azp) whose tokens may read an
	// Incoming; empty allows any client of the realm.
	ReaderClients []string
	// IsUnknownOwner tells the Protector's "no such user" error apart.
	IsUnknownOwner func(error) bool

	Store      store.Store
	Protection Protector
	Verifier   Verifier
	// Registry receives the metrics; default a new private registry.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultMaxBody is the default message size limit.
const DefaultMaxBody = 10 << 20

// Bounds of request inputs.
const (
	MaxAuthorizationLen = 16 << 10
	DefaultListLimit    = 100
)

// Server is the Resource Server's HTTP side.
type Server struct {
	cfg     Config
	engine  *gin.Engine
	metrics *metrics
}

// New builds the handlers.
func New(cfg Config) (*Server, error) {
	if cfg.Realm == "" || cfg.ASURI == "" || cfg.Store == nil || cfg.Protection == nil || cfg.Verifier == nil || cfg.IsUnknownOwner == nil {
		return nil, errors.New("server: Realm, ASURI, Store, Protection, Verifier and IsUnknownOwner are required")
	}
	if err := CheckPublicURL(cfg.PublicURL); err != nil {
		return nil, err
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, metrics: newMetrics(cfg.Registry)}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.RemoveExtraSlash = false
	e.UseRawPath = false
	e.Use(s.observe, s.recover, s.strictPath)
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such endpoint"), "no_route")
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, uma.NewError(http.StatusMethodNotAllowed, uma.ErrInvalidRequest, "method not allowed"), "method")
	})

	e.POST("/incoming/:owner", s.postMessage)
	e.GET("/incoming/:owner/messages", s.listMessages)
	e.GET("/incoming/:owner/messages/:id", s.getMessage)
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry})))
	s.engine = e
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Timeouts of the HTTP server.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts leave a 10 MiB upload two minutes.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 2 * time.Minute, Write: 2 * time.Minute, Idle: 2 * time.Minute}

// HTTPServer wraps h with timeouts and a header size limit.
func HTTPServer(addr string, h http.Handler, t Timeouts, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// CheckPublicURL says whether u can be a Resource Server's public base URL:
// absolute http or https, a host, no path, userinfo, query or fragment, and
// already in canonical form (lower case, no default port, no trailing
// slash), so that the URL an operator configures is the one tickets carry.
func CheckPublicURL(u string) error {
	probe := u + "/incoming/x"
	c, err := uma.CanonicalIncomingURL(probe)
	if err != nil {
		return fmt.Errorf("server: public URL %q: %w", u, err)
	}
	if c != probe {
		return fmt.Errorf("server: public URL %q is not canonical: want %q", u, strings.TrimSuffix(c, "/incoming/x"))
	}
	return nil
}

// IncomingURL is the canonical URL of owner's Incoming at this server.
func (s *Server) IncomingURL(owner string) (string, error) {
	return uma.CanonicalIncomingURL(s.cfg.PublicURL + uma.IncomingPath(owner))
}

// RunMaintenance prunes spent grant ids whose RPTs expired, every interval,
// until ctx ends.
func (s *Server) RunMaintenance(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Keep a margin for the verifiers' clock leeway.
			n, err := s.cfg.Store.PruneUsedGrants(ctx, s.cfg.Now().Add(-10*time.Minute))
			if err != nil {
				s.cfg.Logger.Warn("pruning used grant ids", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Info("pruned used grant ids", "count", n)
			}
		}
	}
}

// --- middleware ---

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, route, fmt.Sprint(status)).Inc()
	s.metrics.duration.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
	s.cfg.Logger.Info("request", "method", c.Request.Method, "route", route, "status", status,
		"duration_ms", time.Since(start).Milliseconds(), "remote", c.Request.RemoteAddr)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.cfg.Logger.Error("panic in handler", "panic", fmt.Sprint(v))
			s.fail(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"), "panic")
		}
	}()
	c.Next()
}

// strictPath refuses percent-encoded paths: no owner name or message id needs
// encoding, and decoding is where "b%6fb" and "bob" or "a%2fb" and "a/b"
// would start to disagree.
func (s *Server) strictPath(c *gin.Context) {
	if c.Request.URL.RawPath != "" || strings.ContainsRune(c.Request.URL.EscapedPath(), '%') {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "percent-encoded paths are not accepted"), "encoded_path")
		return
	}
	c.Next()
}

// fail answers e as JSON, counts the refusal and stops the chain.
func (s *Server) fail(c *gin.Context, e *uma.Error, reason string) {
	s.metrics.refusals.WithLabelValues(reason).Inc()
	e.Write(c.Writer)
	c.Abort()
}

func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.cfg.Logger.Warn("not ready", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "store": "down"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "store": "up"})
}

// bearer extracts a bearer token: ok false when there is no Authorization
// header; err when it is not a well-formed bearer credential.
func bearer(r *http.Request) (token string, ok bool, err error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, errors.New("more than one Authorization header")
	}
	v := vals[0]
	if len(v) > MaxAuthorizationLen {
		return "", true, errors.New("Authorization header too long")
	}
	scheme, tok, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("not a Bearer credential")
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || strings.IndexFunc(tok, func(r rune) bool { return !isToken68(r) }) >= 0 {
		return "", true, errors.New("malformed bearer token")
	}
	return tok, true, nil
}

func isToken68(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/=", r)
}

func (s *Server) readerAllowed(azp string) bool {
	return len(s.cfg.ReaderClients) == 0 || slices.Contains(s.cfg.ReaderClients, azp)
}
