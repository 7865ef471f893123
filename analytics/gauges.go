package analytics

// This file exports the latest report of every running experiment as
// Prometheus gauges.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gauges is a prometheus.Collector of the latest reports of a Service:
// lift, p-value, chance to beat control per experiment, metric and variant;
// SRM p-value and snapshot age per experiment.
type Gauges struct {
	svc *Service
	now func() time.Time

	relLift, absLift, pValue, seqPValue, chance *prometheus.Desc
	srmPValue, srmFlag, age                     *prometheus.Desc
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
	}
}

// Describe implements prometheus.Collector.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.relLift, g.absLift, g.pValue, g.seqPValue, g.chance, g.srmPValue, g.srmFlag, g.age} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	now := g.now()
	for _, r := range g.svc.latestReports() {
		ch <- prometheus.MustNewConstMetric(g.age, prometheus.GaugeValue, now.Sub(r.ComputedAt).Seconds(), r.Experiment)
		flag := 0.0
		if r.SRM.Flagged {
			flag = 1
		}
		ch <- prometheus.MustNewConstMetric(g.srmFlag, prometheus.GaugeValue, flag, r.Experiment)
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
