package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"abgate/experiments"
	"abgate/migrations/dbtest"
)

// newSnapStore returns a store on db with the local models m1, m2, m3.
func newSnapStore(t *testing.T, db *gorm.DB) *experiments.Store {
	t.Helper()
	s := experiments.NewStore(db, nil)
	for _, m := range []string{"m1", "m2", "m3"} {
		if err := s.EnsureLocalModel(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// snapDefinition defines key on route: control (m1), treatment (m2) and a
// shadow (m3).
func snapDefinition(key, route string) experiments.Definition {
	return experiments.Definition{
		Key: key, Route: route,
		Variants: []experiments.Variant{
			{Key: "control", Model: "m1", Weight: 1, Control: true},
			{Key: "treatment", Model: "m2", Weight: 1},
			{Key: "shadow", Model: "m3", Shadow: true, ShadowPercent: 10},
		},
		Metrics: []experiments.Metric{{Key: "conversion", Type: experiments.MetricBinomial}},
	}
}

func snapCreate(t *testing.T, s *experiments.Store, d experiments.Definition, actions ...experiments.Action) {
	t.Helper()
	if _, err := s.CreateExperiment(t.Context(), d); err != nil {
		t.Fatalf("create %s: %v", d.Key, err)
	}
	for _, a := range actions {
		if _, err := s.Transition(t.Context(), d.Key, a, nil); err != nil {
			t.Fatalf("%s %s: %v", a, d.Key, err)
		}
	}
}

// snapRowIDs reads the row ids of experiment key and its variants.
func snapRowIDs(t *testing.T, db *gorm.DB, key string) (int64, map[string]int64) {
	t.Helper()
	var rows []struct {
		EID  int64
		VID  int64
		VKey string
	}
	err := db.WithContext(t.Context()).Raw(`SELECT e.id AS e_id, v.id AS v_id, v.key AS v_key
		FROM experiments e JOIN variants v ON v.experiment_id = e.id WHERE e.key = ?`, key).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	vs := map[string]int64{}
	var eid int64
	for _, r := range rows {
		eid, vs[r.VKey] = r.EID, r.VID
	}
	return eid, vs
}

func snapConfigVersion(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	v, err := snapVersion(db.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadSnapshot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newSnapStore(t, db)
		snapCreate(t, s, snapDefinition("running", "r1"), experiments.ActionStart)
		snapCreate(t, s, snapDefinition("draft", "r2"))
		snapCreate(t, s, snapDefinition("paused", "r3"), experiments.ActionStart, experiments.ActionPause)
		snapCreate(t, s, snapDefinition("stopped", "r4"), experiments.ActionStart, experiments.ActionStop)
		a := snapDefinition("layer-a", "r5")
		a.Layer, a.LayerRange = "l", []float64{0, 0.5}
		snapCreate(t, s, a, experiments.ActionStart)
		b := snapDefinition("layer-b", "r5")
		b.Layer, b.LayerRange = "l", []float64{0.5, 1}
		b.Targeting = []experiments.Condition{{Source: "header", Name: "X-Tier", Op: "regex", Value: "^gold$"}}
		b.AllowList = map[string]string{"qa": "treatment"}
		snapCreate(t, s, b, experiments.ActionStart)

		snap, err := LoadSnapshot(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := snap.Version, snapConfigVersion(t, db); got != want {
			t.Errorf("Version: got %d, want %d", got, want)
		}
		if got, want := snap.Routes(), []string{"r1", "r5"}; !slices.Equal(got, want) {
			t.Errorf("Routes: got %v, want %v", got, want)
		}
		var keys []string
		for _, r := range snap.Routes() {
			for _, e := range snap.Experiments(r) {
				keys = append(keys, e.Key)
			}
		}
		if got, want := keys, []string{"running", "layer-a", "layer-b"}; !slices.Equal(got, want) {
			t.Errorf("experiments: got %v, want %v", got, want)
		}
		for _, key := range keys {
			se := snap.Experiment(key)
			eid, vids := snapRowIDs(t, db, key)
			if got, want := se.ID, eid; got != want || got == 0 {
				t.Errorf("%s: ID got %d, want %d", key, got, want)
			}
			var gotKeys []string
			for _, v := range se.Variants {
				gotKeys = append(gotKeys, v.Key)
				if got, want := v.ID, vids[v.Key]; got != want || got == 0 {
					t.Errorf("%s/%s: ID got %d, want %d", key, v.Key, got, want)
				}
				if got, want := v.ExperimentID, eid; got != want {
					t.Errorf("%s/%s: ExperimentID got %d, want %d", key, v.Key, got, want)
				}
			}
			if got, want := gotKeys, []string{"control", "treatment", "shadow"}; !slices.Equal(got, want) {
				t.Errorf("%s: variants got %v, want %v", key, got, want)
			}
		}
		if got, want := len(snap.Shadows("r5")), 2; got != want {
			t.Errorf("shadows of r5: got %d, want %d", got, want)
		}
		if got, want := snap.Experiment("layer-b").Targeting.Len(), 1; got != want {
			t.Errorf("targeting conditions: got %d, want %d", got, want)
		}
		d := snap.Decide("r5", Unit{ID: "qa"})
		if got, want := d.ExperimentKey+"/"+d.VariantKey+"/"+d.Reason, "layer-b/treatment/"+ReasonAllowList; got != want {
			t.Errorf("allow-list decision: got %s, want %s", got, want)
		}
		if got, want := d.VariantID, snap.Experiment("layer-b").Variants[1].ID; got != want {
			t.Errorf("allow-list VariantID: got %d, want %d", got, want)
		}
	})
}

// waitVersion waits up to 2 s until w's snapshot reaches version and
// returns how long that took.
func waitVersion(t *testing.T, w *Watcher, version int64) time.Duration {
	t.Helper()
	start := time.Now()
	for w.Snapshot().Version < version {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("watcher at version %d after 2 s, want %d", w.Snapshot().Version, version)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// startWatcher runs a Watcher on db until the test ends.
func startWatcher(t *testing.T, db *gorm.DB, opts WatcherOptions) *Watcher {
	t.Helper()
	w, err := NewWatcher(t.Context(), db, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

func TestWatcherSeesChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newSnapStore(t, db)
		watchers := []*Watcher{startWatcher(t, db, WatcherOptions{})}
		if db.Dialector.Name() == "postgres" {
			// A second router process that relies on LISTEN alone: its
			// poll would come too late to pass waitVersion.
			// It has a connection pool of its own, like another process.
			other := dbtest.Open(t, db.Dialector.(*postgres.Dialector).Config.DSN)
			watchers = append(watchers, startWatcher(t, other, WatcherOptions{PollInterval: time.Hour}))
		}

		// Concurrent deciders: every decision is a whole one from some
		// snapshot, never a failure.
		var (
			stop     atomic.Bool
			wg       sync.WaitGroup
			decided  atomic.Int64
			failures atomic.Int64
			failMsg  atomic.Value
		)
		for g := range 4 {
			wg.Go(func() {
				asg := NewAssigner(watchers[g%len(watchers)])
				for i := 0; !stop.Load(); i++ {
					d := asg.Decide("r", Unit{ID: "u" + strconv.Itoa(i%500)})
					decided.Add(1)
					ok := d.Reason == ReasonNoExperiment ||
						d.InExperiment && d.ExperimentID != 0 && d.VariantID != 0 && d.Model != "" && len(d.Shadows) == 1
					if !ok {
						failures.Add(1)
						failMsg.Store(fmt.Sprintf("%+v", d))
					}
				}
			})
		}
		defer func() {
			stop.Store(true)
			wg.Wait()
			if n := failures.Load(); n > 0 {
				t.Errorf("%d of %d decisions failed, e.g. %v", n, decided.Load(), failMsg.Load())
			}
		}()

		step := func(name string, change func()) {
			t.Helper()
			change()
			v := snapConfigVersion(t, db)
			for i, w := range watchers {
				took := waitVersion(t, w, v)
				t.Logf("%s: watcher %d saw version %d after %v", name, i, v, took.Round(time.Millisecond))
			}
		}

		step("start", func() { snapCreate(t, s, snapDefinition("exp", "r"), experiments.ActionStart) })
		for _, w := range watchers {
			if got := w.Snapshot().Experiment("exp"); got == nil {
				t.Fatal("started experiment not in snapshot")
			}
		}
		before := map[string]string{}
		for i := range 500 {
			unit := "u" + strconv.Itoa(i)
			before[unit] = watchers[0].Snapshot().Decide("r", Unit{ID: unit}).VariantKey
		}

		step("weights", func() {
			one, three := 1.0, 3.0
			_, err := s.UpdateExperiment(t.Context(), "exp", experiments.Patch{Variants: []experiments.VariantPatch{
				{Key: "control", Weight: &one}, {Key: "treatment", Weight: &three}, {Key: "shadow"}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
		})
		moved := 0
		for i := range 500 {
			unit := "u" + strconv.Itoa(i)
			var got []string
			for _, w := range watchers {
				got = append(got, w.Snapshot().Decide("r", Unit{ID: unit}).VariantKey)
			}
			if len(slices.Compact(slices.Clone(got))) != 1 {
				t.Fatalf("unit %s: watchers disagree: %v", unit, got)
			}
			if got[0] != before[unit] {
				moved++
				if before[unit] != "control" {
					t.Errorf("unit %s moved from %s to %s; only control units should move to treatment", unit, before[unit], got[0])
				}
			}
		}
		if moved == 0 {
			t.Error("weight change 1:1 -> 1:3 moved no unit")
		}

		step("second experiment", func() { snapCreate(t, s, snapDefinition("exp2", "r2"), experiments.ActionStart) })
		for _, w := range watchers {
			if got, want := w.Snapshot().Routes(), []string{"r", "r2"}; !slices.Equal(got, want) {
				t.Errorf("routes: got %v, want %v", got, want)
			}
		}

		step("stop", func() {
			if _, err := s.Transition(t.Context(), "exp", experiments.ActionStop, nil); err != nil {
				t.Fatal(err)
			}
		})
		for _, w := range watchers {
			if got, want := w.Snapshot().Decide("r", Unit{ID: "u1"}).Reason, ReasonNoExperiment; got != want {
				t.Errorf("after stop: got %q, want %q", got, want)
			}
		}
	})
}

func TestWatcherKeepsSnapshotOnFailure(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newSnapStore(t, db)
	snapCreate(t, s, snapDefinition("exp", "r"), experiments.ActionStart)
	w, err := NewWatcher(t.Context(), db, WatcherOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := w.Snapshot()
	// A newer version with a broken row: the reload fails.
	if err := db.Exec("UPDATE experiments SET targeting = 'not json'").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE config_version SET version = version + 1 WHERE id = 1").Error; err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(t.Context(), false); err == nil {
		t.Fatal("Refresh of a broken row: got nil error")
	}
	if got, want := w.Snapshot(), before; got != want {
		t.Errorf("snapshot replaced after a failed load")
	}
	if err := db.Exec("UPDATE experiments SET targeting = '[]'").Error; err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if got, want := w.Snapshot().Version, before.Version+1; got != want {
		t.Errorf("Version after recovery: got %d, want %d", got, want)
	}
}

func TestExplainEndpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newSnapStore(t, db)
		snapCreate(t, s, snapDefinition("draft", "r1"))
		running := snapDefinition("running", "r2")
		running.Coverage = ptrTo(0.8)
		snapCreate(t, s, running, experiments.ActionStart)
		_, token, err := s.CreateKey(t.Context(), experiments.KeyRequest{Name: "vi", Role: experiments.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		api := experiments.NewAPI(s, nil)
		api.Explain = func(ctx context.Context, e *experiments.Experiment, unit string, r *http.Request) (any, error) {
			return Explain(e, unit)
		}
		gin.SetMode(gin.TestMode)
		g := gin.New()
		api.Mount(g.Group("/api/v1"))
		srv := httptest.NewServer(g)
		t.Cleanup(srv.Close)

		explain := func(key, unit string) Explanation {
			t.Helper()
			req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/experiments/"+key+"/assign?unit="+url.QueryEscape(unit), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var x Explanation
			if err := json.NewDecoder(res.Body).Decode(&x); err != nil || res.StatusCode != 200 {
				t.Fatalf("GET assign %s %s: status %d, %v", key, unit, res.StatusCode, err)
			}
			return x
		}

		snap, err := LoadSnapshot(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]string{}
		for i := range 100 {
			unit := "user-" + strconv.Itoa(i)
			x := explain("running", unit)
			d := snap.Decide("r2", Unit{ID: unit})
			if got, want := x.Variant+"/"+x.Reason, d.VariantKey+"/"+d.Reason; got != want {
				t.Fatalf("unit %s: Explain %s, Decide %s", unit, got, want)
			}
			if got, want := x.Bucket, d.Bucket; got != want {
				t.Fatalf("unit %s: bucket Explain %v, Decide %v", unit, got, want)
			}
			xd := explain("draft", unit)
			if got, want := xd.Status, "draft"; got != want {
				t.Fatalf("status: got %q, want %q", got, want)
			}
			before[unit] = xd.Variant + "/" + xd.Reason
		}

		// Once the draft starts, Decide gives what Explain said.
		if _, err := s.Transition(t.Context(), "draft", experiments.ActionStart, nil); err != nil {
			t.Fatal(err)
		}
		if snap, err = LoadSnapshot(t.Context(), db); err != nil {
			t.Fatal(err)
		}
		for unit, want := range before {
			d := snap.Decide("r1", Unit{ID: unit})
			if got := d.VariantKey + "/" + d.Reason; got != want {
				t.Errorf("unit %s after start: Decide %s, draft Explain %s", unit, got, want)
			}
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
