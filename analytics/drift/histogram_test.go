package drift

import (
	"math"
	"testing"
)

func TestPSI(t *testing.T) {
	tests := []struct {
		name     string
		ref, cur []float64
		want     float64
	}{
		// p = [.12 .25 .31 .20 .12], q = [.09 .21 .33 .26 .11]; sum of (q-p)*ln(q/p):
		//   -0.03*ln(0.75)  = -0.03*-0.2876820724517809  = 0.008630462173553427
		//   -0.04*ln(0.84)  = -0.04*-0.1743533871447778  = 0.006974135485791112
		//    0.02*ln(33/31) =  0.02*0.06252035698133393  = 0.0012504071396266785
		//    0.06*ln(1.3)   =  0.06*0.26236426446749106  = 0.015741855868049465
		//   -0.01*ln(11/12) = -0.01*-0.08701137698962981 = 0.0008701137698962981
		//   total 0.03346697443691698
		{"five bins", []float64{120, 250, 310, 200, 120}, []float64{90, 210, 330, 260, 110}, 0.03346697443691698},
		// Counts scale away: the same proportions.
		{"scaled counts", []float64{12, 25, 31, 20, 12}, []float64{9, 21, 33, 26, 11}, 0.03346697443691698},
		// p = [.5 .5 0 -> 1e-4], q = [.4 .5 .1]:
		//   -0.1*ln(0.8)           = 0.022314355131420972
		//    0
		//   (0.1-1e-4)*ln(0.1/1e-4) = 0.0999*6.907755278982137 = 0.6900847523703155
		//   total 0.7123991075017365
		{"empty reference bin floored", []float64{50, 50, 0}, []float64{40, 50, 10}, 0.7123991075017365},
		// A bin empty on both sides: 1e-4 on both, (q-p)*ln(q/p) = 0.
		{"bin empty on both sides", []float64{50, 50, 0}, []float64{50, 50, 0}, 0},
		{"identical", []float64{1, 2, 3}, []float64{2, 4, 6}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PSI(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "PSI", got, tt.want, 1e-12)
		})
	}
}

func TestChiSquare(t *testing.T) {
	tests := []struct {
		name           string
		ref, cur       []float64
		wantStat, want float64
	}{
		// ref = np.array([120., 250, 310, 200, 120]); cur = np.array([90., 210, 330, 260, 110])
		// scipy.stats.chisquare(cur, f_exp=ref/ref.sum()*cur.sum())
		// -> (34.023655913978494, 7.369105620638308e-07)
		{"five bins", []float64{120, 250, 310, 200, 120}, []float64{90, 210, 330, 260, 110}, 34.023655913978494, 7.369105620638308e-07},
		// An unseen category: reference proportion floored at 1e-4, then renormalised.
		// ref2 = np.array([500., 300, 200, 0]); cur2 = np.array([45., 33, 21, 1])
		// p = ref2/ref2.sum(); p[p == 0] = 1e-4; p = p/p.sum()
		// scipy.stats.chisquare(cur2, f_exp=p*cur2.sum()) -> (98.869885, 2.7194253527861944e-21)
		{"unseen category", []float64{500, 300, 200, 0}, []float64{45, 33, 21, 1}, 98.869885, 2.7194253527861944e-21},
		// A bin empty in both is left out (df = 2):
		// scipy.stats.chisquare([25., 40, 35], f_exp=[30., 50, 20]) -> (14.083333333333334, 0.0008746675674878502)
		{"bin empty on both sides", []float64{30, 0, 50, 20}, []float64{25, 0, 40, 35}, 14.083333333333334, 0.0008746675674878502},
		// scipy.stats.chisquare([10., 20, 30], f_exp=[10., 20, 30]) -> (0.0, 1.0)
		{"same proportions", []float64{1, 2, 3}, []float64{10, 20, 30}, 0, 1},
		// One bin left: nothing to test.
		{"single category", []float64{5, 0}, []float64{7, 0}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stat, p, err := ChiSquare(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "stat", stat, tt.wantStat, 1e-9)
			checkRel(t, "p", p, tt.want, 1e-6)
		})
	}
}

func TestJensenShannon(t *testing.T) {
	tests := []struct {
		name     string
		ref, cur []float64
		want     float64
	}{
		// scipy.spatial.distance.jensenshannon([120., 250, 310, 200, 120], [90., 210, 330, 260, 110])
		{"five bins", []float64{120, 250, 310, 200, 120}, []float64{90, 210, 330, 260, 110}, 0.0645978356487155},
		// jensenshannon([500., 300, 200, 0], [45., 33, 21, 1])
		{"unseen category", []float64{500, 300, 200, 0}, []float64{45, 33, 21, 1}, 0.06739580346714485},
		// jensenshannon([30., 0, 50, 20], [25., 0, 40, 35])
		{"bin empty on both sides", []float64{30, 0, 50, 20}, []float64{25, 0, 40, 35}, 0.1194966220743736},
		// jensenshannon([1, 0], [0, 1]) = sqrt(ln 2)
		{"disjoint", []float64{1, 0}, []float64{0, 1}, 0.8325546111576977},
		{"identical", []float64{3, 1}, []float64{6, 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JensenShannon(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "JS", got, tt.want, 1e-12)
		})
	}
}

// TestHistogramsInvalid feeds bad histograms to every histogram method.
func TestHistogramsInvalid(t *testing.T) {
	nan := math.NaN()
	edges := func(n int) []float64 {
		e := make([]float64, max(n-1, 0))
		for i := range e {
			e[i] = float64(i)
		}
		return e
	}
	methods := map[string]func(ref, cur []float64) error{
		"PSI":           func(r, c []float64) error { _, err := PSI(r, c); return err },
		"ChiSquare":     func(r, c []float64) error { _, _, err := ChiSquare(r, c); return err },
		"JensenShannon": func(r, c []float64) error { _, err := JensenShannon(r, c); return err },
		"KSBinned":      func(r, c []float64) error { _, _, err := KSBinned(edges(len(r)), r, c); return err },
		"WassersteinBinned": func(r, c []float64) error {
			_, err := WassersteinBinned(edges(len(r)), r, c, -1, 10, 1)
			return err
		},
	}
	tests := []struct {
		name     string
		ref, cur []float64
		want     string
	}{
		{"empty reference", nil, nil, "reference histogram is empty"},
		{"mismatched lengths", []float64{1, 2}, []float64{1, 2, 3}, "histograms differ in length: reference has 2 bins, current 3"},
		{"negative count", []float64{1, -2}, []float64{1, 2}, "reference count 1 must be a finite non-negative number, got -2"},
		{"NaN count", []float64{1, 2}, []float64{nan, 2}, "current count 0 is NaN"},
		{"infinite count", []float64{1, 2}, []float64{1, math.Inf(1)}, "current count 1 must be a finite non-negative number"},
		{"no reference observations", []float64{0, 0}, []float64{1, 2}, "reference histogram has no observations"},
		{"no current observations", []float64{1, 2}, []float64{0, 0}, "current histogram has no observations"},
	}
	for name, method := range methods {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				checkInvalid(t, method(tt.ref, tt.cur), tt.want)
			})
		}
	}
}
