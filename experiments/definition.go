package experiments

import (
	"fmt"
	"maps"
	"slices"

	"abgate"
)

// Definition is the body of POST /api/v1/experiments. Pointer fields are
// optional and take their defaults when nil.
type Definition struct {
	Key         string  `json:"key"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Route       string  `json:"route"`
	HashSeed    *string `json:"hash_seed"`
	// HashVersion defaults to 2.
	HashVersion *int `json:"hash_version"`
	// Coverage defaults to 1.
	Coverage *float64 `json:"coverage"`
	Layer    string   `json:"layer"`
	// LayerRange defaults to [0, 1] when Layer is set.
	LayerRange []float64         `json:"layer_range"`
	Variants   []Variant         `json:"variants"`
	Metrics    []Metric          `json:"metrics"`
	Targeting  []Condition       `json:"targeting"`
	AllowList  map[string]string `json:"allow_list"`
}

// Experiment returns the draft experiment d defines, with defaults filled
// in. It does not validate: call Validate on the result.
func (d Definition) Experiment() (*Experiment, error) {
	e := &Experiment{
		Key:         d.Key,
		Name:        d.Name,
		Description: d.Description,
		Route:       d.Route,
		Status:      StatusDraft,
		HashSeed:    d.Key,
		HashVersion: 2,
		Coverage:    1,
		Layer:       d.Layer,
		LayerRange:  [2]float64{0, 1},
		Variants:    slices.Clone(d.Variants),
		Metrics:     slices.Clone(d.Metrics),
		Targeting:   slices.Clone(d.Targeting),
		AllowList:   maps.Clone(d.AllowList),
		Version:     1,
	}
	if e.Name == "" {
		e.Name = e.Key
	}
	if d.HashSeed != nil {
		e.HashSeed = *d.HashSeed
	}
	if d.HashVersion != nil {
		e.HashVersion = *d.HashVersion
	}
	if d.Coverage != nil {
		e.Coverage = *d.Coverage
	}
	if d.LayerRange != nil {
		r, err := layerRange(d.LayerRange)
		if err != nil {
			return nil, err
		}
		if d.Layer == "" {
			return nil, abgate.FieldErrorf("layer_range", "layer_range needs a layer")
		}
		e.LayerRange = r
	}
	normalize(e)
	return e, nil
}

func layerRange(r []float64) ([2]float64, error) {
	if len(r) != 2 {
		return [2]float64{}, abgate.FieldErrorf("layer_range", "layer_range must be [start, end], got %d numbers", len(r))
	}
	return [2]float64{r[0], r[1]}, nil
}

// normalize fills the defaults that depend on other fields.
func normalize(e *Experiment) {
	if e.Variants == nil {
		e.Variants = []Variant{}
	}
	if e.Metrics == nil {
		e.Metrics = []Metric{}
	}
	if e.Targeting == nil {
		e.Targeting = []Condition{}
	}
	if e.AllowList == nil {
		e.AllowList = map[string]string{}
	}
	for i := range e.Metrics {
		m := &e.Metrics[i]
		if m.Direction == "" {
			m.Direction = DirectionIncrease
			if m.Type == MetricErrorRate || m.Type == MetricLatency {
				m.Direction = DirectionDecrease
			}
		}
		if m.Role == "" {
			m.Role = RolePrimary
		}
	}
}

// Patch is the body of PATCH /api/v1/experiments/{key}. Nil fields are left
// as they are. Version (or the If-Match header) must name the version the
// change was made against.
type Patch struct {
	Version     *int64             `json:"version"`
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Route       *string            `json:"route"`
	HashSeed    *string            `json:"hash_seed"`
	HashVersion *int               `json:"hash_version"`
	Coverage    *float64           `json:"coverage"`
	Layer       *string            `json:"layer"`
	LayerRange  []float64          `json:"layer_range"`
	Variants    []VariantPatch     `json:"variants"`
	Metrics     *[]Metric          `json:"metrics"`
	Targeting   *[]Condition       `json:"targeting"`
	AllowList   *map[string]string `json:"allow_list"`
}

// VariantPatch changes the variant named by Key. In a draft, Patch.Variants
// is the whole new list (variants left out are removed, new keys added);
// afterwards it may only change the weights and names of existing ones.
type VariantPatch struct {
	Key           string   `json:"key"`
	Name          *string  `json:"name"`
	Model         *string  `json:"model"`
	Weight        *float64 `json:"weight"`
	Control       *bool    `json:"control"`
	Shadow        *bool    `json:"shadow"`
	ShadowPercent *float64 `json:"shadow_percent"`
}

// Apply returns a copy of e with p applied. Changes that e's state forbids
// are ECONFLICT errors naming the field; Apply does not validate the
// result: call Validate on it.
func (p Patch) Apply(e *Experiment) (*Experiment, error) {
	if e.Status == StatusArchived {
		return nil, abgate.Errorf(abgate.ECONFLICT, "experiment %q is archived and cannot change", e.Key)
	}
	locked := e.Status != StatusDraft
	lockedErr := func(field string) error {
		return &abgate.Error{Code: abgate.ECONFLICT, Field: field,
			Message: fmt.Sprintf("%s cannot change once experiment %q has started (status %s)", field, e.Key, e.Status)}
	}
	out := clone(e)
	if p.Name != nil {
		out.Name = *p.Name
	}
	if p.Description != nil {
		out.Description = *p.Description
	}
	if p.Coverage != nil {
		out.Coverage = *p.Coverage
	}
	if p.Metrics != nil {
		out.Metrics = slices.Clone(*p.Metrics)
	}
	if p.Targeting != nil {
		out.Targeting = slices.Clone(*p.Targeting)
	}
	if p.AllowList != nil {
		out.AllowList = maps.Clone(*p.AllowList)
	}
	for _, c := range []struct {
		field   string
		changed bool
	}{
		{"route", p.Route != nil && *p.Route != e.Route},
		{"hash_seed", p.HashSeed != nil && *p.HashSeed != e.HashSeed},
		{"hash_version", p.HashVersion != nil && *p.HashVersion != e.HashVersion},
		{"layer", p.Layer != nil && *p.Layer != e.Layer},
	} {
		if c.changed && locked {
			return nil, lockedErr(c.field)
		}
	}
	if p.Route != nil {
		out.Route = *p.Route
	}
	if p.HashSeed != nil {
		out.HashSeed = *p.HashSeed
	}
	if p.HashVersion != nil {
		out.HashVersion = *p.HashVersion
	}
	if p.Layer != nil {
		out.Layer = *p.Layer
		if out.Layer == "" {
			out.LayerRange = [2]float64{0, 1}
		}
	}
	if p.LayerRange != nil {
		r, err := layerRange(p.LayerRange)
		if err != nil {
			return nil, err
		}
		if locked && r != e.LayerRange {
			return nil, lockedErr("layer_range")
		}
		if out.Layer == "" {
			return nil, abgate.FieldErrorf("layer_range", "layer_range needs a layer")
		}
		out.LayerRange = r
	}
	if p.Variants != nil {
		variants, err := p.applyVariants(e, locked)
		if err != nil {
			return nil, err
		}
		out.Variants = variants
	}
	normalize(out)
	return out, nil
}

func (p Patch) applyVariants(e *Experiment, locked bool) ([]Variant, error) {
	current := make(map[string]Variant, len(e.Variants))
	for _, v := range e.Variants {
		current[v.Key] = v
	}
	seen := make(map[string]bool, len(p.Variants))
	out := make([]Variant, 0, len(p.Variants))
	for i, vp := range p.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		v, exists := current[vp.Key]
		if !exists && locked {
			return nil, &abgate.Error{Code: abgate.ECONFLICT, Field: field + ".key",
				Message: fmt.Sprintf("variant %q cannot be added to experiment %q once it has started (status %s)", vp.Key, e.Key, e.Status)}
		}
		if seen[vp.Key] {
			return nil, abgate.FieldErrorf(field+".key", "variant key %q appears twice", vp.Key)
		}
		seen[vp.Key] = true
		v.Key = vp.Key
		lockedChange := func(name string, changed bool) error {
			if locked && changed {
				return &abgate.Error{Code: abgate.ECONFLICT, Field: field + "." + name,
					Message: fmt.Sprintf("%s of variant %q cannot change once experiment %q has started (status %s)", name, vp.Key, e.Key, e.Status)}
			}
			return nil
		}
		if vp.Model != nil {
			if err := lockedChange("model", *vp.Model != v.Model); err != nil {
				return nil, err
			}
			v.Model = *vp.Model
		}
		if vp.Control != nil {
			if err := lockedChange("control", *vp.Control != v.Control); err != nil {
				return nil, err
			}
			v.Control = *vp.Control
		}
		if vp.Shadow != nil {
			if err := lockedChange("shadow", *vp.Shadow != v.Shadow); err != nil {
				return nil, err
			}
			v.Shadow = *vp.Shadow
		}
		if vp.Name != nil {
			v.Name = *vp.Name
		}
		if vp.Weight != nil {
			v.Weight = *vp.Weight
		}
		if vp.ShadowPercent != nil {
			v.ShadowPercent = *vp.ShadowPercent
		}
		out = append(out, v)
	}
	if !locked {
		return out, nil
	}
	// A started experiment keeps its variants and their order: the order
	// lays out the bucket ranges, so reordering would move units.
	byKey := make(map[string]Variant, len(out))
	for _, v := range out {
		byKey[v.Key] = v
	}
	ordered := make([]Variant, 0, len(e.Variants))
	for _, v := range e.Variants {
		if !seen[v.Key] {
			return nil, &abgate.Error{Code: abgate.ECONFLICT, Field: "variants",
				Message: fmt.Sprintf("variant %q cannot be removed from experiment %q once it has started (status %s)", v.Key, e.Key, e.Status)}
		}
		ordered = append(ordered, byKey[v.Key])
	}
	return ordered, nil
}

func clone(e *Experiment) *Experiment {
	c := *e
	c.Variants = slices.Clone(e.Variants)
	c.Metrics = slices.Clone(e.Metrics)
	c.Targeting = slices.Clone(e.Targeting)
	c.AllowList = maps.Clone(e.AllowList)
	return &c
}
