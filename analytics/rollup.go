package analytics

// This file holds the incremental aggregation behind every refresh. The
// rollups of an experiment (analytics_units, analytics_unit_values,
// analytics_sums) hold each exposed unit's variant and first exposure, its
// attributed outcome values, and the per-variant sufficient statistics. A
// fold adds the exposures and outcomes written since the previous fold:
//
//   - units seen for the first time, or whose first exposure moved earlier,
//     or that met a second variant, are "changed": their old contribution
//     is taken out of the sums, their values are recomputed from their raw
//     outcomes, and the new contribution is added;
//   - new outcomes of the other exposed units add their difference to the
//     unit's values and to the sums (y² and xy by the difference of the
//     squares and products);
//   - per-request guardrails (error rate, latency) add up directly.
//
// So a refresh costs what arrived since the last one, not the whole
// history; a change of the metric definitions rebuilds from the start. The
// result equals Aggregate's, the one-statement computation from raw rows,
// which the tests use as the reference.

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"abgate/analytics/stats"
	"abgate/experiments"
	"abgate/migrations"
)

// foldState is a row of analytics_state.
type foldState struct {
	ExperimentID     int64 `gorm:"primaryKey"`
	Fingerprint      string
	ExposuresThrough int64
	OutcomesThrough  int64
	// Folds counts the folds since the last build.
	Folds int64
	// Snapshot is, on PostgreSQL, the snapshot of the last fold.
	Snapshot string
	FoldedAt time.Time
}

func (foldState) TableName() string { return "analytics_state" }

// fingerprint identifies the metric definitions the rollups depend on.
func fingerprint(metrics []experiments.Metric) string {
	var parts []string
	for _, m := range metrics {
		parts = append(parts, fmt.Sprintf("%s:%s:%g:%g", m.Key, m.Type, m.WindowHours, m.LookbackHours))
	}
	sort.Strings(parts)
	return "v1|" + strings.Join(parts, "|")
}

// folder runs the statements of one fold in tx.
type folder struct {
	tx         *gorm.DB
	pg         bool
	id         int64
	lateralMax int64
	// mark numbers this fold; units it recomputes carry it in folded_in.
	mark int64
	err  error
}

func (f *folder) exec(q string, args ...any) {
	if f.err != nil {
		return
	}
	if err := f.tx.Exec(q, args...).Error; err != nil {
		f.err = fmt.Errorf("%w in: %s", err, firstLine(q))
	}
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i > 0 {
		return q[:i]
	}
	return q
}

// temp creates the temporary table name from query (dropped at commit on
// PostgreSQL, by drop on SQLite).
func (f *folder) temp(name, query string, args ...any) {
	f.exec("DROP TABLE IF EXISTS " + name)
	if f.pg {
		f.exec("CREATE TEMP TABLE "+name+" ON COMMIT DROP AS "+query, args...)
		f.exec("ANALYZE " + name)
	} else {
		f.exec("CREATE TEMP TABLE "+name+" AS "+query, args...)
	}
}

// addSums is the upsert that adds a SELECT's rows to analytics_sums.
const addSums = ` ON CONFLICT (experiment_id, metric_key, variant_id) DO UPDATE SET
  n = analytics_sums.n + excluded.n, sum_y = analytics_sums.sum_y + excluded.sum_y,
  sum_y2 = analytics_sums.sum_y2 + excluded.sum_y2, sum_x = analytics_sums.sum_x + excluded.sum_x,
  sum_x2 = analytics_sums.sum_x2 + excluded.sum_x2, sum_xy = analytics_sums.sum_xy + excluded.sum_xy`

const insertSums = "INSERT INTO analytics_sums (experiment_id, metric_key, variant_id, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy) "

// Fold brings the rollups of experiment id (definition e) up to the rows
// committed now, in one transaction; rebuild starts them over. Folds of one
// experiment are serialised (an advisory lock on PostgreSQL, the write
// lock on SQLite).
func Fold(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment, rebuild bool) error {
	return fold(ctx, db, id, e, rebuild, lateralMaxUnits)
}

