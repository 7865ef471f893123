package router

// This file holds the exposure log: every routed prediction becomes an
// Exposure, recorded into a bounded in-memory buffer that never blocks the
// request path, and written to the exposures table in batches by one writer
// goroutine (COPY on PostgreSQL, multi-row INSERT on SQLite). During a
// database outage the events stay in memory, up to a bound, and are written
// in order after recovery.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate"
	"abgate/migrations"
)

// Exposure is one row of the exposures table: a unit was served a variant
// of an experiment. PredictedLabel, Confidence and EventID are nil when the
// answer had no label or confidence, and for routed (not imported) events.
type Exposure struct {
	ExperimentID   int64
	VariantID      int64
	UnitID         string
	RequestID      string
	At             time.Time // zero means the time of Record
	LatencyUS      int32     // time to the answer, in microseconds
	Status         int       // HTTP status of the answer
	Fallback       bool      // served by the control because the variant's backends were down
	Shadow         bool      // a shadow copy, never returned to the client
	PredictedLabel *string
	Confidence     *float32
	EventID        *string
}

// ExposureStore writes exposures to the database.
//
// WriteExposures writes all of rows or none of them and returns an error
// when it cannot tell that they were written. A failed call may be repeated
// with the same slice (the same first element and length), which is what
// ExposureLog does; the PostgreSQL store uses that to never write a batch
// twice when the connection dies while its commit is in flight.
type ExposureStore interface {
	WriteExposures(ctx context.Context, rows []Exposure) error
}

// NewExposureStore returns the ExposureStore of db's dialect: COPY through
// pgx on PostgreSQL, multi-row INSERTs in one transaction on SQLite. db must
// be opened by migrations.Open (on PostgreSQL its connections must come
// from pgx's database/sql driver, which gorm's postgres driver uses). An
// unknown dialect is an EINVALID error.
func NewExposureStore(db *gorm.DB) (ExposureStore, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, abgate.Errorf(abgate.EINTERNAL, "exposure store: no connection pool: %v", err)
	}
	switch d := migrations.DialectOf(db); d {
	case migrations.Postgres:
		return &expoPostgresStore{db: sqlDB}, nil
	case migrations.SQLite:
		return &expoSQLiteStore{db: sqlDB, insertFull: expoSQLiteInsert(expoSQLiteRowsPerInsert)}, nil
	default:
		return nil, abgate.Errorf(abgate.EINVALID, "exposure store: unsupported database dialect %q", d)
	}
}

// expoColumns are the columns every store writes, in the order of
// expoValues.
var expoColumns = []string{
	"experiment_id", "variant_id", "unit_id", "request_id", "at", "latency_us",
	"status", "fallback", "shadow", "predicted_label", "confidence", "event_id",
}

// expoValues returns the values of e in the order of expoColumns; nil
// pointers become NULL.
func expoValues(e *Exposure) []any {
	v := []any{
		e.ExperimentID, e.VariantID, e.UnitID, e.RequestID, e.At.UTC(), e.LatencyUS,
		int16(e.Status), e.Fallback, e.Shadow, nil, nil, nil,
	}
	if e.PredictedLabel != nil {
		v[9] = *e.PredictedLabel
	}
	if e.Confidence != nil {
		v[10] = *e.Confidence
	}
	if e.EventID != nil {
		v[11] = *e.EventID
	}
	return v
}

// expoPointers fills vals with pointers to the fields of e in the order of
// expoColumns, for COPY, which encodes each row before it asks for the
// next: no value is boxed, so a batch allocates nothing per row. nil
// pointers become NULL; the time is stored as an instant, whatever its
// location.
func expoPointers(vals []any, e *Exposure) []any {
	vals[0], vals[1], vals[2], vals[3] = &e.ExperimentID, &e.VariantID, &e.UnitID, &e.RequestID
	vals[4], vals[5], vals[6], vals[7] = &e.At, &e.LatencyUS, &e.Status, &e.Fallback
	vals[8], vals[9], vals[10], vals[11] = &e.Shadow, e.PredictedLabel, e.Confidence, e.EventID
	return vals
}

