// Package analytics holds the analytics slice of abgate: the aggregation of
// exposures and outcomes into sufficient statistics (one SQL statement per
// experiment), the reports built from them with the statistics of
// analytics/stats, their stored snapshots, the NDJSON import of events, the
// refresh scheduler, the report API and the Prometheus gauges.
package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/experiments"
)

// Options configure a Service.
type Options struct {
	// Settings are the analysis settings of every report.
	Settings Settings
	// HistoryLimit is how many earlier snapshots a report shows; 0 means
	// 100.
	HistoryLimit int
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// DriftShare is the share of drifted features that makes dataset
	// drift; 0 means 0.5.
	DriftShare float64
}

// Service computes, stores and reads experiment reports.
type Service struct {
	db    *gorm.DB
	store *experiments.Store
	log   *slog.Logger
	opts  Options

	mu          sync.Mutex
	latest      map[string]*Report      // by experiment key, for the gauges
	latestDrift map[string]*DriftReport // by experiment key, for the gauges
	// refreshing serialises refreshes of one experiment, so that the
	// running minimum of sequential p-values reads the previous snapshot.
	refreshing map[string]*sync.Mutex
}

// NewService returns a Service over db. A nil log discards.
func NewService(db *gorm.DB, store *experiments.Store, log *slog.Logger, opts Options) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Settings = opts.Settings.withDefaults()
	return &Service{db: db, store: store, log: log, opts: opts,
		latest: map[string]*Report{}, latestDrift: map[string]*DriftReport{}, refreshing: map[string]*sync.Mutex{}}
}

// snapshotRow is a row of analytics_snapshots.
type snapshotRow struct {
	ID           int64 `gorm:"primaryKey"`
	ExperimentID int64
	ComputedAt   time.Time
	DurationMS   float64
	Report       string
}

func (snapshotRow) TableName() string { return "analytics_snapshots" }

// experimentIDs returns the id of experiment key and the ids of its
// variants by key.
func (s *Service) experimentIDs(ctx context.Context, key string) (int64, variantIDs, error) {
	var exp []struct{ ID int64 }
	db := s.db.WithContext(ctx)
	if err := db.Raw("SELECT id FROM experiments WHERE key = ?", key).Scan(&exp).Error; err != nil {
		return 0, nil, err
	}
	if len(exp) == 0 {
		return 0, nil, abgate.Errorf(abgate.ENOTFOUND, "experiment %q not found", key)
	}
	var vs []struct {
		ID  int64
		Key string
	}
	if err := db.Raw("SELECT id, key FROM variants WHERE experiment_id = ?", exp[0].ID).Scan(&vs).Error; err != nil {
		return 0, nil, err
	}
	ids := variantIDs{}
	for _, v := range vs {
		ids[v.Key] = v.ID
	}
	return exp[0].ID, ids, nil
}

// experiment returns experiment key with its id and the ids of its
// variants.
func (s *Service) experiment(ctx context.Context, key string) (*experiments.Experiment, int64, variantIDs, error) {
	e, err := s.store.Experiment(ctx, key)
	if err != nil {
		return nil, 0, nil, err
	}
	id, ids, err := s.experimentIDs(ctx, key)
	if err != nil {
		return nil, 0, nil, err
	}
	return e, id, ids, nil
}

// Refresh computes the report of experiment key now, stores it as a
// snapshot and returns it. ENOTFOUND when there is no such experiment.
func (s *Service) Refresh(ctx context.Context, key string) (*Report, error) {
	return s.refresh(ctx, key, false)
}

// Rebuild is Refresh with the rollups of the experiment computed again
// from all its exposures and outcomes.
func (s *Service) Rebuild(ctx context.Context, key string) (*Report, error) {
	return s.refresh(ctx, key, true)
}

func (s *Service) refresh(ctx context.Context, key string, rebuild bool) (*Report, error) {
	s.mu.Lock()
	lock := s.refreshing[key]
	if lock == nil {
		lock = &sync.Mutex{}
		s.refreshing[key] = lock
	}
	s.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	e, id, ids, err := s.experiment(ctx, key)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := Fold(ctx, s.db, id, e, rebuild); err != nil {
		return nil, fmt.Errorf("fold experiment %s: %w", key, err)
	}
	agg, err := Rollup(ctx, s.db, id, e)
	if err != nil {
		return nil, err
	}
	prev, _, err := s.latestStored(ctx, id)
	if err != nil {
		return nil, err
	}
	r := BuildReport(e, ids, agg, prev, s.opts.Settings, s.opts.Now())
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	row := snapshotRow{ExperimentID: id, ComputedAt: r.ComputedAt, DurationMS: float64(time.Since(start).Microseconds()) / 1000, Report: string(body)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return nil, fmt.Errorf("store snapshot of %s: %w", key, err)
	}
	s.remember(r)
	s.log.Info("results refreshed", "experiment", key, "duration_ms", row.DurationMS)
	return r, nil
}

// remember keeps r as the latest report of its experiment for the gauges.
func (s *Service) remember(r *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.latest[r.Experiment]; cur == nil || !cur.ComputedAt.After(r.ComputedAt) {
		s.latest[r.Experiment] = r
	}
}

