// Package drift holds the math of abgate's drift monitoring: the frozen
// reference profile of a feature (quantile bin edges and a numeric
// Summary), the drift tests between a reference and a current histogram or
// sample (PSI, Kolmogorov-Smirnov, chi-square, Jensen-Shannon distance and
// normed Wasserstein distance), the automatic choice of a test by feature
// type and reference size, severities, dataset drift across features with
// Benjamini-Hochberg adjusted p-values, and performance drift (accuracy,
// macro precision and recall, relative drops against a baseline window).
//
// Histograms are counts over the same bins for reference and current data,
// so they merge by addition across time buckets. Numeric features are
// binned on quantile edges of the reference (QuantileEdges, Bin) with
// open-ended first and last bins; categorical features have one bin per
// reference category and a last bin for values unseen in the reference.
//
// The package is pure math: it imports no HTTP, database or inference code,
// keeps no state, never panics on bad input and reports it as abgate errors
// with code abgate.EINVALID.
package drift
