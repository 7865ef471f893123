package drift

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKSSamples(t *testing.T) {
	tests := []struct {
		name     string
		ref, cur []float64
		wantD    float64
		wantP    float64
	}{
		// scipy.stats.ks_2samp(small_ref, small_cur) (method='auto' -> exact)
		// -> (0.34, 0.13515536982719126)
		{"small samples, exact", smallRef, smallCur, 0.34, 0.13515536982719126},
		// a = weyl(800, 7919, 10007, 1.0, 0.0); b = weyl(600, 104729, 10009, 1.0, 0.05)
		// scipy.stats.ks_2samp(a, b) -> (0.05416666666666667, 0.2586722476465092)
		{"800 and 600, exact", weyl(800, 7919, 10007, 1, 0), weyl(600, 104729, 10009, 1, 0.05), 0.05416666666666667, 0.2586722476465092},
		// a = weyl(500, 7919, 10007, 1.0, 0.0); b = weyl(500, 104729, 10009, 1.0, 0.08)
		// scipy.stats.ks_2samp(a, b) -> (0.084, 0.058689209417416795)
		{"equal sizes, exact", weyl(500, 7919, 10007, 1, 0), weyl(500, 104729, 10009, 1, 0.08), 0.084, 0.058689209417416795},
		// a = weyl(12000, 7919, 10007, 2.0, 0.0); b = weyl(15000, 104729, 100003, 2.0, 0.03)
		// scipy.stats.ks_2samp(a, b) (method='auto' -> asymp) -> (0.015316666666666666, 0.08669450670278378)
		{"large samples, asymptotic", weyl(12000, 7919, 10007, 2, 0), weyl(15000, 104729, 100003, 2, 0.03), 0.015316666666666666, 0.08669450670278378},
		// The exact p-value rounds to 1 + 2^-52 and is refused, as in SciPy:
		// scipy.stats.ks_2samp([0, 2, 4, 6, 8], [1, 3, 5, 7, 9]) -> (0.2, 1.0)
		{"exact refused, asymptotic", []float64{0, 2, 4, 6, 8}, []float64{1, 3, 5, 7, 9}, 0.2, 1},
		// scipy.stats.ks_2samp([1, 2, 3], [1, 2, 3]) -> (0.0, 1.0)
		{"identical", []float64{1, 2, 3}, []float64{3, 2, 1}, 0, 1},
		// scipy.stats.ks_2samp([1, 2], [5, 6, 7]) -> (1.0, 0.2)
		{"disjoint", []float64{1, 2}, []float64{5, 6, 7}, 1, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p, err := KSSamples(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "D", d, tt.wantD, 1e-9)
			checkRel(t, "p", p, tt.wantP, 1e-9)
		})
	}
}

// TestKSAsymptotic checks the method="asymp" p-value on samples small
// enough for KSSamples to use the exact one.
func TestKSAsymptotic(t *testing.T) {
	// scipy.stats.ks_2samp(small_ref, small_cur, method='asymp') -> (0.34, 0.15566789666143188)
	got := ksPValue(0.34, 25, 18)
	checkRel(t, "p", got, 0.15566789666143188, 1e-9)
}

