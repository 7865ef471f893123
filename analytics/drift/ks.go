package drift

import (
	"math"
	"slices"
)

// KSSamples returns the two-sample Kolmogorov-Smirnov statistic D, the
// largest distance between the empirical CDFs of ref and cur (exact), and
// its two-sided p-value as scipy.stats.ks_2samp(ref, cur) with its default
// method="auto" (Evidently's ks_stat_test):
//
//   - when neither sample has more than 10000 values, the exact p-value:
//     the share of lattice paths from (0, 0) to (n1, n2) leaving the band
//     |x/n1 - y/n2| < D (Hodges 1958), ks_2samp's method="exact", in
//     O(n1*n2) time at worst (under a second at 10000 each, milliseconds
//     for the reference sizes Choose gives KS); a result that rounds
//     outside [0, 1] falls back to the asymptotic p-value, as in SciPy;
//   - otherwise the asymptotic p-value of method="asymp": Pr(D_n >= D) for
//     Kolmogorov's one-sample distribution with n = round(n1*n2/(n1+n2)),
//     scipy.stats.kstwo.sf(D, n), computed after Simard and L'Ecuyer
//     (2011) as SciPy does.
//
// It returns an EINVALID error when either sample is empty or holds a NaN
// (null) or infinite value; drop nulls first.
func KSSamples(ref, cur []float64) (d, p float64, err error) {
	if err := checkSample("reference", ref); err != nil {
		return 0, 0, err
	}
	if err := checkSample("current", cur); err != nil {
		return 0, 0, err
	}
	a, b := slices.Clone(ref), slices.Clone(cur)
	slices.Sort(a)
	slices.Sort(b)
	n1, n2 := float64(len(a)), float64(len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x := math.Min(a[i], b[j])
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/n1-float64(j)/n2))
	}
	if len(a) <= ksExactMaxN && len(b) <= ksExactMaxN {
		if p, ok := ksExactPValue(len(a), len(b), d); ok {
			return d, p, nil
		}
	}
	return d, ksPValue(d, n1, n2), nil
}

// KSBinned returns the Kolmogorov-Smirnov statistic and p-value from
// histograms over the bins of edges (len(edges)+1 bins, see Bin): D is the
// largest distance between the reference and current cumulative
// proportions at the bin edges, and p is the asymptotic p-value of
// KSSamples (kstwo.sf(D, round(n1*n2/(n1+n2)))) with the histogram totals
// as sample sizes n1 and n2.
//
// Binning hides where in a bin the values lie, so D is a lower bound of the
// statistic of the samples behind the histograms. Within bin k, with S the
// difference of cumulative proportions below the bin and r_k, c_k the
// reference and current proportions of the bin, F_ref - F_cur moves between
// S - c_k and S + r_k, so the sample statistic lies in [D, U] with
// U = max over k of max(S + r_k, c_k - S) <= D + max over k of max(r_k,
// c_k), and U is reached when the reference values of a bin sit at its
// start and the current ones at its end. The error is thus at most the
// largest bin proportion on either side: about 1/bins on the reference
// side for quantile bins, more where current values crowd into one bin.
// As the p-value falls with D, p is at least the asymptotic p-value of the
// samples' statistic.
//
// It returns an EINVALID error when the edges do not fit the histograms
// (len(edges)+1 bins, finite, strictly ascending) or the histograms are
// invalid (see PSI).
func KSBinned(edges, ref, cur []float64) (d, p float64, err error) {
	refTotal, curTotal, err := checkHistograms(ref, cur)
	if err != nil {
		return 0, 0, err
	}
	if err := checkEdges(edges, len(ref)); err != nil {
		return 0, 0, err
	}
	var fr, fc float64
	for i := 0; i < len(ref)-1; i++ {
		fr += ref[i]
		fc += cur[i]
		d = math.Max(d, math.Abs(fr/refTotal-fc/curTotal))
	}
	return d, ksPValue(d, refTotal, curTotal), nil
}

// ksBinnedUpper returns U, the upper bound of the sample statistic
// documented at KSBinned.
func ksBinnedUpper(ref, cur []float64) float64 {
	var refTotal, curTotal float64
	for i := range ref {
		refTotal += ref[i]
		curTotal += cur[i]
	}
	var u, s float64
	for i := range ref {
		r, c := ref[i]/refTotal, cur[i]/curTotal
		u = math.Max(u, math.Max(s+r, c-s))
		s += r - c
	}
	return u
}

// ksPValue returns the two-sided asymptotic p-value of ks_2samp for the
// statistic d between samples of sizes n1 and n2.
func ksPValue(d, n1, n2 float64) float64 {
	en := math.RoundToEven(n1 * n2 / (n1 + n2))
	if !(en >= 1) {
		// Sizes below one, possible only for fractional histogram counts.
		en = 1
	}
	if en > math.MaxInt32 {
		en = math.MaxInt32
	}
	return kolmogorovSF(int(en), d)
}

// ksExactMaxN is the largest sample size for which KSSamples computes the
// exact p-value, as ks_2samp's method="auto".
const ksExactMaxN = 10000

// ksExactPValue returns the exact two-sided p-value of the two-sample
// statistic d for samples of sizes n1 and n2, as ks_2samp's
// method="exact": the proportion of lattice paths from (0, 0) to (n1, n2)
// that leave the band |x/n1 - y/n2| < d. ok is false, as in SciPy, when
// the sizes are too large for it or rounding takes the result outside
// [0, 1] (p = 1 + 2^-52 when every path leaves the band); KSSamples then
// falls back to the asymptotic p-value.
func ksExactPValue(n1, n2 int, d float64) (p float64, ok bool) {
	g := gcd(n1, n2)
	lcm := (n1 / g) * n2
	if n1/g >= math.MaxInt32/(n2/g) {
		return 0, false
	}
	h := int(math.RoundToEven(d * float64(lcm)))
	if h == 0 {
		return 1, true
	}
	if n1 == n2 {
		p = ksOutsideSquare(n1, h)
	} else {
		p = ksOutsideBand(n1, n2, g, h)
	}
	if !(p >= 0 && p <= 1) {
		return p, false
	}
	return p, true
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksOutsideSquare returns the proportion of paths from (0, 0) to (n, n)
// that touch x - y = +-h.
func ksOutsideSquare(n, h int) float64 {
	P := 0.0
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := range h {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1 - P)
	}
	return 2 * P
}

// ksOutsideBand returns the proportion of paths from (0, 0) to (m, n)
// that do not stay strictly inside |n*x/g - m*y/g| < h, one column of
// the path-count table at a time, each entry kept as a proportion.
func ksOutsideBand(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	A := make([]float64, min(2*maxj+2, n+1))
	for i := range A {
		A[i] = 1
	}
	for i := minj; i < maxj; i++ {
		A[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = min(max(floorDiv(ng*i-h, mg)+1, 0), n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := range maxj - minj {
			j := jj + minj
			val = (A[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen) && k < len(A); k++ {
				A[k] = 1
			}
		}
	}
	return A[maxj-minj-1]
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }
