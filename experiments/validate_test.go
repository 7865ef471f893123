package experiments

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"abgate"
)

// knownModels is the ModelChecker of the pure tests: m1, m2 and m3 exist.
func knownModels(name string) bool { return name == "m1" || name == "m2" || name == "m3" }

// validDefinition returns a definition that Validate accepts with
// knownModels; each test case breaks one rule of it.
func validDefinition() Definition {
	return Definition{
		Key:   "exp-1",
		Name:  "Experiment one",
		Route: "classifier",
		Variants: []Variant{
			{Key: "v1", Model: "m1", Weight: 1, Control: true},
			{Key: "v2", Model: "m2", Weight: 1},
		},
		Metrics: []Metric{
			{Key: "conversion", Type: MetricBinomial, Role: RolePrimary},
			{Key: "latency", Type: MetricLatency, Role: RoleGuardrail},
		},
		Targeting: []Condition{{Source: "header", Name: "X-Country", Op: OpIn, Values: []string{"fr", "de"}}},
		AllowList: map[string]string{"qa-user": "v2"},
	}
}

func ptr[T any](v T) *T { return &v }

// assertErr fails t unless err has code and field.
func assertErr(t *testing.T, err error, code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %s field %q", code, field)
	}
	var e *abgate.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want an *abgate.Error", err, err)
	}
	if got, want := abgate.ErrorCode(err), code; got != want {
		t.Errorf("code: got %q, want %q (%v)", got, want, err)
	}
	if got, want := abgate.ErrorField(err), field; got != want {
		t.Errorf("field: got %q, want %q (%v)", got, want, err)
	}
	if abgate.ErrorMessage(err) == "" {
		t.Errorf("error %v has no message", err)
	}
}

// defineAndValidate runs the path of a create: Experiment, then Validate.
func defineAndValidate(d Definition, hasModel ModelChecker) (*Experiment, error) {
	e, err := d.Experiment()
	if err != nil {
		return nil, err
	}
	return e, Validate(e, hasModel)
}

func TestValidateAcceptsValidDefinitions(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Definition)
	}{
		{"as is", func(d *Definition) {}},
		{"key of 64 characters", func(d *Definition) { d.Key = strings.Repeat("a", 64) }},
		{"key with digits, dash and underscore", func(d *Definition) { d.Key = "0a-b_c" }},
		{"20 variants", func(d *Definition) { d.Variants = manyVariants(20) }},
		{"control not first", func(d *Definition) {
			d.Variants[0].Control, d.Variants[1].Control = false, true
		}},
		{"coverage 0", func(d *Definition) { d.Coverage = ptr(0.0) }},
		{"coverage 1", func(d *Definition) { d.Coverage = ptr(1.0) }},
		{"hash_version 1", func(d *Definition) { d.HashVersion = ptr(1) }},
		{"layer with default range", func(d *Definition) { d.Layer = "layer-a" }},
		{"layer with a range", func(d *Definition) { d.Layer = "layer-a"; d.LayerRange = []float64{0, 0.5} }},
		{"shadow variant with weight 0", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: 100})
		}},
		{"every targeting op", func(d *Definition) {
			d.Targeting = []Condition{
				{Source: "header", Name: "a", Op: OpEquals, Value: "x"},
				{Source: "header", Name: "a", Op: OpEquals}, // equals "" is a rule too
				{Source: "body", Name: "p.c", Op: OpNotEquals, Value: "x"},
				{Source: "body", Name: "p.c", Op: OpIn, Values: []string{"x"}},
				{Source: "body", Name: "p.c", Op: OpNotIn, Values: []string{"x", "y"}},
				{Source: "header", Name: "ua", Op: OpRegex, Value: `^Mozilla/\d+`},
				{Source: "body", Name: "age", Op: OpRange, Min: ptr(18.0)},
				{Source: "body", Name: "age", Op: OpRange, Max: ptr(65.0)},
				{Source: "body", Name: "age", Op: OpRange, Min: ptr(3.0), Max: ptr(3.0)},
			}
		}},
		{"every metric type", func(d *Definition) {
			d.Metrics = []Metric{
				{Key: "a", Type: MetricBinomial},
				{Key: "b", Type: MetricContinuous, Role: RoleSecondary, Direction: DirectionDecrease, WindowHours: 24, LookbackHours: 168},
				{Key: "c", Type: MetricAccuracy, Role: RoleGuardrail},
				{Key: "d", Type: MetricErrorRate},
				{Key: "e", Type: MetricLatency},
			}
		}},
		{"no metrics, targeting or allow list", func(d *Definition) { d.Metrics, d.Targeting, d.AllowList = nil, nil, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDefinition()
			tt.mutate(&d)
			if _, err := defineAndValidate(d, knownModels); err != nil {
				t.Fatalf("got %v, want no error", err)
			}
		})
	}
}

func manyVariants(n int) []Variant {
	vs := make([]Variant, n)
	for i := range vs {
		vs[i] = Variant{Key: fmt.Sprintf("v%d", i), Model: "m1", Weight: 1, Control: i == 0}
	}
	return vs
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Definition)
		field  string
	}{
		// Key, name, description, route.
		{"empty key", func(d *Definition) { d.Key = "" }, "key"},
		{"upper-case key", func(d *Definition) { d.Key = "Exp" }, "key"},
		{"key starting with a dash", func(d *Definition) { d.Key = "-exp" }, "key"},
		{"key with a space", func(d *Definition) { d.Key = "my exp" }, "key"},
		{"key with a slash", func(d *Definition) { d.Key = "a/b" }, "key"},
		{"key of 65 characters", func(d *Definition) { d.Key = strings.Repeat("a", 65) }, "key"},
		{"key with a trailing newline", func(d *Definition) { d.Key = "exp\n" }, "key"},
		{"name of 201 characters", func(d *Definition) { d.Name = strings.Repeat("é", 201) }, "name"},
		{"name not UTF-8", func(d *Definition) { d.Name = "a\xff" }, "name"},
		{"description not UTF-8", func(d *Definition) { d.Description = "a\xff" }, "description"},
		{"description of 4001 characters", func(d *Definition) { d.Description = strings.Repeat("d", 4001) }, "description"},
		{"no route", func(d *Definition) { d.Route = "" }, "route"},
		{"route with a slash", func(d *Definition) { d.Route = "a/b" }, "route"},
		{"route starting with a dot", func(d *Definition) { d.Route = ".a" }, "route"},

		// Hashing and coverage.
		{"empty hash_seed", func(d *Definition) { d.HashSeed = ptr("") }, "hash_seed"},
		{"hash_seed of 257 bytes", func(d *Definition) { d.HashSeed = ptr(strings.Repeat("s", 257)) }, "hash_seed"},
		{"hash_version 3", func(d *Definition) { d.HashVersion = ptr(3) }, "hash_version"},
		{"hash_version 0", func(d *Definition) { d.HashVersion = ptr(0) }, "hash_version"},
		{"coverage below 0", func(d *Definition) { d.Coverage = ptr(-0.01) }, "coverage"},
		{"coverage above 1", func(d *Definition) { d.Coverage = ptr(1.01) }, "coverage"},
		{"coverage NaN", func(d *Definition) { d.Coverage = ptr(math.NaN()) }, "coverage"},

		// Layers.
		{"layer_range without layer", func(d *Definition) { d.LayerRange = []float64{0, 0.5} }, "layer_range"},
		{"layer_range of 1 number", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0.5} }, "layer_range"},
		{"layer_range of 3 numbers", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0, 0.5, 1} }, "layer_range"},
		{"empty layer_range", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{} }, "layer_range"},
		{"layer_range empty interval", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0.5, 0.5} }, "layer_range"},
		{"layer_range reversed", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0.6, 0.4} }, "layer_range"},
		{"layer_range below 0", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{-0.1, 0.5} }, "layer_range"},
		{"layer_range above 1", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0.5, 1.1} }, "layer_range"},
		{"layer_range NaN", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{math.NaN(), 0.5} }, "layer_range"},
		{"bad layer key", func(d *Definition) { d.Layer = "Layer A" }, "layer"},

		// Variants.
		{"no variants", func(d *Definition) { d.Variants = nil }, "variants"},
		{"1 variant", func(d *Definition) { d.Variants = d.Variants[:1] }, "variants"},
		{"21 variants", func(d *Definition) { d.Variants = manyVariants(21) }, "variants"},
		{"bad variant key", func(d *Definition) { d.Variants[1].Key = "V2" }, "variants[1].key"},
		{"empty variant key", func(d *Definition) { d.Variants[0].Key = "" }, "variants[0].key"},
		{"duplicate variant key", func(d *Definition) { d.Variants[1].Key = "v1" }, "variants[1].key"},
		{"duplicate variant key later", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "v2", Model: "m3", Weight: 1})
		}, "variants[2].key"},
		{"variant name of 201 characters", func(d *Definition) { d.Variants[0].Name = strings.Repeat("n", 201) }, "variants[0].name"},
		{"variant name not UTF-8", func(d *Definition) { d.Variants[1].Name = "\xfe" }, "variants[1].name"},
		{"no model", func(d *Definition) { d.Variants[1].Model = "" }, "variants[1].model"},
		{"bad model name", func(d *Definition) { d.Variants[1].Model = "m 2" }, "variants[1].model"},
		{"unknown model", func(d *Definition) { d.Variants[1].Model = "m9" }, "variants[1].model"},
		{"no control", func(d *Definition) { d.Variants[0].Control = false }, "variants"},
		{"two controls", func(d *Definition) { d.Variants[1].Control = true }, "variants[1].control"},
		{"three controls", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "v3", Model: "m3", Weight: 1, Control: true})
			d.Variants[1].Control = false
		}, "variants[2].control"},
		{"zero weight", func(d *Definition) { d.Variants[1].Weight = 0 }, "variants[1].weight"},
		{"zero weight of the control", func(d *Definition) { d.Variants[0].Weight = 0 }, "variants[0].weight"},
		{"negative weight", func(d *Definition) { d.Variants[0].Weight = -1 }, "variants[0].weight"},
		{"infinite weight", func(d *Definition) { d.Variants[1].Weight = math.Inf(1) }, "variants[1].weight"},
		{"NaN weight", func(d *Definition) { d.Variants[1].Weight = math.NaN() }, "variants[1].weight"},

		// Shadows.
		{"shadow control", func(d *Definition) {
			d.Variants[0].Shadow, d.Variants[0].ShadowPercent, d.Variants[0].Weight = true, 10, 0
		}, "variants[0].shadow"},
		{"shadow without shadow_percent", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true})
		}, "variants[2].shadow_percent"},
		{"shadow_percent above 100", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: 100.5})
		}, "variants[2].shadow_percent"},
		{"negative shadow_percent", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: -5})
		}, "variants[2].shadow_percent"},
		{"shadow with a negative weight", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: 5, Weight: -1})
		}, "variants[2].weight"},
		{"shadow with a weight", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: 5, Weight: 1})
		}, "variants[2].weight"},
		{"shadow_percent without shadow", func(d *Definition) { d.Variants[1].ShadowPercent = 10 }, "variants[1].shadow_percent"},
		{"shadow with an unknown model", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m9", Shadow: true, ShadowPercent: 5})
		}, "variants[2].model"},

		// Metrics.
		{"51 metrics", func(d *Definition) {
			d.Metrics = make([]Metric, 51)
			for i := range d.Metrics {
				d.Metrics[i] = Metric{Key: fmt.Sprintf("m%d", i), Type: MetricBinomial}
			}
		}, "metrics"},
		{"bad metric key", func(d *Definition) { d.Metrics[1].Key = "Latency" }, "metrics[1].key"},
		{"duplicate metric key", func(d *Definition) { d.Metrics[1].Key = "conversion" }, "metrics[1].key"},
		{"unknown metric type", func(d *Definition) { d.Metrics[0].Type = "ratio" }, "metrics[0].type"},
		{"no metric type", func(d *Definition) { d.Metrics[0].Type = "" }, "metrics[0].type"},
		{"unknown metric role", func(d *Definition) { d.Metrics[1].Role = "tertiary" }, "metrics[1].role"},
		{"unknown metric direction", func(d *Definition) { d.Metrics[0].Direction = "up" }, "metrics[0].direction"},
		{"negative window_hours", func(d *Definition) { d.Metrics[0].WindowHours = -1 }, "metrics[0].window_hours"},
		{"infinite window_hours", func(d *Definition) { d.Metrics[0].WindowHours = math.Inf(1) }, "metrics[0].window_hours"},
		{"negative lookback_hours", func(d *Definition) { d.Metrics[1].LookbackHours = -0.5 }, "metrics[1].lookback_hours"},

		// Targeting.
		{"21 conditions", func(d *Definition) {
			d.Targeting = slices.Repeat([]Condition{{Source: "header", Name: "a", Op: OpEquals, Value: "b"}}, 21)
		}, "targeting"},
		{"unknown source", func(d *Definition) { d.Targeting[0].Source = "cookie" }, "targeting[0].source"},
		{"no condition name", func(d *Definition) { d.Targeting[0].Name = "" }, "targeting[0].name"},
		{"condition name of 257 bytes", func(d *Definition) { d.Targeting[0].Name = strings.Repeat("h", 257) }, "targeting[0].name"},
		{"unknown op", func(d *Definition) { d.Targeting[0].Op = "contains" }, "targeting[0].op"},
		{"no op", func(d *Definition) { d.Targeting[0].Op = "" }, "targeting[0].op"},
		{"1001 values", func(d *Definition) { d.Targeting[0].Values = make([]string, 1001) }, "targeting[0].values"},
		{"empty in-list", func(d *Definition) { d.Targeting[0].Values = []string{} }, "targeting[0].values"},
		{"empty not_in-list", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpNotIn}}
		}, "targeting[0].values"},
		{"in with a value", func(d *Definition) { d.Targeting[0].Value = "fr" }, "targeting[0].values"},
		{"in with a min", func(d *Definition) { d.Targeting[0].Min = ptr(1.0) }, "targeting[0].values"},
		{"equals with values", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpEquals, Value: "x", Values: []string{"y"}}}
		}, "targeting[0].value"},
		{"not_equals with a max", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpNotEquals, Max: ptr(1.0)}}
		}, "targeting[0].value"},
		{"bad regex", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpRegex, Value: "(unclosed"}}
		}, "targeting[0].value"},
		{"regex of 1025 bytes", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpRegex, Value: strings.Repeat("a", 1025)}}
		}, "targeting[0].value"},
		{"regex with values", func(d *Definition) {
			d.Targeting = []Condition{{Source: "header", Name: "a", Op: OpRegex, Value: "a", Values: []string{"b"}}}
		}, "targeting[0].value"},
		{"range without bounds", func(d *Definition) {
			d.Targeting = []Condition{{Source: "body", Name: "age", Op: OpRange}}
		}, "targeting[0].min"},
		{"range with a value", func(d *Definition) {
			d.Targeting = []Condition{{Source: "body", Name: "age", Op: OpRange, Min: ptr(1.0), Value: "2"}}
		}, "targeting[0].min"},
		{"range min above max", func(d *Definition) {
			d.Targeting = []Condition{{Source: "body", Name: "age", Op: OpRange, Min: ptr(65.0), Max: ptr(18.0)}}
		}, "targeting[0].max"},
		{"second condition bad", func(d *Definition) {
			d.Targeting = append(d.Targeting, Condition{Source: "header", Name: "a", Op: "like"})
		}, "targeting[1].op"},

		// Allow list.
		{"allow-list to an unknown variant", func(d *Definition) { d.AllowList = map[string]string{"u1": "v9"} }, "allow_list.u1"},
		{"allow-list to a shadow", func(d *Definition) {
			d.Variants = append(d.Variants, Variant{Key: "s", Model: "m3", Shadow: true, ShadowPercent: 5})
			d.AllowList = map[string]string{"u1": "s"}
		}, "allow_list.u1"},
		{"allow-list with an empty unit", func(d *Definition) { d.AllowList = map[string]string{"": "v1"} }, "allow_list"},
		{"allow-list unit of 257 bytes", func(d *Definition) {
			d.AllowList = map[string]string{strings.Repeat("u", 257): "v1"}
		}, "allow_list"},
		{"allow-list of 1001 units", func(d *Definition) {
			d.AllowList = map[string]string{}
			for i := range 1001 {
				d.AllowList[fmt.Sprint(i)] = "v1"
			}
		}, "allow_list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDefinition()
			tt.mutate(&d)
			_, err := defineAndValidate(d, knownModels)
			assertErr(t, err, abgate.EINVALID, tt.field)
		})
	}
}

