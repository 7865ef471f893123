package experiments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"sync"
	"testing"

	"gorm.io/gorm"

	"abgate"
	"abgate/migrations/dbtest"
)

// newTestStore returns a store on db with the local models m1, m2 and m3
// registered.
func newTestStore(t *testing.T, db *gorm.DB) *Store {
	t.Helper()
	s := NewStore(db, nil)
	for _, m := range []string{"m1", "m2", "m3"} {
		if err := s.EnsureLocalModel(t.Context(), m); err != nil {
			t.Fatalf("EnsureLocalModel(%s): %v", m, err)
		}
	}
	return s
}

// definition returns a valid definition of key on route, over m1 and m2.
func definition(key, route string) Definition {
	return Definition{
		Key:   key,
		Route: route,
		Variants: []Variant{
			{Key: "v1", Model: "m1", Weight: 1, Control: true},
			{Key: "v2", Model: "m2", Weight: 1},
		},
		Metrics: []Metric{{Key: "conversion", Type: MetricBinomial}},
	}
}

// layered returns definition(key, route) in layer over [lo, hi).
func layered(key, route, layer string, lo, hi float64) Definition {
	d := definition(key, route)
	d.Layer = layer
	d.LayerRange = []float64{lo, hi}
	return d
}

func mustCreate(t *testing.T, s *Store, d Definition) *Experiment {
	t.Helper()
	e, err := s.CreateExperiment(t.Context(), d)
	if err != nil {
		t.Fatalf("CreateExperiment(%s): %v", d.Key, err)
	}
	return e
}

func mustTransition(t *testing.T, s *Store, key string, a Action) *Experiment {
	t.Helper()
	e, err := s.Transition(t.Context(), key, a, nil)
	if err != nil {
		t.Fatalf("Transition(%s, %s): %v", key, a, err)
	}
	return e
}

func mustGet(t *testing.T, s *Store, key string) *Experiment {
	t.Helper()
	e, err := s.Experiment(t.Context(), key)
	if err != nil {
		t.Fatalf("Experiment(%s): %v", key, err)
	}
	return e
}

// configVersion reads config_version straight from the database.
func configVersion(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var v int64
	if err := db.WithContext(t.Context()).Raw("SELECT version FROM config_version WHERE id = 1").Scan(&v).Error; err != nil {
		t.Fatal(err)
	}
	return v
}

type variantID struct {
	ID  int64
	Key string
}

// variantIDs reads the variant rows of experiment key, by position.
func variantIDs(t *testing.T, db *gorm.DB, key string) []variantID {
	t.Helper()
	var rows []variantID
	err := db.WithContext(t.Context()).Raw(`SELECT v.id, v.key FROM variants v JOIN experiments e ON e.id = v.experiment_id
		WHERE e.key = ? ORDER BY v.position`, key).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func keysOf(es []*Experiment) []string {
	keys := []string{}
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	return keys
}

func TestStoreCreateGetList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)

		d := validDefinition()
		d.Variants = append(d.Variants, Variant{Key: "shadow", Name: "Shadow", Model: "m3", Shadow: true, ShadowPercent: 12.5})
		d.Layer, d.LayerRange = "layer-a", []float64{0.25, 0.75}
		d.Targeting = append(d.Targeting, Condition{Source: "body", Name: "parameters.age", Op: OpRange, Min: ptr(18.0), Max: ptr(65.5)})
		d.Description = "ünïcode ✓"
		created := mustCreate(t, s, d)
		if got, want := created.Status, StatusDraft; got != want {
			t.Errorf("status: got %q, want %q", got, want)
		}
		if got, want := created.Version, int64(1); got != want {
			t.Errorf("version: got %d, want %d", got, want)
		}
		if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
			t.Errorf("created_at %v, updated_at %v: want both set and equal", created.CreatedAt, created.UpdatedAt)
		}
		got := mustGet(t, s, d.Key)
		if !reflect.DeepEqual(got, created) {
			t.Errorf("Experiment after create:\n got %+v\nwant %+v", got, created)
		}

		mustCreate(t, s, definition("b-exp", "other"))
		mustCreate(t, s, definition("a-exp", "classifier"))
		mustTransition(t, s, "a-exp", ActionStart)
		mustCreate(t, s, definition("gone", "classifier"))
		mustTransition(t, s, "gone", ActionArchive)

		tests := []struct {
			name   string
			filter ExperimentFilter
			want   []string
		}{
			{"default leaves out archived", ExperimentFilter{}, []string{"a-exp", "b-exp", "exp-1"}},
			{"by route", ExperimentFilter{Route: "classifier"}, []string{"a-exp", "exp-1"}},
			{"by status", ExperimentFilter{Status: StatusRunning}, []string{"a-exp"}},
			{"archived", ExperimentFilter{Status: StatusArchived}, []string{"gone"}},
			{"draft on route", ExperimentFilter{Status: StatusDraft, Route: "classifier"}, []string{"exp-1"}},
			{"nothing", ExperimentFilter{Route: "nope"}, []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				es, err := s.Experiments(ctx, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got := keysOf(es); !slices.Equal(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}

		t.Run("listed equals got", func(t *testing.T) {
			es, err := s.Experiments(ctx, ExperimentFilter{Route: "classifier", Status: StatusDraft})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || !reflect.DeepEqual(es[0], created) {
				t.Errorf("got %+v, want [%+v]", es, created)
			}
		})
		t.Run("unknown key", func(t *testing.T) {
			_, err := s.Experiment(ctx, "nope")
			assertErr(t, err, abgate.ENOTFOUND, "")
		})
	})
}

func TestStoreCreateRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		mustCreate(t, s, definition("taken", "r"))
		mustCreate(t, s, definition("archived", "r"))
		mustTransition(t, s, "archived", ActionArchive)
		before := configVersion(t, db)

		unregistered := definition("new", "r")
		unregistered.Variants[1].Model = "unregistered"
		twoControls := definition("new", "r")
		twoControls.Variants[1].Control = true
		tests := []struct {
			name  string
			def   Definition
			code  string
			field string
		}{
			{"duplicate key", definition("taken", "r"), abgate.ECONFLICT, "key"},
			{"archived key stays reserved", definition("archived", "r"), abgate.ECONFLICT, "key"},
			{"unregistered model", unregistered, abgate.EINVALID, "variants[1].model"},
			{"two controls", twoControls, abgate.EINVALID, "variants[1].control"},
			{"layer_range without layer", Definition{Key: "new", Route: "r", LayerRange: []float64{0, 1}}, abgate.EINVALID, "layer_range"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateExperiment(ctx, tt.def)
				assertErr(t, err, tt.code, tt.field)
			})
		}
		if got, want := configVersion(t, db), before; got != want {
			t.Errorf("config_version after failed creates: got %d, want %d (unchanged)", got, want)
		}
		if _, err := s.Experiment(ctx, "new"); abgate.ErrorCode(err) != abgate.ENOTFOUND {
			t.Errorf("Experiment(new) after failed creates: got %v, want not_found", err)
		}
	})
}

func TestStoreUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		mustCreate(t, s, definition("exp", "r"))
		mustTransition(t, s, "exp", ActionStart) // version 2
		idsBefore := variantIDs(t, db, "exp")

		t.Run("stale version", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Coverage: ptr(0.5)}, ptr(int64(1)))
			assertErr(t, err, abgate.ECONFLICT, "version")
		})
		t.Run("stale body version", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Version: ptr(int64(1)), Coverage: ptr(0.5)}, nil)
			assertErr(t, err, abgate.ECONFLICT, "version")
		})
		t.Run("If-Match and body disagree", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Version: ptr(int64(2)), Coverage: ptr(0.5)}, ptr(int64(3)))
			assertErr(t, err, abgate.EINVALID, "version")
		})
		t.Run("unknown key", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "nope", Patch{Coverage: ptr(0.5)}, nil)
			assertErr(t, err, abgate.ENOTFOUND, "")
		})
		t.Run("invalid result", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Coverage: ptr(2.0)}, ptr(int64(2)))
			assertErr(t, err, abgate.EINVALID, "coverage")
		})
		t.Run("locked change", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Variants: []VariantPatch{{Key: "v1"}}}, ptr(int64(2)))
			assertErr(t, err, abgate.ECONFLICT, "variants")
		})
		if got, want := mustGet(t, s, "exp").Version, int64(2); got != want {
			t.Fatalf("version after failed updates: got %d, want %d", got, want)
		}

		t.Run("current version", func(t *testing.T) {
			cv := configVersion(t, db)
			got, err := s.UpdateExperiment(ctx, "exp", Patch{
				Coverage: ptr(0.5),
				Variants: []VariantPatch{{Key: "v2", Weight: ptr(3.0)}, {Key: "v1"}},
			}, ptr(int64(2)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := got.Version, int64(3); got != want {
				t.Errorf("version: got %d, want %d", got, want)
			}
			if got, want := variantKeys(got.Variants), []string{"v1", "v2"}; !slices.Equal(got, want) {
				t.Errorf("variant order: got %v, want %v", got, want)
			}
			reloaded := mustGet(t, s, "exp")
			if !reflect.DeepEqual(reloaded, got) {
				t.Errorf("reloaded:\n got %+v\nwant %+v", reloaded, got)
			}
			if got, want := reloaded.Variants[1].Weight, 3.0; got != want {
				t.Errorf("stored weight of v2: got %v, want %v", got, want)
			}
			if got, want := reloaded.Coverage, 0.5; got != want {
				t.Errorf("stored coverage: got %v, want %v", got, want)
			}
			if got, want := configVersion(t, db), cv+1; got != want {
				t.Errorf("config_version: got %d, want %d", got, want)
			}
		})
		t.Run("variant row ids kept", func(t *testing.T) {
			if got, want := variantIDs(t, db, "exp"), idsBefore; !reflect.DeepEqual(got, want) {
				t.Errorf("variant rows: got %v, want %v", got, want)
			}
		})
		t.Run("no expected version", func(t *testing.T) {
			got, err := s.UpdateExperiment(ctx, "exp", Patch{Name: ptr("renamed")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := got.Version, int64(4); got != want {
				t.Errorf("version: got %d, want %d", got, want)
			}
		})
	})
}

func TestStoreDraftVariantRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		mustCreate(t, s, definition("exp", "r"))
		before := variantIDs(t, db, "exp")
		_, err := s.UpdateExperiment(ctx, "exp", Patch{Variants: []VariantPatch{
			{Key: "v3", Model: ptr("m3"), Weight: ptr(1.0)},
			{Key: "v1"},
		}}, ptr(int64(1)))
		if err != nil {
			t.Fatal(err)
		}
		after := variantIDs(t, db, "exp")
		if got, want := len(after), 2; got != want {
			t.Fatalf("got %d variant rows, want %d: %v", got, want, after)
		}
		if got, want := after[0].Key, "v3"; got != want {
			t.Errorf("first variant: got %q, want %q", got, want)
		}
		if got, want := after[1], before[0]; got != want {
			t.Errorf("v1 row: got %v, want %v (same id)", got, want)
		}
		if after[0].ID == before[1].ID {
			t.Errorf("new variant v3 took the id of removed v2")
		}
	})
}

