package xds

import (
	"context"
	"fmt"
	"log/slog"
)

// cacheLogger routes go-control-plane's printf-style logging to slog. Its
// Info messages (a stale nonce, for one) are routine: they go to Debug.
type cacheLogger struct{ l *slog.Logger }

func (c cacheLogger) Debugf(format string, args ...any) { c.log(slog.LevelDebug, format, args) }
func (c cacheLogger) Infof(format string, args ...any)  { c.log(slog.LevelDebug, format, args) }
func (c cacheLogger) Warnf(format string, args ...any)  { c.log(slog.LevelWarn, format, args) }
func (c cacheLogger) Errorf(format string, args ...any) { c.log(slog.LevelError, format, args) }

// log formats only when the level is enabled: the cache logs at debug on
// every watch.
func (c cacheLogger) log(level slog.Level, format string, args []any) {
	if !c.l.Enabled(context.Background(), level) {
		return
	}
	c.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "go-control-plane")
}