func TestValidateLayerRangeWithoutLayerOnExperiment(t *testing.T) {
	// Definition.Experiment rejects it first; Validate must reject it too,
	// for experiments built otherwise (patches, rows).
	e, err := validDefinition().Experiment()
	if err != nil {
		t.Fatal(err)
	}
	e.LayerRange = [2]float64{0, 0.5}
	assertErr(t, Validate(e, knownModels), abgate.EINVALID, "layer_range")
}

func TestValidateNilModelCheckerSkipsModels(t *testing.T) {
	d := validDefinition()
	d.Variants[1].Model = "not-registered"
	if _, err := defineAndValidate(d, nil); err != nil {
		t.Errorf("with a nil ModelChecker: got %v, want no error", err)
	}
	_, err := defineAndValidate(d, knownModels)
	assertErr(t, err, abgate.EINVALID, "variants[1].model")
}

func TestDefinitionExperimentDefaults(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Definition)
		check  func(t *testing.T, e *Experiment)
	}{
		{"name defaults to key", func(d *Definition) { d.Name = "" }, func(t *testing.T, e *Experiment) {
			if got, want := e.Name, "exp-1"; got != want {
				t.Errorf("name: got %q, want %q", got, want)
			}
		}},
		{"hashing defaults", func(d *Definition) {}, func(t *testing.T, e *Experiment) {
			if got, want := e.HashSeed, "exp-1"; got != want {
				t.Errorf("hash_seed: got %q, want %q", got, want)
			}
			if got, want := e.HashVersion, 2; got != want {
				t.Errorf("hash_version: got %d, want %d", got, want)
			}
		}},
		{"explicit hashing", func(d *Definition) { d.HashSeed = ptr("salt"); d.HashVersion = ptr(1) }, func(t *testing.T, e *Experiment) {
			if got, want := e.HashSeed, "salt"; got != want {
				t.Errorf("hash_seed: got %q, want %q", got, want)
			}
			if got, want := e.HashVersion, 1; got != want {
				t.Errorf("hash_version: got %d, want %d", got, want)
			}
		}},
		{"coverage defaults to 1", func(d *Definition) {}, func(t *testing.T, e *Experiment) {
			if got, want := e.Coverage, 1.0; got != want {
				t.Errorf("coverage: got %v, want %v", got, want)
			}
		}},
		{"explicit coverage 0", func(d *Definition) { d.Coverage = ptr(0.0) }, func(t *testing.T, e *Experiment) {
			if got, want := e.Coverage, 0.0; got != want {
				t.Errorf("coverage: got %v, want %v", got, want)
			}
		}},
		{"layer range defaults to [0, 1]", func(d *Definition) { d.Layer = "l" }, func(t *testing.T, e *Experiment) {
			if got, want := e.LayerRange, [2]float64{0, 1}; got != want {
				t.Errorf("layer_range: got %v, want %v", got, want)
			}
		}},
		{"explicit layer range", func(d *Definition) { d.Layer = "l"; d.LayerRange = []float64{0.25, 0.75} }, func(t *testing.T, e *Experiment) {
			if got, want := e.LayerRange, [2]float64{0.25, 0.75}; got != want {
				t.Errorf("layer_range: got %v, want %v", got, want)
			}
		}},
		{"status draft, version 1", func(d *Definition) {}, func(t *testing.T, e *Experiment) {
			if got, want := e.Status, StatusDraft; got != want {
				t.Errorf("status: got %q, want %q", got, want)
			}
			if got, want := e.Version, int64(1); got != want {
				t.Errorf("version: got %d, want %d", got, want)
			}
		}},
		{"metric defaults", func(d *Definition) {
			d.Metrics = []Metric{
				{Key: "a", Type: MetricBinomial},
				{Key: "b", Type: MetricErrorRate},
				{Key: "c", Type: MetricLatency},
				{Key: "d", Type: MetricLatency, Direction: DirectionIncrease, Role: RoleSecondary},
			}
		}, func(t *testing.T, e *Experiment) {
			want := []Metric{
				{Key: "a", Type: MetricBinomial, Role: RolePrimary, Direction: DirectionIncrease},
				{Key: "b", Type: MetricErrorRate, Role: RolePrimary, Direction: DirectionDecrease},
				{Key: "c", Type: MetricLatency, Role: RolePrimary, Direction: DirectionDecrease},
				{Key: "d", Type: MetricLatency, Role: RoleSecondary, Direction: DirectionIncrease},
			}
			if got := e.Metrics; !reflect.DeepEqual(got, want) {
				t.Errorf("metrics:\n got %+v\nwant %+v", got, want)
			}
		}},
		{"nil lists become empty", func(d *Definition) { d.Metrics, d.Targeting, d.AllowList = nil, nil, nil }, func(t *testing.T, e *Experiment) {
			b, err := json.Marshal(struct {
				M []Metric          `json:"metrics"`
				T []Condition       `json:"targeting"`
				A map[string]string `json:"allow_list"`
			}{e.Metrics, e.Targeting, e.AllowList})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), `{"metrics":[],"targeting":[],"allow_list":{}}`; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDefinition()
			tt.mutate(&d)
			e, err := defineAndValidate(d, knownModels)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			tt.check(t, e)
		})
	}
}

