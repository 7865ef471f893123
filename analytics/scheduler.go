package analytics

// This file holds the refresh scheduler: every interval the leader
// refreshes the results of every running experiment. On PostgreSQL one
// process at a time leads, the one holding a session advisory lock on a
// dedicated connection; on SQLite (one process) this process always leads.

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"abgate/migrations"
)

// leaderLock is the key of the advisory lock of the analytics leader: one
// per schema, so that abgate installations sharing a database in separate
// schemas each have their leader.
const leaderLock = "hashtext('abgate_analytics_leader:' || current_schema())"

// Scheduler refreshes the running experiments on an interval.
type Scheduler struct {
	svc      *Service
	db       *gorm.DB
	interval time.Duration
	log      *slog.Logger

	// OnTick, when not nil, is called after each tick with whether this
	// process led it and how many experiments it refreshed (tests).
	OnTick func(leader bool, refreshed int)
}

// NewScheduler returns a Scheduler of svc over db refreshing every
// interval (0 means 5 minutes). A nil log discards.
func NewScheduler(svc *Service, db *gorm.DB, interval time.Duration, log *slog.Logger) *Scheduler {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{svc: svc, db: db, interval: interval, log: log}
}

// Run refreshes at once and then every interval until ctx is done.
func (s *Scheduler) Run(ctx context.Context) {
	lead := newLeadership(s.db, s.log)
	defer lead.release()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		leader := lead.acquire(ctx)
		n := 0
		if leader {
			var err error
			if n, err = s.svc.RefreshRunning(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduled refresh failed", "err", err)
			}
		} else if err := s.svc.LoadLatest(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("latest results not loaded", "err", err)
		}
		if s.OnTick != nil {
			s.OnTick(leader, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leadership holds the leader lock on PostgreSQL.
type leadership struct {
	db   *gorm.DB
	log  *slog.Logger
	pg   bool
	conn *sql.Conn
}

func newLeadership(db *gorm.DB, log *slog.Logger) *leadership {
	return &leadership{db: db, log: log, pg: migrations.DialectOf(db) == migrations.Postgres}
}

// acquire reports whether this process leads: it tries to take the lock
// when it does not hold it, and checks its connection when it does.
func (l *leadership) acquire(ctx context.Context) bool {
	if !l.pg {
		return true
	}
	if l.conn != nil {
		if err := l.conn.PingContext(ctx); err == nil {
			return true
		}
		l.log.Warn("analytics leader connection lost; leadership released")
		l.release()
	}
	sqlDB, err := l.db.DB()
	if err != nil {
		return false
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return false
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock("+leaderLock+")").Scan(&ok); err != nil || !ok {
		_ = conn.Close()
		return false
	}
	l.conn = conn
	l.log.Info("analytics leader")
	return true
}

// release gives the lock up (closing the session releases it).
func (l *leadership) release() {
	if l.conn == nil {
		return
	}
	_, _ = l.conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock("+leaderLock+")")
	_ = l.conn.Close()
	l.conn = nil
}