// latestStored returns the newest snapshot of experiment id, nil when none.
func (s *Service) latestStored(ctx context.Context, id int64) (*Report, float64, error) {
	var rows []snapshotRow
	err := s.db.WithContext(ctx).Where("experiment_id = ?", id).Order("computed_at DESC, id DESC").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, 0, err
	}
	var r Report
	if err := json.Unmarshal([]byte(rows[0].Report), &r); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot %d: %w", rows[0].ID, err)
	}
	return &r, rows[0].DurationMS, nil
}

// Results returns the latest report of experiment key with its history;
// when it has no snapshot yet, one is computed. ENOTFOUND when there is no
// such experiment.
func (s *Service) Results(ctx context.Context, key string) (*Report, error) {
	id, _, err := s.experimentIDs(ctx, key)
	if err != nil {
		return nil, err
	}
	r, _, err := s.latestStored(ctx, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		if r, err = s.Refresh(ctx, key); err != nil {
			return nil, err
		}
	}
	hist, err := s.history(ctx, id)
	if err != nil {
		return nil, err
	}
	r.History = hist
	return r, nil
}

// history returns the lifts and p-values of the last snapshots of
// experiment id, oldest first.
func (s *Service) history(ctx context.Context, id int64) ([]HistoryPoint, error) {
	var rows []snapshotRow
	err := s.db.WithContext(ctx).Where("experiment_id = ?", id).Order("computed_at DESC, id DESC").
		Limit(s.opts.HistoryLimit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := []HistoryPoint{}
	for i := len(rows) - 1; i >= 0; i-- {
		var r Report
		if err := json.Unmarshal([]byte(rows[i].Report), &r); err != nil {
			return nil, fmt.Errorf("decode snapshot %d: %w", rows[i].ID, err)
		}
		for _, m := range r.Metrics {
			for _, v := range m.Variants {
				if v.Control {
					continue
				}
				out = append(out, HistoryPoint{ComputedAt: r.ComputedAt, Metric: m.Key, Variant: v.Key, N: v.N,
					AbsLift: v.AbsLift, RelLift: v.RelLift, PValue: v.PValue, SequentialPValue: v.SequentialPValue})
			}
		}
	}
	return out, nil
}

// RefreshRunning refreshes every running experiment and returns how many
// were refreshed; one experiment's failure is logged and does not stop the
// others.
func (s *Service) RefreshRunning(ctx context.Context) (int, error) {
	list, err := s.store.Experiments(ctx, experiments.ExperimentFilter{Status: experiments.StatusRunning})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if _, err := s.Refresh(ctx, e.Key); err != nil {
			if stopped(ctx, err) {
				return n, err
			}
			s.log.Error("results refresh failed", "experiment", e.Key, "err", err)
			continue
		}
		if _, err := s.RefreshDrift(ctx, e.Key); err != nil {
			if stopped(ctx, err) {
				return n, err
			}
			s.log.Error("drift refresh failed", "experiment", e.Key, "err", err)
		}
		n++
	}
	return n, nil
}

// stopped reports whether err, the failure of work under ctx, comes from
// ctx being cancelled: a database driver may say so in its own words
// (SQLite's "interrupted") rather than with context.Canceled.
func stopped(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) || ctx.Err() != nil
}

// LoadLatest reads the newest snapshot of every running experiment into
// the gauges (a process that does not refresh still exports them).
func (s *Service) LoadLatest(ctx context.Context) error {
	list, err := s.store.Experiments(ctx, experiments.ExperimentFilter{Status: experiments.StatusRunning})
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range list {
		keep[e.Key] = true
		id, _, err := s.experimentIDs(ctx, e.Key)
		if err != nil {
			return err
		}
		r, _, err := s.latestStored(ctx, id)
		if err != nil {
			return err
		}
		if r != nil {
			s.remember(r)
		}
		var ds []driftSnapshotRow
		if err := s.db.WithContext(ctx).Where("experiment_id = ?", id).Order("computed_at DESC, id DESC").Limit(1).Find(&ds).Error; err != nil {
			return err
		}
		if len(ds) == 1 {
			var d DriftReport
			if err := json.Unmarshal([]byte(ds[0].Report), &d); err == nil {
				s.mu.Lock()
				s.latestDrift[e.Key] = &d
				s.mu.Unlock()
			}
		}
	}
	s.mu.Lock()
	for k := range s.latest {
		if !keep[k] {
			delete(s.latest, k)
		}
	}
	for k := range s.latestDrift {
		if !keep[k] {
			delete(s.latestDrift, k)
		}
	}
	s.mu.Unlock()
	return nil
}

// latestDriftReports returns the drift reports the gauges export.
func (s *Service) latestDriftReports() []*DriftReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*DriftReport, 0, len(s.latestDrift))
	for _, r := range s.latestDrift {
		out = append(out, r)
	}
	return out
}

// latestReports returns the reports the gauges export.
func (s *Service) latestReports() []*Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Report, 0, len(s.latest))
	for _, r := range s.latest {
		out = append(out, r)
	}
	return out
}
