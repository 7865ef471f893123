package analytics

// This file holds the aggregation: one SQL statement per experiment that
// reduces its exposures and outcomes to sufficient statistics per variant
// and metric (n, sum y, sum y², sum x, sum x², sum xy), on SQLite and on
// PostgreSQL. Unit rows never reach Go.

import (
	"context"
	"fmt"
	"math"
	"strings"

	"gorm.io/gorm"

	"abgate/analytics/stats"
	"abgate/experiments"
	"abgate/migrations"
)

// Aggregates are the sufficient statistics of one experiment.
type Aggregates struct {
	// Units is the number of analysed units per variant id: units whose
	// exposures all name one variant (primary exposures, not shadows).
	Units map[int64]float64
	// MultipleExposures counts units exposed to more than one variant
	// (after a weight change, for instance); they are left out of every
	// metric and of the sample ratio test.
	MultipleExposures float64
	// Metrics holds, per metric key and variant id, the summary of the
	// metric's per-unit (or per-request, for guardrails and accuracy) values.
	Metrics map[string]map[int64]stats.Summary
}

// aggregateWorkMem is PostgreSQL's work_mem for the aggregation.
const aggregateWorkMem = "256MB"

// aggregate row kinds.
const (
	kindUnits    = "u"
	kindMulti    = "m"
	kindUnitStat = "s"
	kindRequest  = "r"
)

type aggRow struct {
	Kind      string
	MetricKey string
	VariantID int64
	N         float64
	SumY      float64
	SumY2     float64
	SumX      float64
	SumX2     float64
	SumXY     float64
}

// Aggregate computes the sufficient statistics of experiment id (with the
// definition e) in one SQL statement.
//
// Attribution: a unit belongs to the variant of its exposures (a unit
// exposed to several variants is counted in MultipleExposures and left
// out). Its value of a binomial metric is 1 when it has an outcome with a
// value > 0 at or after its first exposure (within the metric's window when
// it has one), else 0; of a continuous metric, the sum of those outcome
// values (0 without outcomes). Outcomes before the first exposure, within
// the metric's lookback, form the covariate x in the same way; units never
// exposed are ignored. Accuracy is per labelled prediction: 1 when the
// label sent back equals the predicted label of the request it names.
// error_rate (status >= 500) and latency (milliseconds) are per routed
// request; imported exposures, which have no status, are left out.
func Aggregate(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment) (*Aggregates, error) {
	return aggregate(ctx, db, id, e, true)
}

// aggregate is Aggregate; without units it leaves the units and the
// per-unit metrics out.
func aggregate(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment, units bool) (*Aggregates, error) {
	d := migrations.DialectOf(db)
	q, args := aggregateSQL(d, id, e.Metrics, units)
	var rows []aggRow
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if d == migrations.Postgres {
			// The per-unit grouping hashes every unit of the experiment:
			// give it memory rather than spilling to disk; compiling the
			// statement (JIT) costs more than it saves here.
			if err := tx.Exec("SET LOCAL work_mem = '" + aggregateWorkMem + "'").Error; err != nil {
				return err
			}
			if err := tx.Exec("SET LOCAL jit = off").Error; err != nil {
				return err
			}
		}
		return tx.Raw(q, args...).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("aggregate experiment %s: %w", e.Key, err)
	}
	a := newAggregates(e.Metrics)
	for _, r := range rows {
		switch r.Kind {
		case kindUnits:
			a.Units[r.VariantID] = r.N
		case kindMulti:
			a.MultipleExposures = r.N
		case kindUnitStat, kindRequest:
			if a.Metrics[r.MetricKey] == nil {
				continue
			}
			a.Metrics[r.MetricKey][r.VariantID] = stats.Summary{N: r.N, SumY: r.SumY, SumY2: r.SumY2,
				SumX: r.SumX, SumX2: r.SumX2, SumXY: r.SumXY}
		}
	}
	a.countUnits(e.Metrics)
	return a, nil
}

