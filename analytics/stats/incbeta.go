package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// betaTails returns I_x(a, b) and 1 - I_x(a, b), the distribution and
// survival functions of Beta(a, b) at x, given x and xc = 1-x. The smaller
// tail is computed directly and the other as its complement.
//
// For a, b >= 20 it uses the continued fraction of the incomplete beta
// function (modified Lentz) with the prefactor x^a (1-x)^b / B(a, b) in
// the form of DiDonato and Morris (ACM TOMS 18, 1992), built from
// ln(x/x0) and ln(xc/(1-x0)) around the mean x0 = a/(a+b) and Stirling
// corrections, which stays accurate for parameters in the millions where
// ln B(a, b) from log-gamma values loses digits. Smaller parameters go to
// gonum's mathext.RegIncBeta.
func betaTails(a, b, x, xc float64) (lower, upper float64) {
	if a < 20 || b < 20 {
		if x <= a/(a+b) {
			l := mathext.RegIncBeta(a, b, x)
			return l, 1 - l
		}
		u := mathext.RegIncBeta(b, a, xc)
		return 1 - u, u
	}
	if x <= (a+1)/(a+b+2) {
		l := betaPowerTerms(a, b, x, xc) * betaContinuedFraction(a, b, x) / a
		return l, 1 - l
	}
	u := betaPowerTerms(b, a, xc, x) * betaContinuedFraction(b, a, xc) / b
	return 1 - u, u
}

// betaPowerTerms returns x^a y^b / B(a, b) for a, b >= 20 and y = 1-x:
//
//	(x/x0)^a (y/y0)^b sqrt(ab/(2π(a+b))) exp(Δ(a+b) - Δ(a) - Δ(b))
//
// with x0 ≈ a/(a+b), y0 = 1-x0 and Δ the remainder of Stirling's series.
func betaPowerTerms(a, b, x, y float64) float64 {
	// x0 + y0 == 1 exactly (the complement of a number in [0.5, 1] is exact),
	// so that the error of the rounded mean cancels between the two logarithms
	// to first order: a ln x0 + b ln(1-x0) is stationary at the mean.
	var x0, y0 float64
	if a <= b {
		y0 = 1 - a/(a+b)
		x0 = 1 - y0
	} else {
		x0 = 1 - b/(a+b)
		y0 = 1 - x0
	}
	l := logKernel(a, b, x, y, x0, y0) +
		0.5*math.Log(a/(a+b)*b/(2*math.Pi)) +
		stirlingRemainder(a+b) - stirlingRemainder(a) - stirlingRemainder(b)
	return math.Exp(l)
}

// stirlingRemainder returns ln Γ(z) - ((z-1/2) ln z - z + ln(2π)/2) for
// z >= 20 from its asymptotic series, accurate to about 1e-17 there.
func stirlingRemainder(z float64) float64 {
	z2 := 1 / (z * z)
	return (1.0/12 - z2*(1.0/360-z2*(1.0/1260-z2*(1.0/1680-z2*(1.0/1188))))) / z
}

// betaContinuedFraction evaluates the continued fraction of I_x(a, b) by
// the modified Lentz method; it converges for x < (a+1)/(a+b+2) in
// O(sqrt(max(a, b))) steps.
func betaContinuedFraction(a, b, x float64) float64 {
	const (
		tiny    = 1e-300
		eps     = 1e-16
		maxIter = 1_000_000
	)
	qab, qap, qam := a+b, a+1, a-1
	c := 1.0
	d := 1 - qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1.0; m <= maxIter; m++ {
		m2 := 2 * m
		aa := m * (b - m) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// logKernel returns a*ln(x/x0) + b*ln(xc/y0) for a point of (0, 1) given as
// x and xc = 1-x, and a reference point with x0 + y0 == 1 exactly. Both
// logarithms are derived from the one of x and xc that is at most 1/2 (and
// so carries the point's full precision), through the difference to the
// reference point: a rounding gap between x and 1-xc would otherwise be
// multiplied by b/y0, which is large for posteriors with millions of units.
func logKernel(a, b, x, xc, x0, y0 float64) float64 {
	if x > 0.5 {
		return logKernel(b, a, xc, x, y0, x0)
	}
	d := x - x0 // = y0 - xc
	lx := math.Log1p(d / x0)
	if math.Abs(d) > x0/2 {
		lx = math.Log(x / x0)
	}
	// xc >= 1/2 here, so (xc - y0)/y0 = -d/y0 > -1/2.
	return a*lx + b*math.Log1p(-d/y0)
}
