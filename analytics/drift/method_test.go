package drift

import (
	"math"
	"testing"
)

func TestChoose(t *testing.T) {
	tests := []struct {
		name          string
		categorical   bool
		unique        int
		referenceSize float64
		want          Method
	}{
		{"numeric, small reference", false, 50, 1000, MethodKS},
		{"numeric, large reference", false, 50, 1001, MethodWasserstein},
		{"numeric, six values", false, 6, 200, MethodKS},
		{"numeric, five values", false, 5, 200, MethodChiSquare},
		{"numeric, five values, large", false, 5, 5000, MethodJensenShannon},
		{"categorical, small reference", true, 40, 999, MethodChiSquare},
		{"categorical, large reference", true, 40, 100000, MethodJensenShannon},
		{"empty reference", false, 0, 0, MethodChiSquare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Choose(tt.categorical, tt.unique, tt.referenceSize); got != tt.want {
				t.Errorf("Choose(%v, %d, %g) = %q, want %q", tt.categorical, tt.unique, tt.referenceSize, got, tt.want)
			}
		})
	}
}

func TestMethodProperties(t *testing.T) {
	tests := []struct {
		method    Method
		pValue    bool
		threshold float64
	}{
		{MethodKS, true, 0.05},
		{MethodChiSquare, true, 0.05},
		{MethodPSI, false, 0.1},
		{MethodJensenShannon, false, 0.1},
		{MethodWasserstein, false, 0.1},
		{"t-test", false, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			if got := tt.method.PValueBased(); got != tt.pValue {
				t.Errorf("PValueBased = %v, want %v", got, tt.pValue)
			}
			checkRel(t, "DefaultThreshold", tt.method.DefaultThreshold(), tt.threshold, 0)
			_, err := ParseMethod(string(tt.method))
			if math.IsNaN(tt.threshold) {
				checkInvalid(t, err, `unknown drift method "t-test"`)
			} else if err != nil {
				t.Errorf("ParseMethod: %v", err)
			}
		})
	}
}

func TestSeverityP(t *testing.T) {
	tests := []struct {
		name string
		p    float64
		want Severity
	}{
		{"at threshold", 0.05, SeverityNone},
		{"above", 0.8, SeverityNone},
		{"just below", 0.0499, SeverityLow},
		{"half threshold", 0.025, SeverityLow},
		{"below half", 0.0249, SeverityMedium},
		{"tenth", 0.005, SeverityMedium},
		{"below tenth", 0.0049, SeverityHigh},
		{"zero", 0, SeverityHigh},
		{"NaN", math.NaN(), SeverityNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SeverityP(tt.p, 0.05); got != tt.want {
				t.Errorf("SeverityP(%g, 0.05) = %q, want %q", tt.p, got, tt.want)
			}
		})
	}
}

func TestSeverityDistance(t *testing.T) {
	tests := []struct {
		name string
		d    float64
		want Severity
	}{
		{"zero", 0, SeverityNone},
		{"below threshold", 0.0999, SeverityNone},
		{"at threshold", 0.1, SeverityLow},
		{"below 1.75t", 0.1749, SeverityLow},
		{"above 1.75t", 0.1751, SeverityMedium},
		{"below PSI 0.25", 0.2499, SeverityMedium},
		{"PSI 0.25", 0.25, SeverityHigh},
		{"far", 3, SeverityHigh},
		{"NaN", math.NaN(), SeverityNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SeverityDistance(tt.d, 0.1); got != tt.want {
				t.Errorf("SeverityDistance(%g, 0.1) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}