// newAggregates returns empty aggregates of metrics.
func newAggregates(metrics []experiments.Metric) *Aggregates {
	a := &Aggregates{Units: map[int64]float64{}, Metrics: map[string]map[int64]stats.Summary{}}
	for _, m := range metrics {
		a.Metrics[m.Key] = map[int64]stats.Summary{}
	}
	return a
}

// countUnits sets n of the per-unit metrics: every analysed unit counts,
// with 0 when it has no outcome (the sums cover the units that have some).
func (a *Aggregates) countUnits(metrics []experiments.Metric) {
	for _, m := range metrics {
		if !perUnit(m.Type) {
			continue
		}
		byVariant := a.Metrics[m.Key]
		for v, n := range a.Units {
			s := byVariant[v]
			s.N = n
			byVariant[v] = s
		}
	}
}

// perUnit reports whether metrics of type typ are analysed per unit (the
// others are per request).
func perUnit(typ string) bool {
	return typ == experiments.MetricBinomial || typ == experiments.MetricContinuous
}

// aggregateSQL builds the statement of Aggregate for dialect d.
func aggregateSQL(d migrations.Dialect, id int64, metrics []experiments.Metric, units bool) (string, []any) {
	pg := d == migrations.Postgres
	var b strings.Builder
	var args []any
	falseLit := "0"
	if pg {
		falseLit = "false"
	}
	// units: one row per exposed unit with its variant and first exposure.
	unitsFilter := ""
	if !units {
		unitsFilter = " AND 1 = 0" // no unit rows: the scan is skipped
	}
	fmt.Fprintf(&b, `WITH units AS (
  SELECT unit_id, MIN(variant_id) AS variant_id, MAX(variant_id) AS max_variant, MIN(at) AS first_at
  FROM exposures WHERE experiment_id = ? AND shadow = %s%s
  GROUP BY unit_id
)`, falseLit, unitsFilter)
	args = append(args, id)

	var unitMetrics []experiments.Metric
	for _, m := range metrics {
		if perUnit(m.Type) && units {
			unitMetrics = append(unitMetrics, m)
		}
	}
	if len(unitMetrics) > 0 {
		// defs: the per-unit metrics with their type, window and lookback
		// (seconds).
		defs, defArgs := metricDefs(unitMetrics)
		b.WriteString(",\ndefs AS (" + defs + ")")
		args = append(args, defArgs...)
		// per_unit: each analysed unit's value y (after first exposure) and
		// covariate x (before it) for each metric it has outcomes of.
		post, pre := attribution(pg, "u.first_at")
		fmt.Fprintf(&b, `,
per_unit AS (
  SELECT o.metric_key, u.variant_id, d.binomial,
    SUM(CASE WHEN %[1]s THEN o.value ELSE 0 END) AS y_sum,
    MAX(CASE WHEN %[1]s AND o.value > 0 THEN 1 ELSE 0 END) AS y_any,
    SUM(CASE WHEN %[2]s THEN o.value ELSE 0 END) AS x_sum,
    MAX(CASE WHEN %[2]s AND o.value > 0 THEN 1 ELSE 0 END) AS x_any
  FROM outcomes o
  JOIN units u ON u.unit_id = o.unit_id AND u.variant_id = u.max_variant
  JOIN defs d ON d.metric_key = o.metric_key
  WHERE o.experiment_id = ? AND o.value IS NOT NULL
  GROUP BY o.metric_key, o.unit_id, u.variant_id, d.binomial
),
unit_values AS (
  SELECT metric_key, variant_id,
    CASE WHEN binomial = 1 THEN y_any ELSE y_sum END AS y,
    CASE WHEN binomial = 1 THEN x_any ELSE x_sum END AS x
  FROM per_unit
)`, post, pre)
		args = append(args, id)
	}

	fmt.Fprintf(&b, `
SELECT '%s' AS kind, '' AS metric_key, variant_id, COUNT(*) AS n, 0 AS sum_y, 0 AS sum_y2, 0 AS sum_x, 0 AS sum_x2, 0 AS sum_xy
FROM units WHERE variant_id = max_variant GROUP BY variant_id
UNION ALL
SELECT '%s', '', 0, COUNT(*), 0, 0, 0, 0, 0 FROM units WHERE variant_id <> max_variant`, kindUnits, kindMulti)
	if len(unitMetrics) > 0 {
		fmt.Fprintf(&b, `
UNION ALL
SELECT '%s', metric_key, variant_id, COUNT(*), SUM(y), SUM(y * y), SUM(x), SUM(x * x), SUM(x * y)
FROM unit_values GROUP BY metric_key, variant_id`, kindUnitStat)
	}
	for _, m := range metrics {
		switch m.Type {
		case experiments.MetricAccuracy:
			fmt.Fprintf(&b, `
UNION ALL
SELECT '%s', CAST(? AS TEXT), e.variant_id, COUNT(*), SUM(CASE WHEN e.predicted_label = o.label THEN 1 ELSE 0 END),
  SUM(CASE WHEN e.predicted_label = o.label THEN 1 ELSE 0 END), 0, 0, 0
FROM outcomes o JOIN exposures e ON e.experiment_id = o.experiment_id AND e.request_id = o.request_id AND e.shadow = %s
WHERE o.experiment_id = ? AND o.metric_key = ? AND o.label IS NOT NULL AND o.request_id <> ''
GROUP BY e.variant_id`, kindRequest, falseLit)
			args = append(args, m.Key, id, m.Key)
		case experiments.MetricErrorRate:
			fmt.Fprintf(&b, `
UNION ALL
SELECT '%s', CAST(? AS TEXT), variant_id, COUNT(*), SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END), 0, 0, 0
FROM exposures WHERE experiment_id = ? AND shadow = %s AND status > 0
GROUP BY variant_id`, kindRequest, falseLit)
			args = append(args, m.Key, id)
		case experiments.MetricLatency:
			fmt.Fprintf(&b, `
UNION ALL
SELECT '%s', CAST(? AS TEXT), variant_id, COUNT(*), SUM(latency_us / CAST(1000 AS DOUBLE PRECISION)), SUM((latency_us / CAST(1000 AS DOUBLE PRECISION)) * (latency_us / CAST(1000 AS DOUBLE PRECISION))), 0, 0, 0
FROM exposures WHERE experiment_id = ? AND shadow = %s AND status > 0
GROUP BY variant_id`, kindRequest, falseLit)
			args = append(args, m.Key, id)
		}
	}
	return b.String(), args
}

