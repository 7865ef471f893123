package router

// This file holds the router's immutable snapshot of routing
// configuration, how it is loaded from the database, and the Watcher that
// swaps in a new one when the configuration changes.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"abgate/experiments"
	"abgate/migrations"
)

// Snapshot is the routing configuration at one config_version: the running
// experiments per route, compiled for assignment. It is immutable and safe
// for concurrent use; a change of configuration builds a new Snapshot. The
// zero Snapshot routes nothing.
type Snapshot struct {
	// Version is the config_version the snapshot was read at.
	Version int64
	// LoadedAt is when it was read.
	LoadedAt time.Time
	// Problems lists running experiments left out of the snapshot because
	// their configuration does not compile (an experiment that validation
	// let through should never be here); their routes serve defaults.
	Problems []error

	routes map[string]*snapRoute
	byKey  map[string]*SnapshotExperiment
}

// snapRoute is the running experiments of one route, by key, and the
// shadow variants of all of them.
type snapRoute struct {
	experiments []*SnapshotExperiment
	shadows     []*SnapshotVariant
}

// SnapshotExperiment is a running experiment compiled for assignment.
// Fields must not be modified.
type SnapshotExperiment struct {
	// ID is the experiments row id (exposures store it).
	ID    int64
	Key   string
	Route string
	// Experiment is the experiment as the store returned it.
	Experiment *experiments.Experiment
	// Compiled holds the bucket ranges of the non-shadow variants.
	Compiled *Compiled
	// Targeting is the compiled targeting conditions; never nil.
	Targeting *Targeting
	// Variants are all variants in the experiment's order, shadows
	// included.
	Variants []SnapshotVariant

	bucketed  []int          // index in Variants of each compiled weight
	allowList map[string]int // unit id -> index in Variants
}

// SnapshotVariant is a variant of a SnapshotExperiment.
type SnapshotVariant struct {
	// ID is the variants row id (exposures store it).
	ID            int64
	Key           string
	Model         string
	Control       bool
	Shadow        bool
	ShadowPercent float64
	// ExperimentID and ExperimentKey name the variant's experiment.
	ExperimentID  int64
	ExperimentKey string

	mirrorSeed uint32 // fnv32a("shadow:" + experiment + ":" + variant)
}

// Mirror reports whether a shadow variant receives a copy of unit's
// requests: deterministically, for ShadowPercent percent of units, by a
// hash of unit salted with the experiment and variant keys. It is false for
// a variant that is not a shadow and for an empty unit. It does not
// allocate.
func (v *SnapshotVariant) Mirror(unit string) bool {
	if !v.Shadow || unit == "" || !(v.ShadowPercent > 0) {
		return false
	}
	return bucketV2(fnvString(v.mirrorSeed, unit))*100 < v.ShadowPercent
}

// Experiments returns the running experiments on route, by key; nil when
// there are none. The slice must not be modified.
func (s *Snapshot) Experiments(route string) []*SnapshotExperiment {
	if r := s.routes[route]; r != nil {
		return r.experiments
	}
	return nil
}

// Shadows returns the shadow variants of the running experiments on route;
// nil when there are none. The slice must not be modified.
func (s *Snapshot) Shadows(route string) []*SnapshotVariant {
	if r := s.routes[route]; r != nil {
		return r.shadows
	}
	return nil
}

// Experiment returns the running experiment with key, or nil.
func (s *Snapshot) Experiment(key string) *SnapshotExperiment {
	return s.byKey[key]
}

