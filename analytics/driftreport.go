package analytics

// This file holds the drift report of an experiment: per variant, the data
// drift of every feature of its model's reference (from the hourly
// histograms of the window), the prediction drift, and the performance
// against the control.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"abgate"
	"abgate/analytics/drift"
)

// DriftReport is the Drift JSON of GET /api/v1/experiments/{key}/drift.
type DriftReport struct {
	Experiment string         `json:"experiment"`
	Window     DriftWindow    `json:"window"`
	Variants   []VariantDrift `json:"variants"`
}

// DriftWindow is the [from, to) of a report.
type DriftWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// VariantDrift is one variant's drift.
type VariantDrift struct {
	Key     string `json:"key"`
	Model   string `json:"model"`
	Control bool   `json:"control"`
	// Reference is null when the model has no reference profile; the data
	// and prediction drift are then empty.
	Reference       *ReferenceInfo `json:"reference"`
	Observations    float64        `json:"observations"`
	DatasetDrift    bool           `json:"dataset_drift"`
	DriftShare      float64        `json:"drift_share"`
	Features        []FeatureDrift `json:"features"`
	PredictionDrift *FeatureDrift  `json:"prediction_drift"`
	// ConfidenceDrift compares the confidence of the answers when the
	// reference has a "confidence" column.
	ConfidenceDrift *FeatureDrift   `json:"confidence_drift,omitempty"`
	Performance     PerformanceInfo `json:"performance"`
}

// ReferenceInfo names the reference a variant is compared with.
type ReferenceInfo struct {
	ID        int64     `json:"id"`
	Variant   string    `json:"variant"`
	Rows      int       `json:"rows"`
	CreatedAt time.Time `json:"created_at"`
}

// FeatureDrift is one feature compared with the reference. Statistic is the
// chosen method's (a p-value test's statistic, or a distance); PSI and KS
// (binned) are given for every feature, Wasserstein for numeric ones.
type FeatureDrift struct {
	Name         string         `json:"name"`
	Type         string         `json:"type"`
	Method       string         `json:"method"`
	Statistic    *float64       `json:"statistic"`
	PValue       *float64       `json:"p_value,omitempty"`
	AdjustedP    *float64       `json:"adjusted_p_value,omitempty"`
	Threshold    float64        `json:"threshold"`
	Drifted      bool           `json:"drifted"`
	Severity     drift.Severity `json:"severity"`
	PSI          *float64       `json:"psi"`
	KS           *float64       `json:"ks"`
	Wasserstein  *float64       `json:"wasserstein_normed,omitempty"`
	Observations float64        `json:"observations"`
	Nulls        float64        `json:"nulls"`
	// NewFeature marks a feature seen in the window that the reference
	// does not have: nothing to compare it with.
	NewFeature bool `json:"new_feature,omitempty"`
}

// PerformanceInfo is a variant's performance in the window, and its drop
// against the baseline (the control variant in the same window; the
// control against its previous window).
type PerformanceInfo struct {
	Predictions      float64        `json:"predictions"`
	Labelled         float64        `json:"labelled"`
	Accuracy         *float64       `json:"accuracy"`
	MacroPrecision   *float64       `json:"macro_precision"`
	MacroRecall      *float64       `json:"macro_recall"`
	AverageConf      *float64       `json:"average_confidence"`
	ErrorRate        *float64       `json:"error_rate"`
	LatencyP95MS     *float64       `json:"latency_p95_ms"`
	Baseline         string         `json:"baseline"`
	BaselineAccuracy *float64       `json:"baseline_accuracy"`
	RelativeDrop     *float64       `json:"relative_drop"`
	Severity         drift.Severity `json:"severity"`
}

