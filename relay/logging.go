package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelTrace is below slog's debug level: pion's trace output is per packet.
const levelTrace = slog.LevelDebug - 4

var discardLogger = slog.New(slog.DiscardHandler)

// pionLoggerFactory hands pion loggers that write to slog, scoped by
// pion's component name.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With(slog.String("pion", scope))}
}

// quiet is a logger for pion code that reports a client's mistakes as
// errors (the TURN REST auth handler logs every expired username at error
// level); we count and log those ourselves, so they go to debug.
func (f pionLoggerFactory) quiet(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With(slog.String("pion", scope)), quiet: true}
}

type pionLogger struct {
	log   *slog.Logger
	quiet bool
}

func (l pionLogger) emit(level slog.Level, msg string) {
	if l.quiet && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelWarn, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }

// emitf formats only when the level is on: pion formats per packet.
func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.quiet && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}
