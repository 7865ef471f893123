package router

import (
	"math"
	"net/http"
	"strconv"
	"testing"

	"abgate/experiments"
)

// testExperiment returns a running experiment on route with variants
// control (m1) and treatment (m2), equal weights, and a shadow (m3, 50 %).
func testExperiment(key, route string) *experiments.Experiment {
	return &experiments.Experiment{
		Key: key, Route: route, Status: experiments.StatusRunning,
		HashSeed: key, HashVersion: 2, Coverage: 1, LayerRange: [2]float64{0, 1},
		Variants: []experiments.Variant{
			{Key: "control", Model: "m1", Weight: 1, Control: true},
			{Key: "shadow", Model: "m3", Shadow: true, ShadowPercent: 50},
			{Key: "treatment", Model: "m2", Weight: 1},
		},
	}
}

// testIDs gives each experiment and variant a made-up row id.
func testIDs(e, v string) int64 {
	return int64(FNV32a(e+"/"+v) % 100000)
}

func TestDecideBasics(t *testing.T) {
	e := testExperiment("exp", "r")
	e.AllowList = map[string]string{"qa-1": "treatment", "qa-2": "shadow"}
	s := NewSnapshot(7, []*experiments.Experiment{e, testDraft("draft", "other")}, testIDs)
	if got, want := len(s.Problems), 0; got != want {
		t.Fatalf("problems: got %v", s.Problems)
	}
	if got := s.Experiments("other"); got != nil {
		t.Errorf("draft in snapshot: %v", got)
	}

	bucketed := func(unit string) string {
		x, err := Explain(e, unit)
		if err != nil {
			t.Fatal(err)
		}
		return x.Variant
	}
	tests := []struct {
		name        string
		route       string
		unit        Unit
		wantIn      bool
		wantVariant string
		wantReason  string
	}{
		{"no experiment", "nope", Unit{ID: "u1"}, false, "", ReasonNoExperiment},
		{"missing unit", "r", Unit{}, false, "", ReasonMissingUnit},
		{"bucketed", "r", Unit{ID: "u1"}, true, bucketed("u1"), ReasonInExperiment},
		{"allow-list", "r", Unit{ID: "qa-1"}, true, "treatment", ReasonAllowList},
		{"allow-list to shadow ignored", "r", Unit{ID: "qa-2"}, true, bucketed("qa-2"), ReasonInExperiment},
		{"forced by editor", "r", Unit{ID: "u1", Editor: true, Forced: map[string]string{"exp": flip(bucketed("u1"))}}, true, flip(bucketed("u1")), ReasonForced},
		{"forced without editor", "r", Unit{ID: "u1", Forced: map[string]string{"exp": flip(bucketed("u1"))}}, true, bucketed("u1"), ReasonInExperiment},
		{"forced unknown variant", "r", Unit{ID: "u1", Editor: true, Forced: map[string]string{"exp": "zzz"}}, true, bucketed("u1"), ReasonInExperiment},
		{"forced shadow", "r", Unit{ID: "u1", Editor: true, Forced: map[string]string{"exp": "shadow"}}, true, bucketed("u1"), ReasonInExperiment},
		{"forced beats allow-list", "r", Unit{ID: "qa-1", Editor: true, Forced: map[string]string{"exp": "control"}}, true, "control", ReasonForced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(tt.route, tt.unit)
			if got, want := d.InExperiment, tt.wantIn; got != want {
				t.Errorf("InExperiment: got %v, want %v", got, want)
			}
			if got, want := d.VariantKey, tt.wantVariant; got != want {
				t.Errorf("VariantKey: got %q, want %q", got, want)
			}
			if got, want := d.Reason, tt.wantReason; got != want {
				t.Errorf("Reason: got %q, want %q", got, want)
			}
			if got, want := d.ConfigVersion, int64(7); got != want {
				t.Errorf("ConfigVersion: got %d, want %d", got, want)
			}
			if d.InExperiment {
				if got, want := d.VariantID, testIDs("exp", d.VariantKey); got != want {
					t.Errorf("VariantID: got %d, want %d", got, want)
				}
				if got, want := d.ExperimentID, testIDs("exp", ""); got != want {
					t.Errorf("ExperimentID: got %d, want %d", got, want)
				}
				if got, want := d.Control, d.VariantKey == "control"; got != want {
					t.Errorf("Control: got %v, want %v", got, want)
				}
				if got, want := d.Model, map[string]string{"control": "m1", "treatment": "m2"}[d.VariantKey]; got != want {
					t.Errorf("Model: got %q, want %q", got, want)
				}
			}
			if tt.route == "r" {
				if got, want := len(d.Shadows), 1; got != want {
					t.Fatalf("Shadows: got %d, want %d", got, want)
				}
				if got, want := d.Shadows[0].Key, "shadow"; got != want {
					t.Errorf("shadow: got %q, want %q", got, want)
				}
			}
		})
	}
}

