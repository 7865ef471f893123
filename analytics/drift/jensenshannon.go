package drift

import "math"

// JensenShannon returns the Jensen-Shannon distance between the reference
// and current proportions: the square root of the Jensen-Shannon
// divergence with natural logarithms, sqrt((KL(p||m) + KL(q||m))/2) with m
// = (p+q)/2, as scipy.spatial.distance.jensenshannon(ref, cur) (which
// normalises counts to proportions). Empty bins need no floor (0*ln 0 =
// 0). The distance lies in [0, sqrt(ln 2)].
//
// It returns an EINVALID error when the histograms are empty, differ in
// length, hold a negative, NaN or infinite count, or either has no
// observations.
func JensenShannon(ref, cur []float64) (float64, error) {
	refTotal, curTotal, err := checkHistograms(ref, cur)
	if err != nil {
		return 0, err
	}
	js := 0.0
	for i := range ref {
		p, q := ref[i]/refTotal, cur[i]/curTotal
		m := (p + q) / 2
		js += relEntropy(p, m) + relEntropy(q, m)
	}
	return math.Sqrt(math.Max(js, 0) / 2), nil
}

// relEntropy is x*ln(x/y) with 0*ln(0/y) = 0, as scipy.special.rel_entr.
func relEntropy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(x/y)
}