func TestDefinitionExperimentCopies(t *testing.T) {
	d := validDefinition()
	e, err := d.Experiment()
	if err != nil {
		t.Fatal(err)
	}
	e.Variants[0].Weight = 99
	e.AllowList["x"] = "v1"
	if got, want := d.Variants[0].Weight, 1.0; got != want {
		t.Errorf("definition's variant weight: got %v, want %v (Experiment must not alias it)", got, want)
	}
	if _, ok := d.AllowList["x"]; ok {
		t.Errorf("definition's allow list got the experiment's entry (Experiment must not alias it)")
	}
}

func TestStatusNext(t *testing.T) {
	statuses := []Status{StatusDraft, StatusRunning, StatusPaused, StatusStopped, StatusArchived}
	actions := []Action{ActionStart, ActionPause, ActionStop, ActionArchive, Action("resume")}
	// legal maps "status/action" to the next status; every other pair is
	// illegal.
	legal := map[string]Status{
		"draft/start":     StatusRunning,
		"draft/archive":   StatusArchived,
		"running/pause":   StatusPaused,
		"running/stop":    StatusStopped,
		"running/archive": StatusArchived,
		"paused/start":    StatusRunning,
		"paused/stop":     StatusStopped,
		"paused/archive":  StatusArchived,
		"stopped/archive": StatusArchived,
	}
	for _, s := range statuses {
		for _, a := range actions {
			name := string(s) + "/" + string(a)
			t.Run(name, func(t *testing.T) {
				want, wantOK := legal[name]
				got, ok := s.Next(a)
				if got != want || ok != wantOK {
					t.Errorf("%s.Next(%s): got (%q, %v), want (%q, %v)", s, a, got, ok, want, wantOK)
				}
			})
		}
	}
}