// TestKolmogorovSF covers each branch of the exact Kolmogorov survival
// function: want is scipy.stats.kstwo.sf(x, n).
func TestKolmogorovSF(t *testing.T) {
	tests := []struct {
		name string
		n    int
		x    float64
		want float64
	}{
		{"below 1/2n", 10, 0.04, 1.0},
		{"Ruben-Gambino low, small n", 10, 0.08, 0.9999978058034054},
		{"Ruben-Gambino low, large n", 1000, 0.0008, 1.0},
		{"Ruben-Gambino high", 10, 0.95, 1.9531250000000172e-13},
		{"x above 1/2", 10, 0.6, 0.0005681672000000003},
		{"Durbin matrix, small n", 50, 0.1, 0.6623112704658186},
		{"Pomeranz", 50, 0.2, 0.03143877776953241},
		{"Smirnov, small n", 50, 0.35, 5.573523514803185e-06},
		{"far tail", 5000, 0.3, 0},
		{"Smirnov, large n", 1000, 0.06, 0.001428597887952891},
		{"Durbin matrix, large n", 1000, 0.01, 0.9999496745370611},
		{"Pelz-Good", 1000, 0.04, 0.07933956059000224},
		{"Pelz-Good, huge n", 200000, 0.002, 0.39995085369038097},
		{"Smirnov asymptotic", 2000000, 0.0015, 0.00024657290508461606},
		{"one observation", 1, 0.7, 0.6000000000000001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRel(t, "sf", kolmogorovSF(tt.n, tt.x), tt.want, 1e-9)
		})
	}
}

func TestKSBinned(t *testing.T) {
	tests := []struct {
		name         string
		edges        []float64
		ref, cur     []float64
		wantD, wantP float64
	}{
		// Cumulative proportions at the edges: ref .1 .3 .6, cur .2 .5 .7;
		// D = max(.1, .2, .1) = 0.2 with n = round(100*200/300) = 67:
		// scipy.stats.kstwo.sf(0.2, 67) -> 0.007969445457871482
		{"four bins", []float64{0, 1, 2}, []float64{10, 20, 30, 40}, []float64{40, 60, 40, 60}, 0.2, 0.007969445457871482},
		// scipy.stats.kstwo.sf(0.03, round(1000*1500/2500)) -> 0.6414443759886659
		{"two bins", []float64{0}, []float64{500, 500}, []float64{705, 795}, 0.03, 0.6414443759886659},
		// scipy.stats.kstwo.sf(0.01, round(200000*300000/500000)) -> 7.496433789224218e-11
		{"large totals", []float64{0}, []float64{100000, 100000}, []float64{147000, 153000}, 0.01, 7.496433789224218e-11},
		{"one bin", nil, []float64{5}, []float64{9}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p, err := KSBinned(tt.edges, tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "D", d, tt.wantD, 1e-12)
			checkRel(t, "p", p, tt.wantP, 1e-9)
		})
	}
}

// TestKSBinnedBound checks on random samples that the binned statistic is
// a lower bound of the sample statistic and the documented U an upper one,
// itself within the largest bin proportion of the binned statistic.
func TestKSBinnedBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n1, n2 := 20+rng.IntN(400), 20+rng.IntN(400)
		shift, scale := rng.NormFloat64()*0.3, 1+rng.Float64()
		ref := make([]float64, n1)
		for i := range ref {
			ref[i] = math.Round(rng.NormFloat64()*20) / 10 // ties on purpose
		}
		cur := make([]float64, n2)
		for i := range cur {
			cur[i] = math.Round((rng.NormFloat64()*scale+shift)*20) / 10
		}
		bins := 2 + rng.IntN(20)
		edges, err := QuantileEdges(ref, bins)
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
		dSample, _, err := KSSamples(ref, cur)
		if err != nil {
			t.Fatal(err)
		}
		dBinned, _, err := KSBinned(edges, rh, ch)
		if err != nil {
			t.Fatal(err)
		}
		u := ksBinnedUpper(rh, ch)
		maxMass := 0.0
		for i := range rh {
			maxMass = math.Max(maxMass, math.Max(rh[i]/float64(n1), ch[i]/float64(n2)))
		}
		const eps = 1e-12
		if !(dBinned <= dSample+eps && dSample <= u+eps && u <= dBinned+maxMass+eps) {
			t.Fatalf("trial %d: want binned %g <= sample %g <= U %g <= binned + max mass %g",
				trial, dBinned, dSample, u, dBinned+maxMass)
		}
	}
}

