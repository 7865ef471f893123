package drift

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		values []float64
		want   Summary
	}{
		// v = np.array([1.5, nan, -2.0, 3.25, 1.5, nan, 0.0, 7.0]); w = v[~np.isnan(v)]
		// len(w), w.mean(), w.std(), w.min(), w.max(), len(np.unique(w))
		// -> 6 1.875 2.797878660699924 -2.0 7.0 5
		{"with nulls", []float64{1.5, nan, -2.0, 3.25, 1.5, nan, 0.0, 7.0},
			Summary{N: 6, Nulls: 2, Mean: 1.875, Std: 2.797878660699924, Min: -2, Max: 7, Unique: 5}},
		{"all null", []float64{nan, nan}, Summary{Nulls: 2}},
		{"empty", nil, Summary{}},
		{"zero and minus zero", []float64{0, math.Copysign(0, -1)}, Summary{N: 2, Unique: 1}},
		// np.std([4.0]) -> 0.0
		{"single", []float64{4}, Summary{N: 1, Mean: 4, Min: 4, Max: 4, Unique: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.values)
			checkRel(t, "N", got.N, tt.want.N, 0)
			checkRel(t, "Nulls", got.Nulls, tt.want.Nulls, 0)
			checkRel(t, "Mean", got.Mean, tt.want.Mean, 1e-12)
			checkRel(t, "Std", got.Std, tt.want.Std, 1e-12)
			checkRel(t, "Min", got.Min, tt.want.Min, 0)
			checkRel(t, "Max", got.Max, tt.want.Max, 0)
			if got.Unique != tt.want.Unique {
				t.Errorf("Unique = %d, want %d", got.Unique, tt.want.Unique)
			}
		})
	}
}

func TestSummarizeNumpy(t *testing.T) {
	// a = weyl(12000, 7919, 10007, 2.0, 0.0)
	// a.mean(), a.std(), a.min(), a.max() ->
	// 1.0000137237267246 0.5773570920419282 0.0 1.9998001399020686
	got := Summarize(weyl(12000, 7919, 10007, 2.0, 0.0))
	checkRel(t, "N", got.N, 12000, 0)
	checkRel(t, "Mean", got.Mean, 1.0000137237267246, 1e-12)
	checkRel(t, "Std", got.Std, 0.5773570920419282, 1e-12)
	checkRel(t, "Min", got.Min, 0, 0)
	checkRel(t, "Max", got.Max, 1.9998001399020686, 0)
	if got.Unique != MaxUnique {
		t.Errorf("Unique = %d, want the cap %d", got.Unique, MaxUnique)
	}
}
