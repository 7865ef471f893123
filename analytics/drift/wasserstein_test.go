package drift

import (
	"math"
	"testing"
)

func TestWassersteinSamples(t *testing.T) {
	tests := []struct {
		name     string
		ref, cur []float64
		want     float64
	}{
		// Shifted by 1, std([0, 1]) = 0.5: 1/0.5 = 2.
		{"shift by one", []float64{0, 1}, []float64{1, 2}, 2},
		// |F_ref - F_cur| = 2/3 - 1/3 on [0, 1), std([0, 0, 1]) = sqrt(2)/3:
		// (1/3)/(sqrt(2)/3) = 1/sqrt(2);
		// scipy.stats.wasserstein_distance([0, 0, 1], [0, 1, 1])/np.std([0, 0, 1]) -> 0.7071067811865475
		{"ties", []float64{0, 0, 1}, []float64{0, 1, 1}, 0.7071067811865475},
		{"identical", []float64{3, 1, 2}, []float64{1, 2, 3}, 0},
		// scipy.stats.wasserstein_distance(small_ref, small_cur)/np.std(small_ref) -> 0.651641997051526
		{"small samples", smallRef, smallCur, 0.651641997051526},
		// a = weyl(12000, 7919, 10007, 2.0, 0.0); b = weyl(15000, 104729, 100003, 2.0, 0.03)
		// scipy.stats.wasserstein_distance(a, b)/np.std(a) -> 0.051720733031948934
		{"large samples", weyl(12000, 7919, 10007, 2, 0), weyl(15000, 104729, 100003, 2, 0.03), 0.051720733031948934},
		// One current value: the distance is the mean distance to it: (0+1)/2/0.5 = 1.
		{"single current value", []float64{0, 1}, []float64{0.5}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WassersteinSamples(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "W", got, tt.want, 1e-9)
		})
	}
}

func TestWassersteinSamplesConstantReference(t *testing.T) {
	_, err := WassersteinSamples([]float64{2, 2, 2}, []float64{1, 2})
	checkInvalid(t, err, "reference standard deviation is 0")
}

func TestWassersteinBinned(t *testing.T) {
	tests := []struct {
		name                   string
		edges, ref, cur        []float64
		refMin, refMax, refStd float64
		want                   float64
	}{
		// F_ref: 0 -> .5 on [0, 1], .5 -> 1 on [1, 2]; F_cur: 0 on [0, 1], 0 -> 1 on [1, 2].
		// |difference| is linear 0 -> .5 then .5 -> 0: 0.25 + 0.25 = 0.5.
		{"two bins", []float64{1}, []float64{1, 1}, []float64{0, 2}, 0, 2, 1, 0.5},
		// Half uniform on [-1, 0] and [1, 2] against uniform on [0, 1]:
		// 0.25 on each of the three unit bins, the middle one crossing zero
		// (.5 -> -.5: (.25+.25)/(2*1) = .25): 0.75/0.5 = 1.5.
		{"crossing", []float64{0, 1}, []float64{2, 0, 2}, []float64{0, 4, 0}, -1, 2, 0.5, 1.5},
		// xs = np.array([-3, -1, 0, 0.5, 2, 4.]); r = [10, 30, 25, 20, 15.]; c = [5, 20, 30, 25, 20.]
		// Fr, Fc = [0, *np.cumsum(r)/r.sum()], [0, *np.cumsum(c)/c.sum()]
		// integrate.quad(lambda x: abs(np.interp(x, xs, Fr) - np.interp(x, xs, Fc)), -3, 4,
		//     points=xs[1:-1], epsabs=1e-14, epsrel=1e-13)[0]/1.3 -> 0.2884615384615384
		{"five bins", []float64{-1, 0, 0.5, 2}, []float64{10, 30, 25, 20, 15}, []float64{5, 20, 30, 25, 20}, -3, 4, 1.3, 0.2884615384615384},
		// The ends widen to the edges when the range is narrower: lo = -1,
		// hi = 1, the open bins have width zero and the middle one, width 2,
		// carries a difference linear from 0 to .5: 2*0.25 = 0.5.
		{"range inside edges", []float64{-1, 1}, []float64{0, 2, 0}, []float64{0, 1, 1}, -0.5, 0.5, 1, 0.5},
		// Edge 0 inside the range [-0.5, 0.5]: widths 0.5, 0.25*0.5*2/2 = 0.125.
		{"range around edge", []float64{0}, []float64{1, 1}, []float64{0, 2}, -0.5, 0.5, 2, 0.125},
		{"one bin", nil, []float64{3}, []float64{9}, 0, 5, 1, 0},
		{"identical", []float64{1, 2}, []float64{1, 2, 3}, []float64{2, 4, 6}, 0, 3, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WassersteinBinned(tt.edges, tt.ref, tt.cur, tt.refMin, tt.refMax, tt.refStd)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "W", got, tt.want, 1e-9)
		})
	}
}

// TestWassersteinBinnedApproachesSamples checks that with fine quantile
// bins on evenly spread data within the reference range the binned
// distance nears the sample one.
func TestWassersteinBinnedApproachesSamples(t *testing.T) {
	ref := weyl(20000, 7919, 10007, 2, 0)
	cur := weyl(15000, 104729, 100003, 1.8, 0.1)
	want, err := WassersteinSamples(ref, cur)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(ref)
	edges, err := QuantileEdges(ref, 100)
	if err != nil {
		t.Fatal(err)
	}
	rh, ch := make([]float64, len(edges)+1), make([]float64, len(edges)+1)
	for _, v := range ref {
		rh[Bin(edges, v)]++
	}
	for _, v := range cur {
		ch[Bin(edges, v)]++
	}
	got, err := WassersteinBinned(edges, rh, ch, s.Min, s.Max, s.Std)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 0.01*want {
		t.Errorf("binned %g, sample %g: want within 1%%", got, want)
	}
}

func TestWassersteinBinnedInvalid(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name                   string
		refMin, refMax, refStd float64
		want                   string
	}{
		{"zero std", 0, 1, 0, "reference standard deviation must be a positive finite number, got 0"},
		{"NaN std", 0, 1, nan, "reference standard deviation must be a positive finite number, got NaN"},
		{"inverted range", 2, 1, 1, "reference range [2, 1] must be finite and ordered"},
		{"NaN min", nan, 1, 1, "reference range [NaN, 1] must be finite and ordered"},
		{"infinite max", 0, math.Inf(1), 1, "must be finite and ordered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := WassersteinBinned([]float64{0.5}, []float64{1, 1}, []float64{1, 1}, tt.refMin, tt.refMax, tt.refStd)
			checkInvalid(t, err, tt.want)
		})
	}
}