// fold is Fold with the most changed units looked up one by one.
//
// On PostgreSQL the fold runs in a REPEATABLE READ transaction, one
// snapshot for all its statements, taken after the experiment's advisory
// lock (a session lock, held around the transaction, so that the snapshot
// sees the previous fold's commit). It folds the rows visible in its
// snapshot that were not visible in the previous fold's (stored in
// analytics_state): a row committed while a fold runs is folded by the next,
// and none twice, however transactions interleave.
func fold(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment, rebuild bool, lateralMax int64) error {
	pg := migrations.DialectOf(db) == migrations.Postgres
	if !pg {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return foldTx(tx, false, id, e, rebuild, lateralMax)
		})
	}
	return db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		lockArgs := []any{int32(id)}
		const lock = "hashtext('abgate_analytics_fold:' || current_schema()), CAST(? AS INTEGER)"
		if err := conn.Exec("SELECT pg_advisory_lock("+lock+")", lockArgs...).Error; err != nil {
			// A cancellation can race with the grant: release whatever
			// this session may hold before the connection goes back to
			// the pool.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if uerr := conn.WithContext(uctx).Exec("SELECT pg_advisory_unlock_all()").Error; uerr != nil {
				_ = conn.WithContext(uctx).Exec("SELECT pg_terminate_backend(pg_backend_pid())").Error
			}
			return err
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := conn.WithContext(uctx).Exec("SELECT pg_advisory_unlock("+lock+")", lockArgs...).Error; err != nil {
				// The session keeps the lock: end it, so the pool does
				// not hand it out again.
				_ = conn.WithContext(uctx).Exec("SELECT pg_terminate_backend(pg_backend_pid())").Error
			}
		}()
		return conn.Transaction(func(tx *gorm.DB) error {
			return foldTx(tx, true, id, e, rebuild, lateralMax)
		}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	})
}

// foldTx is one fold in tx.
func foldTx(tx *gorm.DB, pg bool, id int64, e *experiments.Experiment, rebuild bool, lateralMax int64) error {
	f := &folder{tx: tx, pg: pg, id: id, lateralMax: lateralMax}
	if pg {
		f.exec("SET LOCAL work_mem = '" + aggregateWorkMem + "'")
		f.exec("SET LOCAL jit = off")
	}
	if f.err != nil {
		return f.err
	}
	var states []foldState
	if err := tx.Where("experiment_id = ?", id).Find(&states).Error; err != nil {
		return err
	}
	fp := fingerprint(e.Metrics)
	var st foldState
	if len(states) == 1 && states[0].Fingerprint == fp && !rebuild {
		st = states[0]
	} else {
		for _, t := range []string{"analytics_units", "analytics_unit_values", "analytics_sums"} {
			f.exec("DELETE FROM "+t+" WHERE experiment_id = ?", id)
		}
		st = foldState{ExperimentID: id, Fingerprint: fp}
	}
	next := st
	next.Folds++
	f.mark = next.Folds
	// newRows(table alias) is the condition of the rows this fold adds.
	var newExposures, newOutcomes func(alias string) (string, []any)
	if pg {
		if err := tx.Raw("SELECT CAST(pg_current_snapshot() AS TEXT)").Scan(&next.Snapshot).Error; err != nil {
			return err
		}
		prev := st.Snapshot
		newRows := func(a string) (string, []any) {
			if prev == "" {
				return "1 = 1", nil // the first fold: every visible row
			}
			// Rows of transactions below the previous snapshot's xmin were
			// visible to it (or aborted): the bare column bound lets the
			// BRIN index skip them.
			return a + ".ingest_xid >= CAST(CAST(pg_snapshot_xmin(CAST(? AS pg_snapshot)) AS TEXT) AS BIGINT)" +
				" AND NOT pg_visible_in_snapshot(CAST(CAST(" + a + ".ingest_xid AS TEXT) AS xid8), CAST(? AS pg_snapshot))", []any{prev, prev}
		}
		newExposures, newOutcomes = newRows, newRows
	} else {
		var hi struct{ E, O int64 }
		if err := tx.Raw("SELECT (SELECT COALESCE(MAX(id), 0) FROM exposures) AS e, (SELECT COALESCE(MAX(id), 0) FROM outcomes) AS o").Scan(&hi).Error; err != nil {
			return err
		}
		loE, loO := st.ExposuresThrough, st.OutcomesThrough
		next.ExposuresThrough, next.OutcomesThrough = hi.E, hi.O
		newExposures = func(a string) (string, []any) { return a + ".id > ? AND " + a + ".id <= ?", []any{loE, hi.E} }
		newOutcomes = func(a string) (string, []any) { return a + ".id > ? AND " + a + ".id <= ?", []any{loO, hi.O} }
	}
	f.fold(e, newExposures, newOutcomes)
	if f.err != nil {
		return f.err
	}
	next.FoldedAt = time.Now().UTC()
	return tx.Save(&next).Error
}

