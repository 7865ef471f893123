package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/analytics"
	"abgate/experiments"
)

const benchAnalyticsUsage = `usage: abgate bench analytics [flags]

Measures a results refresh on PostgreSQL, in one run:

  analytics-refresh-vs-count   one report refresh of an experiment with
                               3 variants x 3 metrics (binomial, continuous
                               with a CUPED lookback, continuous) over
                               --exposures exposures and --outcomes outcomes
                               vs one SELECT variant_id, count(*) ... GROUP BY
                               over the same exposures

The harness creates a PostgreSQL database of its own next to the one of
--postgres, fills it with generate_series (units hashed to variants, times
spread over four weeks), runs VACUUM ANALYZE, then alternates the two
statements over --rounds rounds and compares the medians. It prints
  bench: <name> value=<v> <unit> baseline=<b> ratio=<v/b>
followed by the target of issue 5, met or missed, and drops the database.

flags:
`

type benchAnalyticsOptions struct {
	Postgres            string
	Exposures, Outcomes int
	Units               int
	Rounds              int
	// Verify compares the rollups with the full computation at the end.
	Verify bool
}

func parseBenchAnalyticsFlags(args []string, getenv func(string) string, stderr io.Writer) (benchAnalyticsOptions, error) {
	var o benchAnalyticsOptions
	fs := flag.NewFlagSet("abgate bench analytics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchAnalyticsUsage)
		fs.PrintDefaults()
	}
	benchPostgresFlag(fs, &o.Postgres, getenv)
	fs.IntVar(&o.Exposures, "exposures", 10_000_000, "exposure rows")
	fs.IntVar(&o.Outcomes, "outcomes", 10_000_000, "outcome rows, spread over the three metrics")
	fs.IntVar(&o.Units, "units", 2_000_000, "distinct units")
	fs.IntVar(&o.Rounds, "rounds", 3, "rounds per size of new data, each adding rows and timing both statements (alternating which goes first)")
	fs.BoolVar(&o.Verify, "verify", true, "at the end, check the rollups against the computation from all raw rows")
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench analytics takes no arguments, got %q", fs.Args())
	}
	switch {
	case o.Exposures < 1000 || o.Exposures > 100_000_000:
		return o, fmt.Errorf("--exposures must be between 1000 and 100000000, got %d", o.Exposures)
	case o.Outcomes < 0 || o.Outcomes > 100_000_000:
		return o, fmt.Errorf("--outcomes must be between 0 and 100000000, got %d", o.Outcomes)
	case o.Units < 10 || o.Units > o.Exposures:
		return o, fmt.Errorf("--units must be between 10 and --exposures, got %d", o.Units)
	case o.Rounds < 1 || o.Rounds > 20:
		return o, fmt.Errorf("--rounds must be between 1 and 20, got %d", o.Rounds)
	}
	if err := checkBenchPostgres(o.Postgres); err != nil {
		return o, err
	}
	return o, nil
}

func benchAnalyticsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseBenchAnalyticsFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, _, cleanup, err := benchDatabase(ctx, o.Postgres, log)
	if err != nil {
		return err
	}
	defer cleanup()
	return benchAnalytics(ctx, db, o, stdout, log)
}

