package migrations

import (
	"context"
	"database/sql/driver"
	"fmt"

	sqlitedriver "github.com/glebarez/go-sqlite"
)

// immediateConnector opens SQLite connections whose read-write transactions
// begin with BEGIN IMMEDIATE, so a transaction takes the write lock (waiting
// up to busy_timeout) before it reads. Deferred transactions that read and
// then write fail at once with "database is locked" when another connection
// wrote in between; immediate ones queue instead.
//
// The DSN parameter _txlock=immediate should do this, but the driver
// (github.com/glebarez/go-sqlite v1.21.2 and v1.22.0) stops reading its
// parameters after _time_format and so ignores _txlock; this connector does
// not depend on it.
type immediateConnector struct {
	dsn    string
	driver driver.Driver
}

var _ driver.Connector = immediateConnector{}

func newImmediateConnector(dsn string) immediateConnector {
	return immediateConnector{dsn: dsn, driver: &sqlitedriver.Driver{}}
}

// Connect opens one connection.
func (c immediateConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks the context methods", conn)
	}
	return immediateConn{inner}, nil
}

// Driver returns the SQLite driver.
func (c immediateConnector) Driver() driver.Driver { return c.driver }

// sqliteConn is what database/sql uses of a SQLite driver connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
}

// immediateConn is a SQLite connection whose read-write transactions begin
// IMMEDIATE; everything else goes to the driver's connection.
type immediateConn struct{ sqliteConn }

// Begin starts a read-write transaction.
func (c immediateConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction: BEGIN IMMEDIATE unless it is read-only,
// which the driver starts DEFERRED.
func (c immediateConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.ReadOnly {
		return c.sqliteConn.BeginTx(ctx, opts)
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return nil, err
	}
	return immediateTx{c}, nil
}

// immediateTx ends a transaction begun by immediateConn.BeginTx.
type immediateTx struct{ c immediateConn }

// Commit commits the transaction. If COMMIT fails the transaction is rolled
// back, so the connection never goes back to the pool inside a transaction.
func (t immediateTx) Commit() error {
	_, err := t.c.ExecContext(context.Background(), "COMMIT", nil)
	if err != nil {
		_ = t.Rollback()
	}
	return err
}

// Rollback rolls the transaction back.
func (t immediateTx) Rollback() error {
	_, err := t.c.ExecContext(context.Background(), "ROLLBACK", nil)
	return err
}
