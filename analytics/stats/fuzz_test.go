package stats

import (
	"math"
	"testing"
)

// FuzzNoPanic feeds arbitrary sums to every function of the package: none
// may panic, and every p-value and probability must be NaN or in [0, 1].
func FuzzNoPanic(f *testing.F) {
	f.Add(100.0, 10.0, 10.0, 120.0, 15.0, 15.0, 0.05)
	f.Add(10.0, 110.5, 1242.33, 12.0, 155.8, 2043.06, 0.1)
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5)
	f.Add(1e300, 1e300, 1e300, 2.0, -1e300, 1e308, 0.05)
	f.Fuzz(func(t *testing.T, nc, sc, qc, nt, st, qt, alpha float64) {
		c := Summary{N: nc, SumY: sc, SumY2: qc, SumX: sc / 2, SumX2: qc / 3, SumXY: qc / 4}
		tr := Summary{N: nt, SumY: st, SumY2: qt, SumX: st / 3, SumX2: qt / 2, SumXY: -qt / 5}
		prob := func(name string, p float64) {
			if !math.IsNaN(p) && (p < 0 || p > 1) {
				t.Errorf("%s = %g outside [0, 1]", name, p)
			}
		}
		if cmp, err := ZTest(c, tr, alpha); err == nil {
			prob("ZTest p", cmp.PValue)
		}
		if cmp, err := Welch(c, tr, alpha); err == nil {
			prob("Welch p", cmp.PValue)
		}
		if cmp, _, err := CUPED(c, tr, alpha); err == nil {
			prob("CUPED p", cmp.PValue)
		}
		if _, p, err := SRM([]float64{nc, nt}, []float64{sc, st}); err == nil {
			prob("SRM p", p)
		}
		if nc < 1e4 && nt < 1e4 {
			chance, _ := BetaBinomial(c, tr, math.Abs(alpha)+0.1, 1, false)
			prob("BetaBinomial chance", chance)
		}
		chance, _ := NormalBayes(c, tr, true)
		prob("NormalBayes chance", chance)
		prob("MSPRT", MSPRT(c, tr, MSPRTTau2(c, tr, alpha, nc)))
		prob("MSPRT tau2 1", MSPRT(c, tr, 1))
		for _, p := range Holm([]float64{alpha, sc, st}) {
			prob("Holm", p)
		}
		for _, p := range BenjaminiHochberg([]float64{alpha, sc, st}) {
			prob("BH", p)
		}
		_, _ = SampleSizeProportions(sc, st, alpha, qc)
		_, _ = MDEProportions(sc, nc, alpha, qc)
		_, _ = SampleSizeMeans(sc, st, alpha, qc)
		_, _ = MDEMeans(sc, nc, alpha, qc)
	})
}