// Routes returns the routes with running experiments, sorted.
func (s *Snapshot) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for r := range s.routes {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// snapIDs are the row ids of an experiment and its variants.
type snapIDs struct {
	experiment int64
	variants   map[string]int64
}

// NewSnapshot compiles running experiments into a Snapshot at version.
// ids gives the row ids: for each experiment key, the experiment's id and
// its variants' ids by variant key (missing ids are 0). Experiments that
// are not running are left out; those that do not compile are listed in
// Problems and left out.
func NewSnapshot(version int64, es []*experiments.Experiment, ids func(experiment, variant string) int64) *Snapshot {
	if ids == nil {
		ids = func(string, string) int64 { return 0 }
	}
	s := &Snapshot{
		Version:  version,
		LoadedAt: time.Now(),
		routes:   map[string]*snapRoute{},
		byKey:    map[string]*SnapshotExperiment{},
	}
	for _, e := range es {
		if e.Status != experiments.StatusRunning {
			continue
		}
		se, err := snapCompile(e, ids(e.Key, ""), func(v string) int64 { return ids(e.Key, v) })
		if err != nil {
			s.Problems = append(s.Problems, fmt.Errorf("experiment %q: %w", e.Key, err))
			continue
		}
		r := s.routes[e.Route]
		if r == nil {
			r = &snapRoute{}
			s.routes[e.Route] = r
		}
		r.experiments = append(r.experiments, se)
		for i := range se.Variants {
			if se.Variants[i].Shadow {
				r.shadows = append(r.shadows, &se.Variants[i])
			}
		}
		s.byKey[e.Key] = se
	}
	for _, r := range s.routes {
		sort.Slice(r.experiments, func(i, j int) bool { return r.experiments[i].Key < r.experiments[j].Key })
	}
	return s
}

// snapCompile compiles one experiment, whatever its status.
func snapCompile(e *experiments.Experiment, id int64, variantID func(key string) int64) (*SnapshotExperiment, error) {
	se := &SnapshotExperiment{ID: id, Key: e.Key, Route: e.Route, Experiment: e}
	var weights []float64
	for _, v := range e.Variants {
		sv := SnapshotVariant{
			ID: variantID(v.Key), Key: v.Key, Model: v.Model, Control: v.Control,
			Shadow: v.Shadow, ShadowPercent: v.ShadowPercent,
			ExperimentID: id, ExperimentKey: e.Key,
			mirrorSeed: FNV32a("shadow:" + e.Key + ":" + v.Key),
		}
		if !v.Shadow {
			se.bucketed = append(se.bucketed, len(se.Variants))
			weights = append(weights, v.Weight)
		}
		se.Variants = append(se.Variants, sv)
	}
	c, err := Compile(e.Key, e.HashSeed, e.HashVersion, e.Coverage, weights, e.Layer, e.LayerRange[0], e.LayerRange[1])
	if err != nil {
		return nil, err
	}
	se.Compiled = c
	if se.Targeting, err = targetCompile(e.Targeting); err != nil {
		return nil, err
	}
	if len(e.AllowList) > 0 {
		se.allowList = make(map[string]int, len(e.AllowList))
		for unit, vk := range e.AllowList {
			if i := se.variantIndex(vk); i >= 0 && !se.Variants[i].Shadow {
				se.allowList[unit] = i
			}
		}
	}
	return se, nil
}

// variantIndex returns the index in Variants of the variant with key, or
// -1.
func (se *SnapshotExperiment) variantIndex(key string) int {
	for i := range se.Variants {
		if se.Variants[i].Key == key {
			return i
		}
	}
	return -1
}

// LoadSnapshot reads the running experiments, their row ids and
// config_version from db (migrated by package migrations) in one read-only
// transaction (repeatable read on PostgreSQL), so the snapshot is
// consistent with the version it carries. Errors are the database's.
func LoadSnapshot(ctx context.Context, db *gorm.DB) (*Snapshot, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if migrations.DialectOf(db) == migrations.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	var out *Snapshot
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		version, err := snapVersion(tx)
		if err != nil {
			return err
		}
		es, err := experiments.NewStore(tx, nil).Experiments(ctx, experiments.ExperimentFilter{Status: experiments.StatusRunning})
		if err != nil {
			return err
		}
		var rows []struct {
			ExperimentID  int64
			ExperimentKey string
			VariantID     int64
			VariantKey    string
		}
		err = tx.Raw(`SELECT e.id AS experiment_id, e.key AS experiment_key, v.id AS variant_id, v.key AS variant_key
			FROM experiments e JOIN variants v ON v.experiment_id = e.id
			WHERE e.status = ?`, string(experiments.StatusRunning)).Scan(&rows).Error
		if err != nil {
			return err
		}
		ids := make(map[[2]string]int64, 2*len(rows))
		for _, r := range rows {
			ids[[2]string{r.ExperimentKey, ""}] = r.ExperimentID
			ids[[2]string{r.ExperimentKey, r.VariantKey}] = r.VariantID
		}
		out = NewSnapshot(version, es, func(e, v string) int64 { return ids[[2]string{e, v}] })
		return nil
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("load routing snapshot: %w", err)
	}
	return out, nil
}

