package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"abgate"
	"abgate/experiments"
)

// TestAnalyticsCommand runs `abgate analytics` on a database with a running
// experiment: events imported through its API are in the results its
// scheduler computes, and in its gauges.
func TestAnalyticsCommand(t *testing.T) {
	ctx := abgate.NewContextWithActor(t.Context(), abgate.Actor{Name: "test", Role: experiments.RoleAdmin})
	dsn, db := migratedSQLite(t)
	store := experiments.NewStore(db, nil)
	if err := store.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}

	an := startCommand(t, "analytics", "/healthz", "--db", dsn, "--analytics-interval", "1s")
	call := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+an.addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer dev-admin-token")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := call("POST", "/api/v1/experiments/demo/events", "application/x-ndjson",
		`{"type":"exposure","unit_id":"a","variant":"v1"}
{"type":"exposure","unit_id":"b","variant":"v2"}
{"type":"outcome","unit_id":"b","metric":"conversion","value":1}
`)
	if status != 200 || !strings.Contains(body, `"accepted":3`) {
		t.Fatalf("import: %d %s", status, body)
	}
	// The scheduler refreshes every second.
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body = call("GET", "/api/v1/experiments/demo/results", "", "")
		if status == 200 && strings.Contains(body, `"key":"v2","control":false,"n":1,"mean":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results never showed the import: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get("http://" + an.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `abgate_experiment_snapshot_age_seconds{experiment="demo"}`) {
		t.Errorf("/metrics has no snapshot age of demo")
	}
	if status, _ := call("GET", "/api/v1/experiments/nope/results", "", ""); status != 404 {
		t.Errorf("results of an unknown experiment: %d, want 404", status)
	}
	an.stop(t)
}
