package stats

import "math"

// betaIntegrand evaluates integrands at a point of (0, 1) given as x and its
// complement xc = 1-x (computed without cancellation near 1), adding their
// values to out.
type betaIntegrand func(x, xc float64, out *[3]float64)

// tanhSinh integrates the three integrands of f jointly over [lo, hi], a
// sub-interval of [0, 1], by tanh-sinh (double exponential) quadrature,
// which converges quickly for analytic integrands and tolerates integrable
// singularities at the end points: nodes are placed at
// x = lo + (hi-lo)*sigmoid(pi*sinh(t)) for t = k*h, and h is halved until
// every component changes by less than tol*|component 0| between levels.
// Distances to the end points are computed directly, so nodes reach within
// about 1e-300 of an end point.
func tanhSinh(f betaIntegrand, lo, hi, tol float64) [3]float64 {
	const (
		tMax      = 6.1 // pi*sinh(6.1) ≈ 700: the end distance is then ~1e-304
		maxLevels = 12
	)
	width := hi - lo
	var sum [3]float64
	// node adds the weighted integrands at t and -t (only t when t == 0) to acc.
	node := func(t float64, acc *[3]float64) {
		s := math.Pi * math.Sinh(t)
		far := 1 / (1 + math.Exp(-s)) // sigmoid(s)
		near := 1 / (1 + math.Exp(s)) // sigmoid(-s) = 1 - far, accurate when small
		w := width * math.Pi * math.Cosh(t) * far * near
		d := width * near // distance of the nodes to the end points
		if w == 0 || d == 0 {
			return
		}
		var v [3]float64
		// Node near hi.
		f(hi-d, (1-hi)+d, &v)
		if t != 0 {
			// Node near lo.
			f(lo+d, (1-lo)-d, &v)
		}
		for i := range v {
			acc[i] += w * v[i]
		}
	}
	h := 0.5
	node(0, &sum)
	for k := 1; float64(k)*h <= tMax; k++ {
		node(float64(k)*h, &sum)
	}
	est := scale(sum, h)
	for level := 1; level <= maxLevels; level++ {
		h /= 2
		var odd [3]float64
		for k := 1; float64(k)*h <= tMax; k += 2 {
			node(float64(k)*h, &odd)
		}
		for i := range sum {
			sum[i] += odd[i]
		}
		next := scale(sum, h)
		done := level >= 3
		for i := range next {
			if math.Abs(next[i]-est[i]) > tol*math.Abs(next[0]) {
				done = false
			}
		}
		est = next
		if done {
			break
		}
	}
	return est
}

// scale returns v multiplied by h.
func scale(v [3]float64, h float64) [3]float64 {
	return [3]float64{v[0] * h, v[1] * h, v[2] * h}
}
