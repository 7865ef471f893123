package analytics

// This file turns an experiment's sufficient statistics into its report:
// per metric and variant the lift against the control with its confidence
// intervals and p-value, the Bayesian chance to beat the control, the
// always-valid sequential p-value, CUPED, multiple-testing corrections and
// the sample ratio test.

import (
	"math"
	"sort"
	"time"

	"abgate/analytics/stats"
	"abgate/experiments"
)

// Report is the Results JSON of GET /api/v1/experiments/{key}/results.
// Values that are not defined (a p-value without data, a relative lift over
// a zero control mean) are null.
type Report struct {
	Experiment string    `json:"experiment"`
	Status     string    `json:"status"`
	ComputedAt time.Time `json:"computed_at"`
	// Alpha is the significance level; Correction the multiple-testing
	// correction that "significant" uses (holm, bh or none).
	Alpha      float64 `json:"alpha"`
	Correction string  `json:"correction"`
	SRM        SRM     `json:"srm"`
	// MultipleExposures counts units exposed to more than one variant; they
	// are left out of every metric and of the SRM test.
	MultipleExposures float64        `json:"multiple_exposures"`
	Metrics           []MetricResult `json:"metrics"`
	// History lists earlier snapshots' lifts and p-values, oldest first
	// (filled when the report is read, not stored).
	History []HistoryPoint `json:"history,omitempty"`
}

// SRM is the sample ratio mismatch test: a chi-square goodness of fit of
// the units per variant against the configured weights.
type SRM struct {
	Chi2     *float64     `json:"chi2"`
	PValue   *float64     `json:"p_value"`
	Flagged  bool         `json:"flagged"`
	Variants []SRMVariant `json:"variants"`
}

// SRMVariant is one variant's observed and expected share of units.
type SRMVariant struct {
	Key           string  `json:"key"`
	Units         float64 `json:"units"`
	ExpectedShare float64 `json:"expected_share"`
	ObservedShare float64 `json:"observed_share"`
}

// SRMThreshold is the p-value under which a sample ratio mismatch is
// flagged.
const SRMThreshold = 0.001

// MetricResult is the analysis of one metric.
type MetricResult struct {
	Key       string          `json:"key"`
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Direction string          `json:"direction"`
	Variants  []VariantResult `json:"variants"`
}

// VariantResult is one variant on one metric; the comparison fields are
// null for the control.
type VariantResult struct {
	Key     string      `json:"key"`
	Control bool        `json:"control"`
	N       float64     `json:"n"`
	Mean    *float64    `json:"mean"`
	Stddev  *float64    `json:"stddev"`
	AbsLift *float64    `json:"abs_lift"`
	RelLift *float64    `json:"rel_lift"`
	CI95    *[2]float64 `json:"ci95"`
	RelCI95 *[2]float64 `json:"rel_ci95"`
	PValue  *float64    `json:"p_value"`
	// PValueAdjusted is PValue after the report's correction across
	// variants x metrics; Significant compares it with Alpha.
	PValueAdjusted      *float64    `json:"p_value_adjusted"`
	PValueHolm          *float64    `json:"p_value_holm"`
	PValueBH            *float64    `json:"p_value_bh"`
	Test                string      `json:"test,omitempty"`
	Significant         bool        `json:"significant"`
	ChanceToBeatControl *float64    `json:"chance_to_beat_control"`
	ExpectedLoss        *float64    `json:"expected_loss"`
	SequentialPValue    *float64    `json:"sequential_p_value"`
	CUPEDPValue         *float64    `json:"cuped_p_value,omitempty"`
	CUPEDAbsLift        *float64    `json:"cuped_abs_lift,omitempty"`
	CUPEDCI95           *[2]float64 `json:"cuped_ci95,omitempty"`
	CUPEDTheta          *float64    `json:"cuped_theta,omitempty"`
	// Better is true when the lift goes the metric's better way.
	Better *bool `json:"better,omitempty"`
}

// HistoryPoint is one variant on one metric in an earlier snapshot.
type HistoryPoint struct {
	ComputedAt       time.Time `json:"computed_at"`
	Metric           string    `json:"metric"`
	Variant          string    `json:"variant"`
	N                float64   `json:"n"`
	AbsLift          *float64  `json:"abs_lift"`
	RelLift          *float64  `json:"rel_lift"`
	PValue           *float64  `json:"p_value"`
	SequentialPValue *float64  `json:"sequential_p_value"`
}

