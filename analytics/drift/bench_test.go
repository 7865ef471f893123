package drift

import "testing"

// BenchmarkMethods10Bins computes every histogram method on a pair of
// 10-bin histograms, as a drift run does per feature and variant.
func BenchmarkMethods10Bins(b *testing.B) {
	edges := []float64{-1.28, -0.84, -0.52, -0.25, 0, 0.25, 0.52, 0.84, 1.28}
	ref := []float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}
	cur := []float64{80, 95, 90, 105, 110, 100, 115, 95, 105, 105}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PSI(ref, cur); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ChiSquare(ref, cur); err != nil {
			b.Fatal(err)
		}
		if _, err := JensenShannon(ref, cur); err != nil {
			b.Fatal(err)
		}
		if _, _, err := KSBinned(edges, ref, cur); err != nil {
			b.Fatal(err)
		}
		if _, err := WassersteinBinned(edges, ref, cur, -3.5, 3.4, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKSSamples1000 computes the exact KS test on two samples of
// 1000 values, the largest reference for which Choose picks KS.
func BenchmarkKSSamples1000(b *testing.B) {
	ref := weyl(1000, 7919, 10007, 1, 0)
	cur := weyl(1000, 104729, 10009, 1, 0.03)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := KSSamples(ref, cur); err != nil {
			b.Fatal(err)
		}
	}
}
