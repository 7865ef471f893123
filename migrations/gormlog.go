package migrations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormLogger sends GORM's log to a *slog.Logger: queries slower than slow
// at warn, failed queries at debug (callers decide whether an error matters:
// a unique violation is often an expected ECONFLICT), GORM's own messages at
// their level. Logged SQL carries no parameter values, which may be secret.
type gormLogger struct {
	log   *slog.Logger
	slow  time.Duration
	level logger.LogLevel
}

var (
	_ logger.Interface  = (*gormLogger)(nil)
	_ gorm.ParamsFilter = (*gormLogger)(nil)
)

func newGormLogger(log *slog.Logger, slow time.Duration) *gormLogger {
	return &gormLogger{log: log, slow: slow, level: logger.Warn}
}

// LogMode returns a copy of l that logs at level.
func (l *gormLogger) LogMode(level logger.LogLevel) logger.Interface {
	c := *l
	c.level = level
	return &c
}

// Info logs a GORM message at info.
func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Info {
		l.log.InfoContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
	}
}

// Warn logs a GORM message at warn.
func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Warn {
		l.log.WarnContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
	}
}

// Error logs a GORM message at error.
func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Error {
		l.log.ErrorContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
	}
}

// Trace logs one query if it failed or was slow.
func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if l.level <= logger.Silent {
		return
	}
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound) && l.log.Enabled(ctx, slog.LevelDebug):
		sql, rows := fc()
		l.log.DebugContext(ctx, "sql query failed", "sql", sql, "rows", rows, "elapsed", elapsed, "err", err)
	case l.slow > 0 && elapsed > l.slow && l.level >= logger.Warn:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow sql query", "sql", sql, "rows", rows, "elapsed", elapsed)
	case l.level >= logger.Info && l.log.Enabled(ctx, slog.LevelDebug):
		sql, rows := fc()
		l.log.DebugContext(ctx, "sql query", "sql", sql, "rows", rows, "elapsed", elapsed)
	}
}

// ParamsFilter drops the parameter values from logged SQL.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
