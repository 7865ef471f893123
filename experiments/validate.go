package experiments

import (
	"fmt"
	"math"
	"regexp"
	"unicode/utf8"

	"abgate"
)

// Limits of an experiment definition.
const (
	MinVariants      = 2
	MaxVariants      = 20
	MaxMetrics       = 50
	MaxConditions    = 20
	MaxAllowList     = 1000
	maxNameLen       = 200
	maxDescription   = 4000
	maxConditionVals = 1000
)

var (
	keyPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	routePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// ValidKey reports whether s is a valid experiment, variant, metric or
// layer key: [a-z0-9][a-z0-9-_]{0,63}.
func ValidKey(s string) bool { return keyPattern.MatchString(s) }

// ValidModelName reports whether s can name a model or a route (it is a
// path segment of /v2/models/{name}).
func ValidModelName(s string) bool { return routePattern.MatchString(s) }

// ModelChecker tells whether a model is registered. A nil ModelChecker
// skips the check.
type ModelChecker func(name string) bool

// Validate checks e against every rule of a definition and returns the
// first violation as an EINVALID error whose Field names the field
// ("variants[1].weight"). Rules that involve other experiments (routes
// shared while running) are checked by the store.
func Validate(e *Experiment, hasModel ModelChecker) error {
	switch {
	case !ValidKey(e.Key):
		return abgate.FieldErrorf("key", "key %q must match [a-z0-9][a-z0-9-_]{0,63}", e.Key)
	case utf8.RuneCountInString(e.Name) > maxNameLen:
		return abgate.FieldErrorf("name", "name is longer than %d characters", maxNameLen)
	case !utf8.ValidString(e.Name):
		return abgate.FieldErrorf("name", "name must be valid UTF-8")
	case !utf8.ValidString(e.Description):
		return abgate.FieldErrorf("description", "description must be valid UTF-8")
	case utf8.RuneCountInString(e.Description) > maxDescription:
		return abgate.FieldErrorf("description", "description is longer than %d characters", maxDescription)
	case e.Route == "":
		return abgate.FieldErrorf("route", "route is required: the model name clients call")
	case !ValidModelName(e.Route):
		return abgate.FieldErrorf("route", "route %q must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}", e.Route)
	case e.HashSeed == "" || len(e.HashSeed) > 256:
		return abgate.FieldErrorf("hash_seed", "hash_seed must be 1 to 256 bytes")
	case e.HashVersion != 1 && e.HashVersion != 2:
		return abgate.FieldErrorf("hash_version", "hash_version must be 1 or 2, got %d", e.HashVersion)
	case !(e.Coverage >= 0 && e.Coverage <= 1):
		return abgate.FieldErrorf("coverage", "coverage must be in [0, 1], got %v", e.Coverage)
	}
	if err := validateLayer(e); err != nil {
		return err
	}
	if err := validateVariants(e.Variants, hasModel); err != nil {
		return err
	}
	if err := validateMetrics(e.Metrics); err != nil {
		return err
	}
	if err := validateTargeting(e.Targeting); err != nil {
		return err
	}
	return validateAllowList(e)
}

func validateLayer(e *Experiment) error {
	if e.Layer == "" {
		if e.LayerRange != [2]float64{0, 1} {
			return abgate.FieldErrorf("layer_range", "layer_range needs a layer")
		}
		return nil
	}
	if !ValidKey(e.Layer) {
		return abgate.FieldErrorf("layer", "layer %q must match [a-z0-9][a-z0-9-_]{0,63}", e.Layer)
	}
	lo, hi := e.LayerRange[0], e.LayerRange[1]
	if !(lo >= 0 && lo < hi && hi <= 1) {
		return abgate.FieldErrorf("layer_range", "layer_range must be [start, end) with 0 <= start < end <= 1, got [%v, %v]", lo, hi)
	}
	return nil
}

func validateVariants(vs []Variant, hasModel ModelChecker) error {
	if len(vs) < MinVariants || len(vs) > MaxVariants {
		return abgate.FieldErrorf("variants", "an experiment needs %d to %d variants, got %d", MinVariants, MaxVariants, len(vs))
	}
	seen := make(map[string]int, len(vs))
	controls := 0
	for i, v := range vs {
		field := fmt.Sprintf("variants[%d]", i)
		if !ValidKey(v.Key) {
			return abgate.FieldErrorf(field+".key", "variant key %q must match [a-z0-9][a-z0-9-_]{0,63}", v.Key)
		}
		if j, dup := seen[v.Key]; dup {
			return abgate.FieldErrorf(field+".key", "variant key %q is also the key of variants[%d]", v.Key, j)
		}
		seen[v.Key] = i
		if utf8.RuneCountInString(v.Name) > maxNameLen || !utf8.ValidString(v.Name) {
			return abgate.FieldErrorf(field+".name", "variant name must be valid UTF-8 of at most %d characters", maxNameLen)
		}
		if v.Model == "" {
			return abgate.FieldErrorf(field+".model", "variant %q needs a model", v.Key)
		}
		if !ValidModelName(v.Model) {
			return abgate.FieldErrorf(field+".model", "model name %q must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}", v.Model)
		}
		if hasModel != nil && !hasModel(v.Model) {
			return abgate.FieldErrorf(field+".model", "model %q is not registered", v.Model)
		}
		if v.Shadow {
			if v.Control {
				return abgate.FieldErrorf(field+".shadow", "the control variant cannot be a shadow")
			}
			if !(v.ShadowPercent > 0 && v.ShadowPercent <= 100) {
				return abgate.FieldErrorf(field+".shadow_percent", "shadow_percent must be in (0, 100], got %v", v.ShadowPercent)
			}
			if v.Weight != 0 {
				return abgate.FieldErrorf(field+".weight", "a shadow variant takes no bucket; weight must be 0 or left out, got %v", v.Weight)
			}
			continue
		}
		if v.ShadowPercent != 0 {
			return abgate.FieldErrorf(field+".shadow_percent", "shadow_percent needs shadow: true")
		}
		if !(v.Weight > 0) || math.IsInf(v.Weight, 0) {
			return abgate.FieldErrorf(field+".weight", "weight of variant %q must be a number > 0, got %v", v.Key, v.Weight)
		}
		if v.Control {
			controls++
			if controls > 1 {
				return abgate.FieldErrorf(field+".control", "exactly one variant must be the control; variant %q is a second one", v.Key)
			}
		}
	}
	if controls == 0 {
		return abgate.FieldErrorf("variants", "exactly one variant must be the control (\"control\": true); none is")
	}
	return nil
}

func validateMetrics(ms []Metric) error {
	if len(ms) > MaxMetrics {
		return abgate.FieldErrorf("metrics", "at most %d metrics, got %d", MaxMetrics, len(ms))
	}
	seen := make(map[string]bool, len(ms))
	for i, m := range ms {
		field := fmt.Sprintf("metrics[%d]", i)
		if !ValidKey(m.Key) {
			return abgate.FieldErrorf(field+".key", "metric key %q must match [a-z0-9][a-z0-9-_]{0,63}", m.Key)
		}
		if seen[m.Key] {
			return abgate.FieldErrorf(field+".key", "metric key %q appears twice", m.Key)
		}
		seen[m.Key] = true
		switch m.Type {
		case MetricBinomial, MetricContinuous, MetricAccuracy, MetricErrorRate, MetricLatency:
		default:
			return abgate.FieldErrorf(field+".type", "metric type %q is not one of binomial, continuous, accuracy, error_rate, latency", m.Type)
		}
		switch m.Role {
		case RolePrimary, RoleSecondary, RoleGuardrail:
		default:
			return abgate.FieldErrorf(field+".role", "metric role %q is not one of primary, secondary, guardrail", m.Role)
		}
		switch m.Direction {
		case DirectionIncrease, DirectionDecrease:
		default:
			return abgate.FieldErrorf(field+".direction", "metric direction %q is not one of increase, decrease", m.Direction)
		}
		if !(m.WindowHours >= 0) || math.IsInf(m.WindowHours, 0) {
			return abgate.FieldErrorf(field+".window_hours", "window_hours must be >= 0 (0 = no limit), got %v", m.WindowHours)
		}
		if !(m.LookbackHours >= 0) || math.IsInf(m.LookbackHours, 0) {
			return abgate.FieldErrorf(field+".lookback_hours", "lookback_hours must be >= 0 (0 = no covariate), got %v", m.LookbackHours)
		}
	}
	return nil
}

func validateTargeting(cs []Condition) error {
	if len(cs) > MaxConditions {
		return abgate.FieldErrorf("targeting", "at most %d targeting conditions, got %d", MaxConditions, len(cs))
	}
	for i, c := range cs {
		field := fmt.Sprintf("targeting[%d]", i)
		if c.Source != "header" && c.Source != "body" {
			return abgate.FieldErrorf(field+".source", "targeting source %q is not one of header, body", c.Source)
		}
		if c.Name == "" || len(c.Name) > 256 {
			return abgate.FieldErrorf(field+".name", "targeting name must be 1 to 256 bytes")
		}
		if len(c.Values) > maxConditionVals {
			return abgate.FieldErrorf(field+".values", "at most %d values", maxConditionVals)
		}
		switch c.Op {
		case OpEquals, OpNotEquals:
			if len(c.Values) > 0 || c.Min != nil || c.Max != nil {
				return abgate.FieldErrorf(field+".value", "op %s takes value only", c.Op)
			}
		case OpIn, OpNotIn:
			if len(c.Values) == 0 || c.Value != "" || c.Min != nil || c.Max != nil {
				return abgate.FieldErrorf(field+".values", "op %s takes a non-empty values list only", c.Op)
			}
		case OpRegex:
			if len(c.Values) > 0 || c.Min != nil || c.Max != nil {
				return abgate.FieldErrorf(field+".value", "op regex takes value only")
			}
			if len(c.Value) > 1024 {
				return abgate.FieldErrorf(field+".value", "regex is longer than 1024 bytes")
			}
			if _, err := regexp.Compile(c.Value); err != nil {
				return abgate.FieldErrorf(field+".value", "regex does not compile: %v", err)
			}
		case OpRange:
			if c.Min == nil && c.Max == nil || c.Value != "" || len(c.Values) > 0 {
				return abgate.FieldErrorf(field+".min", "op range takes min, max or both")
			}
			if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
				return abgate.FieldErrorf(field+".max", "range max %v is below min %v", *c.Max, *c.Min)
			}
		default:
			return abgate.FieldErrorf(field+".op", "targeting op %q is not one of equals, not_equals, in, not_in, regex, range", c.Op)
		}
	}
	return nil
}

func validateAllowList(e *Experiment) error {
	if len(e.AllowList) > MaxAllowList {
		return abgate.FieldErrorf("allow_list", "at most %d allow-list entries, got %d", MaxAllowList, len(e.AllowList))
	}
	keys := make(map[string]bool, len(e.Variants))
	for _, v := range e.Variants {
		keys[v.Key] = !v.Shadow
	}
	for unit, variant := range e.AllowList {
		if unit == "" || len(unit) > 256 {
			return abgate.FieldErrorf("allow_list", "allow-list unit ids must be 1 to 256 bytes")
		}
		if !keys[variant] {
			return abgate.FieldErrorf("allow_list."+unit, "allow-list sends unit %q to %q, which is not a non-shadow variant of this experiment", unit, variant)
		}
	}
	return nil
}
