package stats

import "math"

// MSPRT returns the always-valid p-value, at this look, for the difference
// in means mean_t - mean_c = 0, by the mixture sequential probability ratio
// test of Johari, Koomen, Pekelis and Walsh ("Peeking at A/B Tests", KDD
// 2017) with the normal mixing distribution N(0, tau2) over the difference.
// With V = var_c/N_c + var_t/N_t (sample variances plugged in, as in the
// paper) and d = mean_t - mean_c, the mixture likelihood ratio is
//
//	Lambda = sqrt(V/(V+tau2)) * exp(tau2*d^2 / (2*V*(V+tau2)))
//
// (for N_c = N_t = n and equal variances sigma^2, V = 2*sigma^2/n gives the
// paper's formula) and the p-value is min(1, 1/Lambda). It is valid at each
// look only as the running minimum over looks, which callers keep.
//
// tau2 = 0 gives Lambda = 1 and p = 1. Before both groups have two units
// there is no evidence and MSPRT returns 1. When V is zero (constant values
// in both groups) it returns 1 if the means are equal and 0 otherwise. It
// returns NaN when tau2 is negative or not a number, or a field is not
// finite.
func MSPRT(c, t Summary, tau2 float64) float64 {
	if !(tau2 >= 0) || math.IsInf(tau2, 0) || !c.finite() || !t.finite() {
		return math.NaN()
	}
	if c.N < 2 || t.N < 2 || tau2 == 0 {
		return 1
	}
	v := c.Variance()/c.N + t.Variance()/t.N
	d := t.Mean() - c.Mean()
	if v == 0 {
		if d == 0 {
			return 1
		}
		return 0
	}
	logLambda := 0.5*math.Log(v/(v+tau2)) + tau2*d*d/(2*v*(v+tau2))
	if logLambda <= 0 {
		return 1
	}
	return math.Exp(-logLambda)
}

// MSPRTTau2 returns the mixing variance tau2 for MSPRT that makes the test
// tightest when each variant has nStar units: the tau2 that minimises the
// smallest |mean_t - mean_c| rejected at level alpha (Lambda >= 1/alpha)
// when V = V* = (var_c + var_t)/nStar, the sample variances of c and t
// standing in for the variances at nStar. Writing r = tau2/V*, the rejection
// threshold is d^2/V* >= (1+1/r)*(2*ln(1/alpha) + ln(1+r)); setting its
// derivative to zero gives
//
//	tau2 = r*V*,  where r solves r = 2*ln(1/alpha) + ln(1+r)
//
// (r ≈ 8.21 for alpha = 0.05), solved here by Newton's method. One
// fixed-point step from r = 2*ln(1/alpha), r ≈ -2*ln(alpha) +
// ln(1-2*ln(alpha)), is the approximately optimal normal-mixture parameter
// given by Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform,
// nonparametric, nonasymptotic confidence sequences" (Ann. Statist. 2021).
//
// It returns 0 (MSPRT then gives p = 1) when both variances are zero, and
// NaN unless 0 < alpha < 1, nStar > 0 and the fields are finite.
func MSPRTTau2(c, t Summary, alpha, nStar float64) float64 {
	if !(alpha > 0 && alpha < 1) || !(nStar > 0) || math.IsInf(nStar, 0) || !c.finite() || !t.finite() {
		return math.NaN()
	}
	return msprtRatio(alpha) * (c.Variance() + t.Variance()) / nStar
}

// msprtRatio solves r = 2*ln(1/alpha) + ln(1+r) for r > 0 by Newton's
// method on g(r) = r - ln(1+r) - 2*ln(1/alpha), which is increasing and
// convex for r > 0: from a start where g > 0 the iterates decrease
// monotonically to the root, and the loop stops when they stop decreasing.
func msprtRatio(alpha float64) float64 {
	l := -2 * math.Log(alpha)
	r := 2*l + 2
	for range 200 {
		next := r - (r-math.Log1p(r)-l)*(1+r)/r
		if !(next < r) {
			break
		}
		r = next
	}
	return r
}
