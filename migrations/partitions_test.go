package migrations_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/migrations"
	"abgate/migrations/dbtest"
)

// insertExposure adds one exposure at at.
func insertExposure(t *testing.T, db *gorm.DB, at time.Time) {
	t.Helper()
	err := db.Exec(`INSERT INTO exposures (experiment_id, variant_id, unit_id, at) VALUES (1, 1, 'u1', ?)`, at).Error
	if err != nil {
		t.Fatalf("insert exposure at %v: %v", at, err)
	}
}

// partitionOf returns the partition that holds the exposures at at.
func partitionOf(t *testing.T, db *gorm.DB, at time.Time) string {
	t.Helper()
	var parts []string
	if err := db.Raw(`SELECT tableoid::regclass::text FROM exposures WHERE at = ?`, at).Scan(&parts).Error; err != nil {
		t.Fatalf("find partition: %v", err)
	}
	if len(parts) != 1 {
		t.Fatalf("%d exposures at %v; want 1", len(parts), at)
	}
	return parts[0]
}

func countExposures(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(`SELECT count(*) FROM exposures`).Scan(&n).Error; err != nil {
		t.Fatalf("count exposures: %v", err)
	}
	return n
}

func TestEnsurePartitionsMovesRowsOutOfDefault(t *testing.T) {
	db := dbtest.Postgres(t)
	at := time.Date(2019, 3, 10, 8, 0, 0, 0, time.UTC)
	insertExposure(t, db, at)
	before := countExposures(t, db)
	if got, want := partitionOf(t, db, at), "exposures_default"; got != want {
		t.Fatalf("exposure of a month without partition is in %s; want %s", got, want)
	}

	for _, want := range []int{1, 0} { // the second call finds it done
		var created int
		err := db.Raw(`SELECT abgate_ensure_exposure_partitions(?, 1)`, time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)).
			Scan(&created).Error
		if err != nil {
			t.Fatalf("abgate_ensure_exposure_partitions: %v", err)
		}
		if created != want {
			t.Errorf("created %d partitions; want %d", created, want)
		}
	}
	if got, want := partitionOf(t, db, at), "exposures_201903"; got != want {
		t.Errorf("exposure is in %s; want %s", got, want)
	}
	if got, want := countExposures(t, db), before; got != want {
		t.Errorf("%d exposures after the move; want %d", got, want)
	}
}

func TestEnsurePartitions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := time.Date(2020, 1, 31, 23, 0, 0, 0, time.UTC) // months roll over the year
		if err := migrations.EnsurePartitions(t.Context(), db, now); err != nil {
			t.Fatalf("EnsurePartitions: %v", err)
		}
		if migrations.DialectOf(db) != migrations.Postgres {
			return // nothing to check: a no-op
		}
		tests := []struct {
			at   time.Time
			want string
		}{
			{time.Date(2019, 11, 30, 23, 59, 0, 0, time.UTC), "exposures_default"},
			{time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC), "exposures_201912"},
			{time.Date(2020, 1, 31, 23, 0, 0, 0, time.UTC), "exposures_202001"},
			{time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC), "exposures_202002"},
			{time.Date(2020, 3, 31, 23, 59, 59, 0, time.UTC), "exposures_202003"},
			{time.Date(2020, 4, 1, 0, 0, 0, 0, time.UTC), "exposures_default"},
		}
		for _, tt := range tests {
			t.Run(tt.at.Format(time.RFC3339), func(t *testing.T) {
				insertExposure(t, db, tt.at)
				if got := partitionOf(t, db, tt.at); got != tt.want {
					t.Errorf("exposure is in %s; want %s", got, tt.want)
				}
			})
		}
	})
}

// TestEnsurePartitionsIgnoresSessionTimeZone checks that month bounds are
// UTC months whatever the time zone of the calling session.
func TestEnsurePartitionsIgnoresSessionTimeZone(t *testing.T) {
	db := dbtest.Postgres(t)
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL timezone = 'America/New_York'`).Error; err != nil {
			return err
		}
		return tx.Exec(`SELECT abgate_ensure_exposure_partitions('2019-11-01 00:00:00+00', 1)`).Error
	})
	if err != nil {
		t.Fatalf("ensure partitions in New York time: %v", err)
	}
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2019, 10, 31, 23, 59, 0, 0, time.UTC), "exposures_default"},
		{time.Date(2019, 11, 1, 0, 0, 0, 0, time.UTC), "exposures_201911"},
		{time.Date(2019, 11, 30, 23, 59, 0, 0, time.UTC), "exposures_201911"},
		{time.Date(2019, 12, 1, 0, 30, 0, 0, time.UTC), "exposures_default"},
	}
	for _, tt := range tests {
		t.Run(tt.at.Format(time.RFC3339), func(t *testing.T) {
			insertExposure(t, db, tt.at)
			if got := partitionOf(t, db, tt.at); got != tt.want {
				t.Errorf("exposure is in %s; want %s", got, tt.want)
			}
		})
	}
}

func TestRunPartitionMaintenance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			migrations.RunPartitionMaintenance(ctx, db, slog.New(slog.DiscardHandler), 10*time.Millisecond)
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("RunPartitionMaintenance did not return after its context was done")
		}
	})
}