func TestStoreConcurrentUpdates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		mustCreate(t, s, definition("exp", "r"))
		mustTransition(t, s, "exp", ActionStart)

		for round := range 3 {
			version := mustGet(t, s, "exp").Version
			weights := []float64{2 + float64(round), 5 + float64(round)}
			errs := make([]error, len(weights))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, w := range weights {
				wg.Go(func() {
					<-start
					_, errs[i] = s.UpdateExperiment(ctx, "exp", Patch{
						Variants: []VariantPatch{{Key: "v1"}, {Key: "v2", Weight: ptr(w)}},
					}, &version)
				})
			}
			close(start)
			wg.Wait()

			winners := 0
			var winner float64
			for i, err := range errs {
				switch abgate.ErrorCode(err) {
				case "":
					winners++
					winner = weights[i]
				case abgate.ECONFLICT:
				default:
					t.Errorf("round %d, update %d: got %v, want success or conflict", round, i, err)
				}
			}
			if winners != 1 {
				t.Fatalf("round %d: got %d successful updates (%v), want exactly 1", round, winners, errs)
			}
			e := mustGet(t, s, "exp")
			if got, want := e.Version, version+1; got != want {
				t.Errorf("round %d: version got %d, want %d", round, got, want)
			}
			if got, want := e.Variants[1].Weight, winner; got != want {
				t.Errorf("round %d: weight got %v, want the winner's %v", round, got, want)
			}
		}
	})
}

func TestStoreLifecycle(t *testing.T) {
	steps := []struct {
		action Action
		want   Status // "" = the action is refused with ECONFLICT
	}{
		{ActionPause, ""},
		{ActionStop, ""},
		{ActionStart, StatusRunning},
		{ActionStart, ""},
		{ActionPause, StatusPaused},
		{ActionPause, ""},
		{ActionStart, StatusRunning},
		{ActionStop, StatusStopped},
		{ActionStart, ""},
		{ActionPause, ""},
		{ActionStop, ""},
		{ActionArchive, StatusArchived},
		{ActionArchive, ""},
		{ActionStart, ""},
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		mustCreate(t, s, definition("exp", "r"))
		var startedAt = mustGet(t, s, "exp").StartedAt
		if startedAt != nil {
			t.Fatalf("draft has started_at %v", startedAt)
		}
		status, version := StatusDraft, int64(1)
		for i, step := range steps {
			t.Run(string(status)+"-"+string(step.action), func(t *testing.T) {
				got, err := s.Transition(ctx, "exp", step.action, ptr(version))
				if step.want == "" {
					assertErr(t, err, abgate.ECONFLICT, "status")
					if got := mustGet(t, s, "exp"); got.Status != status || got.Version != version {
						t.Errorf("after refused %s: got %s v%d, want %s v%d", step.action, got.Status, got.Version, status, version)
					}
					return
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got.Status != step.want || got.Version != version+1 {
					t.Errorf("got %s v%d, want %s v%d", got.Status, got.Version, step.want, version+1)
				}
				if reloaded := mustGet(t, s, "exp"); !reflect.DeepEqual(reloaded, got) {
					t.Errorf("reloaded:\n got %+v\nwant %+v", reloaded, got)
				}
				switch step.want {
				case StatusRunning:
					if got.StartedAt == nil {
						t.Errorf("running without started_at")
					} else if startedAt != nil && !got.StartedAt.Equal(*startedAt) {
						t.Errorf("resume moved started_at from %v to %v", *startedAt, *got.StartedAt)
					}
					startedAt = got.StartedAt
				case StatusStopped:
					if got.StoppedAt == nil {
						t.Errorf("stopped without stopped_at")
					}
				case StatusArchived:
					if got.ArchivedAt == nil {
						t.Errorf("archived without archived_at")
					}
				}
				status, version = got.Status, got.Version
			})
		}
		t.Run("stale version", func(t *testing.T) {
			mustCreate(t, s, definition("other", "r2"))
			_, err := s.Transition(ctx, "other", ActionStart, ptr(int64(7)))
			assertErr(t, err, abgate.ECONFLICT, "version")
		})
		t.Run("unknown key", func(t *testing.T) {
			_, err := s.Transition(ctx, "nope", ActionStart, nil)
			assertErr(t, err, abgate.ENOTFOUND, "")
		})
		t.Run("archived experiment cannot change", func(t *testing.T) {
			_, err := s.UpdateExperiment(ctx, "exp", Patch{Name: ptr("x")}, nil)
			assertErr(t, err, abgate.ECONFLICT, "")
		})
		t.Run("archiving a running experiment stops it", func(t *testing.T) {
			mustCreate(t, s, definition("live", "r3"))
			mustTransition(t, s, "live", ActionStart)
			got := mustTransition(t, s, "live", ActionArchive)
			if got.StoppedAt == nil || got.ArchivedAt == nil {
				t.Errorf("got stopped_at %v archived_at %v, want both set", got.StoppedAt, got.ArchivedAt)
			}
		})
	})
}

