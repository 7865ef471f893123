package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// welchC and welchT are the raw values of the Welch reference example.
var (
	welchC = []float64{12.1, 9.8, 11.4, 10.2, 13.7, 8.9, 10.5, 11.9, 9.4, 12.6}
	welchT = []float64{13.2, 11.8, 14.1, 12.5, 10.9, 15.3, 12.2, 13.8, 11.1, 14.6, 12.9, 13.4}
)

// checkComparison compares every field of got with want to tol.
func checkComparison(t *testing.T, got, want Comparison, tol float64) {
	t.Helper()
	if got.Test != want.Test {
		t.Errorf("Test: got %q, want %q", got.Test, want.Test)
	}
	checkClose(t, "AbsLift", got.AbsLift, want.AbsLift, tol)
	checkClose(t, "RelLift", got.RelLift, want.RelLift, tol)
	checkClose(t, "CI[0]", got.CI[0], want.CI[0], tol)
	checkClose(t, "CI[1]", got.CI[1], want.CI[1], tol)
	checkClose(t, "RelCI[0]", got.RelCI[0], want.RelCI[0], tol)
	checkClose(t, "RelCI[1]", got.RelCI[1], want.RelCI[1], tol)
	checkClose(t, "Statistic", got.Statistic, want.Statistic, tol)
	checkClose(t, "DF", got.DF, want.DF, tol)
	checkClose(t, "PValue", got.PValue, want.PValue, tol)
}

func TestZTest(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		c, t  Summary
		alpha float64
		want  Comparison
	}{
		{
			// from statsmodels.stats.proportion import proportions_ztest, confint_proportions_2indep
			// proportions_ztest([130, 100], [1000, 1000]) -> (2.102740605622114, 0.03548845046647471)
			// confint_proportions_2indep(130, 1000, 100, 1000, method='wald', compare='diff') -> (0.0020679344393763587, 0.057932065560623636)
			// delta method, numpy: pc, pt = .1, .13; q = scipy.stats.norm.ppf(0.975)
			// rel = pt/pc-1; se = np.sqrt(pt*(1-pt)/1000/pc**2 + pt**2*pc*(1-pc)/1000/pc**4); rel -/+ q*se
			name:  "10% vs 13% of 1000",
			c:     Summary{N: 1000, SumY: 100, SumY2: 100},
			t:     Summary{N: 1000, SumY: 130, SumY2: 130},
			alpha: 0.05,
			want: Comparison{Test: "z", AbsLift: 0.03, RelLift: 0.3,
				CI:        [2]float64{0.0020679344393763587, 0.057932065560623636},
				RelCI:     [2]float64{-0.01917939771358701, 0.6191793977135871},
				Statistic: 2.102740605622114, PValue: 0.03548845046647471},
		},
		{
			// proportions_ztest([560, 480], [5200, 5000]) -> (1.9508442100691732, 0.051075580929469545)
			// confint_proportions_2indep(560, 5200, 480, 5000, method='wald', compare='diff') -> (-4.074869996921124e-05, 0.023425364084584604)
			// delta method as above with pc, pt = 480/5000, 560/5200 -> rel 0.1217948717948718, (-0.00784770181237665, 0.25143744540212026)
			name:  "unequal sizes",
			c:     Summary{N: 5000, SumY: 480},
			t:     Summary{N: 5200, SumY: 560},
			alpha: 0.05,
			want: Comparison{Test: "z", AbsLift: 560.0/5200 - 480.0/5000, RelLift: 0.1217948717948718,
				CI:        [2]float64{-4.074869996921124e-05, 0.023425364084584604},
				RelCI:     [2]float64{-0.00784770181237665, 0.25143744540212026},
				Statistic: 1.9508442100691732, PValue: 0.051075580929469545},
		},
		{
			// proportions_ztest([3, 0], [180, 200]) -> (1.832991689089813, 0.06680380703619089)
			// confint_proportions_2indep(3, 180, 0, 200, method='wald', compare='diff') -> (-0.0020352705151688855, 0.03536860384850222)
			// control rate 0: relative lift undefined (NaN).
			name:  "zero control conversions",
			c:     Summary{N: 200, SumY: 0},
			t:     Summary{N: 180, SumY: 3},
			alpha: 0.05,
			want: Comparison{Test: "z", AbsLift: 3.0 / 180, RelLift: nan,
				CI:        [2]float64{-0.0020352705151688855, 0.03536860384850222},
				RelCI:     [2]float64{nan, nan},
				Statistic: 1.832991689089813, PValue: 0.06680380703619089},
		},
		{
			// Hand: no conversions anywhere, the difference is exactly 0; documented as z = 0, p = 1.
			name:  "no conversions at all",
			c:     Summary{N: 500},
			t:     Summary{N: 400},
			alpha: 0.05,
			want:  Comparison{Test: "z", RelLift: nan, RelCI: [2]float64{nan, nan}, PValue: 1},
		},
		{
			// Hand: everyone converts in both groups: lift 0, CI [0, 0], relative lift 0, z = 0, p = 1.
			name:  "all convert",
			c:     Summary{N: 50, SumY: 50, SumY2: 50},
			t:     Summary{N: 60, SumY: 60, SumY2: 60},
			alpha: 0.05,
			want:  Comparison{Test: "z", PValue: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ZTest(tt.c, tt.t, tt.alpha)
			if err != nil {
				t.Fatal(err)
			}
			checkComparison(t, got, tt.want, 1e-9)
		})
	}
}

