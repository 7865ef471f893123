package drift

import (
	"math"
	"slices"
	"sort"

	"abgate"
)

// MaxBins is the largest number of bins QuantileEdges accepts.
const MaxBins = 10000

// QuantileEdges returns the inner edges of at most bins bins from the
// reference values: the i/bins quantiles for i = 1..bins-1, deduplicated
// and strictly ascending. NaN values are nulls and are skipped.
//
// Quantiles use linear interpolation between order statistics, as
// numpy.quantile's default method="linear" (R's type 7): for the n sorted
// values x[0..n-1] and q = i/bins, h = (n-1)*q, and the quantile is
// x[floor(h)] + (h-floor(h))*(x[floor(h)+1]-x[floor(h)]).
//
// The bins are open-ended at both ends: bin 0 is (-Inf, e[0]), bin i is
// [e[i-1], e[i]) and the last bin is [e[len(e)-1], +Inf); see Bin. Ties in
// the reference can merge quantiles, so fewer than bins bins may result:
// a constant reference gives one edge, its value, and bins = 1 gives no
// edges (a single bin).
//
// It returns an EINVALID error when bins is below 1 or above MaxBins, when
// values has no non-null value, or when a value is infinite.
func QuantileEdges(values []float64, bins int) ([]float64, error) {
	if bins < 1 || bins > MaxBins {
		return nil, abgate.Errorf(abgate.EINVALID, "bins must be between 1 and %d, got %d", MaxBins, bins)
	}
	if len(values) == 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "reference is empty")
	}
	sorted := make([]float64, 0, len(values))
	for i, v := range values {
		if math.IsNaN(v) {
			continue
		}
		if math.IsInf(v, 0) {
			return nil, abgate.Errorf(abgate.EINVALID, "reference value %d is infinite", i)
		}
		sorted = append(sorted, v)
	}
	if len(sorted) == 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "reference has only nulls (%d values, all NaN)", len(values))
	}
	slices.Sort(sorted)
	edges := make([]float64, 0, bins-1)
	for i := 1; i < bins; i++ {
		e := quantileSorted(sorted, float64(i)/float64(bins))
		if len(edges) > 0 && e <= edges[len(edges)-1] {
			continue
		}
		edges = append(edges, e)
	}
	return edges, nil
}

// quantileSorted returns the q quantile of the sorted values by linear
// interpolation, with numpy's arithmetic for the interpolation (a+(b-a)t
// for t < 0.5, b-(b-a)(1-t) otherwise).
func quantileSorted(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q
	lo := math.Floor(h)
	i := int(lo)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	t := h - lo
	a, b := sorted[i], sorted[i+1]
	if math.IsInf(b-a, 0) {
		// Values near the float64 range: the difference overflows.
		return a*(1-t) + b*t
	}
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

// Bin returns the bin of x for the ascending edges, in [0, len(edges)]:
// the number of edges at or below x, so bin 0 is (-Inf, edges[0]), bin i
// is [edges[i-1], edges[i]) and bin len(edges) is [edges[len(edges)-1],
// +Inf). No edges give the single bin 0. A NaN x is a null, which belongs
// to no bin: Bin returns -1 for it, and callers count nulls apart.
func Bin(edges []float64, x float64) int {
	if math.IsNaN(x) {
		return -1
	}
	return sort.Search(len(edges), func(i int) bool { return edges[i] > x })
}
