package drift

import (
	"math"
	"strings"
	"testing"

	"abgate"
)

// checkRel fails when got is not within relative tol of want (absolute
// tol when want is zero).
func checkRel(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) != math.IsNaN(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
		return
	}
	scale := math.Max(math.Abs(want), 1)
	if want != 0 {
		scale = math.Abs(want)
	}
	if math.Abs(got-want) > tol*scale {
		t.Errorf("%s = %.17g, want %.17g (relative error %.3g > %g)", name, got, want, math.Abs(got-want)/scale, tol)
	}
}

// checkInvalid fails unless err is an EINVALID abgate error whose message
// contains want.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want EINVALID containing %q", want)
	}
	if got := abgate.ErrorCode(err); got != abgate.EINVALID {
		t.Errorf("error code = %q, want %q (%v)", got, abgate.EINVALID, err)
	}
	if got := abgate.ErrorMessage(err); !strings.Contains(got, want) {
		t.Errorf("error message = %q, want it to contain %q", got, want)
	}
}

// weyl returns n values ((i*mult) mod m)/m*scale + shift, a deterministic
// evenly spread sample that numpy reproduces bit for bit:
//
//	np.array([float(i*mult % m)/float(m)*scale + shift for i in range(n)])
func weyl(n, mult, m int, scale, shift float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i*mult%m)/float64(m)*scale + shift
	}
	return x
}

// smallRef and smallCur are 25 and 18 values (one value, 0.357, in both):
//
//	rng = np.random.default_rng(7)
//	small_ref = np.round(rng.normal(0, 1, 25), 3)
//	small_cur = np.round(rng.normal(0.6, 1.3, 18), 3)
var (
	smallRef = []float64{0.001, 0.299, -0.274, -0.891, -0.455, -0.992, 0.06, 1.34, -0.492, -0.62, 0.49, 0.357, 0.105, -0.93, -0.029, 0.695, -1.344, -0.458, -1.901, -1.29, -1.842, -0.235, -1.267, 0.271, 0.157}
	smallCur = []float64{0.357, -2.672, -0.1, 0.537, 0.747, -1.389, -0.021, -0.672, -0.451, 1.979, -0.45, 0.558, 1.75, -0.159, 0.455, 0.744, 0.683, -0.993}
)