func TestStoreStartConflicts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		tests := []struct {
			name    string
			running []Definition // started first, in order
			start   Definition
			field   string // "" = the start succeeds
		}{
			{"two without a layer", []Definition{definition("a1", "r-a")}, definition("a2", "r-a"), "route"},
			{"other route", []Definition{definition("b1", "r-b")}, definition("b2", "r-b2"), ""},
			{"layer next to none", []Definition{definition("c1", "r-c")}, layered("c2", "r-c", "lc", 0.5, 1), "route"},
			{"none next to layer", []Definition{layered("d1", "r-d", "ld", 0, 0.5)}, definition("d2", "r-d"), "route"},
			{"different layers", []Definition{layered("e1", "r-e", "le1", 0, 0.5)}, layered("e2", "r-e", "le2", 0.5, 1), "route"},
			{"overlapping ranges", []Definition{layered("f1", "r-f", "lf", 0, 0.5)}, layered("f2", "r-f", "lf", 0.4, 1), "layer_range"},
			{"same range", []Definition{layered("g1", "r-g", "lg", 0.2, 0.3)}, layered("g2", "r-g", "lg", 0.2, 0.3), "layer_range"},
			{"range inside", []Definition{layered("h1", "r-h", "lh", 0, 1)}, layered("h2", "r-h", "lh", 0.4, 0.6), "layer_range"},
			{"disjoint ranges", []Definition{layered("i1", "r-i", "li", 0, 0.5)}, layered("i2", "r-i", "li", 0.5, 1), ""},
			{"third overlaps second", []Definition{layered("j1", "r-j", "lj", 0, 0.3), layered("j2", "r-j", "lj", 0.3, 0.6)}, layered("j3", "r-j", "lj", 0.55, 1), "layer_range"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, d := range tt.running {
					mustCreate(t, s, d)
					mustTransition(t, s, d.Key, ActionStart)
				}
				mustCreate(t, s, tt.start)
				got, err := s.Transition(ctx, tt.start.Key, ActionStart, nil)
				if tt.field == "" {
					if err != nil {
						t.Fatalf("got %v, want the start to succeed", err)
					}
					if got.Status != StatusRunning {
						t.Errorf("status: got %s, want running", got.Status)
					}
					for _, d := range tt.running {
						if got := mustGet(t, s, d.Key).Status; got != StatusRunning {
							t.Errorf("%s: got %s, want still running", d.Key, got)
						}
					}
					return
				}
				assertErr(t, err, abgate.EINVALID, tt.field)
				if got := mustGet(t, s, tt.start.Key); got.Status != StatusDraft || got.Version != 1 {
					t.Errorf("after the refused start: got %s v%d, want draft v1", got.Status, got.Version)
				}
			})
		}

		t.Run("paused does not hold the route", func(t *testing.T) {
			mustCreate(t, s, definition("k1", "r-k"))
			mustTransition(t, s, "k1", ActionStart)
			mustTransition(t, s, "k1", ActionPause)
			mustCreate(t, s, definition("k2", "r-k"))
			mustTransition(t, s, "k2", ActionStart)
			_, err := s.Transition(ctx, "k1", ActionStart, nil)
			assertErr(t, err, abgate.EINVALID, "route")
		})
		t.Run("stopped frees the route", func(t *testing.T) {
			mustCreate(t, s, definition("l1", "r-l"))
			mustTransition(t, s, "l1", ActionStart)
			mustTransition(t, s, "l1", ActionStop)
			mustCreate(t, s, definition("l2", "r-l"))
			mustTransition(t, s, "l2", ActionStart)
		})
		t.Run("concurrent starts on one route", func(t *testing.T) {
			mustCreate(t, s, definition("m1", "r-m"))
			mustCreate(t, s, definition("m2", "r-m"))
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, key := range []string{"m1", "m2"} {
				wg.Go(func() {
					<-start
					_, errs[i] = s.Transition(ctx, key, ActionStart, nil)
				})
			}
			close(start)
			wg.Wait()
			es, err := s.Experiments(ctx, ExperimentFilter{Route: "r-m", Status: StatusRunning})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(es); got != 1 {
				t.Errorf("got %d running experiments on r-m (%v; errors %v), want 1", got, keysOf(es), errs)
			}
		})
	})
}

