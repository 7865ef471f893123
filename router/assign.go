package router

// This file decides, for one request, which experiment and variant serve
// it (Assigner.Decide), and explains the assignment of one unit to one
// experiment for the admin API (Explain).

import (
	"net/http"

	"abgate/experiments"
)

// Reasons of a Decision and an Explanation, besides those of Assignment
// (ReasonInExperiment, ReasonMissingUnit, ReasonBadHashVersion,
// ReasonNotInLayer, ReasonOutsideCoverage).
const (
	// ReasonNoExperiment: no experiment runs on the route.
	ReasonNoExperiment = "no_experiment"
	// ReasonNotTargeted: the request fails the experiment's targeting.
	ReasonNotTargeted = "not_targeted"
	// ReasonForced: an editor forced the variant (X-Abgate-Force).
	ReasonForced = "forced"
	// ReasonAllowList: the experiment's allow-list names the unit.
	ReasonAllowList = "allow_list"
)

// Unit is what Decide knows of a request.
type Unit struct {
	// ID is the unit id (X-User-ID or the abgate_uid cookie); "" is not
	// assigned (ReasonMissingUnit).
	ID string
	// Headers are the request headers targeting reads; nil means none.
	Headers http.Header
	// Body returns the request's decoded JSON body, nil when there is none
	// or it is not an object. Decide calls it at most once, and only when a
	// body condition must be evaluated; nil means no body.
	Body func() map[string]any
	// Forced maps experiment keys to variant keys (X-Abgate-Force). It is
	// ignored unless Editor is set; an unknown experiment or variant, or a
	// shadow variant, is ignored.
	Forced map[string]string
	// Editor says the request carries a token with at least the editor
	// role, which Forced needs.
	Editor bool
}

// Decision is where a request goes. When InExperiment is false the caller
// serves the route's default model and records no exposure; Reason then
// says why.
type Decision struct {
	// InExperiment reports whether the unit is in an experiment.
	InExperiment bool
	// ExperimentID and ExperimentKey name the experiment; VariantID,
	// VariantKey, Model and Control its variant. They are zero when not in
	// an experiment, except that ExperimentKey (and ID) names the
	// experiment whose reason Reason gives, if any.
	ExperimentID  int64
	ExperimentKey string
	VariantID     int64
	VariantKey    string
	Model         string
	Control       bool
	// Bucket is the unit's hash in the experiment, in [0, 1); HashVersion
	// the hash used. Both are 0 when the unit was never hashed (forced,
	// allow-list, no experiment, missing unit).
	Bucket      float64
	HashVersion int
	// Reason is a Reason* constant.
	Reason string
	// Shadows are the shadow variants of the route's running experiments:
	// SnapshotVariant.Mirror(unit) says whether this unit's request is
	// copied to each. The slice belongs to the snapshot: do not modify.
	Shadows []*SnapshotVariant
	// ConfigVersion is the config_version of the snapshot decided on.
	ConfigVersion int64
}

// SnapshotSource gives the current Snapshot; *Watcher is one.
type SnapshotSource interface {
	Snapshot() *Snapshot
}

var _ SnapshotSource = (*Watcher)(nil)

// Snapshot returns s itself, so a fixed Snapshot is a SnapshotSource.
func (s *Snapshot) Snapshot() *Snapshot { return s }

// Assigner decides which variant serves each request, on the current
// snapshot of its source. It is safe for concurrent use.
type Assigner struct {
	src SnapshotSource
}

// NewAssigner returns an Assigner over src, typically a *Watcher.
func NewAssigner(src SnapshotSource) *Assigner {
	return &Assigner{src: src}
}

// Decide decides the variant of unit u on route, on the current snapshot.
// See Snapshot.Decide.
func (a *Assigner) Decide(route string, u Unit) Decision {
	return a.src.Snapshot().Decide(route, u)
}

