package router

import (
	"encoding/json"
	"net/http"
	"testing"

	"abgate/experiments"
)

func fptr(f float64) *float64 { return &f }

func TestTargetingMatch(t *testing.T) {
	h := http.Header{}
	h.Set("X-Country", "DE")
	h.Set("X-Age", "42")
	h.Set("X-App-Version", "3.1.4")
	var body map[string]any
	if err := json.Unmarshal([]byte(`{"parameters": {"country": "FR", "score": 0.75, "beta": true, "tags": ["a"], "none": null}, "n": 3}`), &body); err != nil {
		t.Fatal(err)
	}
	hdr := func(name, op, value string, values ...string) experiments.Condition {
		return experiments.Condition{Source: "header", Name: name, Op: op, Value: value, Values: values}
	}
	bdy := func(name, op, value string, values ...string) experiments.Condition {
		return experiments.Condition{Source: "body", Name: name, Op: op, Value: value, Values: values}
	}
	rng := func(source, name string, lo, hi *float64) experiments.Condition {
		return experiments.Condition{Source: source, Name: name, Op: experiments.OpRange, Min: lo, Max: hi}
	}
	tests := []struct {
		name  string
		conds []experiments.Condition
		want  bool
	}{
		{"no conditions", nil, true},
		{"header equals", []experiments.Condition{hdr("x-country", "equals", "DE")}, true},
		{"header equals other", []experiments.Condition{hdr("X-Country", "equals", "FR")}, false},
		{"header not_equals", []experiments.Condition{hdr("X-Country", "not_equals", "FR")}, true},
		{"header in", []experiments.Condition{hdr("X-Country", "in", "", "AT", "DE")}, true},
		{"header not_in", []experiments.Condition{hdr("X-Country", "not_in", "", "AT", "DE")}, false},
		{"header regex", []experiments.Condition{hdr("X-App-Version", "regex", `^3\.`)}, true},
		{"header regex no match", []experiments.Condition{hdr("X-App-Version", "regex", `^4\.`)}, false},
		{"header range", []experiments.Condition{rng("header", "X-Age", fptr(18), fptr(65))}, true},
		{"header range inclusive", []experiments.Condition{rng("header", "X-Age", fptr(42), fptr(42))}, true},
		{"header range below", []experiments.Condition{rng("header", "X-Age", fptr(50), nil)}, false},
		{"header range not numeric", []experiments.Condition{rng("header", "X-Country", nil, fptr(1))}, false},
		{"missing header equals", []experiments.Condition{hdr("X-Missing", "equals", "")}, false},
		{"missing header in", []experiments.Condition{hdr("X-Missing", "in", "", "a")}, false},
		{"missing header regex", []experiments.Condition{hdr("X-Missing", "regex", ".*")}, false},
		{"missing header range", []experiments.Condition{rng("header", "X-Missing", nil, fptr(1))}, false},
		{"missing header not_equals", []experiments.Condition{hdr("X-Missing", "not_equals", "a")}, true},
		{"missing header not_in", []experiments.Condition{hdr("X-Missing", "not_in", "", "a")}, true},
		{"body equals", []experiments.Condition{bdy("parameters.country", "equals", "FR")}, true},
		{"body bool", []experiments.Condition{bdy("parameters.beta", "equals", "true")}, true},
		{"body number as string", []experiments.Condition{bdy("n", "in", "", "2", "3")}, true},
		{"body range", []experiments.Condition{rng("body", "parameters.score", fptr(0.5), fptr(1))}, true},
		{"body range above", []experiments.Condition{rng("body", "parameters.score", nil, fptr(0.5))}, false},
		{"body path through scalar", []experiments.Condition{bdy("n.x", "equals", "3")}, false},
		{"body array", []experiments.Condition{bdy("parameters.tags", "equals", "a")}, false},
		{"body array not_equals", []experiments.Condition{bdy("parameters.tags", "not_equals", "a")}, true},
		{"body null", []experiments.Condition{bdy("parameters.none", "equals", "")}, false},
		{"body missing not_in", []experiments.Condition{bdy("parameters.city", "not_in", "", "Paris")}, true},
		{"all must hold", []experiments.Condition{hdr("X-Country", "equals", "DE"), bdy("parameters.country", "equals", "DE")}, false},
		{"both hold", []experiments.Condition{hdr("X-Country", "equals", "DE"), bdy("parameters.country", "equals", "FR")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := targetCompile(tt.conds)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tg.Match(h, body), tt.want; got != want {
				t.Errorf("Match: got %v, want %v", got, want)
			}
		})
	}
}

