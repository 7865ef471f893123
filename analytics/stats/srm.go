package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"abgate"
)

// SRM checks for a sample ratio mismatch: the chi-square goodness-of-fit
// test of the unit counts of the variants against the shares given by
// weights (normalised to sum to one), as scipy.stats.chisquare(counts,
// f_exp) with f_exp = sum(counts)*weights/sum(weights). It returns the
// statistic and its p-value with k-1 degrees of freedom, k being the
// number of variants with a positive weight.
//
// A variant with weight zero expects no units: it is left out of the test
// when its count is zero, and makes chi2 = +Inf and p = 0 otherwise. When
// all counts are zero, or only one variant has a positive weight, there is
// nothing to test and SRM returns chi2 = 0 and p = 1.
//
// It returns an EINVALID error when counts and weights differ in length,
// there are fewer than two variants, a count or weight is negative or not
// finite, or all weights are zero.
func SRM(counts, weights []float64) (chi2, p float64, err error) {
	if len(counts) != len(weights) {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "%d counts but %d weights", len(counts), len(weights))
	}
	if len(counts) < 2 {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "a sample ratio test needs at least two variants, got %d", len(counts))
	}
	var total, wsum float64
	for i := range counts {
		if !(counts[i] >= 0) || math.IsInf(counts[i], 0) {
			return 0, 0, abgate.Errorf(abgate.EINVALID, "count %d must be a non-negative number, got %g", i, counts[i])
		}
		if !(weights[i] >= 0) || math.IsInf(weights[i], 0) {
			return 0, 0, abgate.Errorf(abgate.EINVALID, "weight %d must be a non-negative number, got %g", i, weights[i])
		}
		total += counts[i]
		wsum += weights[i]
	}
	if wsum == 0 {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "weights must not all be zero")
	}
	k := 0
	for i := range counts {
		if weights[i] == 0 {
			if counts[i] > 0 {
				return math.Inf(1), 0, nil
			}
			continue
		}
		k++
		e := total * weights[i] / wsum
		if e > 0 {
			d := counts[i] - e
			chi2 += d * d / e
		}
	}
	if total == 0 || k < 2 {
		return 0, 1, nil
	}
	return chi2, distuv.ChiSquared{K: float64(k - 1)}.Survival(chi2), nil
}
