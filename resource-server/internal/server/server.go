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
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umawide/umawide/internal/service"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rules"
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
	// Domain is the organisation's email domain (bar.example): WebFinger
	// answers acct:{owner}@{Domain} for the realm's users; empty answers
	// no WebFinger query.
	Domain string
	// MaxBody is the largest message in bytes; default DefaultMaxBody.
	MaxBody int64
	// Quota is the most bytes an owner's Incoming may hold (507 beyond);
	// 0 is no quota.
	Quota int64
	// ReaderClients are the client ids (azp) whose tokens may read an
	// Incoming; empty allows any client of the realm.
	ReaderClients []string
	// IsUnknownOwner tells the Protector's "no such user" error apart.
	IsUnknownOwner func(error) bool

	Store      store.Store
	Protection Protector
	// Rules keeps the owners' rules; default a rules.Store over Protection
	// where it can read and write resource attributes (protection.Client).
	// Without one the rules endpoints are not served.
	Rules    *rules.Store
	Verifier Verifier
	// Registry receives the metrics; default service.NewRegistry().
	Registry *prometheus.Registry
	// Timeouts of the HTTP server; default DefaultTimeouts.
	Timeouts *service.Timeouts
	Logger   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultMaxBody is the default message size limit (1 GiB): bodies stream
// to storage, so the limit bounds disk use per message, not memory.
const DefaultMaxBody = 1 << 30

// DefaultQuota is the default storage quota of one owner's Incoming.
const DefaultQuota = 10 << 30

// DefaultListLimit is the default page size of a listing.
const DefaultListLimit = 100

// DefaultTimeouts: Read and Write bound the time a request's body or an
// answer makes no progress (the handlers move the deadlines on while bytes
// flow, so a large body is not cut for its size), and a whole small request.
var DefaultTimeouts = service.Timeouts{
	ReadHeader: 10 * time.Second, Read: 2 * time.Minute, Write: 2 * time.Minute, Idle: 2 * time.Minute,
	Shutdown: 20 * time.Second, MaxHeaderBytes: 64 << 10,
}

// Server is the Resource Server's HTTP side.
type Server struct {
	cfg     Config
	svc     *service.Service
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
	if cfg.Domain != "" && !uma.ValidDomain(cfg.Domain) {
		return nil, fmt.Errorf("server: domain %q is not a lower-case DNS name with a dot", cfg.Domain)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Timeouts == nil {
		cfg.Timeouts = &DefaultTimeouts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = service.NewRegistry()
	}
	if res, ok := cfg.Protection.(rules.Resources); ok && cfg.Rules == nil {
		cfg.Rules = rules.NewStore(res, cfg.Logger, cfg.Now)
	}
	s := &Server{cfg: cfg, metrics: newMetrics(cfg.Registry)}
	svc, err := service.New(service.Config{
		Namespace: "umawide_rs", Registry: cfg.Registry, Logger: cfg.Logger,
		Ready: s.ready, ReadyTimeout: 2 * time.Second, Timeouts: *cfg.Timeouts, Fail: s.fail,
		Middleware: []gin.HandlerFunc{s.strictPath},
	})
	if err != nil {
		return nil, err
	}
	svc.Engine.POST("/incoming/:owner", s.postMessage)
	svc.Engine.GET("/incoming/:owner/messages", s.listMessages)
	svc.Engine.GET("/incoming/:owner/messages/:id", s.getMessage)
	svc.Engine.DELETE("/incoming/:owner/messages/:id", s.deleteMessage)
	svc.Engine.GET(uma.WebFingerPath, s.webfinger)
	if cfg.Rules != nil {
		svc.Engine.GET("/incoming/:owner/rules", s.getRules)
		svc.Engine.PUT("/incoming/:owner/rules", s.putRules)
	}
	s.svc = svc
	return s, nil
}

// Handle serves h for every method on prefix and every path below it (the
// owner's web page, resource-server/internal/web), behind the same
// middleware as the API (strict paths, request log, metrics, recovery).
// Call it before Serve.
func (s *Server) Handle(prefix string, h http.Handler) {
	s.svc.Engine.Any(prefix, gin.WrapH(h))
	s.svc.Engine.Any(prefix+"/*path", gin.WrapH(h))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.svc.ServeHTTP(w, r) }

// Serve serves on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error { return s.svc.Serve(ctx, l) }

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

// ready: the store answers.
func (s *Server) ready(ctx context.Context) error { return s.cfg.Store.Ping(ctx) }

func (s *Server) readerAllowed(azp string) bool {
	return len(s.cfg.ReaderClients) == 0 || slices.Contains(s.cfg.ReaderClients, azp)
}
