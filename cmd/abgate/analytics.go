package main

import (
	"context"
	"fmt"
	"io"

	"abgate/analytics"
	"abgate/experiments"
)

// analyticsCmd runs `abgate analytics`: the refresh scheduler alone (one
// leader among several instances on PostgreSQL), with the report API,
// /healthz and /metrics (the result gauges).
func analyticsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseNoArgs("analytics", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger(stderr)
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB(db, log)
	store := experiments.NewStore(db, log)
	// The API keys are those of the database; --admin-token makes sure its
	// key is one of them (no key is generated here: serve does that).
	if cfg.AdminToken != "" {
		if _, err := store.EnsureAdmin(ctx, cfg.AdminToken); err != nil {
			return fmt.Errorf("admin key: %w", err)
		}
	}
	svc := newAnalytics(cfg, db, store, log)
	reg := newRegistry()
	reg.MustRegister(analytics.NewGauges(svc))

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	sched := analytics.NewScheduler(svc, db, cfg.AnalyticsInterval, log)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		sched.Run(bgCtx)
	}()

	r := newEngine(log)
	mountHealth(r, db)
	mountMetrics(r, reg)
	auth := experiments.NewAPI(store, log).Authenticate
	reports := analytics.NewAPI(svc, log)
	reports.MountImport(r.Group("/api/v1"), auth)
	reports.Mount(r.Group("/api/v1", experiments.LimitBody(cfg.MaxBodyBytes), auth))
	serveErr := listenAndServe(ctx, cfg, r, log)
	stopBackground()
	<-schedDone
	if serveErr != nil {
		return serveErr
	}
	log.Info("shutdown complete")
	return nil
}
