package drift

import (
	"encoding/binary"
	"math"
	"testing"
)

// floats decodes data as little-endian float64s, at most max of them, so
// the fuzzer reaches NaN, infinities, subnormals and huge values.
func floats(data []byte, max int) []float64 {
	n := min(len(data)/8, max)
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return out
}

// counts decodes data as small counts, one byte each; a byte of 255 makes
// the count negative so that invalid input is reached too.
func counts(data []byte, max int) []float64 {
	n := min(len(data), max)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(data[i])
		if data[i] == 255 {
			out[i] = -1
		}
	}
	return out
}

// FuzzNoPanic feeds arbitrary samples, histograms and parameters to every
// function of the package: none may panic, and every result that comes
// without an error must be in its range.
func FuzzNoPanic(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba98"), []byte{10, 20, 30, 40}, []byte{12, 18, 33, 37}, 4, 0.05, 0.5, 2.0)
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, 0, 0.0, 0.0, 0.0)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, []byte{0, 0}, []byte{255, 1}, -3, math.NaN(), math.Inf(1), -1.0)
	f.Add([]byte("aaaaaaaabbbbbbbbaaaaaaaa"), []byte("aaaaaaaa"), []byte{1, 0, 0}, []byte{0, 0, 9}, 1, 1e300, -1e300, 1e-300)
	f.Fuzz(func(t *testing.T, refBytes, curBytes, refCounts, curCounts []byte, bins int, a, b, c float64) {
		ref, cur := floats(refBytes, 64), floats(curBytes, 64)
		rh, ch := counts(refCounts, 32), counts(curCounts, 32)
		prob := func(name string, p float64) {
			if !(p >= 0 && p <= 1) {
				t.Errorf("%s = %g outside [0, 1]", name, p)
			}
		}

		if edges, err := QuantileEdges(ref, bins); err == nil {
			for i, e := range edges {
				if math.IsNaN(e) || math.IsInf(e, 0) || (i > 0 && !(e > edges[i-1])) {
					t.Errorf("QuantileEdges = %v: not finite and ascending", edges)
				}
			}
			for _, x := range cur {
				if k := Bin(edges, x); k < -1 || k > len(edges) {
					t.Errorf("Bin(%v, %g) = %d", edges, x, k)
				}
			}
		}
		_ = Summarize(ref)
		_ = Bin(ref, a)

		if v, err := PSI(rh, ch); err == nil && !(v >= 0) {
			t.Errorf("PSI = %g, want >= 0", v)
		}
		if _, p, err := ChiSquare(rh, ch); err == nil {
			prob("ChiSquare p", p)
		}
		if v, err := JensenShannon(rh, ch); err == nil && !(v >= 0 && v <= math.Sqrt(math.Ln2)+1e-12) {
			t.Errorf("JensenShannon = %g outside [0, sqrt(ln 2)]", v)
		}
		if d, p, err := KSSamples(ref, cur); err == nil {
			prob("KSSamples D", d)
			prob("KSSamples p", p)
		}
		// Histograms with fractional and huge counts reach the asymptotic
		// p-value with any sample size.
		scaled := make([]float64, len(ch))
		for i := range ch {
			scaled[i] = ch[i] * math.Abs(a)
		}
		edges := make([]float64, max(len(rh)-1, 0))
		for i := range edges {
			edges[i] = float64(i) * b
		}
		for _, cc := range [][]float64{ch, scaled} {
			if d, p, err := KSBinned(edges, rh, cc); err == nil {
				prob("KSBinned D", d)
				prob("KSBinned p", p)
			}
			if v, err := WassersteinBinned(edges, rh, cc, a, b, c); err == nil && !(v >= 0) {
				t.Errorf("WassersteinBinned = %g, want >= 0", v)
			}
		}
		if v, err := WassersteinSamples(ref, cur); err == nil && v < 0 {
			t.Errorf("WassersteinSamples = %g, want >= 0", v)
		}

		k := int(math.Sqrt(float64(len(rh))))
		confusion := make([][]float64, k)
		for i := range confusion {
			confusion[i] = rh[i*k : (i+1)*k]
		}
		if perf, err := PerformanceOf(confusion); err == nil {
			prob("Accuracy", perf.Accuracy)
			prob("MacroPrecision", perf.MacroPrecision)
			prob("MacroRecall", perf.MacroRecall)
		}
		_, _, _ = RelativeDrop(a, b, bins%2 == 0)

		m := Choose(bins%2 == 0, bins, a)
		_ = SeverityP(b, m.DefaultThreshold())
		_ = SeverityDistance(c, m.DefaultThreshold())
		results := []FeatureResult{
			{Feature: "a", Method: MethodKS, PValue: &a},
			{Feature: "b", Method: MethodPSI, Statistic: b},
			{Feature: "c", Method: m, Statistic: c, PValue: &c, Threshold: b},
		}
		if _, share, adjusted := DatasetDrift(results, c); !(share >= 0 && share <= 1) || len(adjusted) != len(results) {
			t.Errorf("DatasetDrift share %g, %d results", share, len(adjusted))
		}
	})
}
