package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"abgate"
)

// fuzzModels accepts every model name except "missing", so that fuzzed
// definitions get past the model check and reach the rules after it.
func fuzzModels(name string) bool { return name != "missing" }

var definitionSeeds = []string{
	// Valid.
	`{"key":"exp","route":"classifier","variants":[{"key":"v1","model":"m1","weight":1,"control":true},{"key":"v2","model":"m2","weight":1}]}`,
	`{"key":"exp-2","name":"Two","description":"d","route":"r.v2","hash_seed":"salt","hash_version":1,"coverage":0.5,
	  "layer":"l1","layer_range":[0.25,0.75],
	  "variants":[{"key":"a","name":"A","model":"m1","weight":0.3,"control":true},{"key":"b","model":"m2","weight":0.7},
	              {"key":"s","model":"m3","shadow":true,"shadow_percent":12.5}],
	  "metrics":[{"key":"conversion","type":"binomial","role":"primary"},{"key":"rev","type":"continuous","role":"secondary","direction":"decrease","window_hours":24,"lookback_hours":168},
	             {"key":"lat","type":"latency","role":"guardrail"}],
	  "targeting":[{"source":"header","name":"X-Country","op":"in","values":["fr","de"]},{"source":"body","name":"parameters.age","op":"range","min":18,"max":65},
	               {"source":"header","name":"User-Agent","op":"regex","value":"^Mozilla"},{"source":"header","name":"a","op":"equals","value":"b"}],
	  "allow_list":{"qa-1":"a","qa-2":"b"}}`,
	`{"key":"e","route":"r","variants":[{"key":"v1","model":"m","weight":1e-300,"control":true},{"key":"v2","model":"m","weight":1e300}],"coverage":0}`,
	// Invalid.
	`{"key":"exp","route":"classifier","variants":[{"key":"v1","model":"m1","weight":1,"control":true}]}`,
	`{"key":"exp","route":"classifier","variants":[{"key":"v1","model":"m1","weight":1,"control":true},{"key":"v2","model":"m2","weight":1,"control":true}]}`,
	`{"key":"exp","route":"classifier","variants":[{"key":"v1","model":"m1","weight":0,"control":true},{"key":"v2","model":"missing","weight":1}]}`,
	`{"key":"exp","route":"classifier","layer_range":[0,0.5],"variants":[]}`,
	`{"key":"exp","route":"classifier","layer":"l","layer_range":[0.5,0.2,1]}`,
	`{"key":"exp","route":"classifier","hash_version":3}`,
	`{"key":"exp","route":"classifier","hash_version":2.5}`,
	`{"key":"exp","route":"classifier","coverage":"1"}`,
	`{"key":"exp","route":"classifier","coverage":1e400}`,
	`{"key":"exp","route":"classifier","unknown":1}`,
	`{"key":"exp","targeting":[{"source":"header","name":"a","op":"regex","value":"("}]}`,
	`{"key":"exp","targeting":[{"source":"body","name":"a","op":"range","min":5,"max":1}]}`,
	`{"key":"exp","allow_list":{"u":"nope"}}`,
	`{"key":"Exp"}`,
	`{"key":"exp"} {"key":"exp"}`,
	`{"key":"exp"`,
	`{"key":"\xff\xfe"}`,
	`null`,
	`[]`,
	`""`,
	`0`,
	``,
	`{"variants":[{"key":"v1","weight":-0}]}`,
	`{"variants":null,"metrics":null,"targeting":null,"allow_list":null,"layer_range":null}`,
}

// assertUserError fails t unless err is an *abgate.Error with one of codes.
func assertUserError(t *testing.T, what string, err error, codes ...string) {
	t.Helper()
	var e *abgate.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: got %T %v, want an *abgate.Error", what, err, err)
	}
	if !slices.Contains(codes, e.Code) {
		t.Fatalf("%s: got code %q (%v), want one of %q", what, e.Code, err, codes)
	}
}

// withoutEmptyValues returns a copy of e in which empty slices inside conditions
// are nil: JSON drops "values": [] (omitempty), which means the same.
func withoutEmptyValues(e *Experiment) *Experiment {
	c := clone(e)
	for i := range c.Targeting {
		if len(c.Targeting[i].Values) == 0 {
			c.Targeting[i].Values = nil
		}
	}
	return c
}

