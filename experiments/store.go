package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"abgate"
)

// Store keeps experiments, models, API keys and the audit log through
// GORM, on SQLite or PostgreSQL alike. Every change to an experiment or a
// model is written in one transaction with its audit entry and a bump of
// config_version, which routers watch.
type Store struct {
	db  *gorm.DB
	log *slog.Logger
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// NewStore returns a Store on db, a database migrated by package
// migrations. A nil log discards.
func NewStore(db *gorm.DB, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{db: db, log: log}
}

func (s *Store) now() time.Time {
	// Microseconds: what both databases keep, so that what a write returns
	// equals what a later read gives.
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Rows: one struct per table, private to the store.

type experimentRow struct {
	ID          int64 `gorm:"primaryKey"`
	Key         string
	Name        string
	Description string
	Route       string
	Status      string
	HashSeed    string
	HashVersion int
	Coverage    float64
	LayerID     *int64
	LayerStart  float64
	LayerEnd    float64
	Targeting   string
	AllowList   string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time `gorm:"autoUpdateTime:false"` // set by the store (Store.Now), not by GORM
	StartedAt   *time.Time
	StoppedAt   *time.Time
	ArchivedAt  *time.Time
}

func (experimentRow) TableName() string { return "experiments" }

type variantRow struct {
	ID            int64 `gorm:"primaryKey"`
	ExperimentID  int64
	Key           string
	Name          string
	Model         string
	Weight        float64
	Control       bool
	Shadow        bool
	ShadowPercent float64
	Position      int
}

func (variantRow) TableName() string { return "variants" }

type metricRow struct {
	ID            int64 `gorm:"primaryKey"`
	ExperimentID  int64
	Key           string
	Type          string
	Role          string
	Direction     string
	WindowHours   float64
	LookbackHours float64
	Position      int
}

func (metricRow) TableName() string { return "metrics" }

type layerRow struct {
	ID        int64 `gorm:"primaryKey"`
	Key       string
	CreatedAt time.Time
}

func (layerRow) TableName() string { return "layers" }

// CreateExperiment validates and stores a new draft experiment. A key in
// use (archived experiments keep theirs) is ECONFLICT; a rule violation is
// EINVALID naming the field.
func (s *Store) CreateExperiment(ctx context.Context, d Definition) (*Experiment, error) {
	e, err := d.Experiment()
	if err != nil {
		return nil, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		hasModel, err := modelChecker(tx, e.Variants)
		if err != nil {
			return err
		}
		if err := Validate(e, hasModel); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&experimentRow{}).Where("key = ?", e.Key).Count(&n).Error; err != nil {
			return err
		} else if n > 0 {
			return &abgate.Error{Code: abgate.ECONFLICT, Field: "key", Message: fmt.Sprintf("experiment %q already exists", e.Key)}
		}
		now := s.now()
		e.CreatedAt, e.UpdatedAt = now, now
		row, err := s.toRow(tx, e)
		if err != nil {
			return err
		}
		if err := tx.Create(row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return &abgate.Error{Code: abgate.ECONFLICT, Field: "key", Message: fmt.Sprintf("experiment %q already exists", e.Key)}
			}
			return err
		}
		if err := saveChildren(tx, row.ID, nil, e); err != nil {
			return err
		}
		return s.changed(tx, "experiment.create", "experiment", e.Key, nil, e)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Experiment returns the experiment with key, or ENOTFOUND.
func (s *Store) Experiment(ctx context.Context, key string) (*Experiment, error) {
	es, err := s.load(s.db.WithContext(ctx), "key = ?", key)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, abgate.Errorf(abgate.ENOTFOUND, "experiment %q not found", key)
	}
	return es[0], nil
}

// ExperimentFilter selects experiments in Experiments. Zero values select
// all but archived experiments.
type ExperimentFilter struct {
	Status Status // only this status ("archived" included)
	Route  string // only this route
}

// Experiments lists experiments by key.
func (s *Store) Experiments(ctx context.Context, f ExperimentFilter) ([]*Experiment, error) {
	q := s.db.WithContext(ctx)
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	} else {
		q = q.Where("status <> ?", string(StatusArchived))
	}
	if f.Route != "" {
		q = q.Where("route = ?", f.Route)
	}
	return s.load(q)
}