func TestStatusLive(t *testing.T) {
	tests := []struct {
		status Status
		want   bool
	}{
		{StatusDraft, false}, {StatusRunning, true}, {StatusPaused, true}, {StatusStopped, false}, {StatusArchived, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			if got := tt.status.Live(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// runningExperiment returns a valid running experiment with three
// variants v1 (control), v2 and v3.
func runningExperiment(t testing.TB) *Experiment {
	t.Helper()
	d := validDefinition()
	d.Variants = append(d.Variants, Variant{Key: "v3", Model: "m3", Weight: 2})
	d.Layer = "layer-a"
	d.LayerRange = []float64{0, 0.5}
	e, err := defineAndValidate(d, knownModels)
	if err != nil {
		t.Fatal(err)
	}
	e.Status = StatusRunning
	return e
}

func variantKeys(vs []Variant) []string {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = v.Key
	}
	return keys
}

func TestPatchApplyRunningConflicts(t *testing.T) {
	tests := []struct {
		name  string
		patch Patch
		field string
	}{
		{"removing a variant", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2"}}}, "variants"},
		{"removing every variant", Patch{Variants: []VariantPatch{}}, "variants"},
		{"adding a variant", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2"}, {Key: "v3"}, {Key: "v4", Model: ptr("m1"), Weight: ptr(1.0)}}}, "variants[3].key"},
		{"replacing a variant", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2"}, {Key: "v9"}}}, "variants[2].key"},
		{"changing a model", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2", Model: ptr("m3")}, {Key: "v3"}}}, "variants[1].model"},
		{"moving the control", Patch{Variants: []VariantPatch{{Key: "v1", Control: ptr(false)}, {Key: "v2", Control: ptr(true)}, {Key: "v3"}}}, "variants[0].control"},
		{"making a variant a shadow", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2"}, {Key: "v3", Shadow: ptr(true), ShadowPercent: ptr(5.0)}}}, "variants[2].shadow"},
		{"changing the route", Patch{Route: ptr("other")}, "route"},
		{"changing the hash seed", Patch{HashSeed: ptr("salt")}, "hash_seed"},
		{"changing the hash version", Patch{HashVersion: ptr(1)}, "hash_version"},
		{"changing the layer", Patch{Layer: ptr("layer-b")}, "layer"},
		{"leaving the layer", Patch{Layer: ptr("")}, "layer"},
		{"changing the layer range", Patch{LayerRange: []float64{0.5, 1}}, "layer_range"},
	}
	for _, status := range []Status{StatusRunning, StatusPaused, StatusStopped} {
		for _, tt := range tests {
			t.Run(string(status)+"/"+tt.name, func(t *testing.T) {
				e := runningExperiment(t)
				e.Status = status
				before := clone(e)
				_, err := tt.patch.Apply(e)
				assertErr(t, err, abgate.ECONFLICT, tt.field)
				if !reflect.DeepEqual(e, before) {
					t.Errorf("Apply changed its input:\n got %+v\nwant %+v", e, before)
				}
			})
		}
	}
}

func TestPatchApplyRunningAllowed(t *testing.T) {
	tests := []struct {
		name  string
		patch Patch
		check func(t *testing.T, got *Experiment)
	}{
		{"weight change", Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2", Weight: ptr(3.0)}, {Key: "v3"}}}, func(t *testing.T, got *Experiment) {
			if got, want := got.Variants[1].Weight, 3.0; got != want {
				t.Errorf("v2 weight: got %v, want %v", got, want)
			}
			if got, want := got.Variants[2].Weight, 2.0; got != want {
				t.Errorf("v3 weight: got %v, want %v (unchanged)", got, want)
			}
		}},
		{"variant order kept", Patch{Variants: []VariantPatch{{Key: "v3", Weight: ptr(5.0)}, {Key: "v1"}, {Key: "v2", Name: ptr("two")}}}, func(t *testing.T, got *Experiment) {
			if got, want := variantKeys(got.Variants), []string{"v1", "v2", "v3"}; !slices.Equal(got, want) {
				t.Errorf("variant order: got %v, want %v", got, want)
			}
			if got, want := got.Variants[2].Weight, 5.0; got != want {
				t.Errorf("v3 weight: got %v, want %v", got, want)
			}
			if got, want := got.Variants[1].Name, "two"; got != want {
				t.Errorf("v2 name: got %q, want %q", got, want)
			}
			if got, want := got.Variants[0].Model, "m1"; got != want {
				t.Errorf("v1 model: got %q, want %q", got, want)
			}
		}},
		{"coverage change", Patch{Coverage: ptr(0.25)}, func(t *testing.T, got *Experiment) {
			if got, want := got.Coverage, 0.25; got != want {
				t.Errorf("coverage: got %v, want %v", got, want)
			}
		}},
		{"unchanged locked fields", Patch{Route: ptr("classifier"), HashSeed: ptr("exp-1"), HashVersion: ptr(2), Layer: ptr("layer-a"), LayerRange: []float64{0, 0.5},
			Variants: []VariantPatch{{Key: "v1", Model: ptr("m1"), Control: ptr(true)}, {Key: "v2", Shadow: ptr(false)}, {Key: "v3"}}}, func(t *testing.T, got *Experiment) {
			if got, want := got.Route, "classifier"; got != want {
				t.Errorf("route: got %q, want %q", got, want)
			}
		}},
		{"metrics, targeting, allow list, name", Patch{
			Name:      ptr("renamed"),
			Metrics:   &[]Metric{{Key: "revenue", Type: MetricContinuous}},
			Targeting: &[]Condition{},
			AllowList: &map[string]string{"u": "v3"},
		}, func(t *testing.T, got *Experiment) {
			if got, want := got.Name, "renamed"; got != want {
				t.Errorf("name: got %q, want %q", got, want)
			}
			if got, want := got.Metrics, []Metric{{Key: "revenue", Type: MetricContinuous, Role: RolePrimary, Direction: DirectionIncrease}}; !reflect.DeepEqual(got, want) {
				t.Errorf("metrics: got %+v, want %+v (with defaults)", got, want)
			}
			if got := len(got.Targeting); got != 0 {
				t.Errorf("targeting: got %d conditions, want 0", got)
			}
			if got, want := got.AllowList, map[string]string{"u": "v3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("allow list: got %v, want %v", got, want)
			}
		}},
		{"empty patch", Patch{}, func(t *testing.T, got *Experiment) {
			want := runningExperiment(t)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := runningExperiment(t)
			before := clone(e)
			got, err := tt.patch.Apply(e)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if err := Validate(got, knownModels); err != nil {
				t.Errorf("patched experiment does not validate: %v", err)
			}
			if !reflect.DeepEqual(e, before) {
				t.Errorf("Apply changed its input")
			}
			tt.check(t, got)
		})
	}
}

func TestPatchApplyInvalid(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		patch  Patch
		code   string
		field  string
	}{
		{"duplicate variant in a running experiment", StatusRunning, Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v1"}, {Key: "v2"}, {Key: "v3"}}}, abgate.EINVALID, "variants[1].key"},
		{"duplicate variant in a draft", StatusDraft, Patch{Variants: []VariantPatch{{Key: "v1"}, {Key: "v2"}, {Key: "v2"}}}, abgate.EINVALID, "variants[2].key"},
		{"layer_range of 3 numbers", StatusDraft, Patch{LayerRange: []float64{0, 0.5, 1}}, abgate.EINVALID, "layer_range"},
		{"layer_range while leaving the layer", StatusDraft, Patch{Layer: ptr(""), LayerRange: []float64{0, 0.5}}, abgate.EINVALID, "layer_range"},
		{"archived", StatusArchived, Patch{Name: ptr("x")}, abgate.ECONFLICT, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := runningExperiment(t)
			e.Status = tt.status
			_, err := tt.patch.Apply(e)
			assertErr(t, err, tt.code, tt.field)
		})
	}
}

func TestPatchApplyDraft(t *testing.T) {
	tests := []struct {
		name  string
		patch Patch
		check func(t *testing.T, got *Experiment)
	}{
		{"variants replace the list", Patch{Variants: []VariantPatch{
			{Key: "v3"},
			{Key: "new", Model: ptr("m1"), Weight: ptr(4.0)},
			{Key: "v1", Control: ptr(false)},
		}}, func(t *testing.T, got *Experiment) {
			want := []Variant{
				{Key: "v3", Model: "m3", Weight: 2},
				{Key: "new", Model: "m1", Weight: 4},
				{Key: "v1", Model: "m1", Weight: 1},
			}
			if !reflect.DeepEqual(got.Variants, want) {
				t.Errorf("variants:\n got %+v\nwant %+v", got.Variants, want)
			}
		}},
		{"locked fields change", Patch{Route: ptr("other"), HashSeed: ptr("salt"), HashVersion: ptr(1), Layer: ptr("layer-b"), LayerRange: []float64{0.5, 1}}, func(t *testing.T, got *Experiment) {
			if got.Route != "other" || got.HashSeed != "salt" || got.HashVersion != 1 || got.Layer != "layer-b" || got.LayerRange != [2]float64{0.5, 1} {
				t.Errorf("got route %q seed %q version %d layer %q range %v, want other salt 1 layer-b [0.5 1]",
					got.Route, got.HashSeed, got.HashVersion, got.Layer, got.LayerRange)
			}
		}},
		{"leaving the layer resets the range", Patch{Layer: ptr("")}, func(t *testing.T, got *Experiment) {
			if got, want := got.LayerRange, [2]float64{0, 1}; got != want {
				t.Errorf("layer_range: got %v, want %v", got, want)
			}
			if err := Validate(got, knownModels); err != nil {
				t.Errorf("got %v, want a valid experiment", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := runningExperiment(t)
			e.Status = StatusDraft
			got, err := tt.patch.Apply(e)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			tt.check(t, got)
		})
	}
}

// asJSON returns v as generic JSON values, as the audit log sees it.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	got, _, err := plain(v)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDiff(t *testing.T) {
	base := func(t *testing.T) *Experiment { return runningExperiment(t) }
	tests := []struct {
		name   string
		change func(e *Experiment)
		want   []Change
	}{
		{"nothing", func(e *Experiment) {}, []Change{}},
		{"variant weight by key", func(e *Experiment) { e.Variants[1].Weight = 3 }, []Change{
			{Path: "variants.v2.weight", Before: 1.0, After: 3.0},
		}},
		{"version and updated_at ignored", func(e *Experiment) {
			e.Version++
			e.UpdatedAt = e.UpdatedAt.Add(3600e9)
		}, []Change{}},
		{"metric by key, sorted by path", func(e *Experiment) {
			e.Metrics[1].Role = RoleSecondary
			e.Coverage = 0.5
			e.Variants[0].Name = "control"
		}, []Change{
			{Path: "coverage", Before: 1.0, After: 0.5},
			{Path: "metrics.latency.role", Before: "guardrail", After: "secondary"},
			{Path: "variants.v1.name", Before: nil, After: "control"},
		}},
		{"variant added", func(e *Experiment) {
			e.Variants = append(e.Variants, Variant{Key: "v4", Model: "m1", Weight: 1})
		}, []Change{
			{Path: "variants.v4", Before: nil, After: map[string]any{"key": "v4", "model": "m1", "weight": 1.0, "control": false}},
		}},
		{"variant removed", func(e *Experiment) { e.Variants = e.Variants[:2] }, []Change{
			{Path: "variants.v3", Before: map[string]any{"key": "v3", "model": "m3", "weight": 2.0, "control": false}, After: nil},
		}},
		{"unkeyed list compared whole", func(e *Experiment) { e.Targeting[0].Values = []string{"fr"} }, []Change{
			{Path: "targeting",
				Before: []any{map[string]any{"source": "header", "name": "X-Country", "op": "in", "values": []any{"fr", "de"}}},
				After:  []any{map[string]any{"source": "header", "name": "X-Country", "op": "in", "values": []any{"fr"}}}},
		}},
		{"allow list entry", func(e *Experiment) { e.AllowList["qa-user"] = "v3" }, []Change{
			{Path: "allow_list.qa-user", Before: "v2", After: "v3"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := base(t)
			after := clone(before)
			tt.change(after)
			got := Diff(asJSON(t, before), asJSON(t, after))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDiffCreateAndDelete(t *testing.T) {
	e := asJSON(t, runningExperiment(t))
	tests := []struct {
		name          string
		before, after any
		want          []Change
	}{
		{"create", nil, e, []Change{{Path: "", Before: nil, After: e}}},
		{"delete", e, nil, []Change{{Path: "", Before: e, After: nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Diff(tt.before, tt.after); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
