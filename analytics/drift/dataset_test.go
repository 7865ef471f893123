package drift

import (
	"math"
	"testing"
)

func ptr(v float64) *float64 { return &v }

func TestDatasetDrift(t *testing.T) {
	results := []FeatureResult{
		{Feature: "age", Method: MethodKS, Statistic: 0.2, PValue: ptr(0.01)},
		{Feature: "income", Method: MethodKS, Statistic: 0.1, PValue: ptr(0.04)},
		{Feature: "city", Method: MethodChiSquare, Statistic: 9, PValue: ptr(0.03)},
		{Feature: "device", Method: MethodChiSquare, Statistic: 2, PValue: ptr(0.20)},
		{Feature: "score", Method: MethodWasserstein, Statistic: 0.15},
		{Feature: "clicks", Method: MethodPSI, Statistic: 0.3},
		{Feature: "region", Method: MethodJensenShannon, Statistic: 0.3, Threshold: 0.5},
	}
	// from statsmodels.stats.multitest import multipletests
	// multipletests([0.01, 0.04, 0.03, 0.20], method='fdr_bh')[1]
	// -> [0.04, 0.05333333333333334, 0.05333333333333334, 0.2]
	want := []struct {
		adjusted  float64 // NaN: no p-value
		threshold float64
		drifted   bool
		severity  Severity
	}{
		{0.04, 0.05, true, SeverityLow},
		{0.05333333333333334, 0.05, false, SeverityNone},
		{0.05333333333333334, 0.05, false, SeverityNone},
		{0.2, 0.05, false, SeverityNone},
		{math.NaN(), 0.1, true, SeverityLow},
		{math.NaN(), 0.1, true, SeverityHigh},
		{math.NaN(), 0.5, false, SeverityNone},
	}
	_, _, got := DatasetDrift(results, 0)
	for i, w := range want {
		r := got[i]
		t.Run(r.Feature, func(t *testing.T) {
			if math.IsNaN(w.adjusted) {
				if r.AdjustedP != nil {
					t.Errorf("AdjustedP = %g, want nil", *r.AdjustedP)
				}
			} else if r.AdjustedP == nil {
				t.Errorf("AdjustedP = nil, want %g", w.adjusted)
			} else {
				checkRel(t, "AdjustedP", *r.AdjustedP, w.adjusted, 1e-12)
			}
			checkRel(t, "Threshold", r.Threshold, w.threshold, 0)
			if r.Drifted != w.drifted {
				t.Errorf("Drifted = %v, want %v", r.Drifted, w.drifted)
			}
			if r.Severity != w.severity {
				t.Errorf("Severity = %q, want %q", r.Severity, w.severity)
			}
		})
	}
	if results[0].AdjustedP != nil || results[0].Drifted || results[0].Threshold != 0 {
		t.Errorf("DatasetDrift modified its input: %+v", results[0])
	}
}

func TestDatasetDriftShare(t *testing.T) {
	// Three of seven features drift: age, score and clicks (see TestDatasetDrift).
	results := []FeatureResult{
		{Feature: "age", Method: MethodKS, PValue: ptr(0.01)},
		{Feature: "income", Method: MethodKS, PValue: ptr(0.04)},
		{Feature: "city", Method: MethodChiSquare, PValue: ptr(0.03)},
		{Feature: "device", Method: MethodChiSquare, PValue: ptr(0.20)},
		{Feature: "score", Method: MethodWasserstein, Statistic: 0.15},
		{Feature: "clicks", Method: MethodPSI, Statistic: 0.3},
		{Feature: "region", Method: MethodJensenShannon, Statistic: 0.3, Threshold: 0.5},
	}
	tests := []struct {
		name        string
		results     []FeatureResult
		share       float64
		wantDrifted bool
		wantShare   float64
	}{
		{"default share 0.5", results, 0, false, 3.0 / 7},
		{"NaN share is the default", results, math.NaN(), false, 3.0 / 7},
		{"share 0.4", results, 0.4, true, 3.0 / 7},
		{"share equal to the drifted share", results[4:6], 1, true, 1},
		{"no features", nil, 0.5, false, 0},
		{"NaN p-value never drifts", []FeatureResult{{Feature: "x", Method: MethodKS, PValue: ptr(math.NaN())}}, 0.5, false, 0},
		{"NaN distance never drifts", []FeatureResult{{Feature: "x", Method: MethodPSI, Statistic: math.NaN()}}, 0.5, false, 0},
		{"unknown method without threshold", []FeatureResult{{Feature: "x", Method: "t-test", Statistic: 5}}, 0.5, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drifted, share, adjusted := DatasetDrift(tt.results, tt.share)
			if drifted != tt.wantDrifted {
				t.Errorf("drifted = %v, want %v", drifted, tt.wantDrifted)
			}
			checkRel(t, "share", share, tt.wantShare, 1e-15)
			if len(adjusted) != len(tt.results) {
				t.Errorf("%d adjusted results, want %d", len(adjusted), len(tt.results))
			}
		})
	}
}
