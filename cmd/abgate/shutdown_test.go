package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/migrations/dbtest"
)

// loadBody is the V2 request of the load: one row of the demo classifier.
const loadBody = `{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [35, 52000, 14, 3]}]}`

// routedLoad is a bounded load of routed predictions on the demo route:
// clients send POST /v2/models/classifier/infer with a distinct unit and
// request id each, until the load's context ends, max requests are sent or
// a client's request fails to get an answer (the server is gone).
type routedLoad struct {
	sent    atomic.Int64
	started time.Time

	mu       sync.Mutex
	answered map[string]bool // request ids of 200 answers with X-Experiment
	statuses map[int]int     // other answers by status
	errs     []error         // requests without an answer
	wg       sync.WaitGroup
}

// startLoad starts clients on addr until ctx ends or max requests are sent.
func startLoad(ctx context.Context, addr, prefix string, clients int, max int64) *routedLoad {
	l := &routedLoad{started: time.Now(), answered: map[string]bool{}, statuses: map[int]int{}}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				n := l.sent.Add(1)
				if n > max {
					return
				}
				id := fmt.Sprintf("%s-%d", prefix, n)
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v2/models/classifier/infer", strings.NewReader(loadBody))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-User-ID", "unit-"+id)
				req.Header.Set("X-Request-ID", id)
				resp, err := client.Do(req)
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, err)
					l.mu.Unlock()
					return
				}
				buf := make([]byte, 4096)
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				l.mu.Lock()
				if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Experiment") == "demo" && resp.Header.Get("X-Request-Id") == id {
					l.answered[id] = true
				} else {
					l.statuses[resp.StatusCode]++
				}
				l.mu.Unlock()
			}
		}()
	}
	go func() {
		l.wg.Wait()
		tr.CloseIdleConnections()
	}()
	return l
}

// wait waits for every client to stop.
func (l *routedLoad) wait() { l.wg.Wait() }

// count returns the number of answered requests.
func (l *routedLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.answered)
}

// checkExposures compares the primary (non-shadow) exposure rows of the
// demo experiment in db with the requests answered.
func (l *routedLoad) checkExposures(t *testing.T, db *gorm.DB) {
	t.Helper()
	var ids []string
	if err := db.Raw(`SELECT x.request_id FROM exposures x JOIN experiments e ON e.id = x.experiment_id
		WHERE e.key = ? AND x.shadow = ?`, "demo", false).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, want := len(ids), len(l.answered); got != want {
		t.Errorf("%d exposure rows; want %d, one per answered request", got, want)
	}
	rows := map[string]int{}
	for _, id := range ids {
		rows[id]++
	}
	var missing, extra []string
	for id := range l.answered {
		if rows[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range rows {
		if !l.answered[id] || n > 1 {
			extra = append(extra, fmt.Sprintf("%s×%d", id, n))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("%d answered requests have no exposure row, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
	if len(extra) > 0 {
		t.Errorf("%d exposure rows are not of one answered request, e.g. %q", len(extra), extra[:min(5, len(extra))])
	}
}

// TestShutdownLosesNoExposure sends SIGTERM to `abgate serve --demo` in
// the middle of a load of routed predictions and checks that every answer
// with an experiment has its exposure row once the process has exited 0,
// on SQLite and on PostgreSQL.
func TestShutdownLosesNoExposure(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var args []string
			dsn := ""
			if dialect == "postgres" {
				dsn = dbtest.PostgresDSN(t)
				args = append(args, "--db", dsn)
			}
			srv := startServer(t, args...)
			if dsn == "" {
				dsn = "sqlite:" + filepath.Join(srv.cmd.Dir, "data", "abgate.db")
			}

			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			const max = 3000
			load := startLoad(ctx, srv.addr, "sd", 8, max)
			// SIGTERM in the middle: after half the requests or half the time.
			for load.sent.Load() < max/2 && time.Since(load.started) < 1500*time.Millisecond {
				time.Sleep(5 * time.Millisecond)
			}
			sentAtSignal := load.sent.Load()
			srv.stop(t)
			load.wait()
			answered := load.count()
			t.Logf("%d requests sent at SIGTERM, %d answered with an experiment, other answers %v, %d clients stopped by errors",
				sentAtSignal, answered, load.statuses, len(load.errs))
			if answered == 0 {
				t.Fatal("no request was answered")
			}
			if len(load.statuses) > 0 {
				t.Errorf("answers other than 200 with X-Experiment: %v", load.statuses)
			}
			load.checkExposures(t, dbtest.Open(t, dsn))
		})
	}
}
