package router

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate"
	"abgate/migrations"
	"abgate/migrations/dbtest"
)

// expoBase is the time of the first sample exposure.
var expoBase = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// expoSample returns the i-th exposure of a test of experiment exp; its
// unit id sorts in the order of i.
func expoSample(exp int64, i int) Exposure {
	e := Exposure{
		ExperimentID: exp,
		VariantID:    int64(i%3 + 1),
		UnitID:       fmt.Sprintf("u%07d", i),
		RequestID:    fmt.Sprintf("r%07d", i),
		At:           expoBase.Add(time.Duration(i) * time.Microsecond),
		LatencyUS:    int32(100 + i%1000),
		Status:       200 + i%2*303,
		Fallback:     i%5 == 0,
		Shadow:       i%7 == 0,
	}
	if i%2 == 0 {
		label, conf := fmt.Sprintf("class-%d", i%10), float32(i%100)/128
		e.PredictedLabel, e.Confidence = &label, &conf
	}
	if i%3 == 0 {
		id := fmt.Sprintf("ev-%d", i)
		e.EventID = &id
	}
	return e
}

// expoRead returns the exposures of experiment exp, by unit id.
func expoRead(t *testing.T, db *gorm.DB, exp int64) []Exposure {
	t.Helper()
	rows, err := db.Raw(`SELECT experiment_id, variant_id, unit_id, request_id, at, latency_us, status,
		fallback, shadow, predicted_label, confidence, event_id
		FROM exposures WHERE experiment_id = ? ORDER BY unit_id`, exp).Rows()
	if err != nil {
		t.Fatalf("read exposures: %v", err)
	}
	defer rows.Close()
	var out []Exposure
	for rows.Next() {
		var (
			e            Exposure
			label, event sql.NullString
			conf         sql.NullFloat64
		)
		if err := rows.Scan(&e.ExperimentID, &e.VariantID, &e.UnitID, &e.RequestID, &e.At, &e.LatencyUS,
			&e.Status, &e.Fallback, &e.Shadow, &label, &conf, &event); err != nil {
			t.Fatalf("scan exposure: %v", err)
		}
		if label.Valid {
			e.PredictedLabel = &label.String
		}
		if conf.Valid {
			c := float32(conf.Float64)
			e.Confidence = &c
		}
		if event.Valid {
			e.EventID = &event.String
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read exposures: %v", err)
	}
	return out
}

// expoCount returns the rows and the distinct units of experiment exp.
func expoCount(t *testing.T, db *gorm.DB, exp int64) (rows, units int64) {
	t.Helper()
	err := db.Raw(`SELECT count(*), count(DISTINCT unit_id) FROM exposures WHERE experiment_id = ?`, exp).
		Row().Scan(&rows, &units)
	if err != nil {
		t.Fatalf("count exposures: %v", err)
	}
	return rows, units
}

// expoEqual reports how got differs from want, or "".
func expoEqual(got, want Exposure) string {
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	f32 := func(p *float32) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprint(*p)
	}
	if !got.At.Equal(want.At) {
		return fmt.Sprintf("at %v, want %v", got.At, want.At)
	}
	g, w := got, want
	g.At, w.At = time.Time{}, time.Time{}
	g.PredictedLabel, g.Confidence, g.EventID = nil, nil, nil
	w.PredictedLabel, w.Confidence, w.EventID = nil, nil, nil
	if g != w {
		return fmt.Sprintf("%+v, want %+v", g, w)
	}
	if str(got.PredictedLabel) != str(want.PredictedLabel) || f32(got.Confidence) != f32(want.Confidence) ||
		str(got.EventID) != str(want.EventID) {
		return fmt.Sprintf("label/confidence/event %s/%s/%s, want %s/%s/%s",
			str(got.PredictedLabel), f32(got.Confidence), str(got.EventID),
			str(want.PredictedLabel), f32(want.Confidence), str(want.EventID))
	}
	return ""
}

// expoTestStore wraps a store: it can fail the first writes, fail while
// failing is set, block writes until a channel is closed, and it checks
// that rows arrive in the order of their unit ids and records batch sizes.
type expoTestStore struct {
	inner ExposureStore
	block chan struct{} // when non-nil, writes wait until it is closed

	mu        sync.Mutex
	failFirst int
	failing   bool
	fails     int
	batches   []int
	lastUnit  string
	disorder  string
}

var errExpoTest = errors.New("test store: write refused")