func TestStoreAudit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := abgate.NewContextWithActor(t.Context(), abgate.Actor{Name: "alice", Role: RoleEditor})
		s := newTestStore(t, db)
		if _, err := s.CreateExperiment(ctx, definition("exp", "r")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateExperiment(ctx, "exp", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2", Weight: ptr(3.0)}}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transition(ctx, "exp", ActionStart, nil); err != nil {
			t.Fatal(err)
		}
		// A failed change leaves no entry.
		if _, err := s.UpdateExperiment(ctx, "exp", Patch{Coverage: ptr(7.0)}, nil); err == nil {
			t.Fatal("coverage 7 accepted")
		}
		// Without an actor in the context, the actor is "system".
		if _, err := s.Transition(t.Context(), "exp", ActionPause, nil); err != nil {
			t.Fatal(err)
		}

		entries, err := s.Audit(t.Context(), AuditFilter{EntityType: "experiment", EntityKey: "exp"})
		if err != nil {
			t.Fatal(err)
		}
		type summary struct {
			Actor, Action string
			Paths         []string
		}
		var got []summary
		for _, e := range entries {
			paths := []string{}
			for _, c := range e.Diff {
				paths = append(paths, c.Path)
			}
			got = append(got, summary{e.Actor, e.Action, paths})
		}
		want := []summary{
			{"system", "experiment.pause", []string{"status"}},
			{"alice", "experiment.start", []string{"started_at", "status"}},
			{"alice", "experiment.update", []string{"variants.v2.weight"}},
			{"alice", "experiment.create", []string{""}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("audit entries, newest first:\n got %+v\nwant %+v", got, want)
		}
		if len(entries) != len(want) {
			return
		}

		tests := []struct {
			name  string
			entry AuditEntry
			check func(t *testing.T, e AuditEntry)
		}{
			{"update diff values", entries[2], func(t *testing.T, e AuditEntry) {
				if got, want := e.Diff, []Change{{Path: "variants.v2.weight", Before: 1.0, After: 3.0}}; !reflect.DeepEqual(got, want) {
					t.Errorf("diff: got %+v, want %+v", got, want)
				}
			}},
			{"status diff values", entries[0], func(t *testing.T, e AuditEntry) {
				if got, want := e.Diff, []Change{{Path: "status", Before: "running", After: "paused"}}; !reflect.DeepEqual(got, want) {
					t.Errorf("diff: got %+v, want %+v", got, want)
				}
			}},
			{"create has no before", entries[3], func(t *testing.T, e AuditEntry) {
				if e.Before != nil {
					t.Errorf("before: got %s, want none", e.Before)
				}
				if e.After == nil {
					t.Fatal("after: got none")
				}
				var after Experiment
				if err := abgate.DecodeJSON(bytes.NewReader(e.After), &after); err != nil {
					t.Fatalf("after does not decode as an experiment: %v", err)
				}
				if got, want := after.Key, "exp"; got != want {
					t.Errorf("after.key: got %q, want %q", got, want)
				}
			}},
			{"entity and time", entries[1], func(t *testing.T, e AuditEntry) {
				if e.EntityType != "experiment" || e.EntityKey != "exp" || e.At.IsZero() || e.ID == 0 {
					t.Errorf("got %+v, want entity experiment/exp, an id and a time", e)
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { tt.check(t, tt.entry) })
		}

		t.Run("paging", func(t *testing.T) {
			page, err := s.Audit(ctx, AuditFilter{EntityType: "experiment", Limit: 2, BeforeID: entries[0].ID})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page {
				got = append(got, e.Action)
			}
			if want := []string{"experiment.start", "experiment.update"}; !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
		t.Run("limit over 1000", func(t *testing.T) {
			_, err := s.Audit(ctx, AuditFilter{Limit: 1001})
			assertErr(t, err, abgate.EINVALID, "limit")
		})
		t.Run("model entries", func(t *testing.T) {
			page, err := s.Audit(ctx, AuditFilter{EntityType: "model", EntityKey: "m1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != 1 || page[0].Action != "model.register" || page[0].Actor != "system" {
				t.Errorf("got %+v, want one model.register by system", page)
			}
		})
	})
}

func TestStoreConfigVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		steps := []struct {
			name   string
			do     func() error
			bumped bool
		}{
			{"create experiment", func() error { _, err := s.CreateExperiment(ctx, definition("exp", "r")); return err }, true},
			{"update experiment", func() error {
				_, err := s.UpdateExperiment(ctx, "exp", Patch{Coverage: ptr(0.5)}, nil)
				return err
			}, true},
			{"failed update", func() error {
				_, err := s.UpdateExperiment(ctx, "exp", Patch{Coverage: ptr(5.0)}, nil)
				if err == nil {
					t.Error("coverage 5 accepted")
				}
				return nil
			}, false},
			{"start", func() error { _, err := s.Transition(ctx, "exp", ActionStart, nil); return err }, true},
			{"register model", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "remote", Backends: []string{"http://127.0.0.1:9000"}})
				return err
			}, true},
			{"new local model", func() error { return s.EnsureLocalModel(ctx, "local") }, true},
			{"known local model", func() error { return s.EnsureLocalModel(ctx, "local") }, false},
			{"delete model", func() error { return s.DeleteModel(ctx, "remote") }, true},
			{"create API key", func() error { _, _, err := s.CreateKey(ctx, KeyRequest{Name: "k", Role: RoleViewer}); return err }, false},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				before := configVersion(t, db)
				if err := step.do(); err != nil {
					t.Fatal(err)
				}
				want := before
				if step.bumped {
					want++
				}
				if got := configVersion(t, db); got != want {
					t.Errorf("config_version: got %d, want %d", got, want)
				}
			})
		}
	})
}

