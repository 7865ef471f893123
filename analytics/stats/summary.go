package stats

import (
	"math"

	"abgate"
)

// Summary holds the sufficient statistics of one variant for one metric:
// units N, sums of the per-unit value y, its square, and of the
// pre-exposure covariate x (CUPED). The zero Summary is a variant with no
// units. SumX, SumX2 and SumXY are zero when there is no covariate.
type Summary struct {
	N                  float64
	SumY, SumY2        float64
	SumX, SumX2, SumXY float64 // zero when there is no covariate
}

// Mean returns SumY/N, the mean of y, or 0 when N == 0.
func (s Summary) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return s.SumY / s.N
}

// Variance returns the sample variance of y (divisor N-1), or 0 when
// N < 2. It is computed from the sums as (SumY2 - mean*SumY)/(N-1) with a
// single rounding (fused multiply-add) and is never negative: a result that
// rounding made negative is returned as 0.
func (s Summary) Variance() float64 {
	return centred(s.N, s.SumY, s.SumY, s.SumY2)
}

// meanX returns SumX/N, or 0 when N == 0.
func (s Summary) meanX() float64 {
	if s.N == 0 {
		return 0
	}
	return s.SumX / s.N
}

// varianceX returns the sample variance of the covariate x, or 0 when N < 2.
func (s Summary) varianceX() float64 {
	return centred(s.N, s.SumX, s.SumX, s.SumX2)
}

// covariance returns the sample covariance of x and y (divisor N-1), or 0
// when N < 2. Unlike the variances it may be negative.
func (s Summary) covariance() float64 {
	if !(s.N >= 2) {
		return 0
	}
	return math.FMA(-s.SumX/s.N, s.SumY, s.SumXY) / (s.N - 1)
}

// centred returns (sumUV - sumU*sumV/n)/(n-1) for a variance (sumU == sumV),
// clamped at zero, or 0 when n < 2.
func centred(n, sumU, sumV, sumUV float64) float64 {
	if !(n >= 2) {
		return 0
	}
	v := math.FMA(-sumU/n, sumV, sumUV) / (n - 1)
	if v < 0 {
		return 0
	}
	return v
}

// add returns the Summary of the union of the units of s and o.
func (s Summary) add(o Summary) Summary {
	return Summary{
		N:     s.N + o.N,
		SumY:  s.SumY + o.SumY,
		SumY2: s.SumY2 + o.SumY2,
		SumX:  s.SumX + o.SumX,
		SumX2: s.SumX2 + o.SumX2,
		SumXY: s.SumXY + o.SumXY,
	}
}

// finite reports whether every field of s is a finite number.
func (s Summary) finite() bool {
	for _, v := range [...]float64{s.N, s.SumY, s.SumY2, s.SumX, s.SumX2, s.SumXY} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// checkSummary returns an EINVALID error when s has non-finite fields, or
// fewer than minN units.
func checkSummary(name string, s Summary, minN float64) error {
	if !s.finite() {
		return abgate.Errorf(abgate.EINVALID, "%s statistics must be finite numbers", name)
	}
	if s.N < minN {
		return abgate.Errorf(abgate.EINVALID, "%s has %g units, at least %g are needed", name, s.N, minN)
	}
	return nil
}

// checkAlpha returns an EINVALID error unless 0 < alpha < 1.
func checkAlpha(alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return abgate.Errorf(abgate.EINVALID, "alpha must be in (0, 1), got %g", alpha)
	}
	return nil
}
