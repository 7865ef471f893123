package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/experiments"
	"abgate/migrations/dbtest"
)

// threeArmDefinition has variants a (control), b and c, and metrics of
// every type computed by the rollups.
func threeArmDefinition() experiments.Definition {
	d := fixtureDefinition()
	d.Variants = append(d.Variants, experiments.Variant{Key: "c", Model: "m3", Weight: 1})
	return d
}

// compareWithAggregate checks that the rollups give what Aggregate computes
// from the raw rows.
func compareWithAggregate(t *testing.T, db *gorm.DB, id int64, e *experiments.Experiment, step string) {
	t.Helper()
	want, err := Aggregate(context.Background(), db, id, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Rollup(context.Background(), db, id, e)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUnits(got.Units, want.Units) {
		t.Errorf("%s: units = %v, want %v", step, got.Units, want.Units)
	}
	if got.MultipleExposures != want.MultipleExposures {
		t.Errorf("%s: multiple exposures = %v, want %v", step, got.MultipleExposures, want.MultipleExposures)
	}
	for _, m := range e.Metrics {
		for v, w := range want.Metrics[m.Key] {
			if g := got.Metrics[m.Key][v]; !closeSummary(g, w) {
				t.Errorf("%s: %s variant %d = %+v, want %+v", step, m.Key, v, g, w)
			}
		}
		for v, g := range got.Metrics[m.Key] {
			if _, ok := want.Metrics[m.Key][v]; !ok && (g.SumY != 0 || g.SumY2 != 0 || g.SumX != 0) {
				t.Errorf("%s: %s variant %d = %+v, want nothing", step, m.Key, v, g)
			}
		}
	}
}

// randomBatch writes exposures and outcomes of random units at random
// times: new units, earlier first exposures, second variants, outcomes of
// units never exposed, before and after first exposure, within and past
// the windows.
func randomBatch(t *testing.T, db *gorm.DB, rng *rand.Rand, id int64, ids variantIDs, n int) {
	t.Helper()
	variants := []int64{ids["a"], ids["b"], ids["c"]}
	var exps []testExposure
	var outs []importedOutcome
	for range n {
		k := rng.IntN(60)
		unit := fmt.Sprintf("u%d", k)
		at := t0.Add(time.Duration(rng.IntN(6*24*60)-3*24*60) * time.Minute)
		switch rng.IntN(3) {
		case 0:
			v := variants[k%3]
			if rng.IntN(15) == 0 {
				v = variants[rng.IntN(3)]
			}
			status := 200
			if rng.IntN(5) == 0 {
				status = 500
			}
			exps = append(exps, testExposure{ExperimentID: id, VariantID: v, UnitID: unit, RequestID: fmt.Sprintf("r%d", rng.Int()),
				At: at, LatencyUS: int32(rng.IntN(90000)), Status: status, Shadow: rng.IntN(10) == 0})
		case 1:
			v := float64(rng.IntN(2))
			outs = append(outs, importedOutcome{ExperimentID: id, MetricKey: "conv", UnitID: unit, Value: &v, At: at})
		default:
			v := math.Round(rng.Float64()*10000) / 100
			outs = append(outs, importedOutcome{ExperimentID: id, MetricKey: "rev", UnitID: unit, Value: &v, At: at})
		}
	}
	if len(exps) > 0 {
		if err := db.Create(&exps).Error; err != nil {
			t.Fatal(err)
		}
	}
	if len(outs) > 0 {
		if err := db.Create(&outs).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFoldMatchesAggregate folds random batches one after the other and
// checks the rollups against the computation from raw rows after each, with
// changed units looked up one by one and joined in one pass.
func TestFoldMatchesAggregate(t *testing.T) {
	for _, lateralMax := range []int64{lateralMaxUnits, 0} {
		t.Run(fmt.Sprintf("lateral-%d", lateralMax), func(t *testing.T) { testFoldMatchesAggregate(t, lateralMax) })
	}
}

func testFoldMatchesAggregate(t *testing.T, lateralMax int64) {
	Fold := func(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment, rebuild bool) error {
		return fold(ctx, db, id, e, rebuild, lateralMax)
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, store := newFixture(t, db, threeArmDefinition())
		id, ids, err := s.experimentIDs(t.Context(), "exp")
		if err != nil {
			t.Fatal(err)
		}
		e, err := store.Experiment(t.Context(), "exp")
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for step := range 12 {
			randomBatch(t, db, rng, id, ids, 10+rng.IntN(80))
			if err := Fold(t.Context(), db, id, e, false); err != nil {
				t.Fatalf("fold %d: %v", step, err)
			}
			compareWithAggregate(t, db, id, e, fmt.Sprintf("step %d", step))
		}
		// The scenario covers what the fold must handle.
		full, err := Aggregate(t.Context(), db, id, e)
		if err != nil {
			t.Fatal(err)
		}
		if full.MultipleExposures == 0 || len(full.Units) != 3 || full.Metrics["rev"][ids["b"]].SumX == 0 ||
			full.Metrics["conv"][ids["a"]].SumY == 0 || full.Metrics["err"][ids["c"]].SumY == 0 {
			t.Fatalf("the random scenario misses a case: %+v", full)
		}
		// A fold with nothing new changes nothing.
		if err := Fold(t.Context(), db, id, e, false); err != nil {
			t.Fatal(err)
		}
		compareWithAggregate(t, db, id, e, "empty fold")

		// New metric definitions rebuild the rollups.
		ctx := abgate.NewContextWithActor(t.Context(), abgate.Actor{Name: "test", Role: experiments.RoleAdmin})
		ms := e.Metrics
		ms[0].WindowHours = 6
		ms[1].LookbackHours = 12
		e, err = store.UpdateExperiment(ctx, "exp", experiments.Patch{Metrics: &ms}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := Fold(t.Context(), db, id, e, false); err != nil {
			t.Fatal(err)
		}
		compareWithAggregate(t, db, id, e, "after a change of metrics")
	})
}

// TestFoldSkipsOpenTransactions checks on PostgreSQL that rows of a
// transaction still open during a fold are folded by the next one, once.
func TestFoldSkipsOpenTransactions(t *testing.T) {
	db := dbtest.Postgres(t)
	s, store := newFixture(t, db, threeArmDefinition())
	id, ids, err := s.experimentIDs(t.Context(), "exp")
	if err != nil {
		t.Fatal(err)
	}
	e, err := store.Experiment(t.Context(), "exp")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	randomBatch(t, db, rng, id, ids, 50)

	// A transaction that writes, then waits while others commit and a fold
	// runs.
	open := db.Begin()
	if open.Error != nil {
		t.Fatal(open.Error)
	}
	randomBatch(t, open, rng, id, ids, 40)
	randomBatch(t, db, rng, id, ids, 40) // committed after the open one began
	if err := Fold(t.Context(), db, id, e, false); err != nil {
		t.Fatal(err)
	}
	if err := open.Commit().Error; err != nil {
		t.Fatal(err)
	}
	// Now visible but not folded: the rollups are behind the raw rows.
	randomBatch(t, db, rng, id, ids, 30)
	if err := Fold(t.Context(), db, id, e, false); err != nil {
		t.Fatal(err)
	}
	compareWithAggregate(t, db, id, e, "after the open transaction committed")
	if err := Fold(t.Context(), db, id, e, false); err != nil {
		t.Fatal(err)
	}
	compareWithAggregate(t, db, id, e, "after another fold")
}