// Settings are the analysis settings of reports.
type Settings struct {
	// Alpha is the significance level; 0 means 0.05.
	Alpha float64
	// Correction is holm (default), bh or none.
	Correction string
	// SequentialNStar tunes the mixing variance of the sequential test: it
	// is tightest near this many units per variant. 0 means 5000.
	SequentialNStar float64
	// PriorAlpha and PriorBeta are the Beta prior of binomial metrics; 0
	// means 1 (uniform).
	PriorAlpha, PriorBeta float64
}

func (s Settings) withDefaults() Settings {
	if s.Alpha <= 0 || s.Alpha >= 1 {
		s.Alpha = 0.05
	}
	switch s.Correction {
	case CorrectionHolm, CorrectionBH, CorrectionNone:
	default:
		s.Correction = CorrectionHolm
	}
	if s.SequentialNStar <= 0 {
		s.SequentialNStar = 5000
	}
	if s.PriorAlpha <= 0 {
		s.PriorAlpha = 1
	}
	if s.PriorBeta <= 0 {
		s.PriorBeta = 1
	}
	return s
}

// The multiple-testing corrections.
const (
	CorrectionHolm = "holm"
	CorrectionBH   = "bh"
	CorrectionNone = "none"
)

// variantIDs maps the variant keys of an experiment to their ids.
type variantIDs map[string]int64

// BuildReport computes the report of e from its aggregates. prev is the
// previous snapshot's report (nil when none): the sequential p-value is
// the running minimum over snapshots.
func BuildReport(e *experiments.Experiment, ids variantIDs, agg *Aggregates, prev *Report, set Settings, now time.Time) *Report {
	set = set.withDefaults()
	r := &Report{Experiment: e.Key, Status: string(e.Status), ComputedAt: now.UTC(), Alpha: set.Alpha,
		Correction: set.Correction, MultipleExposures: agg.MultipleExposures, Metrics: []MetricResult{}}
	arms := primaryVariants(e)
	r.SRM = srmOf(arms, ids, agg)

	ctl := e.Control()
	prevSeq := map[[2]string]float64{}
	if prev != nil {
		for _, m := range prev.Metrics {
			for _, v := range m.Variants {
				if v.SequentialPValue != nil {
					prevSeq[[2]string{m.Key, v.Key}] = *v.SequentialPValue
				}
			}
		}
	}
	// family collects the p-values of every comparison for the corrections.
	type ref struct{ m, v int }
	var family []float64
	var refs []ref
	for _, m := range e.Metrics {
		mr := MetricResult{Key: m.Key, Type: m.Type, Role: m.Role, Direction: direction(m), Variants: []VariantResult{}}
		byVariant := agg.Metrics[m.Key]
		var c stats.Summary
		if ctl != nil {
			c = byVariant[ids[ctl.Key]]
		}
		for _, v := range arms {
			s := byVariant[ids[v.Key]]
			vr := VariantResult{Key: v.Key, Control: v.Control, N: s.N}
			if s.N > 0 {
				vr.Mean = num(s.Mean())
				vr.Stddev = num(math.Sqrt(s.Variance()))
			}
			if !v.Control && ctl != nil {
				compare(&vr, m, c, s, set, prevSeq[[2]string{m.Key, v.Key}])
				if vr.PValue != nil {
					family = append(family, *vr.PValue)
					refs = append(refs, ref{len(r.Metrics), len(mr.Variants)})
				}
			}
			mr.Variants = append(mr.Variants, vr)
		}
		r.Metrics = append(r.Metrics, mr)
	}
	holm, bh := stats.Holm(family), stats.BenjaminiHochberg(family)
	for i, rf := range refs {
		vr := &r.Metrics[rf.m].Variants[rf.v]
		vr.PValueHolm, vr.PValueBH = num(holm[i]), num(bh[i])
		switch set.Correction {
		case CorrectionHolm:
			vr.PValueAdjusted = vr.PValueHolm
		case CorrectionBH:
			vr.PValueAdjusted = vr.PValueBH
		default:
			vr.PValueAdjusted = vr.PValue
		}
		vr.Significant = vr.PValueAdjusted != nil && *vr.PValueAdjusted < set.Alpha
	}
	return r
}

