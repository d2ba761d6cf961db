package config

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Logger is the process's root logger plus the per-component levels from
// logging.components. It lives here, next to the Logging section it is
// built from, so that every package that already receives its config
// section can build its logger without another dependency; msnp, which
// imports nothing of ours, simply takes a zerolog.Logger.
type Logger struct {
	zerolog.Logger
	base   zerolog.Level
	levels map[string]zerolog.Level
}

// NewLogger builds the root logger writing to w, in the configured format
// and level. If any level is trace it lowers zerolog's global level, which
// otherwise stops at debug.
func NewLogger(cfg Logging, w io.Writer) (*Logger, error) {
	base, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("logging.level: %w", err)
	}
	levels := make(map[string]zerolog.Level, len(cfg.Components))
	lowest := base
	for name, s := range cfg.Components {
		lvl, err := parseLevel(s)
		if err != nil {
			return nil, fmt.Errorf("logging.components.%s: %w", name, err)
		}
		levels[name] = lvl
		lowest = min(lowest, lvl)
	}
	if lowest < zerolog.GlobalLevel() {
		zerolog.SetGlobalLevel(lowest)
	}
	switch cfg.Format {
	case "json":
	case "console", "":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime}
	default:
		return nil, fmt.Errorf("logging.format: expected console or json, got %q", cfg.Format)
	}
	root := zerolog.New(w).Level(base).With().Timestamp().Logger()
	return &Logger{Logger: root, base: base, levels: levels}, nil
}

// Component returns the logger for one part of the bridge ("msnp",
// "matrix", "xmpp", "bridge", "store"): it carries component=<name> and the
// component's own level if one is configured. Callers add their own context
// on top, e.g. the core's per-login field:
//
//	log.Component("bridge").With().Str("login", passport).Logger()
func (l *Logger) Component(name string) zerolog.Logger {
	lvl, ok := l.levels[name]
	if !ok {
		lvl = l.base
	}
	return l.Logger.With().Str("component", name).Logger().Level(lvl)
}

func parseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "trace":
		return zerolog.TraceLevel, nil
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("expected trace, debug, info, warn or error, got %q", s)
}