func (s *expoTestStore) WriteExposures(ctx context.Context, rows []Exposure) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFirst > 0 || s.failing {
		s.failFirst--
		s.fails++
		return errExpoTest
	}
	if err := s.inner.WriteExposures(ctx, rows); err != nil {
		return err
	}
	s.batches = append(s.batches, len(rows))
	for _, e := range rows {
		if e.UnitID <= s.lastUnit && s.disorder == "" {
			s.disorder = fmt.Sprintf("unit %s written after %s", e.UnitID, s.lastUnit)
		}
		s.lastUnit = e.UnitID
	}
	return nil
}

func (s *expoTestStore) setFailing(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = v
}

func (s *expoTestStore) stats() (batches []int, fails int, disorder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...), s.fails, s.disorder
}

// expoMetric returns the value of the counter or gauge name in reg.
func expoMetric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// expoWaitRows waits up to 15 s for experiment exp to have want rows.
func expoWaitRows(t *testing.T, db *gorm.DB, exp, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _ := expoCount(t, db, exp)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("experiment %d has %d exposure rows after 15 s, want %d", exp, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expoClose closes l with a 2 min deadline (50000 rows into SQLite under
// -race take about 20 s) and fails the test on error.
func expoClose(t *testing.T, l *ExposureLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestExposureLog(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		t.Parallel() // SQLite under -race takes most of the time; PostgreSQL runs beside it
		inner, err := NewExposureStore(db)
		if err != nil {
			t.Fatalf("NewExposureStore: %v", err)
		}
		fast := ExposureLogOptions{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}

		t.Run("content", func(t *testing.T) {
			const exp, n = 1, 2345
			reg := prometheus.NewRegistry()
			l := NewExposureLog(inner, ExposureLogOptions{}, nil, reg)
			var want []Exposure
			for i := range n {
				e := expoSample(exp, i)
				want = append(want, e)
				if !l.Record(e) {
					t.Fatalf("Record(%d) = false", i)
				}
			}
			expoClose(t, l)
			got := expoRead(t, db, exp)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if d := expoEqual(got[i], want[i]); d != "" {
					t.Fatalf("row %d: %s", i, d)
				}
			}
			if got, want := expoMetric(t, reg, "abgate_exposure_rows_written_total"), float64(n); got != want {
				t.Errorf("rows written metric = %v, want %v", got, want)
			}
			if got := expoMetric(t, reg, "abgate_exposure_queue_depth"); got != 0 {
				t.Errorf("queue depth after Close = %v, want 0", got)
			}
		})

		t.Run("batch by size", func(t *testing.T) {
			const exp = 2
			s := &expoTestStore{inner: inner}
			l := NewExposureLog(s, ExposureLogOptions{BatchSize: 100, FlushInterval: time.Hour}, nil, nil)
			for i := range 100 {
				l.Record(expoSample(exp, i))
			}
			expoWaitRows(t, db, exp, 100) // an hour's interval cannot have done it
			for i := 100; i < 199; i++ {
				l.Record(expoSample(exp, i))
			}
			time.Sleep(300 * time.Millisecond)
			if got, _ := expoCount(t, db, exp); got != 100 {
				t.Errorf("%d rows before Close with 99 buffered, want 100", got)
			}
			for i := 199; i < 1000; i++ {
				l.Record(expoSample(exp, i))
			}
			expoClose(t, l)
			if got, _ := expoCount(t, db, exp); got != 1000 {
				t.Errorf("%d rows after Close, want 1000", got)
			}
			batches, _, disorder := s.stats()
			for _, b := range batches {
				if b > 100 {
					t.Errorf("batches %v: one has more than BatchSize 100 rows", batches)
					break
				}
			}
			if disorder != "" {
				t.Error(disorder)
			}
		})

		t.Run("batch by time", func(t *testing.T) {
			const exp = 3
			l := NewExposureLog(inner, ExposureLogOptions{BatchSize: 1000, FlushInterval: 50 * time.Millisecond}, nil, nil)
			for i := range 10 {
				l.Record(expoSample(exp, i))
			}
			expoWaitRows(t, db, exp, 10)
			expoClose(t, l)
		})

		t.Run("close flushes everything", func(t *testing.T) {
			const exp, n = 4, 50000
			l := NewExposureLog(inner, ExposureLogOptions{}, nil, nil)
			for i := range n {
				if !l.Record(expoSample(exp, i)) {
					t.Fatalf("Record(%d) = false", i)
				}
			}
			expoClose(t, l)
			if got, units := expoCount(t, db, exp); got != n || units != n {
				t.Errorf("%d rows of %d units after Close, want %d", got, units, n)
			}
		})

		t.Run("outage", func(t *testing.T) {
			const exp, n, k = 5, 1000, 5
			s := &expoTestStore{inner: inner, failFirst: k}
			reg := prometheus.NewRegistry()
			opts := fast
			opts.BatchSize = 100
			l := NewExposureLog(s, opts, nil, reg)
			for i := range n {
				if !l.Record(expoSample(exp, i)) {
					t.Fatalf("Record(%d) = false", i)
				}
			}
			expoClose(t, l)
			if got, units := expoCount(t, db, exp); got != n || units != n {
				t.Errorf("%d rows of %d units, want %d", got, units, n)
			}
			_, fails, disorder := s.stats()
			if fails != k {
				t.Errorf("%d failed writes, want %d", fails, k)
			}
			if disorder != "" {
				t.Error(disorder)
			}
			if got := expoMetric(t, reg, "abgate_exposure_write_errors_total"); got != k {
				t.Errorf("write errors metric = %v, want %d", got, k)
			}
			if got := expoMetric(t, reg, "abgate_exposure_dropped_total"); got != 0 {
				t.Errorf("drops metric = %v, want 0", got)
			}
		})

		t.Run("bound", func(t *testing.T) {
			const exp, bound, n = 6, 100, 150
			s := &expoTestStore{inner: inner, failing: true}
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			var logMu sync.Mutex
			log := slog.New(slog.NewJSONHandler(&expoLockedWriter{w: &logs, mu: &logMu}, nil))
			opts := fast
			opts.MaxBuffered = bound
			l := NewExposureLog(s, opts, log, reg)
			kept := 0
			for i := range n {
				if l.Record(expoSample(exp, i)) {
					kept++
				}
			}
			if kept != bound {
				t.Errorf("Record kept %d events, want %d", kept, bound)
			}
			if got, want := expoMetric(t, reg, "abgate_exposure_dropped_total"), float64(n-bound); got != want {
				t.Errorf("drops metric = %v, want %v", got, want)
			}
			if got := expoMetric(t, reg, "abgate_exposure_queue_depth"); got != bound {
				t.Errorf("queue depth = %v, want %d", got, bound)
			}
			time.Sleep(100 * time.Millisecond) // some failed writes
			s.setFailing(false)
			expoClose(t, l)
			got := expoRead(t, db, exp)
			if len(got) != bound {
				t.Fatalf("%d rows, want %d", len(got), bound)
			}
			for i := range got {
				if d := expoEqual(got[i], expoSample(exp, i)); d != "" {
					t.Fatalf("row %d: %s", i, d)
				}
			}
			logMu.Lock()
			defer logMu.Unlock()
			logged := 0
			for line := range strings.Lines(logs.String()) {
				var rec struct {
					Msg     string
					Dropped int
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if strings.HasPrefix(rec.Msg, "exposures dropped") {
					logged += rec.Dropped
				}
			}
			if logged != n-bound {
				t.Errorf("logs report %d drops, want %d:\n%s", logged, n-bound, logs.String())
			}
		})

		t.Run("record never blocks", func(t *testing.T) {
			const exp, n = 7, 10000
			s := &expoTestStore{inner: inner, block: make(chan struct{})}
			l := NewExposureLog(s, ExposureLogOptions{BatchSize: 100, FlushInterval: 10 * time.Millisecond}, nil, nil)
			done := make(chan int)
			go func() {
				kept := 0
				for i := range n {
					if l.Record(expoSample(exp, i)) {
						kept++
					}
				}
				done <- kept
			}()
			select {
			case kept := <-done:
				if kept != n {
					t.Errorf("Record kept %d events, want %d", kept, n)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Record blocked while the store was blocked")
			}
			close(s.block)
			expoClose(t, l)
			if got, units := expoCount(t, db, exp); got != n || units != n {
				t.Errorf("%d rows of %d units, want %d", got, units, n)
			}
		})

		t.Run("close reports loss", func(t *testing.T) {
			const exp = 8
			s := &expoTestStore{inner: inner, failing: true}
			l := NewExposureLog(s, fast, nil, nil)
			for i := range 10 {
				l.Record(expoSample(exp, i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := l.Close(ctx)
			if got, want := abgate.ErrorCode(err), abgate.EUNAVAILABLE; got != want {
				t.Fatalf("Close error code %q (%v), want %q", got, err, want)
			}
			if !strings.Contains(err.Error(), "10 events") {
				t.Errorf("Close error %q does not count the 10 events", err)
			}
			if l.Record(expoSample(exp, 10)) {
				t.Error("Record after Close = true, want false")
			}
			if err := l.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "10 events") {
				t.Errorf("second Close = %v, want the 10 events still reported", err)
			}
		})
	})
}

func TestExposureLogNil(t *testing.T) {
	var l *ExposureLog
	if l.Record(expoSample(1, 0)) {
		t.Error("Record on a nil log = true, want false")
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("Close on a nil log = %v, want nil", err)
	}
}

// expoLockedWriter serializes writes to w.
type expoLockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (w *expoLockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// expoProxy is a TCP proxy on 127.0.0.1 to one upstream address that can
// cut its connections and refuse new ones.
type expoProxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	refused int
}

func expoNewProxy(t *testing.T, upstream string) *expoProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &expoProxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *expoProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.refused++
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.down { // cut while dialing
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setDown cuts every connection and refuses new ones (true), or accepts
// them again (false).
func (p *expoProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// TestExposureLogPostgresOutage cuts the store's connections to PostgreSQL
// for a second while events are recorded: every event ends up written
// exactly once.
func TestExposureLogPostgresOutage(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresDSN(t)
	direct := dbtest.Open(t, dsn)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, direct); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := expoNewProxy(t, upstream)
	u.Host = proxy.ln.Addr().String()
	viaProxy := dbtest.Open(t, u.String())
	store, err := NewExposureStore(viaProxy)
	if err != nil {
		t.Fatalf("NewExposureStore: %v", err)
	}

	const exp, n = 9, 20000
	reg := prometheus.NewRegistry()
	l := NewExposureLog(store, ExposureLogOptions{
		BatchSize: 200, FlushInterval: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		WriteTimeout: 5 * time.Second,
	}, nil, reg)

	recorded := make(chan int)
	go func() { // 20000 events over about 2 s
		kept := 0
		for i := range n {
			if l.Record(expoSample(exp, i)) {
				kept++
			}
			if i%100 == 99 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		recorded <- kept
	}()
	time.Sleep(500 * time.Millisecond)
	proxy.setDown(true)
	time.Sleep(time.Second)
	proxy.setDown(false)
	if kept := <-recorded; kept != n {
		t.Fatalf("Record kept %d events, want %d", kept, n)
	}
	expoClose(t, l)

	if got, units := expoCount(t, direct, exp); got != n || units != n {
		t.Errorf("%d rows of %d units, want %d rows written exactly once", got, units, n)
	}
	if got := expoMetric(t, reg, "abgate_exposure_write_errors_total"); got == 0 {
		t.Error("no write failed during the outage: the proxy did not cut the store off")
	}
	proxy.mu.Lock()
	refused := proxy.refused
	proxy.mu.Unlock()
	t.Logf("write errors %v, connections refused %d", expoMetric(t, reg, "abgate_exposure_write_errors_total"), refused)
}

// expoDiscardStore writes nothing.
type expoDiscardStore struct{}

func (expoDiscardStore) WriteExposures(context.Context, []Exposure) error { return nil }

func BenchmarkExposureRecord(b *testing.B) {
	l := NewExposureLog(expoDiscardStore{}, ExposureLogOptions{}, nil, nil)
	defer func() { _ = l.Close(context.Background()) }()
	label, conf := "cat", float32(0.9)
	e := expoSample(1, 1)
	e.PredictedLabel, e.Confidence = &label, &conf
	b.ReportAllocs()
	for b.Loop() {
		l.Record(e)
	}
}

// TestExposurePostgresPendingCommit checks how the PostgreSQL store settles
// a COMMIT whose reply was lost before it writes the same batch again.
func TestExposurePostgresPendingCommit(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	xid := func(commit bool) string {
		var id string
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Raw(`SELECT pg_current_xact_id()::text`).Row().Scan(&id); err != nil {
				return err
			}
			if !commit {
				return errExpoTest
			}
			return nil
		})
		if commit && err != nil {
			t.Fatalf("transaction: %v", err)
		}
		return id
	}
	store, err := NewExposureStore(db)
	if err != nil {
		t.Fatalf("NewExposureStore: %v", err)
	}
	s := store.(*expoPostgresStore)

	tests := []struct {
		name      string
		committed bool // the lost COMMIT's transaction committed
		sameBatch bool // the retry passes the same slice
		want      int64
	}{
		{"committed, same batch: not written again", true, true, 0},
		{"aborted, same batch: written", false, true, 3},
		{"committed, other batch: written", true, false, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := int64(100 + i)
			rows := []Exposure{expoSample(exp, 0), expoSample(exp, 1), expoSample(exp, 2)}
			first := &rows[0]
			if !tt.sameBatch {
				first = &[]Exposure{rows[0]}[0]
			}
			s.pending = &expoPendingCommit{xid: xid(tt.committed), first: first, n: len(rows)}
			if err := s.WriteExposures(ctx, rows); err != nil {
				t.Fatalf("WriteExposures: %v", err)
			}
			if got, _ := expoCount(t, db, exp); got != tt.want {
				t.Errorf("%d rows, want %d", got, tt.want)
			}
			if s.pending != nil {
				t.Errorf("pending commit kept after a settled write")
			}
		})
	}
}
