package analytics

// This file holds reference profiles for data drift: built from NDJSON
// rows of feature values (POST /api/v1/models/{m}/reference), one per model
// and optionally per variant. Numeric features are binned on quantiles of
// the reference, frozen (open-ended at both ends); categorical ones keep
// their most frequent categories and an "unseen" bucket.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"abgate"
	"abgate/analytics/drift"
)

// Limits of reference profiles.
const (
	MaxReferenceRows     = 1_000_000
	MaxReferenceFeatures = 200
	MaxCategories        = 100
	DefaultBins          = 10
	// categoricalUnique is the most distinct values a numeric feature may
	// have and still be treated as categorical.
	categoricalUnique = 5
)

// Feature types.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// PredictionFeature and ConfidenceFeature are the names under which
// predicted classes and their confidence are profiled and observed.
const (
	PredictionFeature = "prediction"
	ConfidenceFeature = "confidence"
)

// Profile is the reference profile of a model (Variant "" ) or of one
// variant.
type Profile struct {
	Model     string           `json:"model"`
	Variant   string           `json:"variant"`
	Rows      int              `json:"rows"`
	Bins      int              `json:"bins"`
	Features  []FeatureProfile `json:"features"`
	CreatedAt time.Time        `json:"created_at"`
}

// FeatureProfile is one feature of a Profile. Counts has one entry per bin:
// len(Edges)+1 for numeric features, len(Categories)+1 for categorical ones
// (the last is "unseen").
type FeatureProfile struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Method     drift.Method   `json:"method"`
	Edges      []float64      `json:"edges,omitempty"`
	Categories []string       `json:"categories,omitempty"`
	Counts     []float64      `json:"counts"`
	Nulls      float64        `json:"nulls"`
	Summary    *drift.Summary `json:"summary,omitempty"`
}

// feature returns the profile of name, nil when the profile has none.
func (p *Profile) feature(name string) *FeatureProfile {
	for i := range p.Features {
		if p.Features[i].Name == name {
			return &p.Features[i]
		}
	}
	return nil
}

// binOf returns the bin of a JSON value (-1 for null); EINVALID when its
// type does not fit the feature.
func (f *FeatureProfile) binOf(v any) (int, error) {
	if v == nil {
		return -1, nil
	}
	if f.Type == Numeric {
		x, ok := numberOf(v)
		if !ok {
			return 0, abgate.FieldErrorf(f.Name, "feature %q is numeric in the reference, got %s", f.Name, jsonType(v))
		}
		if math.IsNaN(x) {
			return -1, nil
		}
		return drift.Bin(f.Edges, x), nil
	}
	s, ok := categoryOf(v)
	if !ok {
		return 0, abgate.FieldErrorf(f.Name, "feature %q is categorical in the reference, got %s", f.Name, jsonType(v))
	}
	for i, c := range f.Categories {
		if c == s {
			return i, nil
		}
	}
	return len(f.Categories), nil
}

// numberOf returns a JSON number as a float64.
func numberOf(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	x, err := n.Float64()
	return x, err == nil && !math.IsInf(x, 0)
}

// categoryOf returns a JSON string, number or boolean as a category.
func categoryOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// ReferenceOptions are the choices of a reference upload.
type ReferenceOptions struct {
	Variant string
	// Bins is the number of quantile bins of numeric features (2 to 100);
	// 0 means DefaultBins.
	Bins int
	// Types and Methods override the detected type and the chosen method
	// of features by name.
	Types   map[string]string
	Methods map[string]drift.Method
}

// column gathers one feature's reference values.
type column struct {
	numbers []float64 // NaN for null, when every value so far is numeric
	cats    map[string]float64
	nulls   float64
	numeric bool
	seen    int
}