// fold runs the statements of one fold over the given row ranges.
//
// Changed units are recomputed from all their outcomes in the fold's view:
// on PostgreSQL its snapshot, on SQLite (one writer, holding the write lock)
// every row.
func (f *folder) fold(e *experiments.Experiment, expoRange, outRange func(string) (string, []any)) {
	id := f.id
	falseLit := "0"
	if f.pg {
		falseLit = "false"
	}
	var unitMetrics []experiments.Metric
	for _, m := range e.Metrics {
		if perUnit(m.Type) {
			unitMetrics = append(unitMetrics, m)
		}
	}
	post, pre := attribution(f.pg, "c.first_at")

	// ab_new: the units of the new exposures.
	er, erArgs := expoRange("e")
	f.temp("ab_new", `SELECT unit_id, MIN(variant_id) AS vmin, MAX(variant_id) AS vmax, MIN(at) AS first_at
FROM exposures e WHERE +e.experiment_id = ? AND e.shadow = `+falseLit+` AND `+er+`
GROUP BY unit_id`, append([]any{id}, erArgs...)...)

	// ab_changed: new units, units whose first exposure moved earlier and
	// units that met a second variant, with their old and new state.
	f.temp("ab_changed", `SELECT n.unit_id,
  CASE WHEN u.unit_id IS NULL THEN 0 ELSE 1 END AS old_present,
  COALESCE(u.variant_id, 0) AS old_variant,
  CASE WHEN u.multi THEN 1 ELSE 0 END AS old_multi,
  CASE WHEN u.unit_id IS NULL THEN n.vmin ELSE u.variant_id END AS new_variant,
  CASE WHEN u.unit_id IS NULL OR n.first_at < u.first_at THEN n.first_at ELSE u.first_at END AS first_at,
  CASE WHEN u.multi OR n.vmin <> n.vmax OR (u.unit_id IS NOT NULL AND n.vmin <> u.variant_id) THEN 1 ELSE 0 END AS new_multi
FROM ab_new n LEFT JOIN analytics_units u ON u.experiment_id = ? AND u.unit_id = n.unit_id
WHERE u.unit_id IS NULL OR n.first_at < u.first_at OR (NOT u.multi AND (n.vmin <> n.vmax OR n.vmin <> u.variant_id))`, id)
	f.exec("CREATE INDEX ab_changed_unit ON ab_changed (unit_id)")
	changed := f.count("ab_changed")

	// changedValues joins the changed units c to their values v and
	// metric definitions d: one index lookup per unit and metric on
	// PostgreSQL when they are few (its planner would rather scan all
	// values), a join otherwise.
	changedValues := `ab_changed c
JOIN analytics_unit_values v ON v.experiment_id = ? AND v.unit_id = c.unit_id
JOIN ab_defs d ON d.metric_key = v.metric_key`
	lateral := f.pg && changed <= f.lateralMax
	if lateral {
		changedValues = `ab_changed c CROSS JOIN ab_defs d,
LATERAL (SELECT v.y_sum, v.y_any, v.x_sum, v.x_any FROM analytics_unit_values v
  WHERE v.experiment_id = ? AND v.unit_id = c.unit_id AND v.metric_key = d.metric_key) v`
	}
	yExpr := "CASE WHEN d.binomial = 1 THEN v.y_any ELSE v.y_sum END"
	xExpr := "CASE WHEN d.binomial = 1 THEN v.x_any ELSE v.x_sum END"
	if len(unitMetrics) > 0 {
		f.defs(unitMetrics)
	}

	// Take the old contributions of changed units out.
	f.exec(insertSums+`SELECT CAST(? AS BIGINT), '', old_variant, -COUNT(*), 0, 0, 0, 0, 0 FROM ab_changed
WHERE old_present = 1 AND old_multi = 0 GROUP BY old_variant`+addSums, id)
	if len(unitMetrics) > 0 {
		f.exec(insertSums+`SELECT CAST(? AS BIGINT), d.metric_key, c.old_variant, 0,
  -SUM(`+yExpr+`), -SUM((`+yExpr+`) * (`+yExpr+`)), -SUM(`+xExpr+`), -SUM((`+xExpr+`) * (`+xExpr+`)), -SUM((`+xExpr+`) * (`+yExpr+`))
FROM `+changedValues+`
WHERE c.old_present = 1 AND c.old_multi = 0
GROUP BY d.metric_key, c.old_variant`+addSums, id, id)
	}
	f.exec(insertSums+`SELECT CAST(? AS BIGINT), '', 0, COUNT(*), 0, 0, 0, 0, 0 FROM ab_changed
WHERE new_multi = 1 AND old_multi = 0 GROUP BY new_multi`+addSums, id)

	// Their new state.
	multiExpr := "new_multi = 1"
	f.exec(`INSERT INTO analytics_units (experiment_id, unit_id, variant_id, first_at, multi, folded_in)
SELECT CAST(? AS BIGINT), unit_id, new_variant, first_at, `+multiExpr+`, CAST(? AS BIGINT) FROM ab_changed WHERE 1 = 1
ON CONFLICT (experiment_id, unit_id) DO UPDATE SET variant_id = excluded.variant_id, first_at = excluded.first_at,
  multi = excluded.multi, folded_in = excluded.folded_in`, id, f.mark)
	f.exec(`DELETE FROM analytics_unit_values WHERE experiment_id = ? AND unit_id IN (SELECT unit_id FROM ab_changed)`, id)
	if len(unitMetrics) > 0 {
		of, ofArgs := "1 = 1", []any(nil)
		values := `SUM(CASE WHEN ` + post + ` THEN o.value ELSE 0 END) AS y_sum,
  MAX(CASE WHEN ` + post + ` AND o.value > 0 THEN 1 ELSE 0 END) AS y_any,
  SUM(CASE WHEN ` + pre + ` THEN o.value ELSE 0 END) AS x_sum,
  MAX(CASE WHEN ` + pre + ` AND o.value > 0 THEN 1 ELSE 0 END) AS x_any`
		if lateral {
			// Few changed units: look each one's outcomes up by index.
			f.exec(`INSERT INTO analytics_unit_values (experiment_id, metric_key, unit_id, y_sum, y_any, x_sum, x_any)
SELECT CAST(? AS BIGINT), d.metric_key, c.unit_id, x.y_sum, x.y_any, x.x_sum, x.x_any
FROM ab_changed c CROSS JOIN ab_defs d,
LATERAL (SELECT COUNT(*) AS n, `+values+`
  FROM outcomes o WHERE o.experiment_id = ? AND o.metric_key = d.metric_key AND o.unit_id = c.unit_id
    AND o.value IS NOT NULL AND `+of+`) x
WHERE c.new_multi = 0 AND x.n > 0`, append([]any{id, id}, ofArgs...)...)
		} else {
			f.exec(`INSERT INTO analytics_unit_values (experiment_id, metric_key, unit_id, y_sum, y_any, x_sum, x_any)
SELECT CAST(? AS BIGINT), o.metric_key, o.unit_id, `+values+`
FROM outcomes o
JOIN ab_changed c ON c.unit_id = o.unit_id AND c.new_multi = 0
JOIN ab_defs d ON d.metric_key = o.metric_key
WHERE o.experiment_id = ? AND o.value IS NOT NULL AND `+of+`
GROUP BY o.metric_key, o.unit_id`, append([]any{id, id}, ofArgs...)...)
		}
	}
	// Put their new contributions in.
	f.exec(insertSums+`SELECT CAST(? AS BIGINT), '', new_variant, COUNT(*), 0, 0, 0, 0, 0 FROM ab_changed
WHERE new_multi = 0 GROUP BY new_variant`+addSums, id)
	if len(unitMetrics) > 0 {
		f.exec(insertSums+`SELECT CAST(? AS BIGINT), d.metric_key, c.new_variant, 0,
  SUM(`+yExpr+`), SUM((`+yExpr+`) * (`+yExpr+`)), SUM(`+xExpr+`), SUM((`+xExpr+`) * (`+xExpr+`)), SUM((`+xExpr+`) * (`+yExpr+`))
FROM `+changedValues+`
WHERE c.new_multi = 0
GROUP BY d.metric_key, c.new_variant`+addSums, id, id)

		// New outcomes of the other exposed units: the difference.
		or, orArgs := outRange("o")
		postU, preU := attribution(f.pg, "u.first_at")
		f.temp("ab_delta", `SELECT o.metric_key, o.unit_id, u.variant_id, d.binomial,
  SUM(CASE WHEN `+postU+` THEN o.value ELSE 0 END) AS dy,
  MAX(CASE WHEN `+postU+` AND o.value > 0 THEN 1 ELSE 0 END) AS dy_any,
  SUM(CASE WHEN `+preU+` THEN o.value ELSE 0 END) AS dx,
  MAX(CASE WHEN `+preU+` AND o.value > 0 THEN 1 ELSE 0 END) AS dx_any
FROM outcomes o
JOIN analytics_units u ON u.experiment_id = ? AND u.unit_id = o.unit_id AND NOT u.multi AND u.folded_in <> ?
JOIN ab_defs d ON d.metric_key = o.metric_key
WHERE +o.experiment_id = ? AND o.value IS NOT NULL AND `+or+`
GROUP BY o.metric_key, o.unit_id, u.variant_id, d.binomial`, append([]any{id, f.mark, id}, orArgs...)...)
		deltaValues := "LEFT JOIN analytics_unit_values v ON v.experiment_id = ? AND v.unit_id = a.unit_id AND v.metric_key = a.metric_key"
		if f.pg && f.count("ab_delta") <= f.lateralMax {
			deltaValues = `LEFT JOIN LATERAL (SELECT v.y_sum, v.y_any, v.x_sum, v.x_any FROM analytics_unit_values v
  WHERE v.experiment_id = ? AND v.unit_id = a.unit_id AND v.metric_key = a.metric_key) v ON true`
		}
		f.temp("ab_delta2", `SELECT a.metric_key, a.unit_id, a.variant_id, a.binomial,
  COALESCE(v.y_sum, 0) AS oy_sum, COALESCE(v.y_any, 0) AS oy_any, COALESCE(v.x_sum, 0) AS ox_sum, COALESCE(v.x_any, 0) AS ox_any,
  COALESCE(v.y_sum, 0) + a.dy AS ny_sum, CASE WHEN COALESCE(v.y_any, 0) = 1 OR a.dy_any = 1 THEN 1 ELSE 0 END AS ny_any,
  COALESCE(v.x_sum, 0) + a.dx AS nx_sum, CASE WHEN COALESCE(v.x_any, 0) = 1 OR a.dx_any = 1 THEN 1 ELSE 0 END AS nx_any
FROM ab_delta a
`+deltaValues, id)
		oy, ox := "CASE WHEN binomial = 1 THEN oy_any ELSE oy_sum END", "CASE WHEN binomial = 1 THEN ox_any ELSE ox_sum END"
		ny, nx := "CASE WHEN binomial = 1 THEN ny_any ELSE ny_sum END", "CASE WHEN binomial = 1 THEN nx_any ELSE nx_sum END"
		f.exec(insertSums+`SELECT CAST(? AS BIGINT), metric_key, variant_id, 0,
  SUM((`+ny+`) - (`+oy+`)), SUM((`+ny+`) * (`+ny+`) - (`+oy+`) * (`+oy+`)),
  SUM((`+nx+`) - (`+ox+`)), SUM((`+nx+`) * (`+nx+`) - (`+ox+`) * (`+ox+`)),
  SUM((`+nx+`) * (`+ny+`) - (`+ox+`) * (`+oy+`))
FROM ab_delta2 GROUP BY metric_key, variant_id`+addSums, id)
		f.exec(`INSERT INTO analytics_unit_values (experiment_id, metric_key, unit_id, y_sum, y_any, x_sum, x_any)
SELECT CAST(? AS BIGINT), metric_key, unit_id, ny_sum, ny_any, nx_sum, nx_any FROM ab_delta2 WHERE 1 = 1
ON CONFLICT (experiment_id, unit_id, metric_key) DO UPDATE SET
  y_sum = excluded.y_sum, y_any = excluded.y_any, x_sum = excluded.x_sum, x_any = excluded.x_any`, id)
	}

	// Per-request guardrails add up.
	for _, m := range e.Metrics {
		var y, y2 string
		switch m.Type {
		case experiments.MetricErrorRate:
			y = "CASE WHEN e.status >= 500 THEN 1 ELSE 0 END"
			y2 = y
		case experiments.MetricLatency:
			y = "e.latency_us / CAST(1000 AS DOUBLE PRECISION)"
			y2 = "(" + y + ") * (" + y + ")"
		default:
			continue
		}
		f.exec(insertSums+`SELECT CAST(? AS BIGINT), CAST(? AS TEXT), e.variant_id, COUNT(*), SUM(`+y+`), SUM(`+y2+`), 0, 0, 0
FROM exposures e WHERE +e.experiment_id = ? AND e.shadow = `+falseLit+` AND e.status > 0 AND `+er+`
GROUP BY e.variant_id`+addSums, append([]any{id, m.Key, id}, erArgs...)...)
	}
	if f.pg && changed > f.lateralMax {
		// Many rows changed (a first build): fresh statistics keep the
		// plans of the next, small folds on the indexes.
		f.exec("ANALYZE analytics_units")
		f.exec("ANALYZE analytics_unit_values")
	}
	if !f.pg {
		for _, t := range []string{"ab_new", "ab_changed", "ab_defs", "ab_delta", "ab_delta2"} {
			f.exec("DROP TABLE IF EXISTS " + t)
		}
	}
}

