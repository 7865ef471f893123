package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Names of the tests reported in Comparison.Test.
const (
	testZ     = "z"     // pooled two-proportion z-test
	testWelch = "welch" // Welch's unequal-variance t-test
	testCUPED = "cuped" // Welch's t-test on CUPED-adjusted values
)

// Comparison is treatment vs control on one metric.
//
// AbsLift is mean_t - mean_c and RelLift is AbsLift/mean_c (NaN when
// mean_c == 0). CI is the (1-alpha) confidence interval on AbsLift with the
// unpooled standard error sqrt(var_c/n_c + var_t/n_t), using the normal
// quantile for the z-test and the Welch t quantile (DF degrees of freedom)
// otherwise. RelCI is the (1-alpha) interval on RelLift by the delta method,
// se^2 = se_t^2/mean_c^2 + mean_t^2*se_c^2/mean_c^4 with se_g^2 = var_g/n_g,
// with the same quantile as CI; it is NaN when mean_c == 0. Statistic is z
// or t, DF the Welch-Satterthwaite degrees of freedom (0 for the z-test),
// and PValue the two-sided p-value.
type Comparison struct {
	Test      string     // "z" (pooled two-proportion z-test), "welch", "cuped"
	AbsLift   float64    // mean_t - mean_c
	RelLift   float64    // AbsLift / mean_c; NaN when mean_c == 0
	CI        [2]float64 // (1-alpha) CI on AbsLift, unpooled standard error
	RelCI     [2]float64 // (1-alpha) CI on RelLift by the delta method (NaN when mean_c == 0)
	Statistic float64    // z or t
	DF        float64    // Welch-Satterthwaite degrees of freedom (0 for z)
	PValue    float64    // two-sided
}

// moments are the mean and the squared standard error of the mean of one
// variant.
type moments struct {
	mean, se2 float64
}

// lifts fills the AbsLift, RelLift, CI and RelCI fields of cmp from the
// control and treatment moments and the two-sided quantile q.
func lifts(cmp *Comparison, c, t moments, q float64) {
	cmp.AbsLift = t.mean - c.mean
	se := math.Sqrt(c.se2 + t.se2)
	cmp.CI = [2]float64{cmp.AbsLift - q*se, cmp.AbsLift + q*se}
	if c.mean == 0 {
		nan := math.NaN()
		cmp.RelLift = nan
		cmp.RelCI = [2]float64{nan, nan}
		return
	}
	cmp.RelLift = cmp.AbsLift / c.mean
	r := t.mean / c.mean
	seRel := math.Sqrt(t.se2/(c.mean*c.mean) + r*r*c.se2/(c.mean*c.mean))
	cmp.RelCI = [2]float64{cmp.RelLift - q*seRel, cmp.RelLift + q*seRel}
}

// normalTwoSided returns the two-sided p-value 2*Phi(-|z|) of a standard
// normal statistic.
func normalTwoSided(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// normalQuantile returns the p quantile of the standard normal distribution.
func normalQuantile(p float64) float64 {
	return distuv.UnitNormal.Quantile(p)
}
