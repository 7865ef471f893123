package stats

import (
	"math"
	"testing"
)

func TestSRM(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name            string
		counts, weights []float64
		wantChi2, wantP float64
	}{
		// scipy.stats.chisquare([5060, 4940]) -> (1.44, 0.23013934044341314)
		{"50/50", []float64{5060, 4940}, []float64{50, 50}, 1.44, 0.23013934044341314},
		// scipy.stats.chisquare([3310, 3350, 3340], f_exp=np.array([1,1,1])/3*10000) -> (0.26, 0.8780954309205613)
		{"three equal", []float64{3310, 3350, 3340}, []float64{1, 1, 1}, 0.26, 0.8780954309205613},
		// scipy.stats.chisquare([2100, 7900], f_exp=np.array([0.2, 0.8])*10000) -> (6.25, 0.01241933065155227)
		{"20/80", []float64{2100, 7900}, []float64{0.2, 0.8}, 6.25, 0.01241933065155227},
		// scipy.stats.chisquare([1000, 2050, 2950], f_exp=np.array([1,2,3])/6*6000) -> (2.0833333333333335, 0.35286608145884896)
		{"1:2:3 unnormalised", []float64{1000, 2050, 2950}, []float64{1, 2, 3}, 2.0833333333333335, 0.35286608145884896},
		// Hand: a switched-off variant with no units leaves the 50/50 test above.
		{"zero weight, zero count", []float64{5060, 4940, 0}, []float64{1, 1, 0}, 1.44, 0.23013934044341314},
		// Hand: units in a variant of weight zero are a certain mismatch.
		{"zero weight, units", []float64{5, 5, 1}, []float64{1, 1, 0}, inf, 0},
		// Hand: nothing observed, nothing to test.
		{"no units", []float64{0, 0}, []float64{1, 1}, 0, 1},
		// Hand: one variant with positive weight gets every unit.
		{"single live variant", []float64{0, 40}, []float64{0, 1}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chi2, p, err := SRM(tt.counts, tt.weights)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "chi2", chi2, tt.wantChi2, 1e-9)
			checkClose(t, "p", p, tt.wantP, 1e-9)
		})
	}
}

func TestSRMInvalid(t *testing.T) {
	tests := []struct {
		name            string
		counts, weights []float64
	}{
		{"length mismatch", []float64{1, 2}, []float64{1, 1, 1}},
		{"one variant", []float64{10}, []float64{1}},
		{"negative weight", []float64{10, 10}, []float64{1, -1}},
		{"all weights zero", []float64{10, 10}, []float64{0, 0}},
		{"negative count", []float64{-1, 10}, []float64{1, 1}},
		{"NaN weight", []float64{10, 10}, []float64{math.NaN(), 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := SRM(tt.counts, tt.weights)
			checkInvalid(t, err)
		})
	}
}