// ParseReferenceRow decodes one NDJSON line of feature values: a JSON
// object whose values are numbers, strings, booleans or null.
func ParseReferenceRow(line []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "not a JSON object of feature values: %v", err)
	}
	if row == nil {
		return nil, abgate.Errorf(abgate.EINVALID, "not a JSON object of feature values")
	}
	if dec.More() {
		return nil, abgate.Errorf(abgate.EINVALID, "one JSON object per line: found more after the first")
	}
	for name, v := range row {
		if name == "" || len(name) > 128 {
			return nil, abgate.Errorf(abgate.EINVALID, "feature names must be 1 to 128 bytes")
		}
		switch v.(type) {
		case []any, map[string]any:
			return nil, abgate.FieldErrorf(name, "feature %q must be a number, string, boolean or null, got %s", name, jsonType(v))
		}
	}
	return row, nil
}

// BuildProfile reads NDJSON rows of feature values from r and builds the
// profile of model. Errors are EINVALID with the line number: a bad line,
// no rows, too many, a feature null in every row, a type override that
// the values do not fit.
func BuildProfile(model string, r io.Reader, opts ReferenceOptions) (*Profile, error) {
	bins := opts.Bins
	if bins == 0 {
		bins = DefaultBins
	}
	if bins < 2 || bins > 100 {
		return nil, abgate.FieldErrorf("bins", "bins must be between 2 and 100, got %d", bins)
	}
	for name, t := range opts.Types {
		if t != Numeric && t != Categorical {
			return nil, abgate.FieldErrorf("types", "type of %q must be numeric or categorical, got %q", name, t)
		}
	}
	cols := map[string]*column{}
	rows := 0
	err := eachLine(r, func(line int, text []byte, tooLong bool) error {
		if tooLong {
			return abgate.Errorf(abgate.EINVALID, "line %d is longer than %d bytes", line, MaxEventLine)
		}
		row, perr := ParseReferenceRow(text)
		if perr != nil {
			return abgate.Errorf(abgate.EINVALID, "line %d: %s", line, abgate.ErrorMessage(perr))
		}
		rows++
		if rows > MaxReferenceRows {
			return abgate.Errorf(abgate.EINVALID, "a reference holds at most %d rows", MaxReferenceRows)
		}
		for name, v := range row {
			c := cols[name]
			if c == nil {
				if len(cols) >= MaxReferenceFeatures {
					return abgate.Errorf(abgate.EINVALID, "line %d: a reference holds at most %d features", line, MaxReferenceFeatures)
				}
				c = &column{cats: map[string]float64{}, numeric: true}
				// Rows before this one did not have the feature: null.
				c.nulls = float64(rows - 1)
				c.numbers = make([]float64, rows-1)
				for i := range c.numbers {
					c.numbers[i] = math.NaN()
				}
				cols[name] = c
			}
			c.add(v)
		}
		for name, c := range cols {
			if _, ok := row[name]; !ok {
				c.add(nil)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rows == 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "the reference is empty: send NDJSON rows of feature values")
	}
	p := &Profile{Model: model, Variant: opts.Variant, Rows: rows, Bins: bins}
	names := make([]string, 0, len(cols))
	for name := range cols {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		typ := opts.Types[name]
		if name == PredictionFeature && typ == "" {
			typ = Categorical // predicted classes, whatever their labels look like
		}
		f, err := cols[name].profile(name, bins, typ, float64(rows))
		if err != nil {
			return nil, err
		}
		if m, ok := opts.Methods[name]; ok {
			f.Method = m
		}
		p.Features = append(p.Features, *f)
	}
	for name := range opts.Types {
		if cols[name] == nil {
			return nil, abgate.FieldErrorf("types", "feature %q of the type overrides is not in the reference", name)
		}
	}
	for name := range opts.Methods {
		if cols[name] == nil {
			return nil, abgate.FieldErrorf("methods", "feature %q of the method overrides is not in the reference", name)
		}
	}
	return p, nil
}

// add records one value (nil for null or absent).
func (c *column) add(v any) {
	c.seen++
	if v == nil {
		c.nulls++
		if c.numeric {
			c.numbers = append(c.numbers, math.NaN())
		}
		return
	}
	if s, ok := categoryOf(v); ok {
		if _, known := c.cats[s]; known || len(c.cats) < 10*MaxCategories {
			c.cats[s]++
		}
	}
	if !c.numeric {
		return
	}
	if x, ok := numberOf(v); ok {
		c.numbers = append(c.numbers, x)
		return
	}
	c.numeric, c.numbers = false, nil
}

// profile builds the feature's profile; typ "" detects the type.
func (c *column) profile(name string, bins int, typ string, rows float64) (*FeatureProfile, error) {
	if c.nulls == rows {
		return nil, abgate.FieldErrorf(name, "feature %q is null in every row of the reference: nothing to compare with", name)
	}
	if typ == Numeric && !c.numeric {
		return nil, abgate.FieldErrorf(name, "feature %q is declared numeric but has values that are not numbers", name)
	}
	if typ == "" {
		typ = Categorical
		if c.numeric && len(c.cats) > categoricalUnique {
			typ = Numeric
		}
	}
	f := &FeatureProfile{Name: name, Type: typ, Nulls: c.nulls}
	if typ == Numeric {
		edges, err := drift.QuantileEdges(c.numbers, bins)
		if err != nil {
			return nil, abgate.FieldErrorf(name, "feature %q: %s", name, abgate.ErrorMessage(err))
		}
		f.Edges = edges
		f.Counts = make([]float64, len(edges)+1)
		for _, x := range c.numbers {
			if !math.IsNaN(x) {
				f.Counts[drift.Bin(edges, x)]++
			}
		}
		s := drift.Summarize(c.numbers)
		f.Summary = &s
		f.Method = drift.Choose(false, s.Unique, rows-c.nulls)
		if f.Method == drift.MethodWasserstein {
			// Live data is kept as histograms, not samples, and the
			// Wasserstein distance from bins overstates small distances
			// (wide open-ended tail bins): PSI, made for bins, decides;
			// the distance is still reported.
			f.Method = drift.MethodPSI
		}
		return f, nil
	}
	type kv struct {
		k string
		n float64
	}
	var cats []kv
	for k, n := range c.cats {
		cats = append(cats, kv{k, n})
	}
	sort.Slice(cats, func(i, j int) bool {
		if cats[i].n != cats[j].n {
			return cats[i].n > cats[j].n
		}
		return cats[i].k < cats[j].k
	})
	var unseen float64
	for i, x := range cats {
		if i < MaxCategories {
			f.Categories = append(f.Categories, x.k)
			f.Counts = append(f.Counts, x.n)
		} else {
			unseen += x.n
		}
	}
	f.Counts = append(f.Counts, unseen)
	f.Method = drift.Choose(true, len(cats), rows-c.nulls)
	return f, nil
}

// referenceRow is a row of drift_references.
type referenceRow struct {
	ID        int64 `gorm:"primaryKey"`
	Model     string
	Variant   string
	Rows      int
	Profile   string
	CreatedAt time.Time
}

func (referenceRow) TableName() string { return "drift_references" }

// SaveReference stores p as the reference of its model and variant,
// replacing the previous one (whose observed counts go with it). ENOTFOUND
// when the model is not registered.
func (s *Service) SaveReference(ctx context.Context, p *Profile) error {
	var n int64
	db := s.db.WithContext(ctx)
	if err := db.Table("models").Where("name = ?", p.Model).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return abgate.Errorf(abgate.ENOTFOUND, "model %q not found", p.Model)
	}
	p.CreatedAt = s.opts.Now().UTC()
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("model = ? AND variant = ?", p.Model, p.Variant).Delete(&referenceRow{}).Error; err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&referenceRow{Model: p.Model, Variant: p.Variant,
			Rows: p.Rows, Profile: string(body), CreatedAt: p.CreatedAt}).Error
	})
}