func flip(v string) string {
	if v == "control" {
		return "treatment"
	}
	return "control"
}

func testDraft(key, route string) *experiments.Experiment {
	e := testExperiment(key, route)
	e.Status = experiments.StatusDraft
	return e
}

func TestDecideLayerExclusivity(t *testing.T) {
	a := testExperiment("a", "r")
	a.Layer, a.LayerRange = "l", [2]float64{0, 0.4}
	b := testExperiment("b", "r")
	b.Layer, b.LayerRange = "l", [2]float64{0.4, 0.7}
	s := NewSnapshot(1, []*experiments.Experiment{a, b}, testIDs)
	counts := map[string]int{}
	for i := range 20000 {
		unit := "user-" + strconv.Itoa(i)
		d := s.Decide("r", Unit{ID: unit})
		counts[d.ExperimentKey+"/"+d.Reason]++
		xa, _ := Explain(a, unit)
		xb, _ := Explain(b, unit)
		if xa.InExperiment && xb.InExperiment {
			t.Fatalf("unit %s in both experiments", unit)
		}
		want := ""
		switch {
		case xa.InExperiment:
			want = "a/" + xa.Variant
		case xb.InExperiment:
			want = "b/" + xb.Variant
		}
		got := ""
		if d.InExperiment {
			got = d.ExperimentKey + "/" + d.VariantKey
		}
		if got != want {
			t.Fatalf("unit %s: Decide %q, Explain %q", unit, got, want)
		}
	}
	share := func(k string) float64 { return float64(counts[k]) / 20000 }
	for _, c := range []struct {
		key  string
		want float64
	}{
		{"a/" + ReasonInExperiment, 0.4},
		{"b/" + ReasonInExperiment, 0.3},
		{"/" + ReasonNotInLayer, 0.3},
	} {
		if got := share(c.key); math.Abs(got-c.want) > 0.02 {
			t.Errorf("share %s: got %.3f, want %.2f ± 0.02 (%v)", c.key, got, c.want, counts)
		}
	}
}

func TestDecideTargeting(t *testing.T) {
	e := testExperiment("exp", "r")
	e.Targeting = []experiments.Condition{
		{Source: "header", Name: "X-Country", Op: "in", Values: []string{"DE", "AT"}},
		{Source: "body", Name: "parameters.tier", Op: "equals", Value: "gold"},
	}
	s := NewSnapshot(1, []*experiments.Experiment{e}, testIDs)
	de := http.Header{"X-Country": {"DE"}}
	fr := http.Header{"X-Country": {"FR"}}
	gold := func() map[string]any { return map[string]any{"parameters": map[string]any{"tier": "gold"}} }
	tests := []struct {
		name       string
		unit       Unit
		wantIn     bool
		wantReason string
	}{
		{"both hold", Unit{ID: "u1", Headers: de, Body: gold}, true, ReasonInExperiment},
		{"wrong country", Unit{ID: "u1", Headers: fr, Body: gold}, false, ReasonNotTargeted},
		{"no body", Unit{ID: "u1", Headers: de}, false, ReasonNotTargeted},
		{"no headers", Unit{ID: "u1", Body: gold}, false, ReasonNotTargeted},
		{"forced bypasses targeting", Unit{ID: "u1", Headers: fr, Editor: true, Forced: map[string]string{"exp": "control"}}, true, ReasonForced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide("r", tt.unit)
			if got, want := d.InExperiment, tt.wantIn; got != want {
				t.Errorf("InExperiment: got %v, want %v", got, want)
			}
			if got, want := d.Reason, tt.wantReason; got != want {
				t.Errorf("Reason: got %q, want %q", got, want)
			}
			if got, want := d.ExperimentKey, "exp"; got != want {
				t.Errorf("ExperimentKey: got %q, want %q", got, want)
			}
		})
	}
}

func TestDecideCoverage(t *testing.T) {
	e := testExperiment("exp", "r")
	e.Coverage = 0.5
	s := NewSnapshot(1, []*experiments.Experiment{e}, testIDs)
	in := 0
	for i := range 10000 {
		d := s.Decide("r", Unit{ID: strconv.Itoa(i)})
		if d.InExperiment {
			in++
		} else if got, want := d.Reason, ReasonOutsideCoverage; got != want {
			t.Fatalf("Reason: got %q, want %q", got, want)
		}
	}
	if got := float64(in) / 10000; math.Abs(got-0.5) > 0.02 {
		t.Errorf("in experiment: got %.3f, want 0.5 ± 0.02", got)
	}
}

