package drift

import "math"

// ProportionFloor replaces a zero proportion in PSI and a zero reference
// proportion in ChiSquare, so that empty bins give finite values.
const ProportionFloor = 1e-4

// PSI returns the population stability index of the current histogram
// against the reference: sum over bins of (q-p)*ln(q/p), p and q being the
// reference and current proportions (count over total). A zero proportion
// on either side is replaced by ProportionFloor (1e-4) on that side only,
// without renormalising, as Evidently's psi_stat_test; a bin empty on both
// sides adds nothing. PSI is a distance: 0 for identical proportions,
// conventionally small below 0.1 and large from 0.25.
//
// It returns an EINVALID error when the histograms are empty, differ in
// length, hold a negative, NaN or infinite count, or either has no
// observations.
func PSI(ref, cur []float64) (float64, error) {
	refTotal, curTotal, err := checkHistograms(ref, cur)
	if err != nil {
		return 0, err
	}
	psi := 0.0
	for i := range ref {
		p := floorProportion(ref[i] / refTotal)
		q := floorProportion(cur[i] / curTotal)
		psi += (q - p) * math.Log(q/p)
	}
	return psi, nil
}

func floorProportion(p float64) float64 {
	if p == 0 {
		return ProportionFloor
	}
	return p
}