func TestStoreModels(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		reg := ModelRegistration{Name: "remote-m", Version: "3", Backends: []string{"http://10.0.0.1:8000/", "https://b.example"}}
		m, err := s.RegisterModel(ctx, reg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Backends, []string{"http://10.0.0.1:8000", "https://b.example"}; !slices.Equal(got, want) {
			t.Errorf("backends: got %v, want %v (normalised)", got, want)
		}
		if got := mustModel(t, s, "remote-m"); !reflect.DeepEqual(got, m) {
			t.Errorf("Model:\n got %+v\nwant %+v", got, m)
		}

		t.Run("list", func(t *testing.T) {
			ms, err := s.Models(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Name+"/"+m.Source)
			}
			if want := []string{"m1/local", "m2/local", "m3/local", "remote-m/remote"}; !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})

		rejects := []struct {
			name  string
			do    func() error
			code  string
			field string
		}{
			{"duplicate name", func() error { _, err := s.RegisterModel(ctx, reg); return err }, abgate.ECONFLICT, "name"},
			{"name of a local model", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "m1", Backends: []string{"http://h"}})
				return err
			}, abgate.ECONFLICT, "name"},
			{"local over remote", func() error { return s.EnsureLocalModel(ctx, "remote-m") }, abgate.ECONFLICT, ""},
			{"bad local name", func() error { return s.EnsureLocalModel(ctx, "a/b") }, abgate.EINVALID, "name"},
			{"bad name", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "a b", Backends: []string{"http://h"}})
				return err
			}, abgate.EINVALID, "name"},
			{"bad version", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "x", Version: "1/2", Backends: []string{"http://h"}})
				return err
			}, abgate.EINVALID, "version"},
			{"no backends", func() error { _, err := s.RegisterModel(ctx, ModelRegistration{Name: "x"}); return err }, abgate.EINVALID, "backends"},
			{"backend not http", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "x", Backends: []string{"http://h", "ftp://h"}})
				return err
			}, abgate.EINVALID, "backends[1]"},
			{"backend with credentials", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "x", Backends: []string{"http://u:p@h"}})
				return err
			}, abgate.EINVALID, "backends[0]"},
			{"backend twice", func() error {
				_, err := s.RegisterModel(ctx, ModelRegistration{Name: "x", Backends: []string{"http://h", "http://h/"}})
				return err
			}, abgate.EINVALID, "backends[1]"},
			{"get unknown", func() error { _, err := s.Model(ctx, "nope"); return err }, abgate.ENOTFOUND, ""},
			{"delete unknown", func() error { return s.DeleteModel(ctx, "nope") }, abgate.ENOTFOUND, ""},
		}
		for _, tt := range rejects {
			t.Run(tt.name, func(t *testing.T) { assertErr(t, tt.do(), tt.code, tt.field) })
		}
		t.Run("local is idempotent", func(t *testing.T) {
			if err := s.EnsureLocalModel(ctx, "m1"); err != nil {
				t.Errorf("second EnsureLocalModel: %v", err)
			}
		})

		t.Run("delete blocked while used", func(t *testing.T) {
			d := definition("uses-remote", "r")
			d.Variants[1].Model = "remote-m"
			mustCreate(t, s, d)
			for _, step := range []Action{"", ActionStart, ActionStop} {
				if step != "" {
					mustTransition(t, s, d.Key, step)
				}
				err := s.DeleteModel(ctx, "remote-m")
				assertErr(t, err, abgate.ECONFLICT, "")
			}
			mustTransition(t, s, d.Key, ActionArchive)
			if err := s.DeleteModel(ctx, "remote-m"); err != nil {
				t.Fatalf("delete after archiving its user: %v", err)
			}
			_, err := s.Model(ctx, "remote-m")
			assertErr(t, err, abgate.ENOTFOUND, "")
			var backends int64
			if err := db.WithContext(ctx).Table("model_backends").Count(&backends).Error; err != nil {
				t.Fatal(err)
			}
			if backends != 0 {
				t.Errorf("got %d backend rows after delete, want 0", backends)
			}
		})
	})
}