// Decide decides the variant of unit u on route:
//
//  1. no running experiment on route: ReasonNoExperiment;
//  2. an empty unit id: ReasonMissingUnit;
//  3. a variant forced by an editor (u.Forced) of an experiment on the
//     route: ReasonForced, then a variant given by an allow-list:
//     ReasonAllowList; both bypass layers, targeting and coverage;
//  4. each experiment in turn (by key): the unit outside its layer share
//     goes on to the next; then targeting (ReasonNotTargeted), then the
//     bucket (ReasonOutsideCoverage, ReasonBadHashVersion, or
//     ReasonInExperiment). Experiments on one route are in one layer with
//     disjoint shares, so at most one admits the unit.
//
// Decide does not allocate, except what u.Body does.
func (s *Snapshot) Decide(route string, u Unit) Decision {
	d := Decision{ConfigVersion: s.Version, Reason: ReasonNoExperiment}
	r := s.routes[route]
	if r == nil {
		return d
	}
	d.Shadows = r.shadows
	if u.ID == "" {
		d.Reason = ReasonMissingUnit
		return d
	}
	if u.Editor && len(u.Forced) > 0 {
		for _, se := range r.experiments {
			if vk, ok := u.Forced[se.Key]; ok {
				if i := se.variantIndex(vk); i >= 0 && !se.Variants[i].Shadow {
					d.assignIn(se, i, ReasonForced)
					return d
				}
			}
		}
	}
	for _, se := range r.experiments {
		if i, ok := se.allowList[u.ID]; ok {
			d.assignIn(se, i, ReasonAllowList)
			return d
		}
	}
	body := targetBody{get: u.Body}
	d.Reason = ReasonNotInLayer
	for _, se := range r.experiments {
		a := se.Compiled.Assign(u.ID)
		if a.Reason == ReasonNotInLayer {
			continue
		}
		d.ExperimentID, d.ExperimentKey = se.ID, se.Key
		if !se.Targeting.match(u.Headers, &body) {
			d.Reason = ReasonNotTargeted
			return d
		}
		d.Bucket, d.HashVersion, d.Reason = a.Bucket, se.Compiled.HashVersion(), a.Reason
		if a.InExperiment {
			d.assignIn(se, se.bucketed[a.Variant], a.Reason)
		}
		return d
	}
	return d
}

// assignIn puts d in variant i of se.
func (d *Decision) assignIn(se *SnapshotExperiment, i int, reason string) {
	v := &se.Variants[i]
	d.InExperiment = true
	d.ExperimentID, d.ExperimentKey = se.ID, se.Key
	d.VariantID, d.VariantKey, d.Model, d.Control = v.ID, v.Key, v.Model, v.Control
	d.Reason = reason
}

// Explanation explains the assignment of one unit to one experiment, as
// GET /api/v1/experiments/{key}/assign answers it.
type Explanation struct {
	Experiment string `json:"experiment"`
	Status     string `json:"status"`
	Unit       string `json:"unit"`
	// InExperiment and Variant: the unit's variant, "" when not in.
	InExperiment bool   `json:"in_experiment"`
	Variant      string `json:"variant"`
	Model        string `json:"model,omitempty"`
	// Bucket is the unit's hash in [0, 1) with HashVersion; Range the
	// variant's [start, end) of buckets (absent when not in, or when an
	// allow-list placed the unit).
	Bucket      float64     `json:"bucket"`
	HashVersion int         `json:"hash_version"`
	Range       *[2]float64 `json:"range,omitempty"`
	// Layer, LayerBucket and LayerRange: the unit's namespace hash in the
	// experiment's layer and the experiment's share of it.
	Layer       string      `json:"layer,omitempty"`
	LayerBucket *float64    `json:"layer_bucket,omitempty"`
	LayerRange  *[2]float64 `json:"layer_range,omitempty"`
	// Reason is a Reason* constant.
	Reason string `json:"reason"`
	// TargetingConditions counts the experiment's targeting conditions,
	// which Explain does not evaluate: a request must also meet them.
	TargetingConditions int `json:"targeting_conditions"`
}

// Explain explains the assignment of unit to e in any state (drafts
// included, compiled on the fly): the allow-list first (ReasonAllowList),
// then the hash (the reasons of Assignment). It gives the variant Decide
// gives a request of unit without forced variants once e runs, provided the
// request meets e's targeting, which Explain does not evaluate. A
// configuration that does not compile is an EINVALID error naming the
// field.
func Explain(e *experiments.Experiment, unit string) (Explanation, error) {
	x := Explanation{Experiment: e.Key, Status: string(e.Status), Unit: unit,
		HashVersion: e.HashVersion, TargetingConditions: len(e.Targeting), Layer: e.Layer}
	se, err := snapCompile(e, 0, func(string) int64 { return 0 })
	if err != nil {
		return x, err
	}
	if e.Layer != "" {
		lr := [2]float64{e.LayerRange[0], e.LayerRange[1]}
		x.LayerRange = &lr
	}
	if unit != "" {
		if i, ok := se.allowList[unit]; ok {
			x.InExperiment, x.Variant, x.Model, x.Reason = true, se.Variants[i].Key, se.Variants[i].Model, ReasonAllowList
			return x, nil
		}
	}
	a := se.Compiled.Assign(unit)
	x.Bucket, x.Reason = a.Bucket, a.Reason
	if e.Layer != "" && (a.Reason == ReasonInExperiment || a.Reason == ReasonNotInLayer || a.Reason == ReasonOutsideCoverage) {
		lb := a.LayerBucket
		x.LayerBucket = &lb
	}
	if a.InExperiment {
		v := se.Variants[se.bucketed[a.Variant]]
		x.InExperiment, x.Variant, x.Model = true, v.Key, v.Model
		x.Range = &[2]float64{a.Range.Start, a.Range.End}
	}
	return x, nil
}
