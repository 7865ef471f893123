package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/experiments"
	"abgate/migrations"
	"abgate/migrations/dbtest"
	"abgate/router"
)

// migratedSQLite returns the DSN of a new SQLite database, migrated, and
// the database open (closed when the test ends).
func migratedSQLite(t *testing.T) (string, *gorm.DB) {
	t.Helper()
	dsn := dbtest.SQLiteDSN(t)
	db, _, err := migrations.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db, slog.New(slog.DiscardHandler)) })
	if _, err := migrations.Up(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	return dsn, db
}

// TestRouterCommand runs `abgate router` in front of an `abgate inference`
// server registered as the remote backend of two models, with an
// experiment between them, and checks that predictions are routed as
// Explain says and that feedback is stored.
func TestRouterCommand(t *testing.T) {
	inf := startCommand(t, "inference", "/v2/health/ready")
	ctx := t.Context()
	dsn, db := migratedSQLite(t)
	store := experiments.NewStore(db, nil)
	for _, m := range []string{experiments.DemoModelV1, experiments.DemoModelV2} {
		if _, err := store.RegisterModel(ctx, experiments.ModelRegistration{Name: m, Backends: []string{"http://" + inf.addr}}); err != nil {
			t.Fatal(err)
		}
	}
	def := experiments.DemoDefinition()
	def.Key, def.Route = "remote", "remote-classifier"
	if _, err := store.CreateExperiment(ctx, def); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Transition(ctx, def.Key, experiments.ActionStart, nil); err != nil {
		t.Fatal(err)
	}
	e, err := store.Experiment(ctx, def.Key)
	if err != nil {
		t.Fatal(err)
	}

	rt := startCommand(t, "router", "/healthz", "--db", dsn)
	seen := map[string]bool{}
	for i := range 12 {
		unit := fmt.Sprint("ru-", i)
		x, err := router.Explain(e, unit)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := postRouted(t, rt.addr, "/v2/models/remote-classifier/infer", unit, fmt.Sprint("rq-", i),
			`{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [35, 52000, 14, 3]}]}`)
		got := fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("X-Experiment"), " ", resp.Header.Get("X-Variant"), " ", resp.Header.Get("X-Model"))
		want := fmt.Sprint(200, " remote ", x.Variant, " ", x.Model)
		if got != want || !strings.Contains(body, `"model_name":"`+x.Model+`"`) {
			t.Errorf("%s: %s (%s); want %s", unit, got, body, want)
		}
		seen[x.Variant] = true
	}
	if len(seen) != 2 {
		t.Errorf("variants seen %v; want both", seen)
	}
	resp, body := postRouted(t, rt.addr, "/v1/feedback", "", "", `[{"request_id": "rq-1", "metric": "conversion", "value": 1}, {"request_id": "rq-1", "metric": "nope", "value": 1}]`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"accepted":1`) || !strings.Contains(body, `"index":1`) {
		t.Errorf("feedback: %d %s", resp.StatusCode, body)
	}
	rt.stop(t)

	var exposures, outcomes int64
	db.Raw("SELECT count(*) FROM exposures").Scan(&exposures)
	db.Raw("SELECT count(*) FROM outcomes").Scan(&outcomes)
	if exposures != 12 || outcomes != 1 {
		t.Errorf("%d exposures, %d outcomes; want 12 and 1", exposures, outcomes)
	}
}

// postRouted POSTs body to path on addr with a unit and request id (when
// not empty).
func postRouted(t *testing.T, addr, path, unit, requestID, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if unit != "" {
		req.Header.Set("X-User-ID", unit)
	}
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
