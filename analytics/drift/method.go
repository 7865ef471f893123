package drift

import (
	"math"

	"abgate"
)

// Method names a drift test.
type Method string

// The drift tests. KS and ChiSquare give p-values, drift being a p-value
// below the threshold; the others give distances, drift being a distance
// at or above the threshold.
const (
	MethodKS            Method = "ks"
	MethodChiSquare     Method = "chisquare"
	MethodPSI           Method = "psi"
	MethodJensenShannon Method = "jensenshannon"
	MethodWasserstein   Method = "wasserstein"
)

// Thresholds of Choose's methods, after Evidently's defaults.
const (
	// PValueThreshold is the default threshold of the p-value tests.
	PValueThreshold = 0.05
	// DistanceThreshold is the default threshold of the distances.
	DistanceThreshold = 0.1
	// SmallReference is the largest reference size for which Choose picks
	// a statistical test rather than a distance.
	SmallReference = 1000
	// FewUnique is the largest number of distinct reference values for
	// which Choose treats a numeric feature as categorical.
	FewUnique = 5
)

// ParseMethod returns the Method named s, or an EINVALID error naming the
// known methods.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodKS, MethodChiSquare, MethodPSI, MethodJensenShannon, MethodWasserstein:
		return m, nil
	}
	return "", abgate.Errorf(abgate.EINVALID, "unknown drift method %q: want ks, chisquare, psi, jensenshannon or wasserstein", s)
}

// Choose returns the drift method for a feature after Evidently's
// defaults. A numeric feature (categorical false) with more than FewUnique
// (5) distinct reference values gets KS when the reference has at most
// SmallReference (1000) values and the normed Wasserstein distance
// otherwise. A categorical feature, or a numeric one with at most 5
// distinct values, gets chi-square for a reference of at most 1000 values
// and the Jensen-Shannon distance otherwise. PSI is never chosen; it is
// available as an override.
func Choose(categorical bool, unique int, referenceSize float64) Method {
	small := !(referenceSize > SmallReference)
	if categorical || unique <= FewUnique {
		if small {
			return MethodChiSquare
		}
		return MethodJensenShannon
	}
	if small {
		return MethodKS
	}
	return MethodWasserstein
}

// PValueBased reports whether m gives a p-value (ks, chisquare) rather
// than a distance. It is false for unknown methods.
func (m Method) PValueBased() bool {
	return m == MethodKS || m == MethodChiSquare
}

// DefaultThreshold returns the drift threshold of m: PValueThreshold
// (0.05) for p-value tests, DistanceThreshold (0.1) for the distances, NaN
// for an unknown method.
func (m Method) DefaultThreshold() float64 {
	switch m {
	case MethodKS, MethodChiSquare:
		return PValueThreshold
	case MethodPSI, MethodJensenShannon, MethodWasserstein:
		return DistanceThreshold
	}
	return math.NaN()
}

// Severity grades a drift or a performance drop.
type Severity string

// The severities, from none to high.
const (
	SeverityNone   Severity = "none"
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// SeverityP grades the p-value p of a test with threshold t: none when p
// >= t (no drift), low when p >= t/2, medium when p >= t/10, high below. A
// NaN p, or a NaN t, is no evidence of drift: none.
func SeverityP(p, t float64) Severity {
	switch {
	case math.IsNaN(p) || math.IsNaN(t) || p >= t:
		return SeverityNone
	case p >= t/2:
		return SeverityLow
	case p >= t/10:
		return SeverityMedium
	}
	return SeverityHigh
}

// SeverityDistance grades the distance d with threshold t: none when d <
// t (no drift), low when d < 1.75t, medium when d < 2.5t, high from 2.5t.
// For PSI with t = 0.1 the high band starts at the conventional 0.25. A
// NaN d, or a NaN t, is none.
func SeverityDistance(d, t float64) Severity {
	switch {
	case math.IsNaN(d) || math.IsNaN(t) || d < t:
		return SeverityNone
	case d < 1.75*t:
		return SeverityLow
	case d < 2.5*t:
		return SeverityMedium
	}
	return SeverityHigh
}
