package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/analytics"
	"abgate/experiments"
)

const benchDriftUsage = `usage: abgate bench drift [flags]

Measures a drift report on PostgreSQL, in one run:

  drift-report-vs-target      the drift report of an experiment with 3
                              variants, 20 numeric features each, over
                              --observations observations stored as hourly
                              histograms (sent through the observations
                              upload), against issue 6's target of 1 s
  drift-report-vs-histograms  the same report against reading its
                              histograms alone (what the statistics add)

The harness creates a PostgreSQL database of its own next to the one of
--postgres and drops it at the end. It prints
  bench: <name> value=<v> <unit> baseline=<b> ratio=<v/b>

flags:
`

type benchDriftOptions struct {
	Postgres     string
	Observations int
	Rounds       int
}

func benchDriftCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o benchDriftOptions
	fs := flag.NewFlagSet("abgate bench drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchDriftUsage)
		fs.PrintDefaults()
	}
	benchPostgresFlag(fs, &o.Postgres, getenv)
	fs.IntVar(&o.Observations, "observations", 1_000_000, "observations, over the three variants")
	fs.IntVar(&o.Rounds, "rounds", 5, "reports timed (the median counts)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bench drift takes no arguments, got %q", fs.Args())
	case o.Observations < 3 || o.Observations > 100_000_000:
		return fmt.Errorf("--observations must be between 3 and 100000000, got %d", o.Observations)
	case o.Rounds < 1 || o.Rounds > 100:
		return fmt.Errorf("--rounds must be between 1 and 100, got %d", o.Rounds)
	}
	if err := checkBenchPostgres(o.Postgres); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	db, _, cleanup, err := benchDatabase(ctx, o.Postgres, log)
	if err != nil {
		return err
	}
	defer cleanup()
	return benchDrift(ctx, db, o, stdout, log)
}

const benchDriftFeatures = 20

func benchDrift(ctx context.Context, db *gorm.DB, o benchDriftOptions, out io.Writer, log *slog.Logger) error {
	actx := abgate.NewContextWithActor(ctx, abgate.Actor{Name: "bench", Role: experiments.RoleAdmin})
	store := experiments.NewStore(db, log)
	models := []string{"drift-m1", "drift-m2", "drift-m3"}
	for _, m := range models {
		if err := store.EnsureLocalModel(actx, m); err != nil {
			return err
		}
	}
	def := experiments.Definition{Key: "drift-bench", Route: "drift-bench",
		Variants: []experiments.Variant{
			{Key: "v1", Model: models[0], Weight: 1, Control: true},
			{Key: "v2", Model: models[1], Weight: 1},
			{Key: "v3", Model: models[2], Weight: 1},
		},
		Metrics: []experiments.Metric{{Key: "conversion", Type: experiments.MetricBinomial, Role: experiments.RolePrimary}},
	}
	if _, err := store.CreateExperiment(actx, def); err != nil {
		return err
	}
	if _, err := store.Transition(actx, def.Key, experiments.ActionStart, nil); err != nil {
		return err
	}
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-24 * time.Hour)
	svc := analytics.NewService(db, store, log, analytics.Options{Now: func() time.Time { return end }})
	rng := rand.New(rand.NewPCG(11, 12))
	row := func(b *strings.Builder, shift float64, extra string) {
		b.WriteByte('{')
		b.WriteString(extra)
		for f := range benchDriftFeatures {
			if f > 0 || extra != "" {
				b.WriteString(", ")
			}
			s := 0.0
			if f < 5 {
				s = shift // v3 drifts on five features
			}
			fmt.Fprintf(b, `"f%d": %.4f`, f, 10*float64(f)+rng.NormFloat64()+s)
		}
		b.WriteString("}\n")
	}
	for _, m := range models {
		var b strings.Builder
		for range 2000 {
			row(&b, 0, "")
		}
		p, err := analytics.BuildProfile(m, strings.NewReader(b.String()), analytics.ReferenceOptions{})
		if err != nil {
			return err
		}
		if err := svc.SaveReference(ctx, p); err != nil {
			return err
		}
	}
	t0 := time.Now()
	for i, m := range models {
		n := o.Observations / 3
		shift := 0.0
		if i == 2 {
			shift = 0.5
		}
		pr, pw := io.Pipe()
		go func() {
			var b strings.Builder
			for j := range n {
				b.Reset()
				at := start.Add(time.Duration(j) * 24 * time.Hour / time.Duration(n))
				row(&b, shift, fmt.Sprintf(`"variant": "v%d", "at": %q`, i+1, at.Format(time.RFC3339)))
				if _, err := io.WriteString(pw, b.String()); err != nil {
					return
				}
			}
			pw.Close()
		}()
		res, err := svc.Observe(ctx, m, pr)
		pr.Close()
		if err != nil {
			return err
		}
		if res.Accepted != n {
			return fmt.Errorf("observations of %s: %d accepted of %d (%v)", m, res.Accepted, n, res.Rejects)
		}
	}
	upload := time.Since(t0)
	var cells int64
	if err := db.WithContext(ctx).Table("drift_counts").Count(&cells).Error; err != nil {
		return err
	}
	if err := db.WithContext(ctx).Exec("VACUUM ANALYZE drift_counts").Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "# %d observations of %d features for 3 variants over 24 hours, uploaded in %.1f s (%.0f rows/s), stored as %d histogram cells\n",
		o.Observations/3*3, benchDriftFeatures, upload.Seconds(), float64(o.Observations)/upload.Seconds(), cells)

	report := func() (float64, error) {
		t := time.Now()
		r, err := svc.Drift(ctx, def.Key, start, end)
		if err != nil {
			return 0, err
		}
		d := time.Since(t).Seconds()
		// The drifted variant is found drifted on its five features, the
		// others on none.
		for _, v := range r.Variants {
			drifted := 0
			for _, f := range v.Features {
				if f.Drifted {
					drifted++
				}
			}
			if want := map[string]int{"v1": 0, "v2": 0, "v3": 5}[v.Key]; drifted != want {
				return d, fmt.Errorf("variant %s: %d features drifted, want %d", v.Key, drifted, want)
			}
		}
		return d, nil
	}
	read := func() (float64, error) {
		t := time.Now()
		var rows []struct {
			Feature string
			Bin     int
			N       float64
		}
		err := db.WithContext(ctx).Raw(`SELECT d.feature, d.bin, SUM(d.count) AS n FROM drift_counts d
JOIN drift_references r ON r.id = d.reference_id
WHERE r.model IN ? AND d.hour >= ? AND d.hour < ? GROUP BY r.model, d.feature, d.bin`, models, start, end).Scan(&rows).Error
		return time.Since(t).Seconds(), err
	}
	var reports, reads []float64
	for range o.Rounds {
		d, err := report()
		if err != nil {
			return err
		}
		reports = append(reports, d)
		if d, err = read(); err != nil {
			return err
		}
		reads = append(reads, d)
	}
	r, h := median(reports), median(reads)
	fmt.Fprintf(out, "bench: drift-report-vs-target value=%.3f s baseline=1.000 s ratio=%.3f\n", r, r)
	fmt.Fprintf(out, "bench: drift-report-vs-histograms value=%.3f s baseline=%.3f s ratio=%.2f\n", r, h, r/h)
	verdict := "met"
	if r > 1 {
		verdict = "missed"
	}
	fmt.Fprintf(out, "# target (issue 6): drift of 20 features x 3 variants over %d observations <= 1 s: %s\n", o.Observations/3*3, verdict)
	return nil
}
