package drift

import (
	"math"

	"abgate"
)

// checkHistograms validates a pair of histograms over the same bins and
// returns their totals. Both must be non-empty, of equal length, hold only
// finite non-negative counts and have a positive total.
func checkHistograms(ref, cur []float64) (refTotal, curTotal float64, err error) {
	if len(ref) == 0 {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "reference histogram is empty")
	}
	if len(cur) != len(ref) {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "histograms differ in length: reference has %d bins, current %d", len(ref), len(cur))
	}
	if refTotal, err = histogramTotal("reference", ref); err != nil {
		return 0, 0, err
	}
	if curTotal, err = histogramTotal("current", cur); err != nil {
		return 0, 0, err
	}
	return refTotal, curTotal, nil
}

// histogramTotal returns the sum of counts, or an EINVALID error naming
// the histogram when a count is negative, NaN or infinite, or all are zero.
func histogramTotal(name string, counts []float64) (float64, error) {
	total := 0.0
	for i, c := range counts {
		if math.IsNaN(c) {
			return 0, abgate.Errorf(abgate.EINVALID, "%s count %d is NaN", name, i)
		}
		if c < 0 || math.IsInf(c, 0) {
			return 0, abgate.Errorf(abgate.EINVALID, "%s count %d must be a finite non-negative number, got %g", name, i, c)
		}
		total += c
	}
	if total == 0 {
		return 0, abgate.Errorf(abgate.EINVALID, "%s histogram has no observations", name)
	}
	if math.IsInf(total, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "%s histogram total overflows", name)
	}
	return total, nil
}

// checkEdges validates bin edges against histograms of nbins bins: one
// edge fewer than bins, finite and strictly ascending.
func checkEdges(edges []float64, nbins int) error {
	if len(edges)+1 != nbins {
		return abgate.Errorf(abgate.EINVALID, "%d edges do not fit %d bins: want %d edges", len(edges), nbins, nbins-1)
	}
	for i, e := range edges {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return abgate.Errorf(abgate.EINVALID, "edge %d must be finite, got %g", i, e)
		}
		if i > 0 && !(e > edges[i-1]) {
			return abgate.Errorf(abgate.EINVALID, "edges must be strictly ascending: edge %d (%g) follows %g", i, e, edges[i-1])
		}
	}
	return nil
}

// checkSample validates a raw sample: non-empty, every value finite.
func checkSample(name string, values []float64) error {
	if len(values) == 0 {
		return abgate.Errorf(abgate.EINVALID, "%s sample is empty", name)
	}
	for i, v := range values {
		if math.IsNaN(v) {
			return abgate.Errorf(abgate.EINVALID, "%s value %d is NaN (null): drop nulls before testing", name, i)
		}
		if math.IsInf(v, 0) {
			return abgate.Errorf(abgate.EINVALID, "%s value %d is infinite", name, i)
		}
	}
	return nil
}