// benchAnalytics fills db and measures the refresh against the count.
func benchAnalytics(ctx context.Context, db *gorm.DB, o benchAnalyticsOptions, out io.Writer, log *slog.Logger) error {
	actx := abgate.NewContextWithActor(ctx, abgate.Actor{Name: "bench", Role: experiments.RoleAdmin})
	store := experiments.NewStore(db, log)
	for _, m := range []string{"bench-m1", "bench-m2", "bench-m3"} {
		if err := store.EnsureLocalModel(actx, m); err != nil {
			return err
		}
	}
	def := experiments.Definition{
		Key: "bench", Route: "bench",
		Variants: []experiments.Variant{
			{Key: "v1", Model: "bench-m1", Weight: 1, Control: true},
			{Key: "v2", Model: "bench-m2", Weight: 1},
			{Key: "v3", Model: "bench-m3", Weight: 1},
		},
		Metrics: []experiments.Metric{
			{Key: "conversion", Type: experiments.MetricBinomial, Role: experiments.RolePrimary},
			{Key: "revenue", Type: experiments.MetricContinuous, Role: experiments.RoleSecondary, LookbackHours: 168},
			{Key: "engagement", Type: experiments.MetricContinuous, Role: experiments.RoleSecondary},
		},
	}
	if _, err := store.CreateExperiment(actx, def); err != nil {
		return err
	}
	if _, err := store.Transition(actx, "bench", experiments.ActionStart, nil); err != nil {
		return err
	}
	var ids []struct {
		ID       int64
		Variants string
	}
	if err := db.Raw(`SELECT e.id, string_agg(v.id::text, ',' ORDER BY v.position) AS variants
		FROM experiments e JOIN variants v ON v.experiment_id = e.id WHERE e.key = 'bench' GROUP BY e.id`).Scan(&ids).Error; err != nil || len(ids) != 1 {
		return fmt.Errorf("bench experiment ids: %v", err)
	}
	expID := ids[0].ID
	fmt.Fprintf(out, "# %d exposures, %d outcomes, %d units, 3 variants x 3 metrics, PostgreSQL\n", o.Exposures, o.Outcomes, o.Units)

	start := time.Now()
	variants := ids[0].Variants
	if err := benchGenerate(ctx, db, expID, variants, 0, o.Exposures, 0, o.Outcomes, o.Units, 0); err != nil {
		return err
	}
	for _, table := range []string{"exposures", "outcomes"} {
		if err := db.WithContext(ctx).Exec("VACUUM ANALYZE " + table).Error; err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "# data generated in %.0f s\n", time.Since(start).Seconds())

	svc := analytics.NewService(db, store, log, analytics.Options{})
	count := func() (float64, error) {
		var rows []struct {
			VariantID int64
			N         int64
		}
		t := time.Now()
		err := db.WithContext(ctx).Raw("SELECT variant_id, count(*) AS n FROM exposures WHERE experiment_id = ? GROUP BY variant_id", expID).Scan(&rows).Error
		return time.Since(t).Seconds(), err
	}
	refresh := func() (float64, error) {
		t := time.Now()
		_, err := svc.Refresh(ctx, "bench")
		return time.Since(t).Seconds(), err
	}
	// The first refresh builds the rollups from every row.
	build, err := refresh()
	if err != nil {
		return err
	}
	c0, err := count()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: analytics-first-refresh-vs-count value=%.3f s baseline=%.3f s ratio=%.2f\n", build, c0, build/c0)

	// Then each round adds the traffic of the next hour (delta exposures
	// and outcomes, a share of them from new units) and times a refresh and
	// the count, alternating which goes first; for three sizes of delta.
	e, oc, batch := o.Exposures, o.Outcomes, 0
	for _, share := range []float64{0.0001, 0.001, 0.01} {
		delta := max(1, int(float64(o.Exposures)*share))
		var counts, refreshes []float64
		for round := range o.Rounds {
			batch++
			if err := benchGenerate(ctx, db, expID, variants, e, e+delta, oc, oc+delta, o.Units+o.Units/50, batch); err != nil {
				return err
			}
			e, oc = e+delta, oc+delta
			order := []bool{false, true}
			if round%2 == 1 {
				order = []bool{true, false}
			}
			for _, isRefresh := range order {
				if isRefresh {
					d, err := refresh()
					if err != nil {
						return err
					}
					refreshes = append(refreshes, d)
				} else {
					d, err := count()
					if err != nil {
						return err
					}
					counts = append(counts, d)
				}
			}
		}
		c, r := median(counts), median(refreshes)
		name := fmt.Sprintf("analytics-refresh-%gpct-new-vs-count", share*100)
		fmt.Fprintf(out, "bench: %s value=%.3f s baseline=%.3f s ratio=%.2f\n", name, r, c, r/c)
		if share == 0.001 {
			verdict := "met"
			if r/c > 2 {
				verdict = "missed"
			}
			fmt.Fprintf(out, "# target (issue 5): a refresh <= 2x the count, with %d new exposures and outcomes since the last one: %s\n", delta, verdict)
		}
	}
	fmt.Fprintf(out, "# each refresh line: median of %d rounds, each adding that share of the exposures (and as many outcomes) first\n", o.Rounds)

	if o.Verify {
		t := time.Now()
		ex, err := store.Experiment(ctx, "bench")
		if err != nil {
			return err
		}
		full, err := analytics.Aggregate(ctx, db, expID, ex)
		if err != nil {
			return err
		}
		got, err := analytics.Rollup(ctx, db, expID, ex)
		if err != nil {
			return err
		}
		if err := analytics.SameAggregates(got, full, 1e-9); err != nil {
			return fmt.Errorf("the refreshed rollups differ from the computation from raw rows: %w", err)
		}
		fmt.Fprintf(out, "# verified: the rollups equal the one-statement computation from all raw rows (%.0f s)\n", time.Since(t).Seconds())
	}
	return nil
}