func TestZTestInvalid(t *testing.T) {
	ok := Summary{N: 100, SumY: 10}
	tests := []struct {
		name  string
		c, t  Summary
		alpha float64
	}{
		{"alpha 0", ok, ok, 0},
		{"alpha 1", ok, ok, 1},
		{"alpha NaN", ok, ok, math.NaN()},
		{"no control units", Summary{}, ok, 0.05},
		{"more conversions than units", ok, Summary{N: 10, SumY: 11}, 0.05},
		{"negative conversions", Summary{N: 10, SumY: -1}, ok, 0.05},
		{"infinite sum", ok, Summary{N: 10, SumY: math.Inf(1)}, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ZTest(tt.c, tt.t, tt.alpha)
			checkInvalid(t, err)
		})
	}
}

func TestWelch(t *testing.T) {
	c, tr := summarize(welchC, nil), summarize(welchT, nil)
	tests := []struct {
		name  string
		alpha float64
		want  Comparison
	}{
		{
			// scipy.stats.ttest_ind(t, c, equal_var=False) -> (3.0950895915271315, 0.006187294789168239)
			// statsmodels.stats.weightstats.ttest_ind(t, c, usevar='unequal')[2] -> df 18.194916047383806
			// CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(alpha=0.05, usevar='unequal') -> (0.6220091276309774, 3.24465753903569)
			// delta method, numpy: q = scipy.stats.t.ppf(0.975, df); rel = t.mean()/c.mean()-1
			// se = np.sqrt(vt/nt/mc**2 + mt**2*(vc/nc)/mc**4); rel -/+ q*se -> (0.04330226007984189, 0.30662232513886106)
			name:  "alpha 0.05",
			alpha: 0.05,
			want: Comparison{Test: "welch", AbsLift: 155.8/12 - 110.5/10, RelLift: 0.17496229260935148,
				CI:        [2]float64{0.6220091276309774, 3.24465753903569},
				RelCI:     [2]float64{0.04330226007984189, 0.30662232513886106},
				Statistic: 3.0950895915271315, DF: 18.194916047383806, PValue: 0.006187294789168239},
		},
		{
			// tconfint_diff(alpha=0.10, usevar='unequal') -> (0.8507868382272823, 3.0158798284393846)
			// RelCI with q = scipy.stats.t.ppf(0.95, df) in the same formula -> (0.06627207996736788, 0.28365250525133506)
			name:  "alpha 0.10",
			alpha: 0.10,
			want: Comparison{Test: "welch", AbsLift: 155.8/12 - 110.5/10, RelLift: 0.17496229260935148,
				CI:        [2]float64{0.8507868382272823, 3.0158798284393846},
				RelCI:     [2]float64{0.06627207996736788, 0.28365250525133506},
				Statistic: 3.0950895915271315, DF: 18.194916047383806, PValue: 0.006187294789168239},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Welch(c, tr, tt.alpha)
			if err != nil {
				t.Fatal(err)
			}
			checkComparison(t, got, tt.want, 1e-9)
		})
	}
}

