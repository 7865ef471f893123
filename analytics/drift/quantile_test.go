package drift

import (
	"math"
	"slices"
	"testing"
)

func TestQuantileEdges(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		values []float64
		bins   int
		want   []float64
	}{
		// np.quantile(small_ref, np.arange(1, 10)/10)
		{"deciles", smallRef, 10, []float64{-1.3224, -1.0469999999999997, -0.8368000000000002, -0.47159999999999996, -0.274, -0.017000000000000043, 0.09599999999999986, 0.27660000000000007, 0.4368000000000002}},
		// np.quantile(small_ref, [0.25, 0.5, 0.75]) -> [-0.93, -0.274, 0.157]
		{"quartiles", smallRef, 4, []float64{-0.93, -0.274, 0.157}},
		// Nulls are skipped: the same quartiles.
		{"nulls skipped", append([]float64{nan, nan}, append(slices.Clone(smallRef), nan)...), 4, []float64{-0.93, -0.274, 0.157}},
		// np.quantile([1, 2, 3, 4], [1/3, 2/3]) -> [2.0, 3.0]
		{"thirds", []float64{4, 1, 3, 2}, 3, []float64{2, 3}},
		// np.quantile([0, 0, 0, 0, 1], [0.25, 0.5, 0.75]) -> [0, 0, 0]: one edge left.
		{"ties merge", []float64{0, 0, 0, 0, 1}, 4, []float64{0}},
		// np.quantile([5, 5, 5], np.arange(1, 10)/10) -> nine 5.0, one edge left.
		{"constant", []float64{5, 5, 5}, 10, []float64{5}},
		{"one bin", []float64{1, 2, 3}, 1, []float64{}},
		// np.quantile([7], [0.5]) -> [7.0]
		{"one value", []float64{7}, 2, []float64{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := QuantileEdges(tt.values, tt.bins)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				checkRel(t, "edge", got[i], tt.want[i], 1e-12)
			}
		})
	}
}

func TestQuantileEdgesNumpyLarge(t *testing.T) {
	// np.quantile(weyl(1001, 7919, 10007, 3.0, -1.0), np.arange(1, 10)/10)
	values := weyl(1001, 7919, 10007, 3.0, -1.0)
	want := []float64{-0.6972119516338563, -0.40011991605875885, -0.09733186769261515, 0.1997601678824823, 0.49985010492655135, 0.7999400419706206, 1.0997301888677926, 1.3998201259118614, 1.6999100629559312}
	got, err := QuantileEdges(values, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		checkRel(t, "edge", got[i], want[i], 1e-12)
	}
}

func TestBin(t *testing.T) {
	edges := []float64{-1, 0, 2.5}
	tests := []struct {
		name  string
		edges []float64
		x     float64
		want  int
	}{
		{"below first edge", edges, -7, 0},
		{"on first edge", edges, -1, 1},
		{"inside", edges, -0.5, 1},
		{"on inner edge", edges, 0, 2},
		{"just below last edge", edges, math.Nextafter(2.5, 0), 2},
		{"on last edge", edges, 2.5, 3},
		{"above", edges, 1e300, 3},
		{"minus infinity", edges, math.Inf(-1), 0},
		{"plus infinity", edges, math.Inf(1), 3},
		{"null", edges, math.NaN(), -1},
		{"no edges", nil, 42, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Bin(tt.edges, tt.x); got != tt.want {
				t.Errorf("Bin(%v, %v) = %d, want %d", tt.edges, tt.x, got, tt.want)
			}
		})
	}
}

// TestBinQuantileShares checks that quantile edges split the reference
// into nearly equal bins.
func TestBinQuantileShares(t *testing.T) {
	values := weyl(10000, 7919, 10007, 1, 0)
	edges, err := QuantileEdges(values, 10)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(edges)+1)
	for _, v := range values {
		counts[Bin(edges, v)]++
	}
	for i, c := range counts {
		if c < 999 || c > 1001 {
			t.Errorf("bin %d holds %d values, want 1000 +- 1", i, c)
		}
	}
}

func TestQuantileEdgesInvalid(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		values []float64
		bins   int
		want   string
	}{
		{"empty reference", nil, 10, "reference is empty"},
		{"all null", []float64{nan, nan}, 10, "only nulls"},
		{"zero bins", []float64{1, 2}, 0, "bins must be between 1 and"},
		{"too many bins", []float64{1, 2}, MaxBins + 1, "bins must be between 1 and"},
		{"infinite value", []float64{1, math.Inf(1)}, 2, "reference value 1 is infinite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := QuantileEdges(tt.values, tt.bins)
			checkInvalid(t, err, tt.want)
		})
	}
}