// benchGenerate inserts exposures [e0, e1) and outcomes [o0, o1) of
// experiment expID: units hashed to a variant (assignment is a function of
// the unit) among units units. Batch 0 spreads its times over four weeks
// (outcomes from a week before); batch k > 0 is the traffic of the k-th
// hour after them, as a refresh finds it.
func benchGenerate(ctx context.Context, db *gorm.DB, expID int64, variants string, e0, e1, o0, o1, units, batch int) error {
	span, offset := 2419200, 0 // seconds
	outSpan, outOffset := 3024000, -7*86400
	if batch > 0 {
		span, offset = 3600, 2419200+(batch-1)*3600
		outSpan, outOffset = span, offset
	}
	const chunk = 1_000_000
	for lo := e0; lo < e1; lo += chunk {
		hi := min(lo+chunk, e1) - 1
		err := db.WithContext(ctx).Exec(`INSERT INTO exposures (experiment_id, variant_id, unit_id, request_id, at, latency_us, status)
SELECT ?, (string_to_array(?, ','))[1 + (hashint4(u) & 2147483647) % 3]::bigint, 'u' || u, '',
       date_trunc('month', now()) + (? + (hashint4(i) & 2147483647) % ?) * interval '1 second', 1000 + i % 5000, 200
FROM generate_series(?::int, ?::int) AS i, LATERAL (SELECT (hashint4(i + 11) & 2147483647) % ? AS u) x`, expID, variants, offset, span, lo, hi, units).Error
		if err != nil {
			return fmt.Errorf("generate exposures: %w", err)
		}
	}
	for lo := o0; lo < o1; lo += chunk {
		hi := min(lo+chunk, o1) - 1
		err := db.WithContext(ctx).Exec(`INSERT INTO outcomes (experiment_id, metric_key, unit_id, value, at)
SELECT ?, (ARRAY['conversion','revenue','engagement'])[1 + i % 3], 'u' || ((hashint4(i + 7) & 2147483647) % ?),
       CASE i % 3 WHEN 0 THEN 1 ELSE (hashint4(i) & 1023) / 10.0 END,
       date_trunc('month', now()) + (? + (hashint4(i + 3) & 2147483647) % ?) * interval '1 second'
FROM generate_series(?::int, ?::int) AS i`, expID, units, outOffset, outSpan, lo, hi).Error
		if err != nil {
			return fmt.Errorf("generate outcomes: %w", err)
		}
	}
	return nil
}

// median returns the median of xs (xs is sorted in place).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
