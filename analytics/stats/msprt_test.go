package stats

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"
)

// fromMoments returns a Summary of n units with the given mean and sample
// variance (no covariate).
func fromMoments(n, mean, variance float64) Summary {
	sum := n * mean
	return Summary{N: n, SumY: sum, SumY2: sum*sum/n + (n-1)*variance}
}

func TestMSPRT(t *testing.T) {
	// Reference in SciPy, from the same sums:
	//   v1 = (Q1 - S1*S1/N1)/(N1-1); v2 = ...; V = v1/N1 + v2/N2; d = S2/N2 - S1/N1
	//   num = scipy.integrate.quad(lambda th: norm.pdf(d, th, sqrt(V))*norm.pdf(th, 0, sqrt(tau2)),
	//                              d-40*sqrt(V), d+40*sqrt(V), epsabs=0, epsrel=1e-13, limit=200)[0]
	//   Lambda = num/norm.pdf(d, 0, sqrt(V)); p = min(1, 1/Lambda)
	tests := []struct {
		name string
		c, t Summary
		tau2 float64
		want float64
	}{
		{"tau2 1", Summary{N: 500, SumY: 5000, SumY2: 51996}, Summary{N: 520, SumY: 5356, SumY2: 57502.3}, 1, 0.5477149572177167},
		{"tau2 0.01", Summary{N: 500, SumY: 5000, SumY2: 51996}, Summary{N: 520, SumY: 5356, SumY2: 57502.3}, 0.01, 0.4590387278708752},
		// Lambda = 0.6252154110398762 < 1
		{"weak evidence", Summary{N: 2000, SumY: 10000, SumY2: 67991}, Summary{N: 2100, SumY: 10710, SumY2: 74561.5}, 0.05, 1},
		// Lambda = 0.14002800840280102: equal means
		{"no difference", Summary{N: 200, SumY: 200, SumY2: 399}, Summary{N: 200, SumY: 200, SumY2: 399}, 0.5, 1},
		// Lambda = 522430.7665705233
		{"strong evidence", Summary{N: 1000, SumY: 10000, SumY2: 103996}, Summary{N: 1000, SumY: 10500, SumY2: 114246}, 0.1, 1.914129228193166e-06},
		// Hand: documented edge cases.
		{"tau2 0", Summary{N: 1000, SumY: 10000, SumY2: 103996}, Summary{N: 1000, SumY: 10500, SumY2: 114246}, 0, 1},
		{"one unit", Summary{N: 1, SumY: 3, SumY2: 9}, Summary{N: 1000, SumY: 10500, SumY2: 114246}, 0.1, 1},
		{"constant equal", Summary{N: 10, SumY: 20, SumY2: 40}, Summary{N: 12, SumY: 24, SumY2: 48}, 0.1, 1},
		{"constant different", Summary{N: 10, SumY: 20, SumY2: 40}, Summary{N: 12, SumY: 36, SumY2: 108}, 0.1, 0},
		{"negative tau2", Summary{N: 10, SumY: 20, SumY2: 50}, Summary{N: 12, SumY: 36, SumY2: 120}, -1, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkClose(t, "p", MSPRT(tt.c, tt.t, tt.tau2), tt.want, 1e-9)
		})
	}
}

func TestMSPRTMatchesIntegratedMixture(t *testing.T) {
	// The closed form against Gauss-Legendre integration of the mixture
	// likelihood ratio over theta ~ N(0, tau2), done here on the raw formula.
	tests := []struct {
		name string
		c, t Summary
		tau2 float64
	}{
		{"revenue", fromMoments(800, 31.2, 400), fromMoments(790, 33.5, 420), 2.5},
		{"conversion", fromMoments(20000, 0.1, 0.09), fromMoments(20100, 0.108, 0.0963), 1e-4},
		{"tiny tau2", fromMoments(300, 5, 1), fromMoments(310, 5.4, 1.1), 1e-4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.c.Variance()/tt.c.N + tt.t.Variance()/tt.t.N
			d := tt.t.Mean() - tt.c.Mean()
			se := math.Sqrt(v)
			null := distuv.Normal{Mu: 0, Sigma: se}.Prob(d)
			f := func(theta float64) float64 {
				return distuv.Normal{Mu: theta, Sigma: se}.Prob(d) * distuv.Normal{Mu: 0, Sigma: math.Sqrt(tt.tau2)}.Prob(theta) / null
			}
			// The integrand is a normal bump centred between 0 and d with sd below
			// min(se, sqrt(tau2)); integrate well past it.
			w := math.Min(se, math.Sqrt(tt.tau2))
			mid := d * tt.tau2 / (tt.tau2 + v)
			lambda := quad.Fixed(f, mid-40*w, mid+40*w, 2000, nil, 0)
			if !(lambda > 1) {
				t.Fatalf("Lambda = %g: pick data with evidence, so that p < 1 is compared", lambda)
			}
			checkClose(t, "p", MSPRT(tt.c, tt.t, tt.tau2), math.Min(1, 1/lambda), 1e-6)
		})
	}
}

func TestMSPRTTau2(t *testing.T) {
	c, tr := fromMoments(500, 10, 4), fromMoments(520, 10.3, 4.5)
	tests := []struct {
		name         string
		alpha, nStar float64
		wantRatio    float64
	}{
		// scipy.optimize.brentq(lambda r: r - 2*np.log(1/a) - np.log1p(r), 1e-6, 100, xtol=1e-15, rtol=8.9e-16)
		// (scipy.optimize.minimize_scalar of the threshold (1+1/r)*(2*log(1/a)+log1p(r)) agrees to 1e-7)
		{"alpha 0.05", 0.05, 1000, 8.211968062068253},
		{"alpha 0.01", 0.01, 5000, 11.756371222495419},
		{"alpha 0.1", 0.1, 250, 6.638352067993811},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MSPRTTau2(c, tr, tt.alpha, tt.nStar)
			vStar := (c.Variance() + tr.Variance()) / tt.nStar
			checkClose(t, "tau2", got, tt.wantRatio*vStar, 1e-9)

			// The smallest |d| rejected at level alpha when V = V* must be
			// larger for tau2 a little off the optimum.
			threshold := func(tau2 float64) float64 {
				return 2 * vStar * (vStar + tau2) / tau2 * (math.Log(1/tt.alpha) + 0.5*math.Log((vStar+tau2)/vStar))
			}
			for _, f := range []float64{0.9, 1.1} {
				if !(threshold(got*f) > threshold(got)) {
					t.Errorf("threshold at %g*tau2 = %g not above %g", f, threshold(got*f), threshold(got))
				}
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		for _, got := range []float64{MSPRTTau2(c, tr, 0, 100), MSPRTTau2(c, tr, 0.05, 0)} {
			if !math.IsNaN(got) {
				t.Errorf("got %g, want NaN", got)
			}
		}
	})
}