func TestShadowMirror(t *testing.T) {
	s := NewSnapshot(1, []*experiments.Experiment{testExperiment("exp", "r")}, testIDs)
	sh := s.Shadows("r")[0]
	n := 0
	for i := range 10000 {
		if sh.Mirror(strconv.Itoa(i)) {
			n++
		}
	}
	if got := float64(n) / 10000; math.Abs(got-0.5) > 0.02 {
		t.Errorf("mirrored share: got %.3f, want 0.5 ± 0.02", got)
	}
	if got, want := sh.Mirror(""), false; got != want {
		t.Errorf("Mirror(\"\"): got %v, want %v", got, want)
	}
	control := &s.Experiment("exp").Variants[0]
	if got, want := control.Mirror("u1"), false; got != want {
		t.Errorf("Mirror of a non-shadow: got %v, want %v", got, want)
	}
}

func TestExplain(t *testing.T) {
	draft := testDraft("exp", "r")
	draft.Layer, draft.LayerRange = "l", [2]float64{0, 0.5}
	draft.AllowList = map[string]string{"qa": "treatment"}
	tests := []struct {
		unit       string
		wantReason string
	}{
		{"", ReasonMissingUnit},
		{"qa", ReasonAllowList},
	}
	for _, tt := range tests {
		t.Run("unit "+tt.unit, func(t *testing.T) {
			x, err := Explain(draft, tt.unit)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := x.Reason, tt.wantReason; got != want {
				t.Errorf("Reason: got %q, want %q", got, want)
			}
		})
	}
	reasons := map[string]int{}
	for i := range 2000 {
		x, err := Explain(draft, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		reasons[x.Reason]++
		if x.LayerBucket == nil || x.LayerRange == nil {
			t.Fatalf("no layer bucket or range: %+v", x)
		}
		if x.InExperiment != (x.Range != nil) {
			t.Fatalf("range %v with in_experiment %v", x.Range, x.InExperiment)
		}
		if x.InExperiment && !(x.Bucket >= x.Range[0] && x.Bucket < x.Range[1]) {
			t.Fatalf("bucket %v outside range %v", x.Bucket, *x.Range)
		}
	}
	if reasons[ReasonInExperiment] == 0 || reasons[ReasonNotInLayer] == 0 {
		t.Errorf("reasons: got %v, want both in_experiment and not_in_layer", reasons)
	}

	bad := testDraft("bad", "r")
	bad.Variants[0].Weight, bad.Variants[2].Weight = 0, 0
	if _, err := Explain(bad, "u1"); err == nil {
		t.Error("Explain of zero weights: got nil error")
	}
}

func TestDecideAllocs(t *testing.T) {
	a := testExperiment("a", "r")
	a.Layer, a.LayerRange = "l", [2]float64{0, 0.5}
	a.Targeting = []experiments.Condition{{Source: "header", Name: "X-Country", Op: "regex", Value: "^(DE|AT)$"}}
	b := testExperiment("b", "r")
	b.Layer, b.LayerRange = "l", [2]float64{0.5, 1}
	asg := NewAssigner(NewSnapshot(1, []*experiments.Experiment{a, b}, testIDs))
	u := Unit{ID: "user-12345", Headers: http.Header{"X-Country": {"DE"}}}
	allocs := testing.AllocsPerRun(1000, func() { _ = asg.Decide("r", u) })
	if allocs != 0 {
		t.Errorf("Decide allocates %v times, want 0", allocs)
	}
}

func BenchmarkDecide(b *testing.B) {
	a := testExperiment("a", "r")
	a.Layer, a.LayerRange = "l", [2]float64{0, 0.5}
	a.Targeting = []experiments.Condition{{Source: "header", Name: "X-Country", Op: "in", Values: []string{"DE", "AT"}}}
	e2 := testExperiment("b", "r")
	e2.Layer, e2.LayerRange = "l", [2]float64{0.5, 1}
	asg := NewAssigner(NewSnapshot(1, []*experiments.Experiment{a, e2}, testIDs))
	units := make([]Unit, 1024)
	for i := range units {
		units[i] = Unit{ID: "user-" + strconv.Itoa(i), Headers: http.Header{"X-Country": {"DE"}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = asg.Decide("r", units[i%len(units)])
	}
}