func TestTargetingNoBody(t *testing.T) {
	tg, err := targetCompile([]experiments.Condition{{Source: "body", Name: "a", Op: "equals", Value: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tg.Match(nil, nil), false; got != want {
		t.Errorf("Match without body: got %v, want %v", got, want)
	}
	if got, want := tg.NeedsBody(), true; got != want {
		t.Errorf("NeedsBody: got %v, want %v", got, want)
	}
	calls := 0
	b := targetBody{get: func() map[string]any { calls++; return map[string]any{"a": "x"} }}
	tg2, _ := targetCompile([]experiments.Condition{
		{Source: "body", Name: "a", Op: "equals", Value: "x"},
		{Source: "body", Name: "a", Op: "regex", Value: "x"},
	})
	if got, want := tg2.match(nil, &b), true; got != want {
		t.Errorf("lazy body: got %v, want %v", got, want)
	}
	if got, want := calls, 1; got != want {
		t.Errorf("body getter calls: got %d, want %d", got, want)
	}
}

func TestTargetingCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		c    experiments.Condition
	}{
		{"source", experiments.Condition{Source: "cookie", Name: "a", Op: "equals"}},
		{"op", experiments.Condition{Source: "header", Name: "a", Op: "like"}},
		{"regex", experiments.Condition{Source: "header", Name: "a", Op: "regex", Value: "("}},
		{"range", experiments.Condition{Source: "header", Name: "a", Op: "range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := targetCompile([]experiments.Condition{tt.c}); err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
}

func FuzzTargeting(f *testing.F) {
	f.Add("header", "X-Country", "equals", "DE", "DE", `{"a": 1}`, 0.0, 1.0)
	f.Add("body", "a.b", "range", "", "", `{"a": {"b": 2.5}}`, 1.0, 3.0)
	f.Add("body", "a", "regex", "^x+$", "", `{"a": "xxx"}`, 0.0, 0.0)
	f.Add("body", "..", "in", "", "1", `[1, 2]`, 0.0, 0.0)
	f.Add("header", "", "not_in", "", "", `null`, -1.0, 1.0)
	f.Fuzz(func(t *testing.T, source, name, op, value, header, body string, lo, hi float64) {
		c := experiments.Condition{Source: source, Name: name, Op: op, Value: value, Values: []string{value, header}}
		if op == experiments.OpRange {
			c.Min, c.Max = &lo, &hi
		}
		tg, err := targetCompile([]experiments.Condition{c})
		if err != nil {
			return
		}
		h := http.Header{}
		h.Set(name, header)
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		got := tg.Match(h, m)
		// not_equals is the negation of equals, not_in of in.
		var neg experiments.Condition
		switch op {
		case experiments.OpEquals:
			neg = c
			neg.Op = experiments.OpNotEquals
		case experiments.OpIn:
			neg = c
			neg.Op = experiments.OpNotIn
		default:
			return
		}
		ntg, err := targetCompile([]experiments.Condition{neg})
		if err != nil {
			t.Fatal(err)
		}
		if ntg.Match(h, m) == got {
			t.Errorf("%s and its negation agree (%v) on header %q body %s", op, got, header, body)
		}
	})
}
