package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// checkAbs fails t unless |got - want| <= tol.
func checkAbs(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s: got %.17g, want %.17g (absolute tolerance %g)", name, got, want, tol)
	}
}

func TestBetaBinomialExact(t *testing.T) {
	// References in mpmath (40 digits) from Evan Miller's closed form for
	// integer parameters, "Formulas for Bayesian A/B Testing" (2015):
	//
	//   def em(aA, bA, aB, bB):  # P(X_B > X_A), X ~ Beta, aB integer
	//       term = mp.beta(aA, bA+bB)/mp.beta(aA, bA); s = 0
	//       for i in range(int(aB)):   # terms B(aA+i, bA+bB)/((bB+i) B(1+i, bB) B(aA, bA)) by their ratio
	//           s += term; term *= (aA+i)*(bB+i)/((aA+bA+bB+i)*(1+i))
	//       return s
	//
	// chance = em(ac, bc, at, bt); decrease chance = 1 - chance;
	// loss = E[max(p_c - p_t, 0)] = mc*em(at, bt, ac+1, bc) - mt*(1 - em(ac, bc, at+1, bt));
	// decrease loss = E[max(p_t - p_c, 0)] = loss + mt - mc. Prior Beta(1, 1).
	tests := []struct {
		name               string
		c, t               Summary
		chance, loss       float64
		chanceDec, lossDec float64
	}{
		{"10/100 vs 15/100", Summary{N: 100, SumY: 10}, Summary{N: 100, SumY: 15},
			0.8532837899339661317, 0.0035780881307110478188, 0.1467162100660338683, 0.052597695973848302721},
		{"100/1000 vs 120/1000", Summary{N: 1000, SumY: 100}, Summary{N: 1000, SumY: 120},
			0.92318343897355975351, 0.0004846139263564437332, 0.076816561026440246492, 0.020444693766675805011},
		{"1e3/1e4 vs 1050/1e4", Summary{N: 1e4, SumY: 1000}, Summary{N: 1e4, SumY: 1050},
			0.87807667288435533337, 0.00025827372115483975348, 0.12192332711564466663, 0.0052572739211148477519},
		{"1e4/1e5 vs 10200/1e5", Summary{N: 1e5, SumY: 1e4}, Summary{N: 1e5, SumY: 10200},
			0.93111027988060447236, 0.000040947124215263527136, 0.068889720119395527636, 0.0020409071250152475275},
		{"1e5/1e6 vs 100500/1e6", Summary{N: 1e6, SumY: 1e5}, Summary{N: 1e6, SumY: 100500},
			0.88044253676564556064, 0.000024964605188276617275, 0.11955746323435443936, 0.00052496360519027661327},
		{"1e6/1e7 vs 1001000/1e7", Summary{N: 1e7, SumY: 1e6}, Summary{N: 1e7, SumY: 1001000},
			0.77192163964950647972, 0.000017748544505008984399, 0.22807836035049352028, 0.0001177485245050129844},
		{"zero control conversions", Summary{N: 50}, Summary{N: 50, SumY: 2},
			0.87871287128712871287, 0.002264509497999837325, 0.12128712871287128713, 0.040726047959538298863},
		{"unequal sizes", Summary{N: 200, SumY: 30}, Summary{N: 20000, SumY: 3100},
			0.54211621413924901691, 0.0094029751433978856462, 0.45788378586075098309, 0.010972125159089385803},
		// Hand: two independent uniforms, P(U_t > U_c) = 1/2, E[max(U_c - U_t, 0)] = 1/6.
		{"no data", Summary{}, Summary{}, 0.5, 1.0 / 6, 0.5, 1.0 / 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chance, loss := BetaBinomial(tt.c, tt.t, 1, 1, false)
			checkAbs(t, "chance", chance, tt.chance, 1e-9)
			checkAbs(t, "loss", loss, tt.loss, 1e-9)
			chance, loss = BetaBinomial(tt.c, tt.t, 1, 1, true)
			checkAbs(t, "chance (decrease)", chance, tt.chanceDec, 1e-9)
			checkAbs(t, "loss (decrease)", loss, tt.lossDec, 1e-9)
		})
	}
}

