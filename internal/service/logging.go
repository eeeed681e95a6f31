package service

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Logging is the -log-level and -log-format configuration of a service.
type Logging struct {
	Level, Format string
}

// Flags defines -log-level and -log-format on fs.
func (l *Logging) Flags(fs *flag.FlagSet) {
	fs.StringVar(&l.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", "text", "log format: text or json")
}

// New is the logger writing to w.
func (l Logging) New(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", l.Level, err)
	}
	o := &slog.HandlerOptions{Level: level}
	switch l.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", l.Format)
}