func TestWelchDegenerate(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		c, t []float64
		want Comparison
	}{
		{
			// Hand: both constant and equal; documented t = 0, p = 1, DF = n_c + n_t - 2.
			name: "equal constants",
			c:    []float64{2, 2, 2},
			t:    []float64{2, 2, 2, 2},
			want: Comparison{Test: "welch", PValue: 1, DF: 5},
		},
		{
			// Hand: both constant, treatment 1 higher: lift 1 (+50%), t = +Inf, p = 0, CI [1, 1].
			name: "different constants",
			c:    []float64{2, 2, 2},
			t:    []float64{3, 3},
			want: Comparison{Test: "welch", AbsLift: 1, RelLift: 0.5, CI: [2]float64{1, 1},
				RelCI: [2]float64{0.5, 0.5}, Statistic: inf, DF: 3, PValue: 0},
		},
		{
			// Hand, with scipy.stats.t.ppf for the quantile:
			// lift 0, se = sqrt(1/3), t = 0, p = 1, DF = (1/3)^2/((1/3)^2/2) = 2,
			// CI 0 -/+ scipy.stats.t.ppf(0.975, 2)*np.sqrt(1/3) = 2.4841377118437524, RelCI 0 -/+ q*np.sqrt((1/3)/2**2) = 1.2420688559218762
			name: "one constant group",
			c:    []float64{2, 2, 2},
			t:    []float64{1, 2, 3},
			want: Comparison{Test: "welch", CI: [2]float64{-2.4841377118437524, 2.4841377118437524},
				RelCI: [2]float64{-1.2420688559218762, 1.2420688559218762}, DF: 2, PValue: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Welch(summarize(tt.c, nil), summarize(tt.t, nil), 0.05)
			if err != nil {
				t.Fatal(err)
			}
			checkComparison(t, got, tt.want, 1e-9)
		})
	}
}

func TestWelchInvalid(t *testing.T) {
	ok := summarize(welchC, nil)
	tests := []struct {
		name  string
		c, t  Summary
		alpha float64
	}{
		{"one control unit", Summary{N: 1, SumY: 3, SumY2: 9}, ok, 0.05},
		{"no treatment units", ok, Summary{}, 0.05},
		{"alpha negative", ok, ok, -0.1},
		{"NaN sum", ok, Summary{N: 5, SumY: math.NaN()}, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Welch(tt.c, tt.t, tt.alpha)
			checkInvalid(t, err)
			_, _, err = CUPED(tt.c, tt.t, tt.alpha)
			checkInvalid(t, err)
		})
	}
}

func TestCUPEDScipy(t *testing.T) {
	xc := []float64{10, 8, 12, 9, 11, 7, 13, 10}
	yc := []float64{11.0, 8.5, 12.9, 9.8, 11.6, 7.7, 13.1, 10.4}
	xt := []float64{9, 12, 10, 8, 11, 14, 10}
	yt := []float64{10.6, 13.4, 11.3, 9.1, 12.8, 15.2, 11.5}
	// X, Y = np.r_[xc, xt], np.r_[yc, yt]
	// theta = np.cov(X, Y)[0,1]/np.var(X, ddof=1) -> 1.008060453400504
	// ac, at = yc - theta*(xc - X.mean()), yt - theta*(xt - X.mean())
	// scipy.stats.ttest_ind(at, ac, equal_var=False) -> (5.639362321557694, 8.182135261777008e-05)
	// statsmodels ttest_ind(at, ac, usevar='unequal')[2] -> 12.953569193828116
	// CompareMeans(DescrStatsW(at), DescrStatsW(ac)).tconfint_diff(usevar='unequal') -> (0.48396925284236475, 1.0853902289856336)
	// at.mean()-ac.mean() -> 0.7846797409139992; at.mean()/ac.mean()-1 -> 0.07202983162237198
	// RelCI, delta method on ac, at as in TestWelch -> (0.043279217091379184, 0.10078044615336476)
	want := Comparison{Test: "cuped", AbsLift: 0.7846797409139992, RelLift: 0.07202983162237198,
		CI:        [2]float64{0.48396925284236475, 1.0853902289856336},
		RelCI:     [2]float64{0.043279217091379184, 0.10078044615336476},
		Statistic: 5.639362321557694, DF: 12.953569193828116, PValue: 8.182135261777008e-05}
	got, theta, err := CUPED(summarize(yc, xc), summarize(yt, xt), 0.05)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "theta", theta, 1.008060453400504, 1e-9)
	checkComparison(t, got, want, 1e-9)
}

