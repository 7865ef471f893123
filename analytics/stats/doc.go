// Package stats holds the statistics of abgate's experiment reports: the
// frequentist tests (pooled two-proportion z-test, Welch's t-test, CUPED),
// the sample ratio mismatch check, the Bayesian chance to beat control and
// expected loss, always-valid p-values (mSPRT), multiple-testing corrections
// and the power, sample-size and minimum-detectable-effect calculator.
//
// The comparisons work on per-variant sufficient statistics (Summary), which
// the analytics slice aggregates in SQL, never on raw events. The package is
// pure math: it imports no HTTP, database or inference code, keeps no state,
// and reports invalid input as abgate errors with code abgate.EINVALID.
package stats
