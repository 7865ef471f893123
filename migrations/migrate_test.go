package migrations_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"gorm.io/gorm"

	"abgate"
	"abgate/migrations"
	"abgate/migrations/dbtest"
)

// eachFresh runs fn as subtests "sqlite" and "postgres", each with the DSN
// of a fresh database that has not been migrated.
func eachFresh(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, dbtest.SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, dbtest.PostgresDSN(t)) })
}

func versions(ms []migrations.Migration) []int {
	v := []int{}
	for _, m := range ms {
		v = append(v, m.Version)
	}
	return v
}

func TestUp(t *testing.T) {
	eachFresh(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		db := dbtest.Open(t, dsn)

		pending, err := migrations.Status(ctx, db)
		if err != nil {
			t.Fatalf("Status before Up: %v", err)
		}
		if len(pending) == 0 {
			t.Fatal("Status lists no migrations")
		}
		for _, m := range pending {
			if m.AppliedAt != nil {
				t.Errorf("before Up, %s applied at %v; want pending", m, m.AppliedAt)
			}
		}

		applied, err := migrations.Up(ctx, db)
		if err != nil {
			t.Fatalf("first Up: %v", err)
		}
		if got, want := fmt.Sprint(versions(applied)), fmt.Sprint(versions(pending)); got != want {
			t.Errorf("first Up applied %s; want %s", got, want)
		}

		again, err := migrations.Up(ctx, db)
		if err != nil {
			t.Fatalf("second Up: %v", err)
		}
		if len(again) != 0 {
			t.Errorf("second Up applied %v; want none", versions(again))
		}

		status, err := migrations.Status(ctx, db)
		if err != nil {
			t.Fatalf("Status after Up: %v", err)
		}
		if got, want := len(status), len(applied); got != want {
			t.Fatalf("Status lists %d migrations; want %d", got, want)
		}
		for i, got := range status {
			want := applied[i]
			if got.Version != want.Version || got.Name != want.Name {
				t.Errorf("Status[%d] = %s; want %s", i, got, want)
			}
			if got.AppliedAt == nil || !got.AppliedAt.Equal(*want.AppliedAt) {
				t.Errorf("Status[%d].AppliedAt = %v; want %v", i, got.AppliedAt, *want.AppliedAt)
			}
		}

		// The schema is really there.
		var version int64
		if err := db.Raw(`SELECT version FROM config_version WHERE id = 1`).Scan(&version).Error; err != nil {
			t.Fatalf("read config_version: %v", err)
		}
		if got, want := version, int64(1); got != want {
			t.Errorf("config_version = %d; want %d", got, want)
		}
	})
}

// TestUpConcurrent starts two processes' worth of Up (two handles, two
// connection pools) on one fresh database at once.
func TestUpConcurrent(t *testing.T) {
	eachFresh(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		dbs := []*gorm.DB{dbtest.Open(t, dsn), dbtest.Open(t, dsn)}
		all, err := migrations.Status(ctx, dbs[0])
		if err != nil {
			t.Fatalf("Status: %v", err)
		}

		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			applied = make([][]migrations.Migration, len(dbs))
			errs    = make([]error, len(dbs))
		)
		for i, db := range dbs {
			wg.Go(func() {
				<-start
				applied[i], errs[i] = migrations.Up(ctx, db)
			})
		}
		close(start)
		wg.Wait()

		for i, err := range errs {
			if err != nil {
				t.Fatalf("Up on handle %d: %v", i, err)
			}
		}
		// Every migration was applied by exactly one of them.
		seen := map[int]int{}
		for _, ms := range applied {
			for _, m := range ms {
				seen[m.Version]++
			}
		}
		for _, m := range all {
			if got, want := seen[m.Version], 1; got != want {
				t.Errorf("%s applied %d times; want %d", m, got, want)
			}
		}
		// On PostgreSQL the advisory lock makes one process do all the work.
		if migrations.DialectOf(dbs[0]) == migrations.Postgres && len(applied[0]) != 0 && len(applied[1]) != 0 {
			t.Errorf("both handles applied migrations: %v and %v", versions(applied[0]), versions(applied[1]))
		}

		var rows []struct{ Version, N int }
		err = dbs[0].Raw(`SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version`).Scan(&rows).Error
		if err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		if got, want := len(rows), len(all); got != want {
			t.Errorf("schema_migrations has %d versions; want %d", got, want)
		}
		for _, r := range rows {
			if r.N != 1 {
				t.Errorf("schema_migrations has version %d %d times; want once", r.Version, r.N)
			}
		}
	})
}

func TestUpNewerSchema(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		known, err := migrations.Status(ctx, db)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		last := known[len(known)-1].Version
		err = db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			9999, "from_the_future", db.NowFunc()).Error
		if err != nil {
			t.Fatalf("insert future version: %v", err)
		}

		want := fmt.Sprintf("database schema version 9999 is newer than this binary (%d)", last)
		for name, call := range map[string]func(context.Context, *gorm.DB) ([]migrations.Migration, error){
			"Up":     migrations.Up,
			"Status": migrations.Status,
		} {
			_, err := call(ctx, db)
			if got, want := abgate.ErrorCode(err), abgate.ECONFLICT; got != want {
				t.Errorf("%s error code = %q (%v); want %q", name, got, err, want)
			}
			if got := abgate.ErrorMessage(err); got != want {
				t.Errorf("%s error message = %q; want %q", name, got, want)
			}
		}
	})
}
