package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// CheckProfilingAddr accepts an address for ServeProfiling: empty (off, the
// default) or a loopback host:port, since profiles show the process's
// internals (and a CPU profile costs CPU while it runs).
func CheckProfilingAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("profiling address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("profiling address %q: want a loopback address (127.0.0.1:port)", addr)
	}
	return nil
}

// ProfilingHandler serves Go's runtime profiles under /debug/pprof/ (CPU,
// heap, allocs with ?seconds= for a delta, goroutines, ...).
func ProfilingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// ServeProfiling serves ProfilingHandler on its own listener at addr (checked
// with CheckProfilingAddr) until ctx ends; "" serves nothing. It is a
// separate server so that the service's routes, middleware and timeouts
// stay as they are, and a CPU profile may take longer than the service's
// write timeout. It returns the address it listens on.
func ServeProfiling(ctx context.Context, addr string, log *slog.Logger) (string, error) {
	if addr == "" {
		return "", nil
	}
	if err := CheckProfilingAddr(addr); err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("profiling listener: %w", err)
	}
	srv := &http.Server{Handler: ProfilingHandler(), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profiling server", "err", err)
		}
	}()
	log.Warn("Go profiles served (for benchmarks; keep it off in production)", "addr", l.Addr().String())
	return l.Addr().String(), nil
}