// expoPostgresStore writes exposures with COPY.
//
// The COPY runs on a connection of the *sql.DB that GORM uses: sql.Conn.Raw
// hands out the driver connection, a *stdlib.Conn of pgx, whose Conn method
// is the *pgx.Conn with CopyFrom. So the store shares the pool, the DSN
// (search_path, timezone, TLS) and its limits with the rest of abgate, and
// no second pool has to be configured or closed. A connection that dies
// during a COPY is closed by pgx, and database/sql drops it (stdlib.Conn
// reports itself invalid), so the next attempt dials afresh.
//
// COPY is all-or-nothing, but the reply to its COMMIT can be lost with the
// connection after the server has committed. To write each batch exactly
// once, the COPY runs in a transaction whose id is read first
// (pg_current_xact_id); when the COMMIT fails, the id is kept with the
// batch, and the repeated call first asks pg_xact_status whether that
// transaction committed.
type expoPostgresStore struct {
	db *sql.DB

	mu      sync.Mutex
	pending *expoPendingCommit // a COMMIT of unknown outcome, or nil
}

// expoPendingCommit is a transaction whose COMMIT failed: it wrote the n
// rows starting at first, if it committed.
type expoPendingCommit struct {
	xid   string
	first *Exposure
	n     int
}

func (s *expoPostgresStore) WriteExposures(ctx context.Context, rows []Exposure) error {
	if len(rows) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	if p := s.pending; p != nil {
		if p.first != &rows[0] || p.n != len(rows) {
			s.pending = nil // the caller gave that batch up
		} else {
			var status sql.NullString
			err := s.db.QueryRowContext(ctx, `SELECT pg_xact_status($1::xid8)`, p.xid).Scan(&status)
			switch {
			case err != nil:
				return fmt.Errorf("exposures: status of an earlier COPY: %w", err)
			case status.String == "committed":
				s.pending = nil
				return nil
			case status.String == "in progress":
				return fmt.Errorf("exposures: an earlier COPY of these rows is still in progress")
			default: // aborted, or NULL: too old to be known, which a retry never is
				s.pending = nil
			}
		}
	}

	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("exposures: connect: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("exposures: driver connection is %T, not pgx's *stdlib.Conn", dc)
		}
		return s.copy(ctx, sc.Conn(), rows)
	})
}

// copy writes rows in one transaction on c.
func (s *expoPostgresStore) copy(ctx context.Context, c *pgx.Conn, rows []Exposure) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("exposures: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // no-op after Commit
	var xid string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		return fmt.Errorf("exposures: transaction id: %w", err)
	}
	vals := make([]any, len(expoColumns))
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"exposures"}, expoColumns,
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return expoPointers(vals, &rows[i]), nil }))
	if err != nil {
		return fmt.Errorf("exposures: copy: %w", err)
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("exposures: copy wrote %d rows of %d", n, len(rows))
	}
	if err := tx.Commit(ctx); err != nil {
		s.pending = &expoPendingCommit{xid: xid, first: &rows[0], n: len(rows)}
		return fmt.Errorf("exposures: commit: %w", err)
	}
	return nil
}

// expoSQLiteRowsPerInsert is the number of rows of one INSERT statement:
// 384 parameters, far under SQLite's limit (SQLITE_MAX_VARIABLE_NUMBER,
// 999 before SQLite 3.32, 32766 since). Not more, because the driver binds
// each parameter by a linear search of the arguments, so a statement costs
// the square of its parameters: 50000 rows in 1000-row statements took
// about twice as long as in statements of 8 to 128 rows. The driver
// prepares every statement anew, so preparing once would not help.
const expoSQLiteRowsPerInsert = 32

// expoSQLiteStore writes exposures with multi-row INSERTs in one
// transaction.
type expoSQLiteStore struct {
	db         *sql.DB
	insertFull string // the INSERT of expoSQLiteRowsPerInsert rows
}

func (s *expoSQLiteStore) WriteExposures(ctx context.Context, rows []Exposure) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("exposures: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	args := make([]any, 0, expoSQLiteRowsPerInsert*len(expoColumns))
	for len(rows) > 0 {
		n := min(len(rows), expoSQLiteRowsPerInsert)
		args = args[:0]
		for i := range rows[:n] {
			args = append(args, expoValues(&rows[i])...)
		}
		query := s.insertFull
		if n < expoSQLiteRowsPerInsert {
			query = expoSQLiteInsert(n)
		}
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("exposures: insert: %w", err)
		}
		rows = rows[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("exposures: commit: %w", err)
	}
	return nil
}

