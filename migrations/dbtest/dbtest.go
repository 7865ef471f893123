// Package dbtest gives tests fresh, migrated abgate databases: a SQLite file
// in the test's temporary folder, and a schema of its own in the PostgreSQL
// database named by the environment variable ABGATE_TEST_POSTGRES, for
// example
//
//	ABGATE_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/abgate_test?sslmode=disable'
//
// Without that variable the PostgreSQL tests are skipped, except when CI is
// set, where they fail. Everything a helper creates is removed when the
// test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/migrations"
)

// EnvPostgres names the environment variable holding the DSN of the
// PostgreSQL database that tests may use; each test gets its own schema.
const EnvPostgres = "ABGATE_TEST_POSTGRES"

// Each runs fn as the subtest "sqlite" on a fresh migrated SQLite database
// and as the subtest "postgres" on a fresh migrated PostgreSQL schema (see
// Postgres for when that one is skipped).
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a migrated database in a new SQLite file under t.TempDir(),
// closed when the test ends.
func SQLite(t testing.TB) *gorm.DB {
	t.Helper()
	return migrated(t, SQLiteDSN(t))
}

// SQLiteDSN returns the DSN of a SQLite file under t.TempDir() that does not
// exist yet.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "abgate.db")
}

// Postgres returns a migrated database in a new schema of the PostgreSQL
// database named by ABGATE_TEST_POSTGRES, closed and dropped when the test
// ends. Without ABGATE_TEST_POSTGRES the test is skipped, or fails when the
// environment variable CI is set.
func Postgres(t testing.TB) *gorm.DB {
	t.Helper()
	return migrated(t, PostgresDSN(t))
}

// PostgresDSN creates a new empty schema, not migrated, in the PostgreSQL
// database named by ABGATE_TEST_POSTGRES, and returns a DSN whose
// search_path is that schema, so that every table, function and unqualified
// lookup of the connection lives there. The schema is dropped with all it
// holds when the test ends; close any handle opened on it before then
// (t.Cleanup runs last-registered first). Skips or fails like Postgres.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(EnvPostgres + " must be set in CI")
		}
		t.Skip("PostgreSQL tests skipped: set " + EnvPostgres +
			"='postgres://postgres@127.0.0.1:5432/abgate_test?sslmode=disable' (an existing database) to run them")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvPostgres, err)
	}

	schema := "t_" + randomHex(t, 8)
	ctx := context.Background()
	admin := open(t, base)
	if err := admin.WithContext(ctx).Exec(`CREATE SCHEMA ` + schema).Error; err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.WithContext(ctx).Exec(`DROP SCHEMA ` + schema + ` CASCADE`).Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens dsn with migrations.Open and closes it when the test ends.
func Open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	return open(t, dsn)
}

func open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, _, err := migrations.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

// migrated opens dsn and applies every migration.
func migrated(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db := open(t, dsn)
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return db
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}