// UpdateExperiment applies p to the experiment with key. expected, when not
// nil, is the version the change was made against (If-Match or the body's
// version); a stale one is ECONFLICT. The change is validated and audited.
func (s *Store) UpdateExperiment(ctx context.Context, key string, p Patch, expected *int64) (*Experiment, error) {
	if p.Version != nil {
		if expected != nil && *expected != *p.Version {
			return nil, abgate.FieldErrorf("version", "If-Match names version %d but the body names version %d", *expected, *p.Version)
		}
		expected = p.Version
	}
	var out *Experiment
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, row, err := s.current(tx, key, expected)
		if err != nil {
			return err
		}
		next, err := p.Apply(cur)
		if err != nil {
			return err
		}
		hasModel, err := modelChecker(tx, next.Variants)
		if err != nil {
			return err
		}
		if err := Validate(next, hasModel); err != nil {
			return err
		}
		next.Version = cur.Version + 1
		next.UpdatedAt = s.now()
		if err := s.write(tx, row, cur, next); err != nil {
			return err
		}
		out = next
		return s.changed(tx, "experiment.update", "experiment", key, cur, next)
	})
	return out, err
}

// Transition moves the experiment with key through the lifecycle. An
// action its status does not allow is ECONFLICT; starting an experiment on
// a route that another running experiment serves, outside one layer with
// disjoint ranges, is EINVALID naming route or layer_range.
func (s *Store) Transition(ctx context.Context, key string, action Action, expected *int64) (*Experiment, error) {
	var out *Experiment
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, row, err := s.current(tx, key, expected)
		if err != nil {
			return err
		}
		to, ok := cur.Status.Next(action)
		if !ok {
			return &abgate.Error{Code: abgate.ECONFLICT, Field: "status",
				Message: fmt.Sprintf("cannot %s experiment %q: it is %s", action, key, cur.Status)}
		}
		next := clone(cur)
		next.Status = to
		now := s.now()
		next.UpdatedAt = now
		next.Version = cur.Version + 1
		switch to {
		case StatusRunning:
			if err := s.checkRoute(tx, next); err != nil {
				return err
			}
			if next.StartedAt == nil {
				next.StartedAt = &now
			}
		case StatusStopped:
			next.StoppedAt = &now
		case StatusArchived:
			next.ArchivedAt = &now
			if cur.Status.Live() {
				next.StoppedAt = &now
			}
		}
		if err := s.write(tx, row, cur, next); err != nil {
			return err
		}
		out = next
		return s.changed(tx, "experiment."+string(action), "experiment", key, cur, next)
	})
	return out, err
}

// current loads the experiment to change inside tx and checks the expected
// version. On PostgreSQL the row is locked until tx ends.
func (s *Store) current(tx *gorm.DB, key string, expected *int64) (*Experiment, *experimentRow, error) {
	var row experimentRow
	q := tx
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Where("key = ?", key).Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, abgate.Errorf(abgate.ENOTFOUND, "experiment %q not found", key)
	} else if err != nil {
		return nil, nil, err
	}
	if expected != nil && *expected != row.Version {
		return nil, nil, &abgate.Error{Code: abgate.ECONFLICT, Field: "version",
			Message: fmt.Sprintf("experiment %q is at version %d, not %d: reload it and apply the change again", key, row.Version, *expected)}
	}
	es, err := s.fromRows(tx, []experimentRow{row})
	if err != nil {
		return nil, nil, err
	}
	return es[0], &row, nil
}

// write stores next over row (whose state is cur), guarded by the version.
func (s *Store) write(tx *gorm.DB, row *experimentRow, cur, next *Experiment) error {
	newRow, err := s.toRow(tx, next)
	if err != nil {
		return err
	}
	newRow.ID = row.ID
	res := tx.Model(&experimentRow{}).Where("id = ? AND version = ?", row.ID, row.Version).
		Select("*").Omit("id", "key", "created_at").Updates(newRow)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return &abgate.Error{Code: abgate.ECONFLICT, Field: "version",
			Message: fmt.Sprintf("experiment %q changed concurrently: reload it and apply the change again", next.Key)}
	}
	return saveChildren(tx, row.ID, cur, next)
}