// expoSQLiteInsert returns the INSERT statement of n rows.
func expoSQLiteInsert(n int) string {
	row := "(?" + strings.Repeat(",?", len(expoColumns)-1) + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO exposures (" + strings.Join(expoColumns, ",") + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// ExposureLogOptions configures an ExposureLog. Zero fields take the
// defaults named on them.
type ExposureLogOptions struct {
	// BatchSize is the most rows of one write, and the number of buffered
	// rows that starts a write before FlushInterval. Default 1000.
	BatchSize int
	// FlushInterval is the longest a recorded event waits before a write
	// starts (while the database is up). Default 200 ms.
	FlushInterval time.Duration
	// MaxBuffered bounds the events held in memory, from Record until they
	// are written, including those kept through a database outage; past it
	// Record drops events. Default 200000.
	MaxBuffered int
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// write, which doubles from MinBackoff up to MaxBackoff. Defaults 50 ms
	// and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds one write, so that a connection that hangs is
	// given up and retried. Default 30 s.
	WriteTimeout time.Duration
}

func (o ExposureLogOptions) withDefaults() ExposureLogOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 200000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	return o
}

// expoDropLogEvery is the least time between two log lines about drops.
const expoDropLogEvery = time.Minute

// ExposureLog buffers exposures in memory and writes them to an
// ExposureStore in batches from one goroutine. Record never waits on the
// database; events are kept through write errors, up to
// ExposureLogOptions.MaxBuffered, and written in the order recorded.
type ExposureLog struct {
	store ExposureStore
	opts  ExposureLogOptions
	log   *slog.Logger

	mu     sync.Mutex
	buf    []Exposure // recorded, not yet taken by the writer
	held   int        // recorded and not yet written: buf and the writer's backlog
	closed bool

	kick    chan struct{} // a full batch is buffered (capacity 1)
	closing chan struct{} // closed by Close
	ctx     context.Context
	cancel  context.CancelFunc // ends the writer's waits and writes
	done    chan struct{}      // closed when the writer returns

	depth   atomic.Int64 // held, for the gauge
	dropped atomic.Int64 // drops not yet logged

	dropLogMu   sync.Mutex // never held with mu, so Record never waits on logging
	lastDropLog time.Time

	queueDepth   prometheus.GaugeFunc
	flushSeconds prometheus.Histogram
	rowsWritten  prometheus.Counter
	drops        prometheus.Counter
	writeErrors  prometheus.Counter
}

// NewExposureLog returns an ExposureLog writing to store and starts its
// writer; call Close to flush and stop it. log receives write errors and
// drop counts (nil discards). The metrics abgate_exposure_* are registered
// on reg; a nil reg leaves them unregistered, and registering two logs on
// one registry panics.
func NewExposureLog(store ExposureStore, opts ExposureLogOptions, log *slog.Logger, reg prometheus.Registerer) *ExposureLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	l := &ExposureLog{
		store:   store,
		opts:    opts,
		log:     log,
		buf:     make([]Exposure, 0, 2*opts.BatchSize),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abgate_exposure_flush_seconds",
			Help:    "Time of one successful write of a batch of exposures.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18), // 100µs .. 13s
		}),
		rowsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abgate_exposure_rows_written_total",
			Help: "Exposures written to the database.",
		}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abgate_exposure_dropped_total",
			Help: "Exposures dropped because the in-memory buffer was full or the log closed.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abgate_exposure_write_errors_total",
			Help: "Failed writes of a batch of exposures (each is retried).",
		}),
	}
	l.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "abgate_exposure_queue_depth",
		Help: "Exposures recorded and not yet written.",
	}, func() float64 { return float64(l.depth.Load()) })
	if reg != nil {
		reg.MustRegister(l.queueDepth, l.flushSeconds, l.rowsWritten, l.drops, l.writeErrors)
	}
	go l.run()
	return l
}

