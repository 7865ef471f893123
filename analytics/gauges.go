package analytics

// This file exports the latest report of every running experiment as
// Prometheus gauges.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"abgate/analytics/drift"
)

// Gauges is a prometheus.Collector of the latest reports of a Service:
// lift, p-value, chance to beat control per experiment, metric and variant;
// SRM p-value and snapshot age per experiment; dataset drift, drift share
// and performance drop per variant, PSI, severity and drift flag per
// feature.
type Gauges struct {
	svc *Service
	now func() time.Time

	relLift, absLift, pValue, seqPValue, chance *prometheus.Desc
	srmPValue, srmFlag, age                     *prometheus.Desc
	datasetDrift, driftShare, featurePSI        *prometheus.Desc
	featureSeverity, featureDrifted, perfDrop   *prometheus.Desc
}

// NewGauges returns the gauges of svc; register them on a registry.
func NewGauges(svc *Service) *Gauges {
	vl := []string{"experiment", "metric", "variant"}
	el := []string{"experiment"}
	return &Gauges{svc: svc, now: time.Now,
		relLift:   prometheus.NewDesc("abgate_experiment_relative_lift", "Relative lift of the variant over the control (latest snapshot).", vl, nil),
		absLift:   prometheus.NewDesc("abgate_experiment_absolute_lift", "Absolute lift of the variant over the control (latest snapshot).", vl, nil),
		pValue:    prometheus.NewDesc("abgate_experiment_p_value", "Two-sided p-value of the variant against the control, before correction (latest snapshot).", vl, nil),
		seqPValue: prometheus.NewDesc("abgate_experiment_sequential_p_value", "Always-valid sequential p-value of the variant against the control (latest snapshot).", vl, nil),
		chance:    prometheus.NewDesc("abgate_experiment_chance_to_beat_control", "Bayesian probability that the variant beats the control (latest snapshot).", vl, nil),
		srmPValue: prometheus.NewDesc("abgate_experiment_srm_p_value", "P-value of the sample ratio mismatch test (latest snapshot).", el, nil),
		srmFlag:   prometheus.NewDesc("abgate_experiment_srm_flagged", "1 when the sample ratio mismatch test flags the experiment (p < 0.001).", el, nil),
		age:       prometheus.NewDesc("abgate_experiment_snapshot_age_seconds", "Seconds since the latest results snapshot was computed.", el, nil),

		datasetDrift:    prometheus.NewDesc("abgate_drift_dataset_drift", "1 when the share of drifted features of the variant reaches the dataset drift share (latest drift snapshot).", []string{"experiment", "variant"}, nil),
		driftShare:      prometheus.NewDesc("abgate_drift_share", "Share of the variant's features that drifted (latest drift snapshot).", []string{"experiment", "variant"}, nil),
		featurePSI:      prometheus.NewDesc("abgate_drift_feature_psi", "Population stability index of the feature against the reference (latest drift snapshot).", []string{"experiment", "variant", "feature"}, nil),
		featureSeverity: prometheus.NewDesc("abgate_drift_feature_severity", "Drift severity of the feature: 0 none, 1 low, 2 medium, 3 high (latest drift snapshot).", []string{"experiment", "variant", "feature"}, nil),
		featureDrifted:  prometheus.NewDesc("abgate_drift_feature_drifted", "1 when the feature drifted (latest drift snapshot).", []string{"experiment", "variant", "feature"}, nil),
		perfDrop:        prometheus.NewDesc("abgate_drift_performance_relative_drop", "Relative drop of the variant's accuracy against its baseline (the control; the control's previous window).", []string{"experiment", "variant"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.relLift, g.absLift, g.pValue, g.seqPValue, g.chance, g.srmPValue, g.srmFlag, g.age,
		g.datasetDrift, g.driftShare, g.featurePSI, g.featureSeverity, g.featureDrifted, g.perfDrop} {
		ch <- d
	}
}

// severityLevel numbers the severities for the gauges.
var severityLevel = map[drift.Severity]float64{drift.SeverityNone: 0, drift.SeverityLow: 1, drift.SeverityMedium: 2, drift.SeverityHigh: 3}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	for _, r := range g.svc.latestDriftReports() {
		for _, v := range r.Variants {
			ch <- prometheus.MustNewConstMetric(g.datasetDrift, prometheus.GaugeValue, boolGauge(v.DatasetDrift), r.Experiment, v.Key)
			ch <- prometheus.MustNewConstMetric(g.driftShare, prometheus.GaugeValue, v.DriftShare, r.Experiment, v.Key)
			if v.Performance.RelativeDrop != nil {
				ch <- prometheus.MustNewConstMetric(g.perfDrop, prometheus.GaugeValue, *v.Performance.RelativeDrop, r.Experiment, v.Key)
			}
			for _, f := range v.Features {
				if f.Statistic == nil {
					continue
				}
				if f.PSI != nil {
					ch <- prometheus.MustNewConstMetric(g.featurePSI, prometheus.GaugeValue, *f.PSI, r.Experiment, v.Key, f.Name)
				}
				ch <- prometheus.MustNewConstMetric(g.featureSeverity, prometheus.GaugeValue, severityLevel[f.Severity], r.Experiment, v.Key, f.Name)
				ch <- prometheus.MustNewConstMetric(g.featureDrifted, prometheus.GaugeValue, boolGauge(f.Drifted), r.Experiment, v.Key, f.Name)
			}
		}
	}
	now := g.now()
	for _, r := range g.svc.latestReports() {
		ch <- prometheus.MustNewConstMetric(g.age, prometheus.GaugeValue, now.Sub(r.ComputedAt).Seconds(), r.Experiment)
		ch <- prometheus.MustNewConstMetric(g.srmFlag, prometheus.GaugeValue, boolGauge(r.SRM.Flagged), r.Experiment)
		if r.SRM.PValue != nil {
			ch <- prometheus.MustNewConstMetric(g.srmPValue, prometheus.GaugeValue, *r.SRM.PValue, r.Experiment)
		}
		for _, m := range r.Metrics {
			for _, v := range m.Variants {
				if v.Control {
					continue
				}
				for _, x := range []struct {
					d *prometheus.Desc
					v *float64
				}{{g.relLift, v.RelLift}, {g.absLift, v.AbsLift}, {g.pValue, v.PValue}, {g.seqPValue, v.SequentialPValue}, {g.chance, v.ChanceToBeatControl}} {
					if x.v != nil {
						ch <- prometheus.MustNewConstMetric(x.d, prometheus.GaugeValue, *x.v, r.Experiment, m.Key, v.Key)
					}
				}
			}
		}
	}
}

var _ prometheus.Collector = (*Gauges)(nil)