// TestKSBinnedBoundSharp checks that U is reached: all reference values
// at the start of a bin and all current ones at its end.
func TestKSBinnedBoundSharp(t *testing.T) {
	ref := []float64{0, 0, 0, 1, 1, 1, 1, 1}
	cur := []float64{0.9, 0.9, 0.9, 1.9, 1.9, 1.9, 1.9, 1.9}
	edges := []float64{1}
	dSample, _, err := KSSamples(ref, cur)
	if err != nil {
		t.Fatal(err)
	}
	rh, ch := []float64{3, 5}, []float64{3, 5}
	dBinned, _, err := KSBinned(edges, rh, ch)
	if err != nil {
		t.Fatal(err)
	}
	got, want := ksBinnedUpper(rh, ch), dSample
	checkRel(t, "binned D", dBinned, 0, 0)
	checkRel(t, "U", got, want, 1e-12)
}

func TestKSExactMatchesEnumeration(t *testing.T) {
	// For tiny samples, the exact p-value is the share of the C(n1+n2, n1)
	// equally likely splits of n1+n2 distinct values with a statistic at
	// least D: enumerate them.
	for _, sizes := range [][2]int{{3, 4}, {5, 5}, {2, 7}, {6, 4}} {
		n1, n2 := sizes[0], sizes[1]
		n := n1 + n2
		values := make([]float64, n)
		for i := range values {
			values[i] = float64(i)
		}
		ds := []float64{}
		for mask := range 1 << n {
			if popcount(mask) != n1 {
				continue
			}
			var a, b []float64
			for i := range n {
				if mask&(1<<i) != 0 {
					a = append(a, values[i])
				} else {
					b = append(b, values[i])
				}
			}
			d, _, err := KSSamples(a, b)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		for _, d := range slices.Compact(slices.Clone(ds)) {
			count := 0
			for _, e := range ds {
				if e >= d-1e-12 {
					count++
				}
			}
			want := float64(count) / float64(len(ds))
			got, ok := ksExactPValue(n1, n2, d)
			if !ok {
				// As SciPy, a p-value rounded past 1 (every path leaves the
				// band) is refused, and KSSamples falls back to asymp.
				if want != 1 || got <= 1 {
					t.Errorf("n=%d,%d d=%g: exact p-value refused (%v), want %v", n1, n2, d, got, want)
				}
				continue
			}
			checkRel(t, "p", got, want, 1e-12)
		}
	}
}

func popcount(x int) int {
	c := 0
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func TestSamplesInvalid(t *testing.T) {
	nan := math.NaN()
	methods := map[string]func(ref, cur []float64) error{
		"KSSamples":          func(r, c []float64) error { _, _, err := KSSamples(r, c); return err },
		"WassersteinSamples": func(r, c []float64) error { _, err := WassersteinSamples(r, c); return err },
	}
	tests := []struct {
		name     string
		ref, cur []float64
		want     string
	}{
		{"empty reference", nil, []float64{1}, "reference sample is empty"},
		{"empty current", []float64{1, 2}, []float64{}, "current sample is empty"},
		{"NaN", []float64{1, 2}, []float64{1, nan}, "current value 1 is NaN (null)"},
		{"infinite", []float64{math.Inf(-1), 2}, []float64{1}, "reference value 0 is infinite"},
	}
	for name, method := range methods {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				checkInvalid(t, method(tt.ref, tt.cur), tt.want)
			})
		}
	}
}

func TestKSBinnedEdgesInvalid(t *testing.T) {
	tests := []struct {
		name  string
		edges []float64
		want  string
	}{
		{"too few edges", []float64{0}, "1 edges do not fit 3 bins: want 2 edges"},
		{"unsorted", []float64{1, 0}, "edges must be strictly ascending"},
		{"repeated", []float64{1, 1}, "edges must be strictly ascending"},
		{"NaN edge", []float64{0, math.NaN()}, "edge 1 must be finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := KSBinned(tt.edges, []float64{1, 2, 3}, []float64{3, 2, 1})
			checkInvalid(t, err, tt.want)
		})
	}
}