// lateralMaxUnits is the most changed units whose outcomes a PostgreSQL
// fold looks up one by one; more are joined in one pass.
const lateralMaxUnits = 50000

// count returns the rows of table (0 after an error).
func (f *folder) count(table string) int64 {
	var n int64
	if f.err == nil {
		f.err = f.tx.Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error
	}
	return n
}

// defs creates ab_defs from metricDefs.
func (f *folder) defs(metrics []experiments.Metric) {
	q, args := metricDefs(metrics)
	f.temp("ab_defs", q, args...)
}

// metricDefs returns a SELECT of the per-unit metrics with their type,
// window and lookback in seconds: columns metric_key, binomial (1 or 0),
// win and lookback.
func metricDefs(metrics []experiments.Metric) (string, []any) {
	var b strings.Builder
	var args []any
	for i, m := range metrics {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT CAST(? AS TEXT) AS metric_key, CAST(? AS INTEGER) AS binomial, CAST(? AS DOUBLE PRECISION) AS win, CAST(? AS DOUBLE PRECISION) AS lookback")
		binomial := 0
		if m.Type == experiments.MetricBinomial {
			binomial = 1
		}
		args = append(args, m.Key, binomial, m.WindowHours*3600, m.LookbackHours*3600)
	}
	return b.String(), args
}

