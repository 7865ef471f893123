package analytics

import (
	"context"
	"math"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/analytics/stats"
	"abgate/experiments"
	"abgate/migrations/dbtest"
)

// t0 is the time of the first exposures of the fixtures.
var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

// fixtureDefinition is an experiment with control a and treatment b, and one
// metric of each type.
func fixtureDefinition() experiments.Definition {
	return experiments.Definition{
		Key: "exp", Route: "route",
		Variants: []experiments.Variant{
			{Key: "a", Model: "m1", Weight: 1, Control: true},
			{Key: "b", Model: "m2", Weight: 1},
		},
		Metrics: []experiments.Metric{
			{Key: "conv", Type: experiments.MetricBinomial, Role: experiments.RolePrimary, WindowHours: 24},
			{Key: "rev", Type: experiments.MetricContinuous, Role: experiments.RoleSecondary, LookbackHours: 48},
			{Key: "acc", Type: experiments.MetricAccuracy, Role: experiments.RoleSecondary},
			{Key: "err", Type: experiments.MetricErrorRate, Role: experiments.RoleGuardrail},
			{Key: "lat", Type: experiments.MetricLatency, Role: experiments.RoleGuardrail},
		},
	}
}

// newFixture creates the store, the models and the experiment of def
// (started) on db, and returns the service.
func newFixture(t *testing.T, db *gorm.DB, def experiments.Definition) (*Service, *experiments.Store) {
	t.Helper()
	ctx := abgate.NewContextWithActor(t.Context(), abgate.Actor{Name: "test", Role: experiments.RoleAdmin})
	store := experiments.NewStore(db, nil)
	for _, m := range []string{"m1", "m2", "m3"} {
		if err := store.EnsureLocalModel(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.CreateExperiment(ctx, def); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Transition(ctx, def.Key, experiments.ActionStart, nil); err != nil {
		t.Fatal(err)
	}
	return NewService(db, store, nil, Options{}), store
}

// testExposure is an exposures row written by the tests.
type testExposure struct {
	ExperimentID   int64
	VariantID      int64
	UnitID         string
	RequestID      string
	At             time.Time
	LatencyUS      int32
	Status         int
	Shadow         bool
	PredictedLabel *string
}

func (testExposure) TableName() string { return "exposures" }

func str(s string) *string { return &s }

// insertFixture writes the exposures and outcomes whose sufficient
// statistics TestAggregate works out by hand.
func insertFixture(t *testing.T, s *Service) (int64, variantIDs) {
	t.Helper()
	ctx := t.Context()
	id, ids, err := s.experimentIDs(ctx, "exp")
	if err != nil {
		t.Fatal(err)
	}
	a, b := ids["a"], ids["b"]
	h := time.Hour
	exps := []testExposure{
		{id, a, "u1", "r1", t0, 10000, 200, false, str("1")},
		{id, a, "u1", "r1b", t0.Add(h), 20000, 200, false, str("0")},
		{id, a, "u2", "r2", t0.Add(2 * h), 30000, 500, false, nil},
		{id, b, "u3", "r3", t0, 5000, 200, false, str("1")},
		{id, b, "u4", "r4", t0, 15000, 200, false, nil},
		{id, a, "u5", "r5a", t0, 1000, 200, false, nil},
		{id, b, "u5", "r5b", t0.Add(h), 1000, 200, false, nil},
		{id, b, "u6", "r6", t0, 1000, 500, true, nil}, // a shadow copy: no unit
		{id, a, "u7", "", t0, 0, 0, false, nil},       // imported: no status
		{id + 1000, a, "u9", "r9", t0, 1000, 500, false, nil},
	}
	if err := s.db.WithContext(ctx).Create(&exps).Error; err != nil {
		t.Fatal(err)
	}
	type o struct {
		unit, metric, req string
		value             *float64
		label             *string
		at                time.Time
	}
	v := func(x float64) *float64 { return &x }
	outs := []o{
		// conv, window 24 h.
		{"u1", "conv", "", v(1), nil, t0.Add(30 * time.Minute)},
		{"u2", "conv", "", v(1), nil, t0.Add(h)}, // before u2's first exposure
		{"u3", "conv", "", v(1), nil, t0.Add(25 * h)},
		{"u4", "conv", "", v(0), nil, t0.Add(h)},
		{"u4", "conv", "", v(1), nil, t0.Add(2 * h)},
		{"u5", "conv", "", v(1), nil, t0.Add(2 * h)}, // multiple exposures
		{"u8", "conv", "", v(1), nil, t0.Add(2 * h)}, // never exposed
		// rev, lookback 48 h.
		{"u1", "rev", "", v(10), nil, t0.Add(time.Minute)},
		{"u1", "rev", "", v(5), nil, t0.Add(48 * h)},
		{"u1", "rev", "", v(3), nil, t0.Add(-24 * h)},
		{"u1", "rev", "", v(100), nil, t0.Add(-72 * h)}, // before the lookback
		{"u2", "rev", "", v(7), nil, t0.Add(3 * h)},
		{"u2", "rev", "", v(2), nil, t0},
		{"u3", "rev", "", v(4), nil, t0.Add(h)},
		{"u4", "rev", "", v(6), nil, t0.Add(-h)},
		// acc: labels of predictions.
		{"u1", "acc", "r1", nil, str("1"), t0.Add(h)},
		{"u1", "acc", "r1b", nil, str("1"), t0.Add(h)},
		{"u3", "acc", "r3", nil, str("2"), t0.Add(h)},
	}
	for _, x := range outs {
		row := importedOutcome{ExperimentID: id, MetricKey: x.metric, UnitID: x.unit, RequestID: x.req, Value: x.value, Label: x.label, At: x.at}
		if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
			t.Fatal(err)
		}
	}
	return id, ids
}

func TestAggregate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, store := newFixture(t, db, fixtureDefinition())
		id, ids := insertFixture(t, s)
		e, err := store.Experiment(t.Context(), "exp")
		if err != nil {
			t.Fatal(err)
		}
		agg, err := Aggregate(context.Background(), db, id, e)
		if err != nil {
			t.Fatal(err)
		}
		a, b := ids["a"], ids["b"]
		if got, want := agg.Units, map[int64]float64{a: 3, b: 2}; !equalUnits(got, want) {
			t.Errorf("units = %v, want %v", got, want)
		}
		if agg.MultipleExposures != 1 {
			t.Errorf("multiple exposures = %v, want 1", agg.MultipleExposures)
		}
		// Worked out by hand from insertFixture.
		want := map[string]map[int64]stats.Summary{
			"conv": {a: {N: 3, SumY: 1, SumY2: 1}, b: {N: 2, SumY: 1, SumY2: 1}},
			"rev": {a: {N: 3, SumY: 22, SumY2: 274, SumX: 5, SumX2: 13, SumXY: 59},
				b: {N: 2, SumY: 4, SumY2: 16, SumX: 6, SumX2: 36, SumXY: 0}},
			"acc": {a: {N: 2, SumY: 1, SumY2: 1}, b: {N: 1, SumY: 0, SumY2: 0}},
			"err": {a: {N: 4, SumY: 1, SumY2: 1}, b: {N: 3, SumY: 0, SumY2: 0}},
			"lat": {a: {N: 4, SumY: 61, SumY2: 1401}, b: {N: 3, SumY: 21, SumY2: 251}},
		}
		for metric, byVariant := range want {
			for v, w := range byVariant {
				if got := agg.Metrics[metric][v]; !closeSummary(got, w) {
					t.Errorf("%s, variant %d: got %+v, want %+v", metric, v, got, w)
				}
			}
		}
	})
}

func equalUnits(got, want map[int64]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func closeSummary(got, want stats.Summary) bool {
	g := []float64{got.N, got.SumY, got.SumY2, got.SumX, got.SumX2, got.SumXY}
	w := []float64{want.N, want.SumY, want.SumY2, want.SumX, want.SumX2, want.SumXY}
	for i := range g {
		if math.Abs(g[i]-w[i]) > 1e-9*math.Max(1, math.Abs(w[i])) {
			return false
		}
	}
	return true
}

func TestAggregateEmpty(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := newFixture(t, db, fixtureDefinition())
		r, err := s.Refresh(t.Context(), "exp")
		if err != nil {
			t.Fatal(err)
		}
		if r.SRM.PValue != nil || r.SRM.Flagged {
			t.Errorf("srm of an empty experiment = %+v, want no test", r.SRM)
		}
		for _, m := range r.Metrics {
			for _, v := range m.Variants {
				if v.N != 0 || v.PValue != nil || v.Mean != nil {
					t.Errorf("%s/%s = %+v, want n 0 and no statistics", m.Key, v.Key, v)
				}
			}
		}
	})
}