// compare fills the comparison of treatment t against control c.
func compare(vr *VariantResult, m experiments.Metric, c, t stats.Summary, set Settings, prevSeq float64) {
	decrease := direction(m) == experiments.DirectionDecrease
	binomial := m.Type != experiments.MetricContinuous && m.Type != experiments.MetricLatency
	var cmp stats.Comparison
	var err error
	if binomial {
		cmp, err = stats.ZTest(c, t, set.Alpha)
	} else {
		cmp, err = stats.Welch(c, t, set.Alpha)
	}
	if err != nil {
		return
	}
	vr.Test = cmp.Test
	vr.AbsLift = num(cmp.AbsLift)
	vr.RelLift = num(cmp.RelLift)
	vr.CI95 = pair(cmp.CI)
	vr.RelCI95 = pair(cmp.RelCI)
	vr.PValue = num(cmp.PValue)
	if vr.AbsLift != nil && *vr.AbsLift != 0 {
		better := (*vr.AbsLift > 0) != decrease
		vr.Better = &better
	}
	var chance, loss float64
	if binomial {
		chance, loss = stats.BetaBinomial(c, t, set.PriorAlpha, set.PriorBeta, decrease)
	} else {
		chance, loss = stats.NormalBayes(c, t, decrease)
	}
	vr.ChanceToBeatControl, vr.ExpectedLoss = num(chance), num(loss)
	if tau2 := stats.MSPRTTau2(c, t, set.Alpha, set.SequentialNStar); tau2 > 0 {
		p := stats.MSPRT(c, t, tau2)
		if prevSeq > 0 && prevSeq < p {
			p = prevSeq
		}
		vr.SequentialPValue = num(p)
	}
	if perUnit(m.Type) && m.LookbackHours > 0 && (c.SumX2 > 0 || t.SumX2 > 0) {
		if adj, theta, err := stats.CUPED(c, t, set.Alpha); err == nil {
			vr.CUPEDPValue = num(adj.PValue)
			vr.CUPEDAbsLift = num(adj.AbsLift)
			vr.CUPEDCI95 = pair(adj.CI)
			vr.CUPEDTheta = num(theta)
		}
	}
}

// srmOf tests the units per variant against the configured weights.
func srmOf(arms []experiments.Variant, ids variantIDs, agg *Aggregates) SRM {
	out := SRM{Variants: []SRMVariant{}}
	var total, wsum float64
	counts := make([]float64, len(arms))
	weights := make([]float64, len(arms))
	for i, v := range arms {
		counts[i] = agg.Units[ids[v.Key]]
		weights[i] = v.Weight
		total += counts[i]
		wsum += v.Weight
	}
	for i, v := range arms {
		sv := SRMVariant{Key: v.Key, Units: counts[i]}
		if wsum > 0 {
			sv.ExpectedShare = weights[i] / wsum
		}
		if total > 0 {
			sv.ObservedShare = counts[i] / total
		}
		out.Variants = append(out.Variants, sv)
	}
	if total == 0 || len(arms) < 2 {
		return out
	}
	chi2, p, err := stats.SRM(counts, weights)
	if err != nil {
		return out
	}
	out.Chi2, out.PValue = num(chi2), num(p)
	out.Flagged = p < SRMThreshold
	return out
}

// primaryVariants returns the variants that take traffic (not shadows),
// the control first.
func primaryVariants(e *experiments.Experiment) []experiments.Variant {
	var out []experiments.Variant
	for _, v := range e.Variants {
		if !v.Shadow {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Control && !out[j].Control })
	return out
}

// direction returns the metric's better direction, with its default.
func direction(m experiments.Metric) string {
	if m.Direction != "" {
		return m.Direction
	}
	if m.Type == experiments.MetricErrorRate || m.Type == experiments.MetricLatency {
		return experiments.DirectionDecrease
	}
	return experiments.DirectionIncrease
}

// num returns a pointer to x, or nil when x is NaN or infinite.
func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// pair returns a pointer to p, or nil when either end is not finite.
func pair(p [2]float64) *[2]float64 {
	for _, x := range p {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return &p
}