// Drift computes the drift report of experiment key over [from, to).
// ENOTFOUND for an unknown experiment; EINVALID for an empty window.
func (s *Service) Drift(ctx context.Context, key string, from, to time.Time) (*DriftReport, error) {
	if !from.Before(to) {
		return nil, abgate.FieldErrorf("from", "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	e, id, ids, err := s.experiment(ctx, key)
	if err != nil {
		return nil, err
	}
	r := &DriftReport{Experiment: key, Window: DriftWindow{From: from.UTC(), To: to.UTC()}, Variants: []VariantDrift{}}
	perf := map[string]PerformanceInfo{}
	for _, v := range primaryVariants(e) {
		vd := VariantDrift{Key: v.Key, Model: v.Model, Control: v.Control, Features: []FeatureDrift{}}
		refID, p, err := s.Reference(ctx, v.Model, v.Key)
		switch {
		case abgate.ErrorCode(err) == abgate.ENOTFOUND:
		case err != nil:
			return nil, err
		default:
			vd.Reference = &ReferenceInfo{ID: refID, Variant: p.Variant, Rows: p.Rows, CreatedAt: p.CreatedAt}
			if err := s.dataDrift(ctx, &vd, refID, p, v.Key, from, to); err != nil {
				return nil, err
			}
		}
		pi, err := s.performance(ctx, id, ids[v.Key], v.Model, v.Key, from, to)
		if err != nil {
			return nil, err
		}
		perf[v.Key] = pi
		vd.Performance = pi
		r.Variants = append(r.Variants, vd)
	}
	// Performance drift: each variant against the control in the window;
	// the control against itself in the window before.
	ctl := e.Control()
	for i := range r.Variants {
		vd := &r.Variants[i]
		var base PerformanceInfo
		if vd.Control || ctl == nil {
			prev, err := s.performance(ctx, id, ids[vd.Key], vd.Model, vd.Key, from.Add(-to.Sub(from)), from)
			if err != nil {
				return nil, err
			}
			base, vd.Performance.Baseline = prev, "previous_window"
		} else {
			base, vd.Performance.Baseline = perf[ctl.Key], "control"
		}
		vd.Performance.BaselineAccuracy = base.Accuracy
		vd.Performance.Severity = drift.SeverityNone
		if base.Accuracy != nil && vd.Performance.Accuracy != nil {
			if d, sev, err := drift.RelativeDrop(*base.Accuracy, *vd.Performance.Accuracy, false); err == nil {
				vd.Performance.RelativeDrop, vd.Performance.Severity = num(d), sev
			}
		}
	}
	return r, nil
}

// dataDrift fills the features and prediction drift of vd from the counts
// of reference refID in the window.
func (s *Service) dataDrift(ctx context.Context, vd *VariantDrift, refID int64, p *Profile, variant string, from, to time.Time) error {
	var rows []struct {
		Feature string
		Bin     int
		N       float64
	}
	err := s.db.WithContext(ctx).Raw(`SELECT feature, bin, SUM(count) AS n FROM drift_counts
WHERE reference_id = ? AND variant IN (?, '') AND hour >= ? AND hour < ?
GROUP BY feature, bin`, refID, variant, from.UTC(), to.UTC()).Scan(&rows).Error
	if err != nil {
		return err
	}
	cur := map[string][]float64{}
	nulls := map[string]float64{}
	newFeatures := map[string]float64{}
	for _, r := range rows {
		f := p.feature(r.Feature)
		switch {
		case r.Bin == -2 || f == nil:
			newFeatures[r.Feature] += r.N
		case r.Bin == -1:
			nulls[r.Feature] += r.N
		case r.Bin < len(f.Counts):
			if cur[r.Feature] == nil {
				cur[r.Feature] = make([]float64, len(f.Counts))
			}
			cur[r.Feature][r.Bin] += r.N
		}
	}
	var results []drift.FeatureResult
	var drifts []FeatureDrift
	for i := range p.Features {
		f := &p.Features[i]
		c := cur[f.Name]
		fd := compareFeature(f, c, nulls[f.Name])
		switch f.Name {
		case PredictionFeature:
			vd.PredictionDrift = &fd
			continue
		case ConfidenceFeature:
			vd.ConfidenceDrift = &fd
			continue
		}
		if fd.Statistic == nil {
			drifts = append(drifts, fd)
			continue
		}
		vd.Observations = math.Max(vd.Observations, fd.Observations+fd.Nulls)
		drifts = append(drifts, fd)
		results = append(results, drift.FeatureResult{Feature: fd.Name, Method: drift.Method(fd.Method),
			Statistic: *fd.Statistic, PValue: fd.PValue, Threshold: fd.Threshold, Drifted: fd.Drifted, Severity: fd.Severity})
	}
	if len(results) > 0 {
		drifted, share, adjusted := drift.DatasetDrift(results, s.driftShare())
		vd.DatasetDrift, vd.DriftShare = drifted, share
		byName := map[string]drift.FeatureResult{}
		for _, a := range adjusted {
			byName[a.Feature] = a
		}
		for i := range drifts {
			if a, ok := byName[drifts[i].Name]; ok {
				drifts[i].AdjustedP, drifts[i].Drifted, drifts[i].Severity = a.AdjustedP, a.Drifted, a.Severity
			}
		}
	}
	names := make([]string, 0, len(newFeatures))
	for name := range newFeatures {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		drifts = append(drifts, FeatureDrift{Name: name, Method: "new_feature", NewFeature: true,
			Observations: newFeatures[name], Severity: drift.SeverityNone})
	}
	vd.Features = drifts
	return nil
}

// compareFeature compares the current counts cur (nil: none) of feature f
// with its reference.
func compareFeature(f *FeatureProfile, cur []float64, nulls float64) FeatureDrift {
	fd := FeatureDrift{Name: f.Name, Type: f.Type, Method: string(f.Method), Threshold: f.Method.DefaultThreshold(),
		Nulls: nulls, Severity: drift.SeverityNone}
	var n float64
	for _, x := range cur {
		n += x
	}
	fd.Observations = n
	if n == 0 {
		return fd // nothing observed: no statistic
	}
	if x, err := drift.PSI(f.Counts, cur); err == nil {
		fd.PSI = num(x)
	}
	if f.Type == Numeric {
		if d, _, err := drift.KSBinned(f.Edges, f.Counts, cur); err == nil {
			fd.KS = num(d)
		}
		if f.Summary != nil {
			if w, err := drift.WassersteinBinned(f.Edges, f.Counts, cur, f.Summary.Min, f.Summary.Max, f.Summary.Std); err == nil {
				fd.Wasserstein = num(w)
			}
		}
	}
	var stat, p float64
	var err error
	switch f.Method {
	case drift.MethodKS:
		stat, p, err = drift.KSBinned(f.Edges, f.Counts, cur)
	case drift.MethodChiSquare:
		stat, p, err = drift.ChiSquare(f.Counts, cur)
	case drift.MethodPSI:
		stat, err = drift.PSI(f.Counts, cur)
	case drift.MethodJensenShannon:
		stat, err = drift.JensenShannon(f.Counts, cur)
	case drift.MethodWasserstein:
		if f.Summary == nil {
			err = abgate.Errorf(abgate.EINVALID, "no summary")
		} else {
			stat, err = drift.WassersteinBinned(f.Edges, f.Counts, cur, f.Summary.Min, f.Summary.Max, f.Summary.Std)
		}
	}
	if err != nil {
		return fd
	}
	fd.Statistic = num(stat)
	if f.Method.PValueBased() {
		fd.PValue = num(p)
		fd.Drifted = p < fd.Threshold
		fd.Severity = drift.SeverityP(p, fd.Threshold)
	} else {
		fd.Drifted = stat >= fd.Threshold
		fd.Severity = drift.SeverityDistance(stat, fd.Threshold)
	}
	return fd
}

func (s *Service) driftShare() float64 {
	if s.opts.DriftShare > 0 {
		return s.opts.DriftShare
	}
	return drift.DefaultDriftShare
}

// performance computes the performance of a variant (id variantID of
// experiment id, serving model) in [from, to): routed predictions from the
// exposures, labels joined by request id, labelled observations.
func (s *Service) performance(ctx context.Context, id, variantID int64, model, variant string, from, to time.Time) (PerformanceInfo, error) {
	db := s.db.WithContext(ctx)
	var pi PerformanceInfo
	var ex []struct {
		N, Errors, Routed float64
		Conf              *float64
	}
	err := db.Raw(`SELECT COUNT(*) AS n,
  SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS errors,
  SUM(CASE WHEN status > 0 THEN 1 ELSE 0 END) AS routed,
  AVG(confidence) AS conf
FROM exposures WHERE experiment_id = ? AND variant_id = ? AND shadow = ? AND at >= ? AND at < ?`,
		id, variantID, false, from.UTC(), to.UTC()).Scan(&ex).Error
	if err != nil {
		return pi, err
	}
	if len(ex) == 1 {
		pi.Predictions = ex[0].N
		pi.AverageConf = ex[0].Conf
		if ex[0].Routed > 0 {
			pi.ErrorRate = num(ex[0].Errors / ex[0].Routed)
			// p95 latency, nearest rank.
			k := int64(math.Ceil(0.95*ex[0].Routed)) - 1
			var lat []float64
			err := db.Raw(`SELECT latency_us / CAST(1000 AS DOUBLE PRECISION) FROM exposures
WHERE experiment_id = ? AND variant_id = ? AND shadow = ? AND status > 0 AND at >= ? AND at < ?
ORDER BY latency_us LIMIT 1 OFFSET ?`, id, variantID, false, from.UTC(), to.UTC(), k).Scan(&lat).Error
			if err != nil {
				return pi, err
			}
			if len(lat) == 1 {
				pi.LatencyP95MS = num(lat[0])
			}
		}
	}
	var pairs []struct {
		Label, Prediction string
		N                 float64
	}
	err = db.Raw(`SELECT o.label AS label, e.predicted_label AS prediction, COUNT(*) AS n
FROM outcomes o JOIN exposures e ON e.experiment_id = o.experiment_id AND e.request_id = o.request_id AND e.shadow = ?
WHERE o.experiment_id = ? AND e.variant_id = ? AND o.label IS NOT NULL AND o.request_id <> '' AND e.predicted_label IS NOT NULL
  AND e.at >= ? AND e.at < ?
GROUP BY o.label, e.predicted_label
UNION ALL
SELECT label, prediction, SUM(count) FROM drift_confusion
WHERE model = ? AND variant IN (?, '') AND hour >= ? AND hour < ?
GROUP BY label, prediction`, false, id, variantID, from.UTC(), to.UTC(), model, variant, from.UTC(), to.UTC()).Scan(&pairs).Error
	if err != nil {
		return pi, err
	}
	if len(pairs) == 0 {
		return pi, nil
	}
	classes := map[string]int{}
	for _, p := range pairs {
		for _, c := range []string{p.Label, p.Prediction} {
			if _, ok := classes[c]; !ok {
				classes[c] = len(classes)
			}
		}
	}
	confusion := make([][]float64, len(classes))
	for i := range confusion {
		confusion[i] = make([]float64, len(classes))
	}
	for _, p := range pairs {
		confusion[classes[p.Label]][classes[p.Prediction]] += p.N
		pi.Labelled += p.N
	}
	perf, err := drift.PerformanceOf(confusion)
	if err != nil {
		return pi, nil
	}
	pi.Accuracy, pi.MacroPrecision, pi.MacroRecall = num(perf.Accuracy), num(perf.MacroPrecision), num(perf.MacroRecall)
	return pi, nil
}

// driftSnapshotRow is a row of drift_snapshots.
type driftSnapshotRow struct {
	ID           int64 `gorm:"primaryKey"`
	ExperimentID int64
	ComputedAt   time.Time
	Report       string
}

func (driftSnapshotRow) TableName() string { return "drift_snapshots" }

// RefreshDrift computes the drift report of experiment key over the last
// DefaultDriftWindow, stores it and keeps it for the gauges.
func (s *Service) RefreshDrift(ctx context.Context, key string) (*DriftReport, error) {
	now := s.opts.Now().UTC()
	r, err := s.Drift(ctx, key, now.Add(-DefaultDriftWindow), now)
	if err != nil {
		return nil, err
	}
	id, _, err := s.experimentIDs(ctx, key)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := s.db.WithContext(ctx).Create(&driftSnapshotRow{ExperimentID: id, ComputedAt: now, Report: string(body)}).Error; err != nil {
		return nil, fmt.Errorf("store drift of %s: %w", key, err)
	}
	s.mu.Lock()
	s.latestDrift[key] = r
	s.mu.Unlock()
	return r, nil
}

// DriftSummary is the answer of GET /api/v1/experiments/{key}/drift/summary:
// the stored drift reports of the last days, counted by kind, variant,
// feature and severity (drifted features only), with the performance
// history.
type DriftSummary struct {
	Experiment  string             `json:"experiment"`
	From        time.Time          `json:"from"`
	To          time.Time          `json:"to"`
	Snapshots   int                `json:"snapshots"`
	Data        []SeverityCount    `json:"data"`
	Prediction  []SeverityCount    `json:"prediction"`
	Performance []SeverityCount    `json:"performance"`
	History     []PerformancePoint `json:"performance_history"`
}

// SeverityCount is how many snapshots found a variant's feature (or its
// predictions, or its performance) at a severity above none.
type SeverityCount struct {
	Variant  string         `json:"variant"`
	Feature  string         `json:"feature,omitempty"`
	Severity drift.Severity `json:"severity"`
	Count    int            `json:"count"`
}

// PerformancePoint is a variant's performance in one stored snapshot.
type PerformancePoint struct {
	ComputedAt   time.Time      `json:"computed_at"`
	Variant      string         `json:"variant"`
	Accuracy     *float64       `json:"accuracy"`
	RelativeDrop *float64       `json:"relative_drop"`
	Severity     drift.Severity `json:"severity"`
	ErrorRate    *float64       `json:"error_rate"`
	LatencyP95MS *float64       `json:"latency_p95_ms"`
}

// MaxSummaryDays is the longest summary.
const MaxSummaryDays = 90

// Summary summarises the drift snapshots of experiment key of the last days.
func (s *Service) Summary(ctx context.Context, key string, days int) (*DriftSummary, error) {
	if days < 1 || days > MaxSummaryDays {
		return nil, abgate.FieldErrorf("days", "days must be between 1 and %d, got %d", MaxSummaryDays, days)
	}
	id, _, err := s.experimentIDs(ctx, key)
	if err != nil {
		return nil, err
	}
	to := s.opts.Now().UTC()
	from := to.AddDate(0, 0, -days)
	var rows []driftSnapshotRow
	if err := s.db.WithContext(ctx).Where("experiment_id = ? AND computed_at >= ?", id, from).Order("computed_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	sum := &DriftSummary{Experiment: key, From: from, To: to, Snapshots: len(rows),
		Data: []SeverityCount{}, Prediction: []SeverityCount{}, Performance: []SeverityCount{}, History: []PerformancePoint{}}
	type k struct {
		kind, variant, feature string
		sev                    drift.Severity
	}
	counts := map[k]int{}
	for _, row := range rows {
		var r DriftReport
		if err := json.Unmarshal([]byte(row.Report), &r); err != nil {
			return nil, fmt.Errorf("decode drift snapshot %d: %w", row.ID, err)
		}
		for _, v := range r.Variants {
			for _, f := range v.Features {
				if f.Drifted && f.Severity != drift.SeverityNone {
					counts[k{"data", v.Key, f.Name, f.Severity}]++
				}
			}
			for _, p := range []*FeatureDrift{v.PredictionDrift, v.ConfidenceDrift} {
				if p != nil && p.Drifted && p.Severity != drift.SeverityNone {
					counts[k{"prediction", v.Key, p.Name, p.Severity}]++
				}
			}
			if sev := v.Performance.Severity; sev != "" && sev != drift.SeverityNone {
				counts[k{"performance", v.Key, "", sev}]++
			}
			sum.History = append(sum.History, PerformancePoint{ComputedAt: row.ComputedAt, Variant: v.Key,
				Accuracy: v.Performance.Accuracy, RelativeDrop: v.Performance.RelativeDrop, Severity: v.Performance.Severity,
				ErrorRate: v.Performance.ErrorRate, LatencyP95MS: v.Performance.LatencyP95MS})
		}
	}
	keys := make([]k, 0, len(counts))
	for x := range counts {
		keys = append(keys, x)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.variant != b.variant {
			return a.variant < b.variant
		}
		if a.feature != b.feature {
			return a.feature < b.feature
		}
		return a.sev < b.sev
	})
	for _, x := range keys {
		c := SeverityCount{Variant: x.variant, Feature: x.feature, Severity: x.sev, Count: counts[x]}
		switch x.kind {
		case "data":
			sum.Data = append(sum.Data, c)
		case "prediction":
			sum.Prediction = append(sum.Prediction, c)
		default:
			sum.Performance = append(sum.Performance, c)
		}
	}
	return sum, nil
}
