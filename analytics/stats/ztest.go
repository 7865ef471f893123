package stats

import (
	"math"

	"abgate"
)

// ZTest compares two conversion rates (y is 0 or 1 per unit, so SumY counts
// conversions) with the pooled two-proportion z-test:
//
//	p = (SumY_c + SumY_t)/(N_c + N_t),  z = (p_t - p_c)/sqrt(p(1-p)(1/N_c + 1/N_t))
//
// as statsmodels' proportions_ztest. CI and RelCI use the unpooled
// (Wald) standard error sqrt(p_c(1-p_c)/N_c + p_t(1-p_t)/N_t) and the normal
// quantile. SumY2 is not used.
//
// When both groups convert at 0% or both at 100% the pooled standard error
// is zero and so is the difference: ZTest then reports Statistic 0 and
// PValue 1. RelLift and RelCI are NaN when the control rate is zero.
//
// It returns an EINVALID error unless 0 < alpha < 1, both groups have at
// least one unit, 0 <= SumY <= N, and all fields are finite.
func ZTest(c, t Summary, alpha float64) (Comparison, error) {
	if err := checkAlpha(alpha); err != nil {
		return Comparison{}, err
	}
	for _, g := range []struct {
		name string
		s    Summary
	}{{"control", c}, {"treatment", t}} {
		if err := checkSummary(g.name, g.s, 1); err != nil {
			return Comparison{}, err
		}
		if g.s.SumY < 0 || g.s.SumY > g.s.N {
			return Comparison{}, abgate.Errorf(abgate.EINVALID, "%s has %g conversions out of %g units", g.name, g.s.SumY, g.s.N)
		}
	}
	pc, pt := c.Mean(), t.Mean()
	cmp := Comparison{Test: testZ}
	lifts(&cmp,
		moments{mean: pc, se2: pc * (1 - pc) / c.N},
		moments{mean: pt, se2: pt * (1 - pt) / t.N},
		normalQuantile(1-alpha/2))
	p := (c.SumY + t.SumY) / (c.N + t.N)
	se := math.Sqrt(p * (1 - p) * (1/c.N + 1/t.N))
	if se == 0 {
		cmp.Statistic, cmp.PValue = 0, 1
		return cmp, nil
	}
	cmp.Statistic = (pt - pc) / se
	cmp.PValue = normalTwoSided(cmp.Statistic)
	return cmp, nil
}
