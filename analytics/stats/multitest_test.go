package stats

import (
	"math"
	"slices"
	"testing"
)

func TestMultipleTesting(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name                string
		p, wantHolm, wantBH []float64
	}{
		{
			// statsmodels.stats.multitest.multipletests(p, method='holm')[1] and (p, method='fdr_bh')[1]
			name:     "six with ties",
			p:        []float64{0.01, 0.04, 0.03, 0.005, 0.2, 0.04},
			wantHolm: []float64{0.05, 0.12, 0.12, 0.03, 0.2, 0.12},
			wantBH:   []float64{0.030000000000000002, 0.048, 0.048, 0.030000000000000002, 0.2, 0.048},
		},
		{
			// multipletests([0.5, 0.9, 0.02, 0.3], method='holm' / 'fdr_bh')[1]
			name:     "capped at one",
			p:        []float64{0.5, 0.9, 0.02, 0.3},
			wantHolm: []float64{1, 1, 0.08, 0.8999999999999999},
			wantBH:   []float64{0.6666666666666666, 0.9, 0.08, 0.6},
		},
		{
			// Hand, as R's p.adjust(c(0.01, NA, 0.04)): m = 2;
			// Holm: 2*0.01, max(0.02, 1*0.04); BH: min(2*0.01/1, 0.04), 2*0.04/2.
			name:     "NaN skipped",
			p:        []float64{0.01, nan, 0.04},
			wantHolm: []float64{0.02, nan, 0.04},
			wantBH:   []float64{0.02, nan, 0.04},
		},
		{
			// Hand: entries outside [0, 1] are not p-values and are skipped like NaN.
			name:     "out of range skipped",
			p:        []float64{-0.5, 0.01, 1.5, 0.04},
			wantHolm: []float64{nan, 0.02, nan, 0.04},
			wantBH:   []float64{nan, 0.02, nan, 0.04},
		},
		{
			// Hand: a single p-value is its own adjustment.
			name:     "single",
			p:        []float64{0.03},
			wantHolm: []float64{0.03},
			wantBH:   []float64{0.03},
		},
		{name: "empty", p: nil, wantHolm: []float64{}, wantBH: []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.p)
			for _, m := range []struct {
				name string
				f    func([]float64) []float64
				want []float64
			}{{"Holm", Holm, tt.wantHolm}, {"BenjaminiHochberg", BenjaminiHochberg, tt.wantBH}} {
				got := m.f(tt.p)
				if len(got) != len(m.want) {
					t.Fatalf("%s: got %v, want %v", m.name, got, m.want)
				}
				for i := range got {
					checkClose(t, m.name, got[i], m.want[i], 1e-12)
				}
			}
			if !slices.EqualFunc(in, tt.p, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("input modified: got %v, want %v", tt.p, in)
			}
		})
	}
}
