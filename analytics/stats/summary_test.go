package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"abgate"
)

// summarize returns the Summary of per-unit values y and covariates x (x
// may be nil), accumulated as the SQL aggregation does: plain running sums.
func summarize(y, x []float64) Summary {
	var s Summary
	for i, v := range y {
		s.N++
		s.SumY += v
		s.SumY2 += v * v
		if x != nil {
			s.SumX += x[i]
			s.SumX2 += x[i] * x[i]
			s.SumXY += x[i] * v
		}
	}
	return s
}

// twoPass returns the mean and the sample variance of v by the two-pass
// algorithm on the raw values.
func twoPass(v []float64) (mean, variance float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(v)-1)
}

// close reports whether got agrees with want to the relative tolerance tol
// (absolute when want is zero). NaN agrees with NaN, and infinities with
// themselves.
func close(got, want, tol float64) bool {
	switch {
	case math.IsNaN(want):
		return math.IsNaN(got)
	case math.IsInf(want, 0) || want == 0:
		return got == want || math.Abs(got-want) <= tol
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// checkClose fails t when got and want disagree to tol.
func checkClose(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if !close(got, want, tol) {
		t.Errorf("%s: got %.17g, want %.17g (tolerance %g)", name, got, want, tol)
	}
}

// checkInvalid fails t unless err is an abgate EINVALID error.
func checkInvalid(t *testing.T, err error) {
	t.Helper()
	if got, want := abgate.ErrorCode(err), abgate.EINVALID; got != want {
		t.Errorf("error code: got %q (%v), want %q", got, err, want)
	}
}

func TestSummaryMeanVariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	offset := make([]float64, 10000)
	for i := range offset {
		offset[i] = 1000 + rng.NormFloat64()
	}
	revenue := make([]float64, 5000)
	for i := range revenue {
		revenue[i] = math.Exp(rng.NormFloat64()) * 20
	}
	tests := []struct {
		name string
		y    []float64
	}{
		{"small", []float64{1, 2, 3, 4, 5, 6}},
		{"offset 1000, sd 1", offset},
		{"lognormal revenue", revenue},
		{"binary", []float64{0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := summarize(tt.y, nil)
			wantMean, wantVar := twoPass(tt.y)
			checkClose(t, "Mean", s.Mean(), wantMean, 1e-9)
			checkClose(t, "Variance", s.Variance(), wantVar, 1e-6)
		})
	}
}

func TestSummaryDegenerate(t *testing.T) {
	// Ten units of 0.1: the sums give SumY2 - SumY^2/N ≈ 0 up to rounding,
	// which may be negative; the variance is 0 by hand.
	const1 := make([]float64, 10)
	for i := range const1 {
		const1[i] = 0.1
	}
	tests := []struct {
		name               string
		s                  Summary
		wantMean, wantVar  float64
		varianceUpperBound float64
	}{
		{"no units", Summary{}, 0, 0, 0},
		{"one unit", Summary{N: 1, SumY: 7, SumY2: 49}, 7, 0, 0},
		{"constant 0.1", summarize(const1, nil), 0.1, 0, 1e-17},
		{"sums rounded below zero variance", Summary{N: 3, SumY: 3, SumY2: 3 - 1e-15}, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkClose(t, "Mean", tt.s.Mean(), tt.wantMean, 1e-15)
			got := tt.s.Variance()
			if got < 0 || got > tt.varianceUpperBound {
				t.Errorf("Variance: got %g, want in [0, %g]", got, tt.varianceUpperBound)
			}
		})
	}
}
