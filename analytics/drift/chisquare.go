package drift

import (
	"gonum.org/v1/gonum/stat/distuv"
)

// ChiSquare returns Pearson's chi-square goodness-of-fit statistic of the
// current counts against the counts expected from the reference
// proportions, expected_i = p_i * sum(cur), and its p-value with df =
// k-1 degrees of freedom, as scipy.stats.chisquare(cur, f_exp=expected)
// (Evidently's chisquare_stat_test on categories).
//
// Bins empty in both histograms carry no information and are left out, k
// being the number of the other bins (Evidently tests the categories seen
// in either sample). A bin empty in the reference but not in the current
// histogram (a category unseen in the reference) would expect zero and
// divide by zero: its reference proportion is raised to ProportionFloor
// (1e-4) and all reference proportions are then renormalised to sum to
// one, which makes such bins weigh heavily but finitely. With fewer than
// two bins left there is nothing to test: stat 0, p 1.
//
// It returns an EINVALID error when the histograms are empty, differ in
// length, hold a negative, NaN or infinite count, or either has no
// observations.
func ChiSquare(ref, cur []float64) (stat, p float64, err error) {
	refTotal, curTotal, err := checkHistograms(ref, cur)
	if err != nil {
		return 0, 0, err
	}
	k := 0
	norm := 0.0
	for i := range ref {
		if ref[i] == 0 && cur[i] == 0 {
			continue
		}
		k++
		norm += floorProportion(ref[i] / refTotal)
	}
	if k < 2 {
		return 0, 1, nil
	}
	for i := range ref {
		if ref[i] == 0 && cur[i] == 0 {
			continue
		}
		e := floorProportion(ref[i]/refTotal) / norm * curTotal
		d := cur[i] - e
		stat += d * d / e
	}
	return stat, distuv.ChiSquared{K: float64(k - 1)}.Survival(stat), nil
}
