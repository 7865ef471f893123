package stats

import (
	"math"

	"abgate"
)

// SampleSizeProportions returns the number of units per variant needed to
// detect a change of the conversion rate from baseline to baseline+mde
// (mde absolute, either sign) with a two-sided test at level alpha and the
// given power. It is the formula that R's power.prop.test solves (with its
// default strict = FALSE):
//
//	n = (z_{1-alpha/2}*sqrt(2*pbar*(1-pbar)) + z_power*sqrt(p1(1-p1) + p2(1-p2)))^2 / (p2-p1)^2
//
// with p1 = baseline, p2 = baseline+mde and pbar = (p1+p2)/2, in closed
// form (R finds n by root finding, to about four decimals). The result is
// not rounded: callers round up.
//
// It returns an EINVALID error unless alpha, power, baseline and
// baseline+mde are in (0, 1), mde != 0 and power > alpha/2.
func SampleSizeProportions(baseline, mde, alpha, power float64) (float64, error) {
	za, zb, err := powerQuantiles(alpha, power)
	if err != nil {
		return 0, err
	}
	if err := checkRate("baseline", baseline); err != nil {
		return 0, err
	}
	if err := checkRate("baseline+mde", baseline+mde); err != nil {
		return 0, err
	}
	if mde == 0 {
		return 0, abgate.Errorf(abgate.EINVALID, "mde must not be zero")
	}
	return propN(baseline, mde, za, zb), nil
}

// MDEProportions returns the smallest positive absolute increase of the
// conversion rate over baseline that n units per variant detect with a
// two-sided test at level alpha and the given power: the mde at which
// SampleSizeProportions(baseline, mde, alpha, power) == n, found by
// bisection to full float64 precision.
//
// It returns an EINVALID error unless alpha, power and baseline are in
// (0, 1), power > alpha/2 and n > 0, or when n units do not suffice for any
// increase that keeps baseline+mde below 1.
func MDEProportions(baseline, n, alpha, power float64) (float64, error) {
	za, zb, err := powerQuantiles(alpha, power)
	if err != nil {
		return 0, err
	}
	if err := checkRate("baseline", baseline); err != nil {
		return 0, err
	}
	if !(n > 0) || math.IsInf(n, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "n must be a positive number, got %g", n)
	}
	lo, hi := 0.0, 1-baseline
	if propN(baseline, hi, za, zb) > n {
		return 0, abgate.Errorf(abgate.EINVALID, "%g units per variant cannot detect any increase over %g", n, baseline)
	}
	// propN decreases in mde on (0, 1-baseline): keep propN(lo) > n >= propN(hi).
	for {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			return hi, nil
		}
		if propN(baseline, mid, za, zb) > n {
			lo = mid
		} else {
			hi = mid
		}
	}
}

// SampleSizeMeans returns the number of units per variant needed to detect
// a difference mde in a mean whose per-unit standard deviation is stddev,
// with a two-sided test at level alpha and the given power, by the normal
// approximation
//
//	n = 2*(z_{1-alpha/2} + z_power)^2 * stddev^2 / mde^2
//
// (for alpha = 0.05 and power = 0.8 this is the rule of thumb
// n ≈ 16*stddev^2/mde^2 of van Belle, "Statistical Rules of Thumb", 2.3).
// The result is not rounded: callers round up.
//
// It returns an EINVALID error unless alpha and power are in (0, 1),
// power > alpha/2, stddev > 0 and mde != 0.
func SampleSizeMeans(stddev, mde, alpha, power float64) (float64, error) {
	za, zb, err := powerQuantiles(alpha, power)
	if err != nil {
		return 0, err
	}
	if err := checkStddev(stddev); err != nil {
		return 0, err
	}
	if mde == 0 || math.IsNaN(mde) || math.IsInf(mde, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "mde must be a non-zero number, got %g", mde)
	}
	z := za + zb
	return 2 * z * z * stddev * stddev / (mde * mde), nil
}

// MDEMeans returns the smallest positive difference in a mean that n units
// per variant detect, the inverse of SampleSizeMeans:
// (z_{1-alpha/2} + z_power)*stddev*sqrt(2/n).
//
// It returns an EINVALID error unless alpha and power are in (0, 1),
// power > alpha/2, stddev > 0 and n > 0.
func MDEMeans(stddev, n, alpha, power float64) (float64, error) {
	za, zb, err := powerQuantiles(alpha, power)
	if err != nil {
		return 0, err
	}
	if err := checkStddev(stddev); err != nil {
		return 0, err
	}
	if !(n > 0) || math.IsInf(n, 0) {
		return 0, abgate.Errorf(abgate.EINVALID, "n must be a positive number, got %g", n)
	}
	return (za + zb) * stddev * math.Sqrt(2/n), nil
}

// propN is the power.prop.test sample size for p1 = baseline, p2 =
// baseline+mde and the quantiles za = z_{1-alpha/2}, zb = z_power.
func propN(baseline, mde, za, zb float64) float64 {
	p1, p2 := baseline, baseline+mde
	pbar := (p1 + p2) / 2
	s := za*math.Sqrt(2*pbar*(1-pbar)) + zb*math.Sqrt(p1*(1-p1)+p2*(1-p2))
	return s * s / (mde * mde)
}

// powerQuantiles validates alpha and power and returns z_{1-alpha/2} and
// z_power.
func powerQuantiles(alpha, power float64) (za, zb float64, err error) {
	if err := checkAlpha(alpha); err != nil {
		return 0, 0, err
	}
	if !(power > 0 && power < 1) {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "power must be in (0, 1), got %g", power)
	}
	if !(power > alpha/2) {
		return 0, 0, abgate.Errorf(abgate.EINVALID, "power %g must exceed alpha/2 = %g", power, alpha/2)
	}
	return normalQuantile(1 - alpha/2), normalQuantile(power), nil
}

// checkRate returns an EINVALID error unless 0 < p < 1.
func checkRate(name string, p float64) error {
	if !(p > 0 && p < 1) {
		return abgate.Errorf(abgate.EINVALID, "%s must be in (0, 1), got %g", name, p)
	}
	return nil
}

// checkStddev returns an EINVALID error unless sd is a positive number.
func checkStddev(sd float64) error {
	if !(sd > 0) || math.IsInf(sd, 0) {
		return abgate.Errorf(abgate.EINVALID, "stddev must be a positive number, got %g", sd)
	}
	return nil
}
