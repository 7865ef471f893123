package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"abgate"
)

// files holds the migrations of each dialect, named NNNN_name.sql.
//
//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migration is one versioned change of the schema, from a file named
// NNNN_name.sql: Version NNNN, Name name. AppliedAt is when it was applied
// (UTC), nil while it is pending.
type Migration struct {
	Version   int
	Name      string
	AppliedAt *time.Time
}

// String returns the file name of m without its extension, as "0001_init".
func (m Migration) String() string {
	return fmt.Sprintf("%04d_%s", m.Version, m.Name)
}

// script is a migration with its SQL.
type script struct {
	Migration
	sql string
}

// createSchemaMigrations creates the table of applied migrations, per dialect.
var createSchemaMigrations = map[Dialect]string{
	SQLite: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMP NOT NULL
)`,
	Postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)`,
}

// Up applies the pending migrations of db in version order, each in its own
// transaction together with its row in schema_migrations (created if
// absent), and returns those it applied, none when the schema is current.
// If a migration fails, Up returns the ones applied before it and the error;
// the failed one left nothing behind.
//
// Processes may call Up at the same time: on PostgreSQL, Up holds a
// session-level advisory lock (one per schema) for its whole run, so a
// second caller waits and then finds nothing pending; on SQLite every
// migration runs in a transaction that takes the write lock at BEGIN (as
// all read-write transactions of a handle from Open do) and re-reads the
// applied versions inside it.
//
// Errors: ECONFLICT when the database holds a migration newer than this
// binary knows (a newer abgate migrated it; run that one), EINVALID for a
// database that is neither SQLite nor PostgreSQL, EUNAVAILABLE when no
// connection can be had; any other failure is internal.
func Up(ctx context.Context, db *gorm.DB) ([]Migration, error) {
	d := DialectOf(db)
	scripts, err := load(d)
	if err != nil {
		return nil, err
	}
	conn, err := dedicatedConn(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	if d == Postgres {
		unlock, err := lockPostgres(ctx, conn)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if _, err := conn.ExecContext(ctx, createSchemaMigrations[d]); err != nil {
		return nil, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	applied, err := appliedAt(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := checkNotNewer(applied, scripts); err != nil {
		return nil, err
	}

	var done []Migration
	for _, s := range scripts {
		if _, ok := applied[s.Version]; ok {
			continue
		}
		m, ran, err := apply(ctx, conn, s)
		if err != nil {
			return done, err
		}
		if ran {
			done = append(done, m)
		}
	}
	return done, nil
}

// Status returns every migration this binary knows for the dialect of db,
// in version order, with AppliedAt nil for the pending ones. A database
// never migrated has them all pending. Errors are those of Up.
func Status(ctx context.Context, db *gorm.DB) ([]Migration, error) {
	d := DialectOf(db)
	scripts, err := load(d)
	if err != nil {
		return nil, err
	}
	conn, err := dedicatedConn(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	var exists bool
	q := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if d == Postgres {
		q = `SELECT to_regclass('schema_migrations') IS NOT NULL`
	}
	if err := conn.QueryRowContext(ctx, q).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrations: look for schema_migrations: %w", err)
	}
	applied := map[int]time.Time{}
	if exists {
		if applied, err = appliedAt(ctx, conn); err != nil {
			return nil, err
		}
	}
	if err := checkNotNewer(applied, scripts); err != nil {
		return nil, err
	}

	all := make([]Migration, len(scripts))
	for i, s := range scripts {
		all[i] = s.Migration
		if at, ok := applied[s.Version]; ok {
			all[i].AppliedAt = &at
		}
	}
	return all, nil
}

// load reads the migrations of dialect d in version order.
func load(d Dialect) ([]script, error) {
	if d != SQLite && d != Postgres {
		return nil, abgate.Errorf(abgate.EINVALID, "unsupported database dialect %q: abgate runs on %s and %s", d, SQLite, Postgres)
	}
	entries, err := fs.ReadDir(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("migrations: read embedded %s files: %w", d, err)
	}
	var scripts []script
	for _, e := range entries {
		m, ok := parseFileName(e.Name())
		if !ok {
			return nil, fmt.Errorf("migrations: file %s/%s is not named NNNN_name.sql", d, e.Name())
		}
		b, err := fs.ReadFile(files, string(d)+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s/%s: %w", d, e.Name(), err)
		}
		scripts = append(scripts, script{Migration: m, sql: string(b)})
	}
	slices.SortFunc(scripts, func(a, b script) int { return a.Version - b.Version })
	for i := 1; i < len(scripts); i++ {
		if scripts[i].Version == scripts[i-1].Version {
			return nil, fmt.Errorf("migrations: two %s files have version %d", d, scripts[i].Version)
		}
	}
	return scripts, nil
}

// parseFileName reads the version and name from a file name like
// 0001_init.sql; ok is false for any other form.
func parseFileName(file string) (m Migration, ok bool) {
	base, isSQL := strings.CutSuffix(file, ".sql")
	num, name, found := strings.Cut(base, "_")
	if !isSQL || !found || len(num) < 4 || name == "" {
		return Migration{}, false
	}
	for _, r := range num {
		if r < '0' || r > '9' {
			return Migration{}, false
		}
	}
	v, err := strconv.Atoi(num)
	if err != nil || v <= 0 {
		return Migration{}, false
	}
	return Migration{Version: v, Name: name}, true
}

// dedicatedConn takes one connection of db's pool for the caller alone.
func dedicatedConn(ctx context.Context, db *gorm.DB) (*sql.Conn, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("migrations: no connection pool: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, abgate.Errorf(abgate.EUNAVAILABLE, "cannot get a database connection: %v", err)
	}
	return conn, nil
}

// lockPostgres takes the session-level advisory lock of migrations on conn,
// waiting for another process that holds it, and returns the function that
// releases it. The key is per schema, so tests in separate schemas of one
// database do not wait for each other.
func lockPostgres(ctx context.Context, conn *sql.Conn) (unlock func(), err error) {
	var key int64
	if err := conn.QueryRowContext(ctx,
		`SELECT hashtext('abgate_migrations:' || coalesce(current_schema(), ''))::bigint`).Scan(&key); err != nil {
		return nil, fmt.Errorf("migrations: advisory lock key: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return nil, fmt.Errorf("migrations: take advisory lock: %w", err)
	}
	return func() {
		// The caller's ctx may be done by now; the lock must go anyway.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released bool
		err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released)
		if err != nil || !released {
			// Drop the connection rather than pool it with the lock held:
			// the session's end releases its locks.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}

// appliedAt returns the applied versions and when they were applied.
func appliedAt(ctx context.Context, conn *sql.Conn) (map[int]time.Time, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]time.Time{}
	for rows.Next() {
		var (
			v  int
			at time.Time
		)
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
		}
		applied[v] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkNotNewer returns an ECONFLICT error when applied holds a version
// beyond the last of scripts.
func checkNotNewer(applied map[int]time.Time, scripts []script) error {
	known := 0
	if len(scripts) > 0 {
		known = scripts[len(scripts)-1].Version
	}
	newest := 0
	for v := range applied {
		newest = max(newest, v)
	}
	if newest > known {
		return abgate.Errorf(abgate.ECONFLICT, "database schema version %d is newer than this binary (%d)", newest, known)
	}
	return nil
}

// apply runs s and records it in one transaction on conn, unless another
// process applied it first, in which case ran is false.
func apply(ctx context.Context, conn *sql.Conn, s script) (m Migration, ran bool, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return Migration{}, false, fmt.Errorf("migrations: begin %s: %w", s.Migration, err)
	}
	defer func() {
		if err != nil || !ran {
			_ = tx.Rollback()
		}
	}()

	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, s.Version).Scan(&n)
	if err != nil {
		return Migration{}, false, fmt.Errorf("migrations: check %s: %w", s.Migration, err)
	} else if n > 0 {
		return Migration{}, false, nil
	}
	// No arguments: PostgreSQL (pgx) sends the file with the simple
	// protocol and SQLite steps through it, so one Exec runs every statement.
	if _, err = tx.ExecContext(ctx, s.sql); err != nil {
		return Migration{}, false, fmt.Errorf("migrations: apply %s: %w", s.Migration, err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		s.Version, s.Name, at)
	if err != nil {
		return Migration{}, false, fmt.Errorf("migrations: record %s: %w", s.Migration, err)
	}
	if err = tx.Commit(); err != nil {
		return Migration{}, false, fmt.Errorf("migrations: commit %s: %w", s.Migration, err)
	}
	m = s.Migration
	m.AppliedAt = &at
	return m, true, nil
}
