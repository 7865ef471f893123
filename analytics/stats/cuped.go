package stats

// CUPED compares the means of y after variance reduction with the
// pre-exposure covariate x (Deng, Xu, Kohavi and Walker, "Improving the
// Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
// Data", WSDM 2013). theta is estimated once over the units of both
// variants together:
//
//	theta = cov(x, y)/var(x) over all units of c and t
//
// and each unit's value is adjusted to y - theta*(x - mean_x), mean_x being
// the mean of x over both variants. CUPED returns Welch's t-test (see Welch)
// on the adjusted values, computed from the sums only, with Test "cuped",
// and theta. AbsLift is the difference of the adjusted means; RelLift and
// RelCI are relative to the adjusted control mean. theta is treated as
// known (its estimation error is ignored, as in the paper).
//
// When x has zero variance over all units (no covariate), theta is 0 and
// the result equals Welch's test. Zero adjusted variance in both groups is
// handled as in Welch.
//
// It returns an EINVALID error under the same conditions as Welch.
func CUPED(c, t Summary, alpha float64) (Comparison, float64, error) {
	if err := checkAlpha(alpha); err != nil {
		return Comparison{}, 0, err
	}
	if err := checkSummary("control", c, 2); err != nil {
		return Comparison{}, 0, err
	}
	if err := checkSummary("treatment", t, 2); err != nil {
		return Comparison{}, 0, err
	}
	all := c.add(t)
	theta := 0.0
	if vx := all.varianceX(); vx > 0 {
		theta = all.covariance() / vx
	}
	mx := all.meanX()
	mc, vc := adjusted(c, theta, mx)
	mt, vt := adjusted(t, theta, mx)
	return welch(testCUPED, c.N, mc, vc, t.N, mt, vt, alpha), theta, nil
}

// adjusted returns the mean and the sample variance of y - theta*(x - mx)
// over the units of s, from the centred second moments of s.
func adjusted(s Summary, theta, mx float64) (mean, variance float64) {
	mean = s.Mean() - theta*(s.meanX()-mx)
	variance = s.Variance() - 2*theta*s.covariance() + theta*theta*s.varianceX()
	if variance < 0 {
		variance = 0
	}
	return mean, variance
}