// Reference returns the reference of model for variant: the variant's own,
// else the model's (variant ""). ENOTFOUND when there is none.
func (s *Service) Reference(ctx context.Context, model, variant string) (int64, *Profile, error) {
	var rows []referenceRow
	err := s.db.WithContext(ctx).Where("model = ? AND variant IN ?", model, []string{variant, ""}).
		Order("variant DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return 0, nil, err
	}
	if len(rows) == 0 {
		return 0, nil, abgate.Errorf(abgate.ENOTFOUND, "model %q has no reference profile: POST one to /api/v1/models/%s/reference", model, model)
	}
	var p Profile
	if err := json.Unmarshal([]byte(rows[0].Profile), &p); err != nil {
		return 0, nil, fmt.Errorf("decode reference %d: %w", rows[0].ID, err)
	}
	return rows[0].ID, &p, nil
}

// parseOverrides parses "name:value,name:value".
func parseOverrides(field, s string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, v, ok := strings.Cut(item, ":")
		if !ok || name == "" || v == "" {
			return nil, abgate.FieldErrorf(field, "%s must read feature:value,feature:value, got %q", field, item)
		}
		out[name] = v
	}
	return out, nil
}

// ReferenceFromTraffic makes a new reference of model (for variant, ""
// for the model) from the traffic observed in [from, to): the bins and
// categories of its current reference, with the counts of the window
// (captured and uploaded observations of that variant, or of every variant
// when variant is ""). Means, standard deviations, minimums and maximums
// are estimated from the bins (values at bin midpoints; the open ends at
// the current reference's minimum and maximum). ENOTFOUND when the model
// has no reference; EINVALID when the window holds no observation.
func (s *Service) ReferenceFromTraffic(ctx context.Context, model, variant string, from, to time.Time) (*Profile, error) {
	if !from.Before(to) {
		return nil, abgate.FieldErrorf("from", "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	refID, cur, err := s.Reference(ctx, model, variant)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Feature string
		Bin     int
		N       float64
	}
	q := s.db.WithContext(ctx).Table("drift_counts").Select("feature, bin, SUM(count) AS n").
		Where("reference_id = ? AND hour >= ? AND hour < ? AND bin >= -1", refID, from.UTC(), to.UTC())
	if variant != "" {
		q = q.Where("variant IN ?", []string{variant, ""})
	}
	if err := q.Group("feature, bin").Scan(&rows).Error; err != nil {
		return nil, err
	}
	p := &Profile{Model: model, Variant: variant, Bins: cur.Bins}
	counts := map[string][]float64{}
	nulls := map[string]float64{}
	for _, r := range rows {
		f := cur.feature(r.Feature)
		switch {
		case f == nil:
		case r.Bin == -1:
			nulls[r.Feature] += r.N
		case r.Bin < len(f.Counts):
			if counts[r.Feature] == nil {
				counts[r.Feature] = make([]float64, len(f.Counts))
			}
			counts[r.Feature][r.Bin] += r.N
		}
	}
	for _, f := range cur.Features {
		c := counts[f.Name]
		var n float64
		for _, x := range c {
			n += x
		}
		if n == 0 {
			continue // not observed in the window: left out
		}
		nf := FeatureProfile{Name: f.Name, Type: f.Type, Method: f.Method, Edges: f.Edges, Categories: f.Categories,
			Counts: c, Nulls: nulls[f.Name]}
		if f.Type == Numeric && f.Summary != nil {
			sum := binnedSummary(f.Edges, c, f.Summary.Min, f.Summary.Max)
			sum.Nulls = nf.Nulls
			nf.Summary = &sum
		}
		p.Features = append(p.Features, nf)
		p.Rows = max(p.Rows, int(n+nf.Nulls))
	}
	if len(p.Features) == 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "no observation of model %q between %s and %s: nothing to make a reference of",
			model, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return p, nil
}

// binnedSummary estimates the summary of values binned on edges: each bin's
// values at its midpoint, the open ends closed at lo and hi.
func binnedSummary(edges, counts []float64, lo, hi float64) drift.Summary {
	var n, sum, sq float64
	s := drift.Summary{Min: math.Inf(1), Max: math.Inf(-1)}
	for k, c := range counts {
		if c == 0 {
			continue
		}
		left, right := lo, hi
		if k > 0 {
			left = edges[k-1]
		}
		if k < len(edges) {
			right = edges[k]
		}
		left, right = math.Min(left, right), math.Max(left, right)
		mid := (left + right) / 2
		n += c
		sum += c * mid
		sq += c * mid * mid
		s.Min, s.Max = math.Min(s.Min, left), math.Max(s.Max, right)
		s.Unique++
	}
	s.N = n
	s.Mean = sum / n
	s.Std = math.Sqrt(math.Max(0, sq/n-s.Mean*s.Mean))
	return s
}
