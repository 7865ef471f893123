package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Welch compares the means of y with Welch's unequal-variance t-test, as
// scipy.stats.ttest_ind(t, c, equal_var=False):
//
//	se^2 = var_c/N_c + var_t/N_t,  t = (mean_t - mean_c)/se,
//	DF = se^4 / ((var_c/N_c)^2/(N_c-1) + (var_t/N_t)^2/(N_t-1))
//
// CI and RelCI use the Student t quantile with DF degrees of freedom.
//
// When both groups have zero variance, se is zero: Welch then reports
// Statistic 0 and PValue 1 when the means are equal, Statistic ±Inf and
// PValue 0 when they differ, a CI of width zero, and DF = N_c + N_t - 2
// (the Welch-Satterthwaite formula is 0/0 there).
//
// It returns an EINVALID error unless 0 < alpha < 1, both groups have at
// least two units and all fields are finite.
func Welch(c, t Summary, alpha float64) (Comparison, error) {
	if err := checkAlpha(alpha); err != nil {
		return Comparison{}, err
	}
	if err := checkSummary("control", c, 2); err != nil {
		return Comparison{}, err
	}
	if err := checkSummary("treatment", t, 2); err != nil {
		return Comparison{}, err
	}
	return welch(testWelch, c.N, c.Mean(), c.Variance(), t.N, t.Mean(), t.Variance(), alpha), nil
}

// welch is Welch's t-test on the group sizes, means and sample variances.
func welch(test string, nc, mc, vc, nt, mt, vt, alpha float64) Comparison {
	ec, et := vc/nc, vt/nt
	se2 := ec + et
	cmp := Comparison{Test: test}
	if se2 == 0 {
		cmp.DF = nc + nt - 2
		lifts(&cmp, moments{mean: mc}, moments{mean: mt}, 0)
		switch {
		case cmp.AbsLift == 0:
			cmp.Statistic, cmp.PValue = 0, 1
		default:
			cmp.Statistic, cmp.PValue = math.Copysign(math.Inf(1), cmp.AbsLift), 0
		}
		return cmp
	}
	cmp.DF = se2 * se2 / (ec*ec/(nc-1) + et*et/(nt-1))
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: cmp.DF}
	lifts(&cmp, moments{mean: mc, se2: ec}, moments{mean: mt, se2: et}, dist.Quantile(1-alpha/2))
	cmp.Statistic = cmp.AbsLift / math.Sqrt(se2)
	cmp.PValue = 2 * dist.Survival(math.Abs(cmp.Statistic))
	return cmp
}
