package drift

import (
	"math"
	"testing"
)

func TestPerformanceOf(t *testing.T) {
	// y_true, y_pred expanded from the matrix (count c at [i][j]: c pairs (i, j)), then
	// accuracy_score(y_true, y_pred),
	// precision_score(y_true, y_pred, average='macro', zero_division=0),
	// recall_score(y_true, y_pred, average='macro', zero_division=0)   (scikit-learn 1.2.1)
	tests := []struct {
		name      string
		confusion [][]float64
		want      Performance
	}{
		{"binary", [][]float64{{50, 10}, {5, 35}}, Performance{0.85, 0.8434343434343434, 0.8541666666666667}},
		{"three classes", [][]float64{{30, 5, 2}, {4, 20, 6}, {1, 3, 29}}, Performance{0.79, 0.7850707850707851, 0.7854217854217854}},
		// Class 1 neither true nor predicted: left out of the averages.
		{"absent class", [][]float64{{10, 0, 0}, {0, 0, 0}, {3, 0, 7}}, Performance{0.85, 0.8846153846153846, 0.85}},
		// Class 1 predicted but never true: precision 0, recall 0 (zero_division=0).
		{"predicted only", [][]float64{{5, 2, 0}, {0, 0, 0}, {0, 0, 0}}, Performance{0.7142857142857143, 0.5, 0.35714285714285715}},
		// Class 0 true but never predicted: its precision counts 0.
		{"never predicted", [][]float64{{0, 4}, {0, 6}}, Performance{0.6, 0.3, 0.5}},
		{"single class", [][]float64{{7}}, Performance{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PerformanceOf(tt.confusion)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "Accuracy", got.Accuracy, tt.want.Accuracy, 1e-12)
			checkRel(t, "MacroPrecision", got.MacroPrecision, tt.want.MacroPrecision, 1e-12)
			checkRel(t, "MacroRecall", got.MacroRecall, tt.want.MacroRecall, 1e-12)
		})
	}
}

func TestPerformanceOfInvalid(t *testing.T) {
	tests := []struct {
		name      string
		confusion [][]float64
		want      string
	}{
		{"empty", nil, "confusion matrix is empty"},
		{"not square", [][]float64{{1, 2}, {3}}, "confusion matrix must be square: 2 classes but row 1 has 1 counts"},
		{"negative", [][]float64{{1, -2}, {3, 4}}, "confusion count [0][1] must be a finite non-negative number, got -2"},
		{"NaN", [][]float64{{1, 2}, {math.NaN(), 4}}, "confusion count [1][0] must be a finite non-negative number, got NaN"},
		{"no examples", [][]float64{{0, 0}, {0, 0}}, "confusion matrix has no examples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PerformanceOf(tt.confusion)
			checkInvalid(t, err, tt.want)
		})
	}
}

func TestRelativeDrop(t *testing.T) {
	tests := []struct {
		name              string
		baseline, current float64
		lowerIsBetter     bool
		wantDrop          float64
		wantSeverity      Severity
	}{
		{"accuracy improves", 0.80, 0.84, false, -0.05, SeverityNone},
		{"accuracy unchanged", 0.80, 0.80, false, 0, SeverityNone},
		// (0.80-0.77)/0.80 = 0.0375
		{"accuracy small drop", 0.80, 0.77, false, 0.0375, SeverityNone},
		// (0.80-0.74)/0.80 = 0.075
		{"accuracy low", 0.80, 0.74, false, 0.075, SeverityLow},
		// (0.80-0.68)/0.80 = 0.15
		{"accuracy medium", 0.80, 0.68, false, 0.15, SeverityMedium},
		// (0.80-0.60)/0.80 = 0.25
		{"accuracy high", 0.80, 0.60, false, 0.25, SeverityHigh},
		// (0.02-0.018)/... lower is better: (0.018-0.02)/0.02 = -0.1
		{"error rate improves", 0.02, 0.018, true, -0.1, SeverityNone},
		// (0.03-0.02)/0.02 = 0.5
		{"error rate high", 0.02, 0.03, true, 0.5, SeverityHigh},
		// (110-100)/100 = 0.1: the low band includes 10%.
		{"latency at 10%", 100, 110, true, 0.1, SeverityLow},
		// (120-100)/100 = 0.2: the medium band includes 20%.
		{"latency at 20%", 100, 120, true, 0.2, SeverityMedium},
		{"latency at 5%", 100, 105, true, 0.05, SeverityNone},
		{"no errors before or after", 0, 0, true, 0, SeverityNone},
		{"errors after none", 0, 0.01, true, math.Inf(1), SeverityHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drop, severity, err := RelativeDrop(tt.baseline, tt.current, tt.lowerIsBetter)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsInf(tt.wantDrop, 1) {
				if !math.IsInf(drop, 1) {
					t.Errorf("drop = %g, want +Inf", drop)
				}
			} else {
				checkRel(t, "drop", drop, tt.wantDrop, 1e-12)
			}
			if severity != tt.wantSeverity {
				t.Errorf("severity = %q, want %q", severity, tt.wantSeverity)
			}
		})
	}
}

func TestRelativeDropInvalid(t *testing.T) {
	tests := []struct {
		name              string
		baseline, current float64
		lowerIsBetter     bool
		want              string
	}{
		{"zero accuracy baseline", 0, 0.5, false, "baseline of a higher-is-better value is zero"},
		{"negative baseline", -1, 0.5, true, "baseline must be a finite non-negative number, got -1"},
		{"NaN current", 0.5, math.NaN(), false, "current value must be a finite non-negative number, got NaN"},
		{"infinite baseline", math.Inf(1), 1, true, "baseline must be a finite non-negative number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := RelativeDrop(tt.baseline, tt.current, tt.lowerIsBetter)
			checkInvalid(t, err, tt.want)
		})
	}
}