func mustModel(t *testing.T, s *Store, name string) *Model {
	t.Helper()
	m, err := s.Model(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// storedHash reads api_keys.token_hash of key name straight from the
// database.
func storedHash(t *testing.T, db *gorm.DB, name string) string {
	t.Helper()
	var hashes []string
	if err := db.WithContext(t.Context()).Table("api_keys").Where("name = ?", name).Pluck("token_hash", &hashes).Error; err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 1 {
		t.Fatalf("got %d api_keys rows named %q, want 1", len(hashes), name)
	}
	return hashes[0]
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestStoreKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newTestStore(t, db)
		key, token, err := s.CreateKey(ctx, KeyRequest{Name: "ops", Role: RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if key.Name != "ops" || key.Role != RoleAdmin || key.CreatedAt.IsZero() || key.RevokedAt != nil {
			t.Errorf("got key %+v, want ops/admin, created, not revoked", key)
		}
		t.Run("token hash stored", func(t *testing.T) {
			if len(token) < 40 {
				t.Errorf("token %q is short", token)
			}
			if got, want := storedHash(t, db, "ops"), sha256Hex(token); got != want {
				t.Errorf("token_hash: got %q, want SHA-256 %q", got, want)
			}
		})
		t.Run("authenticate", func(t *testing.T) {
			got, err := s.Authenticate(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if want := (abgate.Actor{Name: "ops", Role: RoleAdmin}); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			keys, err := s.Keys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].LastUsedAt == nil {
				t.Errorf("got keys %+v, want ops with last_used_at", keys)
			}
		})

		viewer, viewerToken, err := s.CreateKey(ctx, KeyRequest{Name: "viewer-1", Role: RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		if viewerToken == token {
			t.Fatal("two keys got one token")
		}
		rejects := []struct {
			name  string
			do    func() error
			code  string
			field string
		}{
			{"duplicate name", func() error { _, _, err := s.CreateKey(ctx, KeyRequest{Name: "ops", Role: RoleViewer}); return err }, abgate.ECONFLICT, "name"},
			{"bad name", func() error { _, _, err := s.CreateKey(ctx, KeyRequest{Name: "Ops!", Role: RoleViewer}); return err }, abgate.EINVALID, "name"},
			{"bad role", func() error { _, _, err := s.CreateKey(ctx, KeyRequest{Name: "x", Role: "root"}); return err }, abgate.EINVALID, "role"},
			{"empty token", func() error { _, err := s.Authenticate(ctx, ""); return err }, abgate.EUNAUTHORIZED, ""},
			{"unknown token", func() error { _, err := s.Authenticate(ctx, token+"x"); return err }, abgate.EUNAUTHORIZED, ""},
			{"token hash as token", func() error { _, err := s.Authenticate(ctx, sha256Hex(token)); return err }, abgate.EUNAUTHORIZED, ""},
			{"revoke unknown", func() error { _, err := s.RevokeKey(ctx, "nope"); return err }, abgate.ENOTFOUND, ""},
			{"revoke the last admin", func() error { _, err := s.RevokeKey(ctx, "ops"); return err }, abgate.ECONFLICT, ""},
		}
		for _, tt := range rejects {
			t.Run(tt.name, func(t *testing.T) { assertErr(t, tt.do(), tt.code, tt.field) })
		}

		t.Run("revoked token stops working", func(t *testing.T) {
			revoked, err := s.RevokeKey(ctx, viewer.Name)
			if err != nil {
				t.Fatal(err)
			}
			if revoked.RevokedAt == nil {
				t.Errorf("revoked key has no revoked_at")
			}
			_, err = s.Authenticate(ctx, viewerToken)
			assertErr(t, err, abgate.EUNAUTHORIZED, "")
			again, err := s.RevokeKey(ctx, viewer.Name)
			if err != nil {
				t.Fatalf("second revoke: %v", err)
			}
			if again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
				t.Errorf("second revoke: revoked_at %v, want %v", again.RevokedAt, revoked.RevokedAt)
			}
			_, _, err = s.CreateKey(ctx, KeyRequest{Name: viewer.Name, Role: RoleViewer})
			assertErr(t, err, abgate.ECONFLICT, "name")
		})
		t.Run("an admin can go when another stays", func(t *testing.T) {
			_, token2, err := s.CreateKey(ctx, KeyRequest{Name: "ops-2", Role: RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeKey(ctx, "ops"); err != nil {
				t.Fatalf("revoke ops with ops-2 left: %v", err)
			}
			_, err = s.RevokeKey(ctx, "ops-2")
			assertErr(t, err, abgate.ECONFLICT, "")
			if _, err := s.Authenticate(ctx, token2); err != nil {
				t.Errorf("ops-2 after its refused revoke: %v", err)
			}
		})
		t.Run("audited by actor", func(t *testing.T) {
			entries, err := s.Audit(ctx, AuditFilter{EntityType: "api_key", EntityKey: "viewer-1"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Action)
			}
			if want := []string{"key.revoke", "key.create"}; !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	})
}

func TestStoreEnsureAdminGenerated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := NewStore(db, nil)
		token, err := s.EnsureAdmin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if token == "" {
			t.Fatal("got no token on a database without admin")
		}
		if got, want := storedHash(t, db, BootstrapKeyName), sha256Hex(token); got != want {
			t.Errorf("token_hash: got %q, want %q", got, want)
		}
		actor, err := s.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if want := (abgate.Actor{Name: BootstrapKeyName, Role: RoleAdmin}); actor != want {
			t.Errorf("got %+v, want %+v", actor, want)
		}
		again, err := s.EnsureAdmin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if again != "" {
			t.Errorf("second call: got token %q, want \"\" (printed once)", again)
		}
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Errorf("first token after second call: %v", err)
		}
		keys, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(keys); got != 1 {
			t.Errorf("got %d keys, want 1", got)
		}
	})
}

func TestStoreEnsureAdminTokenOfAnotherKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db, nil)
		_, token, err := s.CreateKey(t.Context(), KeyRequest{Name: "ci", Role: RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.EnsureAdmin(t.Context(), token)
		if got, want := abgate.ErrorCode(err), abgate.ECONFLICT; got != want {
			t.Fatalf("EnsureAdmin with the token of key ci: got code %q (%v), want %q", got, err, want)
		}
	})
}

func TestStoreEnsureAdminGiven(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := NewStore(db, nil)
		steps := []struct {
			name, token string
			actions     []string // audit actions on the admin key, oldest first
		}{
			{"first", "secret-one", []string{"key.create"}},
			{"same again", "secret-one", []string{"key.create"}},
			{"rotated", "secret-two", []string{"key.create", "key.rotate"}},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				got, err := s.EnsureAdmin(ctx, step.token)
				if err != nil {
					t.Fatal(err)
				}
				if got != "" {
					t.Errorf("got token %q, want \"\" when the token is given", got)
				}
				if got, want := storedHash(t, db, BootstrapKeyName), sha256Hex(step.token); got != want {
					t.Errorf("token_hash: got %q, want %q", got, want)
				}
				if _, err := s.Authenticate(ctx, step.token); err != nil {
					t.Errorf("authenticate: %v", err)
				}
				entries, err := s.Audit(ctx, AuditFilter{EntityType: "api_key", EntityKey: BootstrapKeyName})
				if err != nil {
					t.Fatal(err)
				}
				var actions []string
				for _, e := range slices.Backward(entries) {
					actions = append(actions, e.Action)
					if e.Actor != "system" {
						t.Errorf("%s by %q, want system", e.Action, e.Actor)
					}
				}
				if !slices.Equal(actions, step.actions) {
					t.Errorf("audit: got %v, want %v", actions, step.actions)
				}
			})
		}
		t.Run("old token stops working", func(t *testing.T) {
			_, err := s.Authenticate(ctx, "secret-one")
			assertErr(t, err, abgate.EUNAUTHORIZED, "")
		})
		t.Run("no token generated while an admin exists", func(t *testing.T) {
			got, err := s.EnsureAdmin(ctx, "")
			if err != nil || got != "" {
				t.Errorf("got (%q, %v), want (\"\", nil)", got, err)
			}
		})
		t.Run("revoked admin key is restored", func(t *testing.T) {
			if _, _, err := s.CreateKey(ctx, KeyRequest{Name: "other-admin", Role: RoleAdmin}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeKey(ctx, BootstrapKeyName); err != nil {
				t.Fatal(err)
			}
			if _, err := s.EnsureAdmin(ctx, "secret-two"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Authenticate(ctx, "secret-two"); err != nil {
				t.Errorf("authenticate after EnsureAdmin restored the key: %v", err)
			}
		})
	})
}

