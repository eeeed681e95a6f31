package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// HTTPServer is the service's handler behind an HTTP server with its
// timeouts and header bound; its own errors go to the log.
func (s *Service) HTTPServer(addr string) *http.Server {
	t := s.cfg.Timeouts
	return &http.Server{
		Addr:              addr,
		Handler:           s.Engine,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
}

// Serve serves on l until ctx ends, then shuts down: new connections are
// refused, requests in flight get up to Timeouts.Shutdown to finish.
func (s *Service) Serve(ctx context.Context, l net.Listener) error {
	hs := s.HTTPServer(l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("shutting down", "addr", l.Addr().String())
	shut, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// After Shutdown, Serve returns http.ErrServerClosed itself.
	if err := <-errc; err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