func TestCUPEDMatchesAdjustedWelch(t *testing.T) {
	// Per-unit data made here: y depends on the pre-period x; CUPED from the
	// sums must equal Welch's test on the explicitly adjusted values
	// y - theta*(x - mean x), theta computed from the raw values by two passes.
	tests := []struct {
		name           string
		nc, nt         int
		slope, effect  float64
		withCovariate  bool
		wantThetaIsNil bool
	}{
		{name: "strong covariate", nc: 4000, nt: 4100, slope: 0.8, effect: 0.5, withCovariate: true},
		{name: "weak covariate", nc: 300, nt: 250, slope: 0.05, effect: -0.2, withCovariate: true},
		{name: "no covariate", nc: 500, nt: 520, slope: 0, effect: 0.1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			gen := func(n int, effect float64) (x, y []float64) {
				x, y = make([]float64, n), make([]float64, n)
				for j := range n {
					if tt.withCovariate {
						x[j] = 50 + 10*rng.NormFloat64()
					}
					y[j] = 20 + tt.slope*x[j] + 3*rng.NormFloat64() + effect
				}
				return x, y
			}
			xc, yc := gen(tt.nc, 0)
			xt, yt := gen(tt.nt, tt.effect)
			cx, tx := xc, xt
			if !tt.withCovariate {
				cx, tx = nil, nil
			}
			got, theta, err := CUPED(summarize(yc, cx), summarize(yt, tx), 0.05)
			if err != nil {
				t.Fatal(err)
			}

			allX, allY := append(append([]float64{}, xc...), xt...), append(append([]float64{}, yc...), yt...)
			mx, vx := twoPass(allX)
			my, _ := twoPass(allY)
			var cov float64
			for j := range allX {
				cov += (allX[j] - mx) * (allY[j] - my)
			}
			cov /= float64(len(allX) - 1)
			wantTheta := 0.0
			if vx > 0 {
				wantTheta = cov / vx
			}
			checkClose(t, "theta", theta, wantTheta, 1e-9)
			adjust := func(x, y []float64) []float64 {
				out := make([]float64, len(y))
				for j := range y {
					out[j] = y[j] - wantTheta*(x[j]-mx)
				}
				return out
			}
			want, err := Welch(summarize(adjust(xc, yc), nil), summarize(adjust(xt, yt), nil), 0.05)
			if err != nil {
				t.Fatal(err)
			}
			want.Test = "cuped"
			checkComparison(t, got, want, 1e-6)
			if tt.withCovariate && tt.slope > 0.5 {
				plain, _ := Welch(summarize(yc, nil), summarize(yt, nil), 0.05)
				if !(got.CI[1]-got.CI[0] < plain.CI[1]-plain.CI[0]) {
					t.Errorf("CUPED CI width %g not below Welch's %g", got.CI[1]-got.CI[0], plain.CI[1]-plain.CI[0])
				}
			}
		})
	}
}

func BenchmarkZTest(b *testing.B) {
	c, t := Summary{N: 100000, SumY: 10000, SumY2: 10000}, Summary{N: 100500, SumY: 10300, SumY2: 10300}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ZTest(c, t, 0.05); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWelch(b *testing.B) {
	c, t := summarize(welchC, nil), summarize(welchT, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Welch(c, t, 0.05); err != nil {
			b.Fatal(err)
		}
	}
}
