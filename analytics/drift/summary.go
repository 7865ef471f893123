package drift

import "math"

// MaxUnique caps Summary.Unique: counting stops at this many distinct
// values.
const MaxUnique = 1000

// Summary describes a numeric column of the reference or current data.
// N counts the non-null values and Nulls the null (NaN) ones. Mean, Std,
// Min and Max are over the non-null values, Std being the population
// standard deviation (ddof = 0, numpy.std's default), the norm of the
// normed Wasserstein distance; they are zero when N is zero. Unique counts
// distinct non-null values up to MaxUnique (0 and -0 are one value).
type Summary struct {
	N, Nulls, Mean, Std, Min, Max float64
	Unique                        int
}

// Summarize returns the Summary of values, NaN standing for null. An
// infinite value makes Mean, Std, Min or Max infinite or NaN; the drift
// tests reject such values.
func Summarize(values []float64) Summary {
	var s Summary
	var sum float64
	seen := make(map[float64]struct{})
	for _, v := range values {
		if math.IsNaN(v) {
			s.Nulls++
			continue
		}
		if s.N == 0 || v < s.Min {
			s.Min = v
		}
		if s.N == 0 || v > s.Max {
			s.Max = v
		}
		s.N++
		sum += v
		if len(seen) < MaxUnique {
			seen[v] = struct{}{}
		}
	}
	if s.N == 0 {
		return s
	}
	s.Unique = len(seen)
	s.Mean = sum / s.N
	var ss float64
	for _, v := range values {
		if !math.IsNaN(v) {
			d := v - s.Mean
			ss += d * d
		}
	}
	s.Std = math.Sqrt(ss / s.N)
	return s
}
