package stats

import (
	"math"
	"sort"
)

// Holm returns the Holm (step-down Bonferroni) adjusted p-values, in the
// order of p, as R's p.adjust(p, "holm"): with the m p-values sorted
// ascending, adj_(i) = max over j <= i of min(1, (m-j+1)*p_(j)). The result
// is monotone in p and capped at 1. Entries that are NaN or outside [0, 1]
// give NaN and do not count in m, as NA in R. p itself is not modified; nil
// or empty p gives an empty result.
func Holm(p []float64) []float64 {
	out, idx := adjustOrder(p)
	m := float64(len(idx))
	running := 0.0
	for rank, i := range idx {
		v := math.Min(1, (m-float64(rank))*p[i])
		running = math.Max(running, v)
		out[i] = running
	}
	return out
}

// BenjaminiHochberg returns the Benjamini-Hochberg adjusted p-values
// (false discovery rate), in the order of p, as R's p.adjust(p, "BH"): with
// the m p-values sorted ascending, adj_(i) = min over j >= i of
// min(1, m*p_(j)/j). Entries that are NaN or outside [0, 1] give NaN and do
// not count in m. p itself is not modified; nil or empty p gives an empty
// result.
func BenjaminiHochberg(p []float64) []float64 {
	out, idx := adjustOrder(p)
	m := float64(len(idx))
	running := 1.0
	for rank := len(idx) - 1; rank >= 0; rank-- {
		i := idx[rank]
		running = math.Min(running, m*p[i]/float64(rank+1))
		out[i] = running
	}
	return out
}

// adjustOrder returns a result slice the length of p with NaN at the
// entries of p that are not p-values (NaN or outside [0, 1]), and the
// indices of the other entries sorted by p ascending (ties in input order).
func adjustOrder(p []float64) (out []float64, idx []int) {
	out = make([]float64, len(p))
	idx = make([]int, 0, len(p))
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			out[i] = math.NaN()
			continue
		}
		idx = append(idx, i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return out, idx
}
