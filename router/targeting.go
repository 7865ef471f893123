package router

// This file evaluates an experiment's targeting conditions
// (experiments.Condition) against a request's headers and JSON body.

import (
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"abgate"
	"abgate/experiments"
)

// Targeting is an experiment's targeting conditions compiled for
// evaluation: regexes compiled, dotted body paths split, header names
// canonicalised. A request is eligible when every condition holds; the
// zero or nil Targeting has no conditions and admits every request. It is
// immutable and safe for concurrent use.
//
// A condition reads one attribute: the first value of a request header
// (source "header") or the JSON value at a dotted path of the request body
// (source "body", "parameters.country"). Strings compare as they are,
// numbers by their shortest decimal form (1.0 is "1"), booleans as "true"
// and "false"; range reads a number from a JSON number or a numeric string
// (header values are strings) and is inclusive at both ends.
//
// A missing attribute (no such header, no body, no value at the path,
// JSON null) and an attribute that is an object or an array make equals,
// in, regex and range false and not_equals and not_in true, as GrowthBook's
// $ne and $nin on an undefined attribute: "not equal to x" holds for a
// request that says nothing. Add an "in" or "regex" condition on the same
// attribute to require that it is present.
type Targeting struct {
	conds []targetCond
}

// targetCond is one compiled condition.
type targetCond struct {
	body   bool
	name   string   // canonical header name (header source)
	path   []string // dotted path (body source)
	op     string
	value  string
	values []string
	re     *regexp.Regexp
	min    float64 // -Inf when unbounded
	max    float64 // +Inf when unbounded
}

// targetCompile compiles conditions. An unknown source or op, a bad regex
// or a range without bounds is an EINVALID error naming the condition's
// field, as experiments.Validate would report it; nil or empty conditions
// give a Targeting that admits every request.
func targetCompile(cs []experiments.Condition) (*Targeting, error) {
	t := &Targeting{conds: make([]targetCond, 0, len(cs))}
	for i, c := range cs {
		field := "targeting[" + strconv.Itoa(i) + "]"
		tc := targetCond{op: c.Op, value: c.Value, values: c.Values, min: math.Inf(-1), max: math.Inf(1)}
		switch c.Source {
		case "header":
			tc.name = http.CanonicalHeaderKey(c.Name)
		case "body":
			tc.body = true
			tc.path = strings.Split(c.Name, ".")
		default:
			return nil, abgate.FieldErrorf(field+".source", "targeting source %q is not one of header, body", c.Source)
		}
		switch c.Op {
		case experiments.OpEquals, experiments.OpNotEquals, experiments.OpIn, experiments.OpNotIn:
		case experiments.OpRegex:
			re, err := regexp.Compile(c.Value)
			if err != nil {
				return nil, abgate.FieldErrorf(field+".value", "regex does not compile: %v", err)
			}
			tc.re = re
		case experiments.OpRange:
			if c.Min == nil && c.Max == nil {
				return nil, abgate.FieldErrorf(field+".min", "op range takes min, max or both")
			}
			if c.Min != nil {
				tc.min = *c.Min
			}
			if c.Max != nil {
				tc.max = *c.Max
			}
		default:
			return nil, abgate.FieldErrorf(field+".op", "targeting op %q is not one of equals, not_equals, in, not_in, regex, range", c.Op)
		}
		t.conds = append(t.conds, tc)
	}
	return t, nil
}

// Len returns the number of conditions; 0 for a nil Targeting.
func (t *Targeting) Len() int {
	if t == nil {
		return 0
	}
	return len(t.conds)
}

// NeedsBody reports whether a condition reads the request body.
func (t *Targeting) NeedsBody() bool {
	if t == nil {
		return false
	}
	for i := range t.conds {
		if t.conds[i].body {
			return true
		}
	}
	return false
}

// Match reports whether the request with header h and JSON body holds every
// condition. body is the decoded body (nil when there is none or it is not
// a JSON object). Match does not allocate for header conditions and for
// body values that are strings or booleans.
func (t *Targeting) Match(h http.Header, body map[string]any) bool {
	tb := targetBody{m: body, done: true}
	return t.match(h, &tb)
}

// targetBody gets the request body at most once, when a body condition
// first needs it.
type targetBody struct {
	get  func() map[string]any
	m    map[string]any
	done bool
}

func (b *targetBody) body() map[string]any {
	if !b.done {
		b.done = true
		if b.get != nil {
			b.m = b.get()
		}
	}
	return b.m
}

func (t *Targeting) match(h http.Header, b *targetBody) bool {
	if t == nil {
		return true
	}
	for i := range t.conds {
		if !t.conds[i].eval(h, b) {
			return false
		}
	}
	return true
}

// eval evaluates one condition.
func (c *targetCond) eval(h http.Header, b *targetBody) bool {
	var (
		raw     any
		present bool
	)
	if c.body {
		raw, present = targetLookup(b.body(), c.path)
	} else if vs := h[c.name]; len(vs) > 0 {
		raw, present = vs[0], true
	}
	if c.op == experiments.OpRange {
		n, ok := targetNumber(raw)
		return present && ok && n >= c.min && n <= c.max
	}
	s, ok := targetString(raw)
	if !present || !ok {
		return c.op == experiments.OpNotEquals || c.op == experiments.OpNotIn
	}
	switch c.op {
	case experiments.OpEquals:
		return s == c.value
	case experiments.OpNotEquals:
		return s != c.value
	case experiments.OpIn, experiments.OpNotIn:
		in := false
		for _, v := range c.values {
			if s == v {
				in = true
				break
			}
		}
		return in == (c.op == experiments.OpIn)
	case experiments.OpRegex:
		return c.re.MatchString(s)
	}
	return false
}

// targetLookup returns the value at the dotted path in m; false when a
// step is missing or not an object, or the value is JSON null.
func targetLookup(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// targetString returns the scalar v as a string; false for objects,
// arrays and nil.
func targetString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64), true
		}
		return v.String(), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// targetNumber returns v as a finite number: a JSON number or a numeric
// string.
func targetNumber(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}