func TestStoreSeedDemo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := NewStore(db, nil)
		if err := s.SeedDemo(ctx); err != nil {
			t.Fatal(err)
		}
		first := mustGet(t, s, DemoExperiment)
		if first.Status != StatusRunning || first.Route != DemoRoute {
			t.Errorf("demo: got %s on %q, want running on %q", first.Status, first.Route, DemoRoute)
		}
		if c := first.Control(); c == nil || c.Key != "v1" || c.Model != DemoModelV1 {
			t.Errorf("demo control: got %+v, want v1 on %s", c, DemoModelV1)
		}
		cv := configVersion(t, db)
		audit, err := s.Audit(ctx, AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("idempotent", func(t *testing.T) {
			if err := s.SeedDemo(ctx); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, s, DemoExperiment); !reflect.DeepEqual(got, first) {
				t.Errorf("demo after second seed:\n got %+v\nwant %+v", got, first)
			}
			if got := configVersion(t, db); got != cv {
				t.Errorf("config_version: got %d, want %d (unchanged)", got, cv)
			}
			again, err := s.Audit(ctx, AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(audit) {
				t.Errorf("audit entries: got %d, want %d (unchanged)", len(again), len(audit))
			}
		})
		t.Run("leaves a paused demo paused", func(t *testing.T) {
			mustTransition(t, s, DemoExperiment, ActionPause)
			if err := s.SeedDemo(ctx); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, s, DemoExperiment).Status; got != StatusPaused {
				t.Errorf("status: got %s, want paused", got)
			}
		})
		t.Run("models are local", func(t *testing.T) {
			for _, name := range []string{DemoModelV1, DemoModelV2} {
				if m := mustModel(t, s, name); m.Source != SourceLocal {
					t.Errorf("%s: source %q, want local", name, m.Source)
				}
			}
		})
	})
}

// TestStoreConcurrentStartup runs what every abgate process does when it
// starts (register its local models, make sure the admin key exists, seed
// the demo) from several processes at once, as when a router and an
// inference server start together on one database.
func TestStoreConcurrentStartup(t *testing.T) {
	tests := []struct {
		name  string
		do    func(ctx context.Context, s *Store) error
		audit AuditFilter
		want  []string // audit actions, newest first: each change made once
	}{
		{"EnsureLocalModel", func(ctx context.Context, s *Store) error { return s.EnsureLocalModel(ctx, "fresh-model") },
			AuditFilter{EntityType: "model", EntityKey: "fresh-model"}, []string{"model.register"}},
		{"EnsureAdmin with a token", func(ctx context.Context, s *Store) error { _, err := s.EnsureAdmin(ctx, "shared-token"); return err },
			AuditFilter{EntityType: "api_key"}, []string{"key.create"}},
		{"SeedDemo", func(ctx context.Context, s *Store) error { return s.SeedDemo(ctx) },
			AuditFilter{EntityType: "experiment"}, []string{"experiment.start", "experiment.create"}},
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				const processes = 8
				errs := make([]error, processes)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range processes {
					s := NewStore(db, nil) // one store per process
					wg.Go(func() {
						<-start
						errs[i] = tt.do(t.Context(), s)
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("process %d: %v", i, err)
					}
				}
				entries, err := NewStore(db, nil).Audit(t.Context(), tt.audit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range entries {
					got = append(got, e.Action)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("audit: got %v, want %v", got, tt.want)
				}
			})
		}
	})
}

// TestStoreConcurrentCreates makes one name from several clients at once:
// exactly one wins, the others get ECONFLICT, never an internal error.
func TestStoreConcurrentCreates(t *testing.T) {
	tests := []struct {
		name string
		do   func(ctx context.Context, s *Store) error
	}{
		{"experiment", func(ctx context.Context, s *Store) error {
			_, err := s.CreateExperiment(ctx, definition("same", "r"))
			return err
		}},
		{"model", func(ctx context.Context, s *Store) error {
			_, err := s.RegisterModel(ctx, ModelRegistration{Name: "same", Backends: []string{"http://127.0.0.1:9"}})
			return err
		}},
		{"API key", func(ctx context.Context, s *Store) error {
			_, _, err := s.CreateKey(ctx, KeyRequest{Name: "same", Role: RoleViewer})
			return err
		}},
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newTestStore(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				const clients = 6
				errs := make([]error, clients)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range clients {
					wg.Go(func() {
						<-start
						errs[i] = tt.do(t.Context(), s)
					})
				}
				close(start)
				wg.Wait()
				wins := 0
				for i, err := range errs {
					switch abgate.ErrorCode(err) {
					case "":
						wins++
					case abgate.ECONFLICT:
					default:
						t.Errorf("client %d: got %v, want success or conflict", i, err)
					}
				}
				if wins != 1 {
					t.Errorf("got %d successes, want 1 (%v)", wins, errs)
				}
			})
		}
	})
}
