// Package migrations opens the abgate database, SQLite or PostgreSQL, and
// keeps its schema current: versioned SQL files per dialect, embedded in the
// binary and applied in order by Up, plus the upkeep of the monthly
// partitions of the exposures table on PostgreSQL.
package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	gormsqlite "github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"abgate"
)

// Dialect names the SQL dialect of a database.
type Dialect string

// The dialects abgate runs on.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DefaultDSN is the database Open uses when given an empty DSN: a SQLite
// file under ./data.
const DefaultDSN = "sqlite:./data/abgate.db"

// pingTimeout bounds the first contact with the database in Open when the
// caller's context has no earlier deadline.
const pingTimeout = 30 * time.Second

// sqliteParams are the driver parameters of every SQLite connection: UTC
// times written in SQLite's own text format (so date functions and text
// ordering work), a 10 s wait on a locked database, WAL so readers never
// block the writer, foreign keys enforced, and read-write transactions that
// take the write lock at BEGIN (see immediateConnector: the driver itself
// ignores _txlock when _time_format is set).
var sqliteParams = []string{
	"_txlock=immediate",
	"_time_format=sqlite",
	"_pragma=busy_timeout(10000)",
	"_pragma=journal_mode(WAL)",
	"_pragma=foreign_keys(1)",
	"_pragma=synchronous(NORMAL)",
}

// Open connects to the database named by dsn and pings it. The dsn is one of
//
//	sqlite:PATH                 a SQLite file, created with its folder if absent
//	postgres://...              a PostgreSQL URL (postgresql:// works too)
//
// and "" means DefaultDSN. Unless a PostgreSQL URL sets timezone, its
// sessions use UTC. GORM logs through log (nil discards): slow queries
// (over 200 ms) at warn, failed ones at debug. Times GORM sets (NowFunc) are
// UTC with microsecond precision, which both dialects store exactly.
//
// Open does not migrate; call Up. An unknown form of dsn is an EINVALID
// error, a database that cannot be reached or created an EUNAVAILABLE one.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*gorm.DB, Dialect, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dsn == "" {
		dsn = DefaultDSN
	}

	var (
		dialect   Dialect
		dialector gorm.Dialector
		sqlDB     *sql.DB
		where     string // the database, without secrets, for messages
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite:"), "?")
		if path == "" {
			return nil, "", abgate.Errorf(abgate.EINVALID, "database DSN %q names no file; use sqlite:PATH", dsn)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, "", abgate.Errorf(abgate.EUNAVAILABLE, "cannot create the folder of SQLite database %s: %v", path, err)
		}
		params := strings.Join(sqliteParams, "&")
		if query != "" {
			params += "&" + query
		}
		dialect, where = SQLite, "SQLite database "+path
		sqlDB = sql.OpenDB(newImmediateConnector(path + "?" + params))
		dialector = &gormsqlite.Dialector{DSN: path, Conn: sqlDB}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, "", abgate.Errorf(abgate.EINVALID, "database DSN is not a valid PostgreSQL URL")
		}
		q := u.Query()
		if q.Get("timezone") == "" && q.Get("TimeZone") == "" {
			q.Set("timezone", "UTC")
			u.RawQuery = q.Encode()
		}
		dialect, where = Postgres, "PostgreSQL database "+redact(u)
		dialector = postgres.New(postgres.Config{DSN: u.String()})
	default:
		return nil, "", abgate.Errorf(abgate.EINVALID,
			"unsupported database DSN%s: use sqlite:PATH or postgres://user:password@host:port/database", schemeOf(dsn))
	}

	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:               newGormLogger(log, 200*time.Millisecond),
		NowFunc:              func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		TranslateError:       true,
		DisableAutomaticPing: true,
	})
	if err != nil {
		if sqlDB != nil {
			_ = sqlDB.Close()
		}
		return nil, "", abgate.Errorf(abgate.EUNAVAILABLE, "cannot open %s: %v", where, err)
	}
	if sqlDB, err = db.DB(); err != nil {
		return nil, "", abgate.Errorf(abgate.EINTERNAL, "no connection pool for %s: %v", where, err)
	}
	if dialect == Postgres {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}

	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, "", abgate.Errorf(abgate.EUNAVAILABLE, "cannot reach %s: %v", where, err)
	}
	return db, dialect, nil
}

// DialectOf returns the dialect of db, from the name of its GORM dialector;
// a dialector abgate does not know gives a Dialect that is neither SQLite
// nor Postgres.
func DialectOf(db *gorm.DB) Dialect {
	switch name := db.Dialector.Name(); name {
	case "sqlite", "sqlite3":
		return SQLite
	case "postgres", "pgx":
		return Postgres
	default:
		return Dialect(name)
	}
}

// redact returns u without its password and query, for messages.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.Redacted()
}

// schemeOf names the scheme of dsn for messages, as ` (scheme "x")`, or
// returns "" when dsn has none; the rest of dsn may hold a password.
func schemeOf(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return ""
	}
	return fmt.Sprintf(" (scheme %q)", u.Scheme)
}
