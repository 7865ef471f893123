package drift

import (
	"math"

	"abgate"
)

// Performance holds classification quality from a confusion matrix.
// The macro averages are unweighted means over the classes present: those
// with any true or any predicted count (scikit-learn's labels, the union of
// y_true and y_pred). The precision of a class never predicted, and the
// recall of a class never true, count as 0, as scikit-learn's
// precision_score and recall_score with average="macro" and
// zero_division=0.
type Performance struct {
	Accuracy, MacroPrecision, MacroRecall float64
}

// PerformanceOf returns the Performance of a confusion matrix of counts,
// confusion[i][j] being the number of examples of true class i predicted
// as class j.
//
// It returns an EINVALID error when the matrix is empty or not square, a
// count is negative, NaN or infinite, or all counts are zero.
func PerformanceOf(confusion [][]float64) (Performance, error) {
	k := len(confusion)
	if k == 0 {
		return Performance{}, abgate.Errorf(abgate.EINVALID, "confusion matrix is empty")
	}
	rows := make([]float64, k)
	cols := make([]float64, k)
	var total, correct float64
	for i, row := range confusion {
		if len(row) != k {
			return Performance{}, abgate.Errorf(abgate.EINVALID, "confusion matrix must be square: %d classes but row %d has %d counts", k, i, len(row))
		}
		for j, c := range row {
			if !(c >= 0) || math.IsInf(c, 0) {
				return Performance{}, abgate.Errorf(abgate.EINVALID, "confusion count [%d][%d] must be a finite non-negative number, got %g", i, j, c)
			}
			rows[i] += c
			cols[j] += c
			total += c
		}
		correct += row[i]
	}
	if total == 0 {
		return Performance{}, abgate.Errorf(abgate.EINVALID, "confusion matrix has no examples")
	}
	if math.IsInf(total, 0) {
		return Performance{}, abgate.Errorf(abgate.EINVALID, "confusion matrix total overflows")
	}
	var precision, recall float64
	present := 0
	for c := range k {
		if rows[c] == 0 && cols[c] == 0 {
			continue
		}
		present++
		if cols[c] > 0 {
			precision += confusion[c][c] / cols[c]
		}
		if rows[c] > 0 {
			recall += confusion[c][c] / rows[c]
		}
	}
	return Performance{
		Accuracy:       correct / total,
		MacroPrecision: precision / float64(present),
		MacroRecall:    recall / float64(present),
	}, nil
}

// Bands of RelativeDrop's severity.
const (
	DropLow    = 0.05 // a drop above 5% is at least low
	DropMedium = 0.10 // above 10% at least medium
	DropHigh   = 0.20 // above 20% high
)

// RelativeDrop returns how much worse current is than baseline, relative
// to baseline, and its severity. For a higher-is-better value (accuracy,
// precision) the drop is (baseline-current)/baseline; for a
// lower-is-better value (error rate, latency; lowerIsBetter true) it is
// (current-baseline)/baseline. A negative drop is an improvement. The
// severity is none for a drop up to DropLow (5%), low up to DropMedium
// (10%), medium up to DropHigh (20%) and high above.
//
// A lower-is-better baseline of zero (no errors in the baseline window)
// gives a drop of 0 and none when current is zero too, and +Inf and high
// otherwise; callers that serialise the drop to JSON must handle the
// infinity.
//
// It returns an EINVALID error when baseline or current is negative, NaN
// or infinite, or a higher-is-better baseline is zero.
func RelativeDrop(baseline, current float64, lowerIsBetter bool) (float64, Severity, error) {
	if !(baseline >= 0) || math.IsInf(baseline, 0) {
		return 0, "", abgate.Errorf(abgate.EINVALID, "baseline must be a finite non-negative number, got %g", baseline)
	}
	if !(current >= 0) || math.IsInf(current, 0) {
		return 0, "", abgate.Errorf(abgate.EINVALID, "current value must be a finite non-negative number, got %g", current)
	}
	var drop float64
	switch {
	case !lowerIsBetter && baseline == 0:
		return 0, "", abgate.Errorf(abgate.EINVALID, "baseline of a higher-is-better value is zero: a relative drop is undefined")
	case !lowerIsBetter:
		drop = (baseline - current) / baseline
	case baseline == 0 && current == 0:
		drop = 0
	case baseline == 0:
		drop = math.Inf(1)
	default:
		drop = (current - baseline) / baseline
	}
	return drop, dropSeverity(drop), nil
}

func dropSeverity(drop float64) Severity {
	switch {
	case drop <= DropLow:
		return SeverityNone
	case drop <= DropMedium:
		return SeverityLow
	case drop <= DropHigh:
		return SeverityMedium
	}
	return SeverityHigh
}
