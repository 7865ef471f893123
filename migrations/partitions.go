package migrations

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

// partitionMonths is how many monthly partitions of exposures
// EnsurePartitions keeps: last month, this month and two ahead.
const partitionMonths = 4

// EnsurePartitions makes sure the exposures table of a PostgreSQL database
// has its monthly partitions from the month before now's (UTC) for four
// months, moving rows of those months out of the default partition. It is
// safe to call from many processes at once. On SQLite, whose exposures table
// is not partitioned, it does nothing. Failures are internal errors.
func EnsurePartitions(ctx context.Context, db *gorm.DB, now time.Time) error {
	if DialectOf(db) != Postgres {
		return nil
	}
	now = now.UTC()
	start := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	err := db.WithContext(ctx).Exec(`SELECT abgate_ensure_exposure_partitions(?, ?)`, start, partitionMonths).Error
	if err != nil {
		return fmt.Errorf("migrations: ensure exposure partitions from %s: %w", start.Format("2006-01"), err)
	}
	return nil
}

// RunPartitionMaintenance calls EnsurePartitions at once and then every
// every (an hour if every is not positive) until ctx is done. Failures are
// logged (nil log discards) and retried at the next tick; it returns only
// when ctx is done.
func RunPartitionMaintenance(ctx context.Context, db *gorm.DB, log *slog.Logger, every time.Duration) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = time.Hour
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if err := EnsurePartitions(ctx, db, time.Now()); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "exposure partition maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