func TestBetaBinomialSmallPriors(t *testing.T) {
	// Priors below 1: a posterior parameter below 1 makes the density
	// unbounded at 0 or 1. References by mpmath (30 digits) quadrature:
	//   pdf = lambda x: x**(ac-1)*(1-x)**(bc-1)/mp.beta(ac, bc); I = lambda a, b, x: mp.betainc(a, b, 0, x, regularized=True)
	//   chance = mp.quad(lambda x: pdf(x)*(1-I(at, bt, x)), [0, 0.01, 0.05, 0.2, 1])          (decrease: I(at, bt, x))
	//   loss = mp.quad(lambda x: pdf(x)*(x*I(at, bt, x) - mt*I(at+1, bt, x)), [same points])  (decrease: mt*(1-I(at+1, bt, x)) - x*(1-I(at, bt, x)))
	tests := []struct {
		name               string
		prior              float64
		c, t               Summary
		chance, loss       float64
		chanceDec, lossDec float64
	}{
		{"0/20 vs 0/30", 0.5, Summary{N: 20}, Summary{N: 30},
			0.43655657223758016474, 0.016667133402562016512, 0.56344342776241983168, 0.0089866418511027230594},
		{"12/12 vs 9/10", 0.5, Summary{N: 12, SumY: 12}, Summary{N: 10, SumY: 9},
			0.14734738581207643544, 0.10596019406132968413, 0.85265261418792353964, 0.0080580961592317863126},
		// Prior Beta(0.1, 0.1), density ~ x^-0.9 at 0; mpmath quadrature after the substitution
		// x = u**(1/ac), which removes the singularity:
		//   f = lambda u: (1-u**(1/ac))**(bc-1)/mp.beta(ac, bc)/ac;  mp.quad(lambda u: f(u)*h(u**(1/ac)), [0, 1])
		{"0/20 vs 1/24, prior 0.1", 0.1, Summary{N: 20}, Summary{N: 24, SumY: 1},
			0.934051602367284727902143180762, 0.00160461113283977822025728454249, 0.0659483976327152720978568192384, 0.0421086615378802822706623250465},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chance, loss := BetaBinomial(tt.c, tt.t, tt.prior, tt.prior, false)
			checkAbs(t, "chance", chance, tt.chance, 1e-9)
			checkAbs(t, "loss", loss, tt.loss, 1e-9)
			chance, loss = BetaBinomial(tt.c, tt.t, tt.prior, tt.prior, true)
			checkAbs(t, "chance (decrease)", chance, tt.chanceDec, 1e-9)
			checkAbs(t, "loss (decrease)", loss, tt.lossDec, 1e-9)
		})
	}
}

func TestBetaTails(t *testing.T) {
	// Large parameters (continued fraction path): mpmath (30 digits) quadrature of the density,
	//   lb = mp.loggamma(a)+mp.loggamma(b)-mp.loggamma(a+b); pdf = lambda t: mp.exp((a-1)*mp.log(t)+(b-1)*mp.log(1-t)-lb)
	//   mp.quad(pdf, [m-40*sd, m-39*sd, ..., x]) for x below the mean, 1 - mp.quad(pdf, [x, ..., m+40*sd]) above.
	// Small parameters: mp.betainc(a, b, 0, x, regularized=True).
	tests := []struct {
		name         string
		a, b, x      float64
		lower, upper float64
	}{
		{"1e6, -3 sd", 1001001, 8998999, 0.0998157, 0.0013554388136921631787, 0.99864456118630783682},
		{"1e6, mean", 1001001, 8998999, 0.1001001, 0.50011206132495533846, 0.49988793867504466154},
		{"1e6, +1 sd", 1001001, 8998999, 0.1001949, 0.84106299986393841068, 0.15893700013606158932},
		{"50, 30 below", 50, 30, 0.55, 0.084897538683178484505, 0.9151024613168215155},
		{"50, 30 above", 50, 30, 0.7, 0.92072077617632776344, 0.079279223823672236559},
		{"skewed", 25.5, 2000.5, 0.01, 0.14486754627700737673, 0.85513245372299262327},
		// Hand: symmetric Beta(a, a) at 1/2.
		{"symmetric", 3000, 3000, 0.5, 0.5, 0.5},
		{"symmetric tail", 3000, 3000, 0.52, 0.9990307554874706248, 0.00096924451252937519579},
		{"small parameters", 3.5, 12, 0.2, 0.44700850277835263341, 0.55299149722164736659},
		// Hand: I_x(30, 2) = x^30 (31 - 30x) -> 2.8e-29 at x = 0.1 (mpmath for the binary 0.1).
		{"far tail", 30, 2, 0.1, 2.8000000000000046463e-29, 1},
		// Hand: arcsine law I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)).
		{"arcsine near 1", 0.5, 0.5, 0.999, 0.97986495836662250008, 0.020135041633377499917},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lower, upper := betaTails(tt.a, tt.b, tt.x, 1-tt.x)
			checkClose(t, "lower", lower, tt.lower, 1e-9)
			checkClose(t, "upper", upper, tt.upper, 1e-9)
		})
	}
}

