package drift

import (
	"math"

	"abgate/analytics/stats"
)

// DefaultDriftShare is the share of drifted features from which
// DatasetDrift reports dataset drift.
const DefaultDriftShare = 0.5

// FeatureResult is the drift test of one feature. Statistic is the test
// statistic (KS D, chi-square) or the distance (PSI, Jensen-Shannon,
// normed Wasserstein). PValue is set for the p-value tests only, and
// AdjustedP by DatasetDrift. Threshold zero means Method's default.
// Drifted and Severity are set by DatasetDrift.
type FeatureResult struct {
	Feature   string
	Method    Method
	Statistic float64
	PValue    *float64
	AdjustedP *float64
	Threshold float64
	Drifted   bool
	Severity  Severity
}

// DatasetDrift decides the drift of each feature and of the dataset. The
// p-values of the features that have one (PValue non-nil) are adjusted
// together by Benjamini-Hochberg (stats.BenjaminiHochberg, the false
// discovery rate across features); such a feature drifts when its
// adjusted p-value is below its threshold, graded by SeverityP on the
// adjusted p-value. A feature without a p-value drifts when Statistic is
// at or above its threshold, graded by SeverityDistance. A zero Threshold
// is replaced by Method's DefaultThreshold (a NaN one for unknown methods
// never drifts), and a NaN p-value or statistic never drifts.
//
// The dataset drifts when the share of drifted features is at least share;
// share zero (or negative or NaN) means DefaultDriftShare (0.5). adjusted
// holds copies of results, in order, with AdjustedP, Threshold, Drifted
// and Severity set; results is not modified. No features give no drift and
// a share of zero.
func DatasetDrift(results []FeatureResult, share float64) (drifted bool, driftedShare float64, adjusted []FeatureResult) {
	if !(share > 0) {
		share = DefaultDriftShare
	}
	adjusted = make([]FeatureResult, len(results))
	copy(adjusted, results)
	var ps []float64
	var idx []int
	for i, r := range adjusted {
		if r.PValue != nil {
			ps = append(ps, *r.PValue)
			idx = append(idx, i)
		}
	}
	adj := stats.BenjaminiHochberg(ps)
	for k, i := range idx {
		a := adj[k]
		adjusted[i].AdjustedP = &a
	}
	n := 0
	for i := range adjusted {
		r := &adjusted[i]
		if r.Threshold == 0 {
			r.Threshold = r.Method.DefaultThreshold()
		}
		if r.AdjustedP != nil {
			p := *r.AdjustedP
			r.Drifted = p < r.Threshold
			r.Severity = SeverityP(p, r.Threshold)
		} else {
			r.AdjustedP = nil
			r.Drifted = r.Statistic >= r.Threshold
			r.Severity = SeverityDistance(r.Statistic, r.Threshold)
		}
		if r.Drifted {
			n++
		}
	}
	if len(adjusted) == 0 {
		return false, 0, adjusted
	}
	driftedShare = float64(n) / float64(len(adjusted))
	return driftedShare >= share && !math.IsNaN(driftedShare), driftedShare, adjusted
}