// checkRoute enforces that running experiments on one route are in one
// layer with disjoint ranges. It serialises starts per route.
func (s *Store) checkRoute(tx *gorm.DB, e *Experiment) error {
	if tx.Dialector.Name() == "postgres" {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext(?))", "abgate_route:"+e.Route).Error; err != nil {
			return err
		}
	}
	others, err := s.load(tx, "route = ? AND status = ? AND key <> ?", e.Route, string(StatusRunning), e.Key)
	if err != nil {
		return err
	}
	for _, o := range others {
		if e.Layer == "" || o.Layer != e.Layer {
			return abgate.FieldErrorf("route", "route %q is served by running experiment %q; put both in one layer with disjoint layer_range to run them together", e.Route, o.Key)
		}
		if e.LayerRange[0] < o.LayerRange[1] && o.LayerRange[0] < e.LayerRange[1] {
			return abgate.FieldErrorf("layer_range", "layer_range [%v, %v) overlaps [%v, %v) of running experiment %q in layer %q", e.LayerRange[0], e.LayerRange[1], o.LayerRange[0], o.LayerRange[1], o.Key, e.Layer)
		}
	}
	return nil
}

func (s *Store) toRow(tx *gorm.DB, e *Experiment) (*experimentRow, error) {
	targeting, err := json.Marshal(e.Targeting)
	if err != nil {
		return nil, err
	}
	allow, err := json.Marshal(e.AllowList)
	if err != nil {
		return nil, err
	}
	row := &experimentRow{
		Key: e.Key, Name: e.Name, Description: e.Description, Route: e.Route,
		Status: string(e.Status), HashSeed: e.HashSeed, HashVersion: e.HashVersion,
		Coverage: e.Coverage, LayerStart: e.LayerRange[0], LayerEnd: e.LayerRange[1],
		Targeting: string(targeting), AllowList: string(allow), Version: e.Version,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
		StartedAt: e.StartedAt, StoppedAt: e.StoppedAt, ArchivedAt: e.ArchivedAt,
	}
	if e.Layer != "" {
		layer := layerRow{Key: e.Layer, CreatedAt: s.now()}
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}).Create(&layer).Error; err != nil {
			return nil, err
		}
		if err := tx.Where("key = ?", e.Layer).Take(&layer).Error; err != nil {
			return nil, err
		}
		row.LayerID = &layer.ID
	}
	return row, nil
}

// saveChildren writes the variants and metrics of next. Variants keep
// their row ids across changes (exposures refer to them); metrics are
// rewritten.
func saveChildren(tx *gorm.DB, experimentID int64, cur, next *Experiment) error {
	var existing []variantRow
	if cur != nil {
		if err := tx.Where("experiment_id = ?", experimentID).Find(&existing).Error; err != nil {
			return err
		}
	}
	ids := make(map[string]int64, len(existing))
	for _, v := range existing {
		ids[v.Key] = v.ID
	}
	keep := make(map[string]bool, len(next.Variants))
	for i, v := range next.Variants {
		keep[v.Key] = true
		row := variantRow{ID: ids[v.Key], ExperimentID: experimentID, Key: v.Key, Name: v.Name, Model: v.Model,
			Weight: v.Weight, Control: v.Control, Shadow: v.Shadow, ShadowPercent: v.ShadowPercent, Position: i}
		if row.ID == 0 {
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
		} else if err := tx.Select("*").Save(&row).Error; err != nil {
			return err
		}
	}
	for _, v := range existing {
		if !keep[v.Key] {
			if err := tx.Delete(&variantRow{}, v.ID).Error; err != nil {
				return err
			}
		}
	}
	if err := tx.Where("experiment_id = ?", experimentID).Delete(&metricRow{}).Error; err != nil {
		return err
	}
	for i, m := range next.Metrics {
		row := metricRow{ExperimentID: experimentID, Key: m.Key, Type: m.Type, Role: m.Role, Direction: m.Direction,
			WindowHours: m.WindowHours, LookbackHours: m.LookbackHours, Position: i}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
	}
	return nil
}

// load reads the experiments that match the conditions, by key.
func (s *Store) load(q *gorm.DB, conds ...any) ([]*Experiment, error) {
	var rows []experimentRow
	if len(conds) > 0 {
		q = q.Where(conds[0], conds[1:]...)
	}
	if err := q.Order("key").Find(&rows).Error; err != nil {
		return nil, err
	}
	return s.fromRows(q.Session(&gorm.Session{NewDB: true}), rows)
}

