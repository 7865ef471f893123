package drift

import "math"

// kolmogorovSF returns Pr(D_n > x) for the two-sided one-sample
// Kolmogorov-Smirnov statistic D_n on n observations: the survival
// function of Kolmogorov's exact distribution, computed as SciPy's
// scipy.stats.kstwo.sf(x, n) after Simard and L'Ecuyer (2011): the
// Ruben-Gambino closed forms near the ends, the Durbin matrix (Marsaglia,
// Tsang and Wang 2003) and Pomeranz (1974) recursions for small n*x^2,
// twice the exact one-sided Smirnov probability in the upper tail and the
// Pelz-Good (1976) expansion elsewhere for large n.
func kolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	nf := float64(n)
	t := nf * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1 / nf) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logFactorialOverPower(nf) + nf*math.Log(2*t-1))
		}
		return clip01(1 - prob)
	}
	if t >= nf-1 {
		return clip01(2 * math.Pow(1-x, nf))
	}
	if x >= 0.5 {
		return clip01(2 * smirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		if nx2 <= 0.754693 {
			return clip01(1 - kolmogorovDurbin(n, x))
		}
		if nx2 <= 4 {
			return clip01(1 - kolmogorovPomeranz(n, x))
		}
		return clip01(2 * smirnovSF(n, x))
	}
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clip01(2 * smirnovSF(n, x))
	}
	var cdf float64
	if n <= 100000 && nf*math.Pow(x, 1.5) <= 1.4 {
		cdf = kolmogorovDurbin(n, x)
	} else {
		cdf = kolmogorovPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

func clip01(p float64) float64 {
	return math.Min(1, math.Max(0, p))
}

// stirlingCoeffs are B_2j/(2j)/(2j-1) for j = 8..1, B being the
// Bernoulli numbers.
var stirlingCoeffs = [...]float64{
	-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2,
}

// logFactorialOverPower returns log(n!/n^n) by Stirling's series.
func logFactorialOverPower(n float64) float64 {
	rn := 1 / n
	x := rn / n
	poly := 0.0
	for _, c := range stirlingCoeffs {
		poly = poly*x + c
	}
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*poly
}

const (
	scaleExp = 128
	scaleUp  = 0x1p128
	scaleDn  = 0x1p-128
)

// kolmogorovDurbin returns Pr(D_n <= d) by Durbin's matrix method as
// arranged by Marsaglia, Tsang and Wang: d = (k-h)/n, and the k-th
// diagonal entry of (n!/n^n) H^n for an m x m matrix H, m = 2k-1, with
// scaling against overflow.
func kolmogorovDurbin(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	H := newMatrix(m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H[r][i] = w[r-(i-1)]
		}
	}
	for r := 0; r < m; r++ {
		H[r][0] = v[r]
	}
	for c := 0; c < m; c++ {
		H[m-1][c] = v[m-1-c]
	}
	P := newMatrix(m)
	for i := range m {
		P[i][i] = 1
	}
	tmp := newMatrix(m)
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			matMul(tmp, P, H)
			P, tmp = tmp, P
			expnt += hexpnt
		}
		matMul(tmp, H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H[k-1][k-1]) > scaleUp {
			for _, row := range H {
				for c := range row {
					row[c] /= scaleUp
				}
			}
			hexpnt += scaleExp
		}
	}
	p := P[k-1][k-1]
	nf := float64(n)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / nf
		if math.Abs(p) < scaleDn {
			p *= scaleUp
			expnt -= scaleExp
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

func newMatrix(m int) [][]float64 {
	flat := make([]float64, m*m)
	M := make([][]float64, m)
	for i := range M {
		M[i] = flat[i*m : (i+1)*m]
	}
	return M
}

// matMul sets dst = a*b for square matrices; dst must not alias a or b.
func matMul(dst, a, b [][]float64) {
	m := len(a)
	for i := range m {
		for j := range m {
			s := 0.0
			for l := range m {
				s += a[i][l] * b[l][j]
			}
			dst[i][j] = s
		}
	}
}

// pomeranzBounds returns the range of non-zero entries of row i.
func pomeranzBounds(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		div, mod := (i+1)/2, (i+1)%2
		if mod == 0 {
			if div == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = div-1-ll-roundf-1, div+ll-1+ceilf-1
			}
		} else {
			j1, j2 = div-1-ll-1, div+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// kolmogorovPomeranz returns Pr(D_n <= x) by Pomeranz's recursion: rows
// of Poisson-weight convolutions, n! times the last entry of the last
// row, with scaling against underflow.
func kolmogorovPomeranz(n int, x float64) float64 {
	nf := float64(n)
	t := nf * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)
	twog := make([]float64, npwrs)
	onem2g := make([]float64, npwrs)
	gpower[0], twog[0], onem2g[0] = 1, 1, 1
	for m := 1; m < npwrs; m++ {
		mf := float64(m)
		gpower[m] = gpower[m-1] * (g / nf) / mf
		twog[m] = twog[m-1] * (2 * g / nf) / mf
		onem2g[m] = onem2g[m-1] * ((1 - 2*g) / nf) / mf
	}
	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	v0s, v1s := 0, 0
	expnt := 0
	j1, j2 := pomeranzBounds(0, n, ll, ceilf, roundf)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		v0s, v1s = v1s, v0s
		clear(V1)
		j1, j2 = pomeranzBounds(i, n, ll, ceilf, roundf)
		var pw []float64
		switch {
		case i == 1 || i == 2*n+1:
			pw = gpower
		case i%2 == 1:
			pw = twog
		default:
			pw = onem2g
		}
		ln2 := j2 - k1 + 1
		if ln2 <= 0 {
			continue
		}
		// V1[0:convLen] = conv(V0[k1-v0s : k1-v0s+ln2], pw[:ln2])[j1-k1 : ...]
		src := V0[k1-v0s : k1-v0s+ln2]
		convStart, convLen := j1-k1, j2-j1+1
		maxV := 0.0
		for o := range convLen {
			idx := convStart + o
			s := 0.0
			for a := max(0, idx-(ln2-1)); a <= min(idx, ln2-1); a++ {
				s += src[a] * pw[idx-a]
			}
			V1[o] = s
			maxV = math.Max(maxV, s)
		}
		if maxV > 0 && maxV < scaleDn {
			for o := range convLen {
				V1[o] *= scaleUp
			}
			expnt -= scaleExp
		}
		v1s = v0s + j1 - k1
	}
	ans := V1[n-v1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > scaleUp {
			ans *= scaleDn
			expnt += scaleExp
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// kolmogorovPelzGood returns the Pelz-Good approximation of
// Pr(D_n <= x): the Li-Chien and Korolyuk expansion K0 + K1/sqrt(n) +
// K2/n + K3/n^1.5 in z = x*sqrt(n), its terms rewritten with Jacobi theta
// functions for small z.
func kolmogorovPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const (
		pi2 = math.Pi * math.Pi
		pi4 = pi2 * pi2
		pi6 = pi4 * pi2
	)
	sqrt2pi := math.Sqrt(2 * math.Pi)
	nf := float64(n)
	z := math.Sqrt(nf) * x
	z2, z3, z4, z6 := z*z, z*z*z, z*z*z*z, math.Pow(z, 6)
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2 := m * m
		m4 := m2 * m2
		m6 := m4 * m2
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{
			1,
			k1a + k1b*m2,
			k2a + k2b*m2 + k2c*m4,
			k3a + k3b*m2 + k3c*m4 + k3d*m6,
		}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	sqrt3z := math.Sqrt(3) * z
	var k2extra, k3extra float64
	for k := maxk; k > 0; k-- {
		kf := float64(k)
		k2 := kf * kf
		qp := math.Pow(q, k2)
		k2extra += k2 * qp
		kpi := math.Pi * kf
		k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	sum := 0.0
	for i := range K {
		sum += K[i] / math.Pow(nf, float64(i)/2)
	}
	return sum
}

// smirnovMaxN bounds the exact sum of smirnovSF; larger n use the
// asymptotic form.
const smirnovMaxN = 1000000

// smirnovSF returns Pr(D+_n >= x) for the one-sided one-sample statistic,
// by the exact Birnbaum-Tingey sum
// x * sum_{j=0}^{floor(n(1-x))} C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1),
// its positive terms summed from logarithms. Above smirnovMaxN it uses
// exp(-(6nx+1)^2/(18n)).
func smirnovSF(n int, x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	nf := float64(n)
	if n > smirnovMaxN {
		return math.Exp(-(6*nf*x + 1) * (6*nf*x + 1) / 18 / nf)
	}
	lgN, _ := math.Lgamma(nf + 1)
	maxj := int(math.Floor(nf * (1 - x)))
	sum := 0.0
	for j := 0; j <= maxj; j++ {
		jf := float64(j)
		a := 1 - x - jf/nf
		var la float64
		switch {
		case a > 0:
			la = (nf - jf) * math.Log(a)
		case nf-jf == 0:
			la = 0
		default:
			continue
		}
		lgJ, _ := math.Lgamma(jf + 1)
		lgNJ, _ := math.Lgamma(nf - jf + 1)
		term := lgN - lgJ - lgNJ + la + (jf-1)*math.Log(x+jf/nf)
		sum += math.Exp(term)
	}
	return clip01(x * sum)
}
