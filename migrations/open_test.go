package migrations_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"abgate"
	"abgate/migrations"
	"abgate/migrations/dbtest"
)

func TestOpenSQLiteCreatesFolderAndFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		dsn  string
		file string // relative to dir
	}{
		{"default", "", filepath.Join("data", "abgate.db")},
		{"relative path", "sqlite:nested/deeper/x.db", filepath.Join("nested", "deeper", "x.db")},
		{"absolute path", "sqlite:" + filepath.Join(dir, "abs", "y.db"), filepath.Join("abs", "y.db")},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, dialect, err := migrations.Open(t.Context(), tt.dsn, nil)
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.dsn, err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					_ = sqlDB.Close()
				}
			})
			if got, want := dialect, migrations.SQLite; got != want {
				t.Errorf("dialect = %q; want %q", got, want)
			}
			if got, want := migrations.DialectOf(db), migrations.SQLite; got != want {
				t.Errorf("DialectOf = %q; want %q", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, tt.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestOpenSQLiteSettings(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLiteDSN(t))
	tests := []struct {
		query string
		want  string
	}{
		{"PRAGMA journal_mode", "wal"},
		{"PRAGMA foreign_keys", "1"},
		{"PRAGMA busy_timeout", "10000"},
		{"PRAGMA synchronous", "1"}, // NORMAL
		// Times are written in a format SQLite's date functions read.
		{"SELECT strftime('%Y-%m-%d %H:%M', ?)", "2019-03-10 12:30"},
	}
	at := time.Date(2019, 3, 10, 12, 30, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var args []any
			if strings.Contains(tt.query, "?") {
				args = append(args, at)
			}
			var got string
			if err := db.Raw(tt.query, args...).Scan(&got).Error; err != nil {
				t.Fatalf("%s: %v", tt.query, err)
			}
			if got != tt.want {
				t.Errorf("%s = %q; want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestOpenPostgresSessionIsUTC(t *testing.T) {
	db := dbtest.Open(t, dbtest.PostgresDSN(t))
	if got, want := migrations.DialectOf(db), migrations.Postgres; got != want {
		t.Errorf("DialectOf = %q; want %q", got, want)
	}
	var got string
	if err := db.Raw(`SHOW timezone`).Scan(&got).Error; err != nil {
		t.Fatalf("SHOW timezone: %v", err)
	}
	if want := "UTC"; got != want {
		t.Errorf("timezone = %q; want %q", got, want)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name     string
		dsn      string
		wantCode string
	}{
		{"mysql", "mysql://root:secret@localhost/abgate", abgate.EINVALID},
		{"bare path", "./data/abgate.db", abgate.EINVALID},
		{"sqlite3 scheme", "sqlite3:./x.db", abgate.EINVALID},
		{"sqlite without path", "sqlite:", abgate.EINVALID},
		{"libpq key value", "host=localhost password=secret", abgate.EINVALID},
		{"unreachable postgres", "postgres://postgres:secret@127.0.0.1:1/abgate?sslmode=disable&connect_timeout=3", abgate.EUNAVAILABLE},
		{"unreachable postgresql", "postgresql://postgres:secret@127.0.0.1:1/abgate?sslmode=disable&connect_timeout=3", abgate.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			db, _, err := migrations.Open(t.Context(), tt.dsn, nil)
			if err == nil {
				sqlDB, _ := db.DB()
				_ = sqlDB.Close()
				t.Fatalf("Open(%q) succeeded; want an error", tt.dsn)
			}
			if got := abgate.ErrorCode(err); got != tt.wantCode {
				t.Errorf("error code = %q (%v); want %q", got, err, tt.wantCode)
			}
			if msg := abgate.ErrorMessage(err); strings.Contains(msg, "secret") {
				t.Errorf("error message shows the password: %q", msg)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Open took %v", elapsed)
			}
		})
	}
}

func TestOpenLogsSlowQueriesWithoutValues(t *testing.T) {
	dsn := dbtest.PostgresDSN(t) // SQLite has no sleep to make a slow query
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, _, err := migrations.Open(t.Context(), dsn, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})

	if err := db.Exec(`SELECT 1 WHERE ? <> ''`, "fast-secret").Error; err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "" {
		t.Errorf("fast query logged: %s", got)
	}
	if err := db.Exec(`SELECT pg_sleep(0.25) WHERE ? <> ''`, "slow-secret").Error; err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "slow sql query") || !strings.Contains(got, "pg_sleep") {
		t.Errorf("slow query log = %q; want a warning with the SQL", got)
	}
	if strings.Contains(got, "secret") {
		t.Errorf("slow query log shows a parameter value: %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