func FuzzDecodeExperiment(f *testing.F) {
	for _, s := range definitionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Definition
		if err := abgate.DecodeJSON(bytes.NewReader(data), &d); err != nil {
			assertUserError(t, "DecodeJSON", err, abgate.EINVALID)
			return
		}
		e, err := d.Experiment()
		if err != nil {
			assertUserError(t, "Experiment", err, abgate.EINVALID)
			return
		}
		if err := Validate(e, fuzzModels); err != nil {
			assertUserError(t, "Validate", err, abgate.EINVALID)
			return
		}

		controls := 0
		for i, v := range e.Variants {
			if v.Control {
				controls++
			}
			if !v.Shadow && !(v.Weight > 0) {
				t.Errorf("variants[%d] (not a shadow) has weight %v, want > 0", i, v.Weight)
			}
			if v.Shadow && v.Weight != 0 {
				t.Errorf("shadow variants[%d] has weight %v, want 0", i, v.Weight)
			}
		}
		if controls != 1 {
			t.Errorf("got %d controls, want exactly 1", controls)
		}

		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal a valid experiment: %v", err)
		}
		var again Experiment
		if err := abgate.DecodeJSON(bytes.NewReader(b), &again); err != nil {
			t.Fatalf("decode a marshalled experiment: %v\n%s", err, b)
		}
		if got, want := withoutEmptyValues(&again), withoutEmptyValues(e); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip through JSON:\n got %+v\nwant %+v\njson %s", got, want, b)
		}
		if err := Validate(&again, fuzzModels); err != nil {
			t.Fatalf("round-tripped experiment does not validate: %v\n%s", err, b)
		}
	})
}

var patchSeeds = []string{
	`{}`,
	`{"version":1,"coverage":0.5}`,
	`{"variants":[{"key":"v1"},{"key":"v2","weight":3},{"key":"v3"}]}`,
	`{"variants":[{"key":"v3","weight":5},{"key":"v1"},{"key":"v2","name":"two"}]}`,
	`{"variants":[{"key":"v1"},{"key":"v2"}]}`,
	`{"variants":[{"key":"v1"},{"key":"v2"},{"key":"v3"},{"key":"v4","model":"m1","weight":1}]}`,
	`{"variants":[{"key":"v1","control":false},{"key":"v2","control":true},{"key":"v3"}]}`,
	`{"variants":[{"key":"v1"},{"key":"v2","model":"m3"},{"key":"v3"}]}`,
	`{"variants":[{"key":"v1"},{"key":"v1"},{"key":"v2"},{"key":"v3"}]}`,
	`{"variants":[{"key":"v1"},{"key":"v2","weight":0},{"key":"v3"}]}`,
	`{"variants":[]}`,
	`{"variants":null}`,
	`{"route":"other"}`,
	`{"route":"classifier","hash_seed":"exp-1","hash_version":2,"layer":"layer-a","layer_range":[0,0.5]}`,
	`{"layer":""}`,
	`{"layer_range":[0.5,1]}`,
	`{"layer_range":[0.5]}`,
	`{"metrics":[{"key":"m","type":"binomial"}],"targeting":[],"allow_list":{"u":"v3"}}`,
	`{"metrics":[{"key":"m","type":"nope"}]}`,
	`{"allow_list":{"u":"v9"}}`,
	`{"coverage":2}`,
	`{"version":"1"}`,
	`{"nope":true}`,
	`{"name":null,"metrics":null}`,
	`{`,
	`null`,
	``,
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range patchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Patch
		if err := abgate.DecodeJSON(bytes.NewReader(data), &p); err != nil {
			assertUserError(t, "DecodeJSON", err, abgate.EINVALID)
			return
		}
		e := runningExperiment(t)
		next, err := p.Apply(e)
		if !reflect.DeepEqual(e, runningExperiment(t)) {
			t.Fatalf("Apply changed the experiment it was given")
		}
		if err != nil {
			assertUserError(t, "Apply", err, abgate.EINVALID, abgate.ECONFLICT)
			return
		}
		if got, want := variantKeys(next.Variants), variantKeys(e.Variants); !slices.Equal(got, want) {
			t.Fatalf("variant keys: got %v, want %v (a running experiment keeps them, in order)", got, want)
		}
		for i, v := range next.Variants {
			o := e.Variants[i]
			if v.Model != o.Model || v.Control != o.Control || v.Shadow != o.Shadow {
				t.Errorf("variants[%d]: got model %q control %v shadow %v, want %q %v %v (fixed while running)",
					i, v.Model, v.Control, v.Shadow, o.Model, o.Control, o.Shadow)
			}
		}
		if next.Route != e.Route || next.HashSeed != e.HashSeed || next.HashVersion != e.HashVersion ||
			next.Layer != e.Layer || next.LayerRange != e.LayerRange || next.Status != e.Status || next.Key != e.Key {
			t.Errorf("a locked field changed: got %+v, want the locked fields of %+v", next, e)
		}
		if err := Validate(next, knownModels); err != nil {
			assertUserError(t, "Validate", err, abgate.EINVALID)
		}
	})
}