// snapVersion reads config_version.
func snapVersion(db *gorm.DB) (int64, error) {
	var v int64
	if err := db.Raw("SELECT version FROM config_version WHERE id = 1").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read config_version: %w", err)
	}
	return v, nil
}

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// PollInterval is how often config_version is polled; 0 means 1 s.
	// On PostgreSQL the poll is a safety net behind LISTEN abgate_config.
	PollInterval time.Duration
	// NoListen disables LISTEN abgate_config on PostgreSQL (polling only).
	NoListen bool
	// ListenDSN is the PostgreSQL URL to LISTEN on; "" means the DSN db was
	// opened with.
	ListenDSN string
}

// Watcher holds the current Snapshot and replaces it when config_version
// changes: it polls config_version every PollInterval and, on PostgreSQL,
// also reloads on every notification of channel abgate_config. A load that
// fails keeps the current snapshot (and is logged); readers always see a
// whole snapshot, old or new.
type Watcher struct {
	db   *gorm.DB
	opts WatcherOptions
	log  *slog.Logger
	cur  atomic.Pointer[Snapshot]
	kick chan struct{} // a notification arrived: reload now
}

// NewWatcher loads the first snapshot from db and returns a Watcher
// holding it; call Run to keep it current. A nil log discards. The error
// of the first load comes back as is.
func NewWatcher(ctx context.Context, db *gorm.DB, opts WatcherOptions, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	s, err := LoadSnapshot(ctx, db)
	if err != nil {
		return nil, err
	}
	w := &Watcher{db: db, opts: opts, log: log, kick: make(chan struct{}, 1)}
	w.logProblems(s)
	w.cur.Store(s)
	return w, nil
}

// Snapshot returns the current snapshot; never nil.
func (w *Watcher) Snapshot() *Snapshot { return w.cur.Load() }

// Refresh reloads the snapshot when config_version differs from the
// current snapshot's, or always when force is set, and swaps it in. On
// error the current snapshot stays. It is safe to call concurrently with
// Run: a snapshot never replaces one of a newer version.
func (w *Watcher) Refresh(ctx context.Context, force bool) error {
	cur := w.cur.Load()
	if !force {
		v, err := snapVersion(w.db.WithContext(ctx))
		if err != nil {
			return err
		}
		if v == cur.Version {
			return nil
		}
	}
	s, err := LoadSnapshot(ctx, w.db)
	if err != nil {
		return err
	}
	for !w.cur.CompareAndSwap(cur, s) {
		if cur = w.cur.Load(); s.Version < cur.Version {
			return nil // a concurrent Refresh stored a newer snapshot
		}
	}
	w.logProblems(s)
	if s.Version != cur.Version {
		w.log.Info("routing config reloaded", "version", s.Version, "experiments", len(s.byKey))
	}
	return nil
}

func (w *Watcher) logProblems(s *Snapshot) {
	for _, p := range s.Problems {
		w.log.Error("experiment left out of routing", "version", s.Version, "err", p)
	}
}

// Run keeps the snapshot current until ctx ends, then returns nil. On
// PostgreSQL it also LISTENs on abgate_config, reconnecting with backoff.
func (w *Watcher) Run(ctx context.Context) error {
	if migrations.DialectOf(w.db) == migrations.Postgres && !w.opts.NoListen {
		dsn := w.opts.ListenDSN
		if dsn == "" {
			if d, ok := w.db.Dialector.(*postgres.Dialector); ok && d.Config != nil {
				dsn = d.Config.DSN
			}
		}
		if dsn != "" {
			done := make(chan struct{})
			defer func() { <-done }()
			go func() {
				defer close(done)
				w.listen(ctx, dsn)
			}()
		} else {
			w.log.Warn("no PostgreSQL DSN to LISTEN on; polling config_version only")
		}
	}
	t := time.NewTicker(w.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.kick:
		}
		err := w.Refresh(ctx, false)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			failing = true
			w.log.Error("routing config reload failed; keeping the current snapshot", "version", w.Snapshot().Version, "err", err)
		case err == nil && failing:
			failing = false
			w.log.Info("routing config reload recovered", "version", w.Snapshot().Version)
		}
	}
}

// listen LISTENs on abgate_config and kicks a reload on each notification
// and after each (re)connection, until ctx ends.
func (w *Watcher) listen(ctx context.Context, dsn string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, dsn, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("LISTEN abgate_config failed; reconnecting", "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (w *Watcher) listenOnce(ctx context.Context, dsn string, connected func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN abgate_config"); err != nil {
		return err
	}
	connected()
	w.kickReload() // changes made while not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		w.kickReload()
	}
}

func (w *Watcher) kickReload() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
