package drift

import (
	"math"
	"slices"

	"abgate"
)

// WassersteinSamples returns the normed Wasserstein distance of cur from
// ref: the first Wasserstein (earth mover's) distance between the two
// samples, the integral of |F_ref - F_cur| over the line, as
// scipy.stats.wasserstein_distance(ref, cur), divided by the population
// standard deviation of ref (ddof = 0, numpy.std's default). This is
// Evidently's "normed" Wasserstein distance, in units of reference
// standard deviations, except that Evidently floors the standard deviation
// at 0.001 where WassersteinSamples reports an error.
//
// It returns an EINVALID error when either sample is empty or holds a NaN
// (null) or infinite value, or when ref is constant (standard deviation
// zero).
func WassersteinSamples(ref, cur []float64) (float64, error) {
	if err := checkSample("reference", ref); err != nil {
		return 0, err
	}
	if err := checkSample("current", cur); err != nil {
		return 0, err
	}
	std := Summarize(ref).Std
	if !(std > 0) || math.IsInf(std, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "reference standard deviation is %g: the normed Wasserstein distance needs a varying reference", std)
	}
	a, b := slices.Clone(ref), slices.Clone(cur)
	slices.Sort(a)
	slices.Sort(b)
	n1, n2 := float64(len(a)), float64(len(b))
	// Walk the merged sorted values; between consecutive values x and y
	// both CDFs are constant and |F_ref - F_cur| adds (y-x)*|...|.
	dist := 0.0
	i, j := 0, 0
	prev := math.Min(a[0], b[0])
	for i < len(a) || j < len(b) {
		var x float64
		switch {
		case i == len(a):
			x = b[j]
		case j == len(b):
			x = a[i]
		default:
			x = math.Min(a[i], b[j])
		}
		dist += (x - prev) * math.Abs(float64(i)/n1-float64(j)/n2)
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		prev = x
	}
	return dist / std, nil
}

// WassersteinBinned returns the normed Wasserstein distance from
// histograms over the bins of edges (len(edges)+1 bins, see Bin): the
// integral of |F_ref - F_cur| where each CDF is piecewise linear within a
// bin (the values of a bin spread evenly over it), divided by refStd.
//
// The open first and last bins are closed at lo = min(refMin, edges[0])
// and hi = max(refMax, edges[len(edges)-1]) (refMin and refMax alone
// without edges), the reference range: current values beyond it count as
// if they lay at its ends, so a shift past the reference range is
// underestimated. With quantile edges on a large reference the result
// approaches WassersteinSamples as bins narrow.
//
// It returns an EINVALID error when the edges do not fit the histograms,
// the histograms are invalid (see PSI), refMin or refMax is not finite or
// refMin > refMax, or refStd is not a positive finite number.
func WassersteinBinned(edges, ref, cur []float64, refMin, refMax, refStd float64) (float64, error) {
	refTotal, curTotal, err := checkHistograms(ref, cur)
	if err != nil {
		return 0, err
	}
	if err := checkEdges(edges, len(ref)); err != nil {
		return 0, err
	}
	if math.IsNaN(refMin) || math.IsNaN(refMax) || math.IsInf(refMin, 0) || math.IsInf(refMax, 0) || refMin > refMax {
		return 0, abgate.Errorf(abgate.EINVALID, "reference range [%g, %g] must be finite and ordered", refMin, refMax)
	}
	if !(refStd > 0) || math.IsInf(refStd, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "reference standard deviation must be a positive finite number, got %g", refStd)
	}
	lo, hi := refMin, refMax
	if len(edges) > 0 {
		lo = math.Min(lo, edges[0])
		hi = math.Max(hi, edges[len(edges)-1])
	}
	dist := 0.0
	s0 := 0.0 // F_ref - F_cur at the left end of the bin
	for k := range ref {
		left, right := lo, hi
		if k > 0 {
			left = edges[k-1]
		}
		if k < len(edges) {
			right = edges[k]
		}
		s1 := s0 + ref[k]/refTotal - cur[k]/curTotal
		if k == len(ref)-1 {
			s1 = 0 // both CDFs reach one
		}
		dist += (right - left) * absLinearMean(s0, s1)
		s0 = s1
	}
	return dist / refStd, nil
}

// absLinearMean returns the mean of |f| over [0, 1] for f linear from a
// to b.
func absLinearMean(a, b float64) float64 {
	if (a >= 0) == (b >= 0) || a == 0 || b == 0 {
		return math.Abs(a+b) / 2
	}
	return (a*a + b*b) / (2 * (math.Abs(a) + math.Abs(b)))
}
