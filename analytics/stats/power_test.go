package stats

import (
	"math"
	"testing"
)

// pn(p1, p2, a, pw) below is R's power.prop.test formula in SciPy:
//
//	def pn(p1, p2, a, pw):
//	    z = scipy.stats.norm.ppf; pb = (p1+p2)/2
//	    return (z(1-a/2)*np.sqrt(2*pb*(1-pb)) + z(pw)*np.sqrt(p1*(1-p1)+p2*(1-p2)))**2/(p2-p1)**2

func TestSampleSizeProportions(t *testing.T) {
	tests := []struct {
		name                     string
		baseline, mde, alpha, pw float64
		want, tol                float64
	}{
		// R: power.prop.test(p1 = 0.1, p2 = 0.11, power = 0.8, sig.level = 0.05)$n -> 14750.79 (printed to 2 decimals)
		{"R 10% to 11%", 0.1, 0.01, 0.05, 0.8, 14750.79, 1e-6},
		// pn(0.1, 0.11, 0.05, 0.8) -> 14750.790469044954
		{"scipy 10% to 11%", 0.1, 0.01, 0.05, 0.8, 14750.790469044954, 1e-9},
		// pn(0.05, 0.04, 0.05, 0.9) -> 9029.052853941661
		{"decrease", 0.05, -0.01, 0.05, 0.9, 9029.052853941661, 1e-9},
		// pn(0.3, 0.35, 0.01, 0.8) -> 2048.220041875315
		{"alpha 0.01", 0.3, 0.05, 0.01, 0.8, 2048.220041875315, 1e-9},
		// pn(0.5, 0.52, 0.1, 0.95) -> 13519.600504756367
		{"power 0.95", 0.5, 0.02, 0.1, 0.95, 13519.600504756367, 1e-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SampleSizeProportions(tt.baseline, tt.mde, tt.alpha, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "n", got, tt.want, tt.tol)
		})
	}
}

func TestMDEProportions(t *testing.T) {
	tests := []struct {
		name                   string
		baseline, n, alpha, pw float64
		want                   float64
	}{
		// scipy.optimize.brentq(lambda d: pn(p1, p1+d, a, pw) - n, 1e-9, 1-p1-1e-12, xtol=1e-16, rtol=8.9e-16)
		{"R example back", 0.1, 14750.79, 0.05, 0.8, 0.010000000162389883},
		{"5% with 1000", 0.05, 1000, 0.05, 0.8, 0.030976863623491755},
		{"30% with 200", 0.3, 200, 0.01, 0.9, 0.1872945160535572},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MDEProportions(tt.baseline, tt.n, tt.alpha, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "mde", got, tt.want, 1e-9)
			back, err := SampleSizeProportions(tt.baseline, got, tt.alpha, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "round trip n", back, tt.n, 1e-9)
		})
	}
}

func TestSampleSizeMeans(t *testing.T) {
	tests := []struct {
		name               string
		sd, mde, alpha, pw float64
		want               float64
	}{
		// 2*(scipy.stats.norm.ppf(1-a/2)+scipy.stats.norm.ppf(pw))**2*sd**2/mde**2 -> 1569.7759468698173
		// (van Belle's rule of thumb 16*sd^2/mde^2 = 1600 is its rounding)
		{"sd 1, mde 0.1", 1, 0.1, 0.05, 0.8, 1569.7759468698173},
		// same formula -> 8266.326205138073
		{"sd 25, mde 1.5", 25, 1.5, 0.01, 0.9, 8266.326205138073},
		// negative mde: same n as +1.5
		{"negative mde", 25, -1.5, 0.01, 0.9, 8266.326205138073},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SampleSizeMeans(tt.sd, tt.mde, tt.alpha, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "n", got, tt.want, 1e-9)
		})
	}
}

func TestMDEMeans(t *testing.T) {
	tests := []struct {
		name             string
		sd, n, alpha, pw float64
		want             float64
	}{
		// (scipy.stats.norm.ppf(1-a/2)+scipy.stats.norm.ppf(pw))*sd*np.sqrt(2/n) -> 0.09999286429540279
		{"sd 1, n 1570", 1, 1570, 0.05, 0.8, 0.09999286429540279},
		// same formula -> 1.3637900850776363
		{"sd 25, n 10000", 25, 10000, 0.01, 0.9, 1.3637900850776363},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MDEMeans(tt.sd, tt.n, tt.alpha, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "mde", got, tt.want, 1e-9)
		})
	}
}

func TestPowerInvalid(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		call func() (float64, error)
	}{
		{"alpha 0", func() (float64, error) { return SampleSizeProportions(0.1, 0.01, 0, 0.8) }},
		{"power 1", func() (float64, error) { return SampleSizeProportions(0.1, 0.01, 0.05, 1) }},
		{"power below alpha/2", func() (float64, error) { return SampleSizeProportions(0.1, 0.01, 0.05, 0.01) }},
		{"baseline 0", func() (float64, error) { return SampleSizeProportions(0, 0.01, 0.05, 0.8) }},
		{"baseline+mde 1", func() (float64, error) { return SampleSizeProportions(0.9, 0.1, 0.05, 0.8) }},
		{"baseline+mde negative", func() (float64, error) { return SampleSizeProportions(0.05, -0.06, 0.05, 0.8) }},
		{"mde 0", func() (float64, error) { return SampleSizeProportions(0.1, 0, 0.05, 0.8) }},
		{"mde NaN", func() (float64, error) { return SampleSizeProportions(0.1, nan, 0.05, 0.8) }},
		{"MDE baseline 1", func() (float64, error) { return MDEProportions(1, 1000, 0.05, 0.8) }},
		{"MDE n 0", func() (float64, error) { return MDEProportions(0.1, 0, 0.05, 0.8) }},
		{"MDE n too small", func() (float64, error) { return MDEProportions(0.5, 2, 0.05, 0.8) }},
		{"means sd 0", func() (float64, error) { return SampleSizeMeans(0, 1, 0.05, 0.8) }},
		{"means mde 0", func() (float64, error) { return SampleSizeMeans(1, 0, 0.05, 0.8) }},
		{"means alpha 1", func() (float64, error) { return SampleSizeMeans(1, 1, 1, 0.8) }},
		{"MDE means n negative", func() (float64, error) { return MDEMeans(1, -5, 0.05, 0.8) }},
		{"MDE means sd Inf", func() (float64, error) { return MDEMeans(math.Inf(1), 5, 0.05, 0.8) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.call()
			checkInvalid(t, err)
		})
	}
}