// attribution returns the conditions under which an outcome o (joined to
// metric definitions d) counts after the first exposure (post) or in the
// lookback before it (pre), for the first-exposure column first.
func attribution(pg bool, first string) (post, pre string) {
	if pg {
		return "o.at >= " + first + " AND (d.win = 0 OR o.at < " + first + " + d.win * INTERVAL '1 second')",
			"o.at < " + first + " AND d.lookback > 0 AND o.at >= " + first + " - d.lookback * INTERVAL '1 second'"
	}
	return "o.at >= " + first + " AND (d.win = 0 OR julianday(o.at) < julianday(" + first + ") + d.win / 86400.0)",
		"o.at < " + first + " AND d.lookback > 0 AND julianday(o.at) >= julianday(" + first + ") - d.lookback / 86400.0"
}

// Rollup reads the sufficient statistics of experiment id from its
// rollups (as of the last Fold), with accuracy computed from its labels.
func Rollup(ctx context.Context, db *gorm.DB, id int64, e *experiments.Experiment) (*Aggregates, error) {
	var rows []aggRow
	err := db.WithContext(ctx).Raw(`SELECT metric_key, variant_id, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy
FROM analytics_sums WHERE experiment_id = ?`, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("rollup of experiment %s: %w", e.Key, err)
	}
	a := newAggregates(e.Metrics)
	for _, r := range rows {
		switch {
		case r.MetricKey == "" && r.VariantID == 0:
			a.MultipleExposures = r.N
		case r.MetricKey == "":
			if r.N != 0 {
				a.Units[r.VariantID] = r.N
			}
		case a.Metrics[r.MetricKey] != nil:
			a.Metrics[r.MetricKey][r.VariantID] = stats.Summary{N: r.N, SumY: r.SumY, SumY2: r.SumY2,
				SumX: r.SumX, SumX2: r.SumX2, SumXY: r.SumXY}
		}
	}
	a.countUnits(e.Metrics)
	// Accuracy pairs labels with predictions by request id, from the raw
	// rows (labels are few next to exposures).
	var acc []experiments.Metric
	for _, m := range e.Metrics {
		if m.Type == experiments.MetricAccuracy {
			acc = append(acc, m)
		}
	}
	if len(acc) > 0 {
		full, err := aggregate(ctx, db, id, &experiments.Experiment{Key: e.Key, Metrics: acc}, false)
		if err != nil {
			return nil, err
		}
		for _, m := range acc {
			a.Metrics[m.Key] = full.Metrics[m.Key]
		}
	}
	return a, nil
}