func (s *Store) fromRows(db *gorm.DB, rows []experimentRow) ([]*Experiment, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(rows))
	var layerIDs []int64
	for i, r := range rows {
		ids[i] = r.ID
		if r.LayerID != nil {
			layerIDs = append(layerIDs, *r.LayerID)
		}
	}
	var variants []variantRow
	if err := db.Where("experiment_id IN ?", ids).Order("experiment_id, position").Find(&variants).Error; err != nil {
		return nil, err
	}
	var metrics []metricRow
	if err := db.Where("experiment_id IN ?", ids).Order("experiment_id, position").Find(&metrics).Error; err != nil {
		return nil, err
	}
	layers := map[int64]string{}
	if len(layerIDs) > 0 {
		var ls []layerRow
		if err := db.Where("id IN ?", layerIDs).Find(&ls).Error; err != nil {
			return nil, err
		}
		for _, l := range ls {
			layers[l.ID] = l.Key
		}
	}
	byID := make(map[int64]*Experiment, len(rows))
	out := make([]*Experiment, len(rows))
	for i, r := range rows {
		e := &Experiment{
			Key: r.Key, Name: r.Name, Description: r.Description, Route: r.Route, Status: Status(r.Status),
			HashSeed: r.HashSeed, HashVersion: r.HashVersion, Coverage: r.Coverage,
			LayerRange: [2]float64{r.LayerStart, r.LayerEnd}, Version: r.Version,
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
			StartedAt: utc(r.StartedAt), StoppedAt: utc(r.StoppedAt), ArchivedAt: utc(r.ArchivedAt),
		}
		if r.LayerID != nil {
			e.Layer = layers[*r.LayerID]
		}
		if err := json.Unmarshal([]byte(r.Targeting), &e.Targeting); err != nil {
			return nil, fmt.Errorf("experiment %q: targeting: %w", r.Key, err)
		}
		if err := json.Unmarshal([]byte(r.AllowList), &e.AllowList); err != nil {
			return nil, fmt.Errorf("experiment %q: allow_list: %w", r.Key, err)
		}
		byID[r.ID] = e
		out[i] = e
	}
	for _, v := range variants {
		e := byID[v.ExperimentID]
		e.Variants = append(e.Variants, Variant{Key: v.Key, Name: v.Name, Model: v.Model, Weight: v.Weight,
			Control: v.Control, Shadow: v.Shadow, ShadowPercent: v.ShadowPercent})
	}
	for _, m := range metrics {
		e := byID[m.ExperimentID]
		e.Metrics = append(e.Metrics, Metric{Key: m.Key, Type: m.Type, Role: m.Role, Direction: m.Direction,
			WindowHours: m.WindowHours, LookbackHours: m.LookbackHours})
	}
	for _, e := range out {
		normalize(e)
	}
	return out, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// changed records an audit entry inside tx and, for experiments and models,
// bumps config_version and notifies PostgreSQL listeners.
func (s *Store) changed(tx *gorm.DB, action, entityType, entityKey string, before, after any) error {
	actor := abgate.ActorFromContext(tx.Statement.Context).Name
	if actor == "" {
		actor = "system"
	}
	entry, err := newAuditRow(s.now(), actor, action, entityType, entityKey, before, after)
	if err != nil {
		return err
	}
	if err := tx.Create(entry).Error; err != nil {
		return err
	}
	if entityType != "experiment" && entityType != "model" {
		return nil // routers do not see it
	}
	if err := tx.Exec("UPDATE config_version SET version = version + 1 WHERE id = 1").Error; err != nil {
		return err
	}
	if tx.Dialector.Name() == "postgres" {
		return tx.Exec("SELECT pg_notify('abgate_config', ?)", entityType+":"+entityKey).Error
	}
	return nil
}

// modelChecker returns a ModelChecker over the models the variants name.
func modelChecker(tx *gorm.DB, vs []Variant) (ModelChecker, error) {
	names := make([]string, 0, len(vs))
	for _, v := range vs {
		names = append(names, v.Model)
	}
	var found []string
	if len(names) > 0 {
		if err := tx.Model(&modelRow{}).Where("name IN ?", names).Pluck("name", &found).Error; err != nil {
			return nil, err
		}
	}
	set := make(map[string]bool, len(found))
	for _, n := range found {
		set[n] = true
	}
	return func(name string) bool { return set[name] }, nil
}