// Record queues e for writing and reports whether it was kept. It never
// blocks on the database: when MaxBuffered events are already held, or
// after Close, it drops e, counts the drop and returns false. A zero e.At
// is set to the current time. On a nil *ExposureLog (exposure logging off)
// Record does nothing and returns false.
func (l *ExposureLog) Record(e Exposure) bool {
	if l == nil {
		return false
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	l.mu.Lock()
	if l.closed || l.held >= l.opts.MaxBuffered {
		l.mu.Unlock()
		l.drops.Inc()
		l.dropped.Add(1)
		return false
	}
	l.buf = append(l.buf, e)
	l.held++
	full := len(l.buf) >= l.opts.BatchSize
	l.mu.Unlock()
	l.depth.Add(1)
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// Close stops accepting events, writes every event held, retrying failed
// writes until ctx is done, and stops the writer. It returns nil when
// everything recorded was written, else an EUNAVAILABLE error saying how
// many events were lost. Calling Close again waits for the first call's
// writer and reports what is left. Close of a nil *ExposureLog returns nil.
func (l *ExposureLog) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	l.mu.Unlock()
	if first {
		close(l.closing)
	}
	stop := context.AfterFunc(ctx, l.cancel)
	defer stop()
	<-l.done

	l.mu.Lock()
	left := l.held
	l.mu.Unlock()
	l.logDrops(true)
	if left > 0 {
		why := "an earlier Close gave up"
		if err := context.Cause(ctx); err != nil {
			why = err.Error()
		}
		return abgate.Errorf(abgate.EUNAVAILABLE, "exposure log closed with %d events not written: %s", left, why)
	}
	return nil
}

// run is the writer: it takes the buffer every FlushInterval or when a
// batch is full, writes it in batches, and on Close writes what is left.
func (l *ExposureLog) run() {
	defer close(l.done)
	defer l.cancel()
	tick := time.NewTicker(l.opts.FlushInterval)
	defer tick.Stop()
	var backlog, spare []Exposure
	for {
		closing := false
		select {
		case <-tick.C:
		case <-l.kick:
		case <-l.closing:
			closing = true
		}
		l.logDrops(false)

		// Take the buffer, handing the writer's spare array to Record.
		for {
			l.mu.Lock()
			backlog, l.buf, spare = l.buf, spare[:0], nil
			if cap(l.buf) == 0 {
				l.buf = make([]Exposure, 0, 2*l.opts.BatchSize)
			}
			l.mu.Unlock()
			if len(backlog) == 0 {
				spare = backlog
				break
			}
			if !l.write(backlog) {
				return // Close's ctx is done
			}
			clear(backlog) // drop references to labels for the GC
			spare = backlog[:0]
			if cap(spare) > 16*l.opts.BatchSize {
				spare = nil // give the memory of an outage back
			}
			if !closing && l.buffered() < l.opts.BatchSize {
				break
			}
		}
		if closing {
			return
		}
	}
}

// buffered returns the number of events in the buffer.
func (l *ExposureLog) buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf)
}

// write writes rows in batches of BatchSize, in order, retrying each
// failed batch with exponential backoff. It returns false when the log's
// context ended (Close's ctx is done) with rows unwritten.
func (l *ExposureLog) write(rows []Exposure) bool {
	for len(rows) > 0 {
		batch := rows[:min(len(rows), l.opts.BatchSize)]
		backoff := l.opts.MinBackoff
		for {
			if l.ctx.Err() != nil {
				return false
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(l.ctx, l.opts.WriteTimeout)
			err := l.store.WriteExposures(ctx, batch)
			cancel()
			if err == nil {
				l.flushSeconds.Observe(time.Since(start).Seconds())
				break
			}
			l.writeErrors.Inc()
			if l.ctx.Err() != nil {
				return false
			}
			l.log.Warn("exposure write failed; retrying", "rows", len(batch), "held", l.depth.Load(), "retry_in", backoff, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return false
			}
			l.logDrops(false)
			backoff = min(2*backoff, l.opts.MaxBackoff)
		}
		l.mu.Lock()
		l.held -= len(batch)
		l.mu.Unlock()
		l.depth.Add(-int64(len(batch)))
		l.rowsWritten.Add(float64(len(batch)))
		rows = rows[len(batch):]
	}
	return true
}

// logDrops logs the drops not yet logged, at most once per
// expoDropLogEvery unless force is set.
func (l *ExposureLog) logDrops(force bool) {
	if l.dropped.Load() == 0 {
		return
	}
	l.dropLogMu.Lock()
	defer l.dropLogMu.Unlock()
	now := time.Now()
	if !force && !l.lastDropLog.IsZero() && now.Sub(l.lastDropLog) < expoDropLogEvery {
		return
	}
	l.lastDropLog = now
	n := l.dropped.Swap(0)
	l.log.Warn("exposures dropped: in-memory buffer full or log closed", "dropped", n, "max_buffered", l.opts.MaxBuffered)
}
