package analytics

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate/migrations"
	"abgate/migrations/dbtest"
)

// TestSchedulerOneLeader runs two schedulers on one PostgreSQL database:
// one refreshes, the other only loads the snapshots; after the leader stops,
// the other takes over.
func TestSchedulerOneLeader(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	db1 := dbtest.Open(t, dsn)
	if _, err := migrations.Up(t.Context(), db1); err != nil {
		t.Fatal(err)
	}
	db2 := dbtest.Open(t, dsn)
	s1, _ := newFixture(t, db1, binomialDefinition())
	s2 := NewService(db2, s1.store, nil, Options{})

	type tick struct {
		who       int
		leader    bool
		refreshed int
	}
	var mu sync.Mutex
	var ticks []tick
	run := func(ctx context.Context, who int, svc *Service, db *gorm.DB) <-chan struct{} {
		sc := NewScheduler(svc, db, 50*time.Millisecond, nil)
		sc.OnTick = func(leader bool, n int) {
			mu.Lock()
			ticks = append(ticks, tick{who, leader, n})
			mu.Unlock()
		}
		done := make(chan struct{})
		go func() { defer close(done); sc.Run(ctx) }()
		return done
	}
	ctx1, stop1 := context.WithCancel(t.Context())
	done1 := run(ctx1, 1, s1, db1)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ticks) > 0 && ticks[0].leader
	})
	ctx2, stop2 := context.WithCancel(t.Context())
	defer stop2()
	done2 := run(ctx2, 2, s2, db2)
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	for _, tk := range ticks {
		if tk.who == 2 && tk.leader {
			t.Errorf("the second scheduler led while the first held the lock")
		}
		if tk.who == 1 && (!tk.leader || tk.refreshed != 1) {
			t.Errorf("first scheduler tick %+v, want leader refreshing 1 experiment", tk)
		}
	}
	mu.Unlock()
	// The follower exports the leader's snapshot.
	if len(s2.latestReports()) != 1 {
		t.Errorf("follower has %d reports, want 1", len(s2.latestReports()))
	}
	stop1()
	<-done1
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		last := ticks[len(ticks)-1]
		return last.who == 2 && last.leader && last.refreshed == 1
	})
	stop2()
	<-done2
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGauges(t *testing.T) {
	db := dbtest.SQLite(t)
	s, _ := newFixture(t, db, binomialDefinition())
	insertFixture(t, s)
	r, err := s.Refresh(t.Context(), "exp")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGauges(s)
	g.now = func() time.Time { return r.ComputedAt.Add(90 * time.Second) }
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	trt := r.Metrics[0].Variants[1]
	checks := []struct {
		name string
		want float64
	}{
		{"abgate_experiment_snapshot_age_seconds", 90},
		{"abgate_experiment_p_value", *trt.PValue},
		{"abgate_experiment_relative_lift", *trt.RelLift},
		{"abgate_experiment_chance_to_beat_control", *trt.ChanceToBeatControl},
		{"abgate_experiment_srm_p_value", *r.SRM.PValue},
	}
	for _, c := range checks {
		if got := gaugeValue(t, reg, c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

// gaugeValue returns the one sample of the gauge named name.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single sample of %s", name)
	return 0
}