func TestBetaBinomialMonteCarlo(t *testing.T) {
	// Draws from the two posteriors with a fixed seed; the estimates must be
	// within 5 standard errors of the integrals.
	tests := []struct {
		name     string
		c, t     Summary
		prior    [2]float64
		decrease bool
	}{
		{"close rates", Summary{N: 400, SumY: 41}, Summary{N: 380, SumY: 45}, [2]float64{1, 1}, false},
		{"informative prior, decrease", Summary{N: 90, SumY: 30}, Summary{N: 110, SumY: 31}, [2]float64{3, 7}, true},
	}
	const draws = 200000
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := rand.NewPCG(uint64(i), 99)
			pa, pb := tt.prior[0], tt.prior[1]
			bc := distuv.Beta{Alpha: pa + tt.c.SumY, Beta: pb + tt.c.N - tt.c.SumY, Src: src}
			bt := distuv.Beta{Alpha: pa + tt.t.SumY, Beta: pb + tt.t.N - tt.t.SumY, Src: src}
			var wins, loss, loss2 float64
			for range draws {
				pc, pt := bc.Rand(), bt.Rand()
				gain := pt - pc
				if tt.decrease {
					gain = -gain
				}
				if gain > 0 {
					wins++
				}
				l := max(-gain, 0)
				loss += l
				loss2 += l * l
			}
			chanceMC := wins / draws
			lossMC := loss / draws
			lossSE := math.Sqrt((loss2/draws - lossMC*lossMC) / draws)
			chance, l := BetaBinomial(tt.c, tt.t, pa, pb, tt.decrease)
			checkAbs(t, "chance", chance, chanceMC, 5*math.Sqrt(chanceMC*(1-chanceMC)/draws))
			checkAbs(t, "loss", l, lossMC, 5*lossSE)
		})
	}
}

func TestBetaBinomialInvalid(t *testing.T) {
	ok := Summary{N: 10, SumY: 3}
	tests := []struct {
		name   string
		c, t   Summary
		pa, pb float64
	}{
		{"prior alpha 0", ok, ok, 0, 1},
		{"prior beta NaN", ok, ok, 1, math.NaN()},
		{"more conversions than units", ok, Summary{N: 3, SumY: 4}, 1, 1},
		{"negative units", Summary{N: -1}, ok, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chance, loss := BetaBinomial(tt.c, tt.t, tt.pa, tt.pb, false)
			if !math.IsNaN(chance) || !math.IsNaN(loss) {
				t.Errorf("got %g, %g, want NaN, NaN", chance, loss)
			}
		})
	}
}

func TestNormalBayes(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name         string
		c, t         Summary
		decrease     bool
		chance, loss float64
	}{
		// Welch example data; mu = t.mean()-c.mean(), s = np.sqrt(c.var(ddof=1)/10 + t.var(ddof=1)/12)
		// scipy.stats.norm.cdf(mu/s) -> 0.9990162327207844
		// scipy.integrate.quad(lambda d: -d*norm.pdf(d, mu, s), -np.inf, 0, epsabs=1e-15, epsrel=1e-13) -> 0.00016992852690298892
		{"increase", summarize(welchC, nil), summarize(welchT, nil), false, 0.9990162327207844, 0.00016992852690298892},
		// norm.cdf(-mu/s) -> 0.0009837672792155111; quad(lambda d: d*norm.pdf(d, mu, s), 0, np.inf) -> 1.9335032618602368
		{"decrease", summarize(welchC, nil), summarize(welchT, nil), true, 0.0009837672792155111, 1.9335032618602368},
		// Hand: documented degenerate cases.
		{"constant equal", fromMoments(5, 2, 0), fromMoments(6, 2, 0), false, 0.5, 0},
		{"constant, treatment higher", fromMoments(5, 2, 0), fromMoments(6, 3, 0), false, 1, 0},
		{"constant, treatment higher, decrease", fromMoments(5, 2, 0), fromMoments(6, 3, 0), true, 0, 1},
		{"one unit", Summary{N: 1, SumY: 2, SumY2: 4}, fromMoments(6, 3, 1), false, nan, nan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chance, loss := NormalBayes(tt.c, tt.t, tt.decrease)
			checkClose(t, "chance", chance, tt.chance, 1e-9)
			checkClose(t, "loss", loss, tt.loss, 1e-9)
		})
	}
}
