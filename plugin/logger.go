package plugin

import (
	"io"
	"log/slog"
	"os"

	"github.com/mattn/go-isatty"
)

// NewLogger builds the structured logger the configuration asks for: JSON,
// text, or auto (text when w is a terminal, JSON otherwise).
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsStrings}
	format := cfg.LogFormat
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationsAsStrings writes durations as Go duration strings ("1.5s")
// rather than the JSON handler's nanoseconds, which nobody reads.
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