// SameAggregates returns an error naming the first difference between a
// and b beyond the relative tolerance tol; nil when they agree.
func SameAggregates(a, b *Aggregates, tol float64) error {
	close := func(x, y float64) bool { return math.Abs(x-y) <= tol*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) }
	if len(a.Units) != len(b.Units) {
		return fmt.Errorf("units of %d variants vs %d", len(a.Units), len(b.Units))
	}
	for v, n := range b.Units {
		if !close(a.Units[v], n) {
			return fmt.Errorf("variant %d: %v units vs %v", v, a.Units[v], n)
		}
	}
	if !close(a.MultipleExposures, b.MultipleExposures) {
		return fmt.Errorf("multiple exposures %v vs %v", a.MultipleExposures, b.MultipleExposures)
	}
	for m, byVariant := range b.Metrics {
		for v, w := range byVariant {
			g := a.Metrics[m][v]
			gs := []float64{g.N, g.SumY, g.SumY2, g.SumX, g.SumX2, g.SumXY}
			ws := []float64{w.N, w.SumY, w.SumY2, w.SumX, w.SumX2, w.SumXY}
			for i := range gs {
				if !close(gs[i], ws[i]) {
					return fmt.Errorf("metric %s, variant %d: %+v vs %+v", m, v, g, w)
				}
			}
		}
	}
	return nil
}
