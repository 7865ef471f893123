// Package experiments holds the experiments slice of abgate: the
// Experiment, Variant, Metric and Layer types, their validation and
// lifecycle, the GORM store (with models, API keys and the audit log) and
// the admin API handlers.
package experiments

import (
	"time"
)

// Status is the lifecycle state of an experiment:
// draft -> running <-> paused -> stopped, and archived (by DELETE) from any.
type Status string

// The lifecycle states.
const (
	StatusDraft    Status = "draft"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
	StatusArchived Status = "archived"
)

// Action is a lifecycle transition requested through the admin API.
type Action string

// The lifecycle actions.
const (
	ActionStart   Action = "start"
	ActionPause   Action = "pause"
	ActionStop    Action = "stop"
	ActionArchive Action = "archive"
)

// transitions lists, for each action, the states it may leave from and the
// state it leads to.
var transitions = map[Action]struct {
	from []Status
	to   Status
}{
	ActionStart:   {from: []Status{StatusDraft, StatusPaused}, to: StatusRunning},
	ActionPause:   {from: []Status{StatusRunning}, to: StatusPaused},
	ActionStop:    {from: []Status{StatusRunning, StatusPaused}, to: StatusStopped},
	ActionArchive: {from: []Status{StatusDraft, StatusRunning, StatusPaused, StatusStopped}, to: StatusArchived},
}

// Next returns the state that action leads to from s, and false when the
// transition is not allowed.
func (s Status) Next(action Action) (Status, bool) {
	t, ok := transitions[action]
	if !ok {
		return "", false
	}
	for _, from := range t.from {
		if from == s {
			return t.to, true
		}
	}
	return "", false
}

// Live reports whether an experiment in state s is assigned traffic or can
// be resumed to be (running or paused): its variants are then fixed.
func (s Status) Live() bool { return s == StatusRunning || s == StatusPaused }

// Experiment is an A/B test of model variants on one route.
type Experiment struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Route is the model name clients call (/v2/models/{route}/infer).
	Route  string `json:"route"`
	Status Status `json:"status"`
	// HashSeed salts the bucketing hash; it defaults to Key.
	HashSeed string `json:"hash_seed"`
	// HashVersion is 2 (GrowthBook v2, default) or 1 (legacy).
	HashVersion int `json:"hash_version"`
	// Coverage is the share of units in the experiment, in [0, 1].
	Coverage float64 `json:"coverage"`
	// Layer names the mutual-exclusion layer; "" means none. LayerRange is
	// the experiment's [start, end) of the layer's namespace.
	Layer      string      `json:"layer,omitempty"`
	LayerRange [2]float64  `json:"layer_range"`
	Variants   []Variant   `json:"variants"`
	Metrics    []Metric    `json:"metrics"`
	Targeting  []Condition `json:"targeting"`
	// AllowList forces units (by unit id) into a variant (by key), for QA.
	AllowList map[string]string `json:"allow_list"`
	// Version increases by one with every change; PATCH must name it.
	Version    int64      `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	StoppedAt  *time.Time `json:"stopped_at,omitempty"`
	ArchivedAt *time.Time `json:"archived_at,omitempty"`
}

// Control returns the control variant, or nil when there is none.
func (e *Experiment) Control() *Variant {
	for i := range e.Variants {
		if e.Variants[i].Control {
			return &e.Variants[i]
		}
	}
	return nil
}

// Variant is one arm of an experiment, served by one model.
type Variant struct {
	Key    string  `json:"key"`
	Name   string  `json:"name,omitempty"`
	Model  string  `json:"model"`
	Weight float64 `json:"weight"`
	// Control marks the baseline; exactly one variant has it.
	Control bool `json:"control"`
	// Shadow variants take no bucket: they receive an asynchronous copy of
	// ShadowPercent percent of the route's traffic, and their answers are
	// recorded, never returned.
	Shadow        bool    `json:"shadow,omitempty"`
	ShadowPercent float64 `json:"shadow_percent,omitempty"`
}

// Metric types, roles and directions.
const (
	MetricBinomial   = "binomial"
	MetricContinuous = "continuous"
	MetricAccuracy   = "accuracy"
	MetricErrorRate  = "error_rate" // guardrail from exposures
	MetricLatency    = "latency"    // guardrail from exposures, milliseconds

	RolePrimary   = "primary"
	RoleSecondary = "secondary"
	RoleGuardrail = "guardrail"

	DirectionIncrease = "increase"
	DirectionDecrease = "decrease"
)

// Metric is a measure an experiment is judged by.
type Metric struct {
	Key  string `json:"key"`
	Type string `json:"type"`
	Role string `json:"role"`
	// Direction says which way is better; it defaults to increase, and to
	// decrease for error_rate and latency.
	Direction string `json:"direction"`
	// WindowHours limits attribution to outcomes within this many hours of
	// a unit's first exposure; 0 means no limit.
	WindowHours float64 `json:"window_hours,omitempty"`
	// LookbackHours is how far before first exposure outcomes count as the
	// CUPED covariate; 0 means no covariate.
	LookbackHours float64 `json:"lookback_hours,omitempty"`
}

// Condition is a targeting rule: a request is eligible when every
// condition of its experiment holds.
type Condition struct {
	// Source is "header" (a request header) or "body" (a JSON field of the
	// request body, dotted path such as "parameters.country").
	Source string `json:"source"`
	Name   string `json:"name"`
	// Op is equals, not_equals, in, not_in, regex or range.
	Op     string   `json:"op"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
	// Min and Max bound a numeric range (inclusive); either may be nil.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Targeting operators.
const (
	OpEquals    = "equals"
	OpNotEquals = "not_equals"
	OpIn        = "in"
	OpNotIn     = "not_in"
	OpRegex     = "regex"
	OpRange     = "range"
)
