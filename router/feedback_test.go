package router

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"abgate/migrations/dbtest"
)

func TestFeedback(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newProxyFixture(t, db, nil)
		for i := range 3 {
			resp, body := f.post(t, "/v2/models/classifier/infer", map[string]string{"X-User-ID": fmt.Sprint("fu-", i), "X-Request-ID": fmt.Sprint("fr-", i)}, proxyV2Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
		}
		// fr-0 is found in memory right away; the rest after the flush
		// from the database, through an API without the proxy's memory.
		resp, body := f.post(t, "/v1/feedback", nil, `{"request_id":"fr-0","metric":"conversion","value":1}`)
		if resp.StatusCode != 200 || !strings.Contains(body, `"accepted":1`) {
			t.Fatalf("single: status %d body %s", resp.StatusCode, body)
		}
		f.flush(t)
		r := gin.New()
		NewFeedbackAPI(db, nil, nil).Mount(r)
		f.srv.Config.Handler = r

		resp, body = f.post(t, "/v1/feedback", nil, `[
			{"request_id":"fr-1","metric":"revenue","value":12.5},
			{"request_id":"fr-2","label":1},
			{"request_id":"missing","metric":"conversion","value":1},
			{"request_id":"fr-1","metric":"nope","value":1},
			{"metric":"conversion","value":1},
			{"unit_id":"fu-9","experiment":"demo","metric":"conversion","value":0},
			{"request_id":"fr-1","metric":"latency","value":3},
			"not an object"
		]`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("array: status %d body %s", resp.StatusCode, body)
		}
		var res FeedbackResult
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, r := range res.Rejected {
			idx = append(idx, r.Index)
		}
		if res.Accepted != 3 || fmt.Sprint(idx) != "[2 3 4 6 7]" {
			t.Errorf("accepted %d, rejected %v; want 3 and [2 3 4 6 7] (%s)", res.Accepted, idx, body)
		}

		resp, body = f.post(t, "/v1/feedback", nil, `[{"request_id":"missing","label":1}]`)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"index":0`) || !strings.Contains(body, `"invalid"`) {
			t.Errorf("all rejected: status %d body %s; want 400 naming index 0", resp.StatusCode, body)
		}
		resp, body = f.post(t, "/v1/feedback", nil, `nope`)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("garbage: status %d body %s; want 400", resp.StatusCode, body)
		}

		var rows []struct {
			MetricKey string
			UnitID    string
			RequestID string
			Value     *float64
			Label     *string
		}
		if err := db.Raw("SELECT metric_key, unit_id, request_id, value, label FROM outcomes ORDER BY id").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(rows))
		for i, r := range rows {
			v, l := "-", "-"
			if r.Value != nil {
				v = fmt.Sprint(*r.Value)
			}
			if r.Label != nil {
				l = *r.Label
			}
			got[i] = strings.Join([]string{r.MetricKey, r.UnitID, r.RequestID, v, l}, " ")
		}
		want := []string{
			"conversion fu-0 fr-0 1 -",
			"revenue fu-1 fr-1 12.5 -",
			"accuracy fu-2 fr-2 - 1",
			"conversion fu-9  0 -",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("outcomes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestParseFeedback(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		items   int
		rejects []int
		err     bool
	}{
		{"object value", `{"request_id":"r","metric":"m","value":1}`, 1, nil, false},
		{"object label number", `{"request_id":"r","label":3}`, 1, nil, false},
		{"object label string", `{"unit_id":"u","experiment":"e","label":"cat"}`, 1, nil, false},
		{"array", `[{"request_id":"r","label":3},{"request_id":"r"},{"label":1},{"request_id":"r","metric":"m","value":1,"label":2},{"request_id":"r","value":1},{"request_id":"r","metric":"m","value":1,"extra":1}]`, 1, []int{1, 2, 3, 4, 5}, false},
		{"empty", ``, 0, nil, true},
		{"scalar", `3`, 0, nil, true},
		{"broken", `{"request_id":`, 0, nil, true},
		{"empty array", `[]`, 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, indexes, rejects, err := ParseFeedback([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			var ri []int
			for _, r := range rejects {
				ri = append(ri, r.Index)
			}
			if len(items) != tc.items || len(indexes) != len(items) || fmt.Sprint(ri) != fmt.Sprint(tc.rejects) {
				t.Errorf("items %d (indexes %v), rejects %v; want %d, %v", len(items), indexes, ri, tc.items, tc.rejects)
			}
		})
	}
}

func FuzzParseFeedback(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"r","metric":"m","value":1}`,
		`[{"request_id":"r","label":3},{"unit_id":"u","experiment":"e","label":"x"}]`,
		`[{"request_id":"r","value":1e400}]`, `[1,"a",null]`, `{}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, indexes, rejects, err := ParseFeedback(body)
		if err != nil {
			if items != nil || rejects != nil {
				t.Fatal("items or rejects with an error")
			}
			return
		}
		if len(items) != len(indexes) {
			t.Fatalf("%d items, %d indexes", len(items), len(indexes))
		}
		seen := map[int]bool{}
		for _, i := range indexes {
			seen[i] = true
		}
		for _, r := range rejects {
			if seen[r.Index] || r.Error == "" {
				t.Fatalf("reject %+v also accepted or without error", r)
			}
			seen[r.Index] = true
		}
		for _, it := range items {
			if it.RequestID == "" && (it.UnitID == "" || it.Experiment == "") {
				t.Fatalf("item without a request or unit: %+v", it)
			}
			if (it.Value == nil) == (it.Label == nil) {
				t.Fatalf("item needs exactly one of value and label: %+v", it)
			}
			if it.Value != nil && it.Metric == "" {
				t.Fatalf("value without metric: %+v", it)
			}
		}
	})
}

func TestRecentExposures(t *testing.T) {
	var r recentExposures
	if _, ok := r.get("r-0"); ok {
		t.Fatal("empty log found r-0")
	}
	for i := range recentPerGeneration + 10 {
		r.add(fmt.Sprint("r-", i), int64(i), fmt.Sprint("u-", i))
	}
	r.add("", 1, "u") // ignored
	for _, tc := range []struct {
		req  string
		want recentExposure
		ok   bool
	}{
		{"r-0", recentExposure{0, "u-0"}, true}, // previous generation
		{fmt.Sprint("r-", recentPerGeneration+9), recentExposure{recentPerGeneration + 9, fmt.Sprint("u-", recentPerGeneration+9)}, true},
		{"r-x", recentExposure{}, false},
		{"", recentExposure{}, false},
	} {
		got, ok := r.get(tc.req)
		if got != tc.want || ok != tc.ok {
			t.Errorf("get(%q) = %v, %v; want %v, %v", tc.req, got, ok, tc.want, tc.ok)
		}
	}
	r.add("r-0", 7, "u-again") // the current generation wins
	if got, _ := r.get("r-0"); got != (recentExposure{7, "u-again"}) {
		t.Errorf("get(r-0) after a second add = %v", got)
	}
	for i := range recentPerGeneration {
		r.add(fmt.Sprint("s-", i), 0, "")
	}
	if _, ok := r.get("r-1"); ok {
		t.Error("r-1 outlived two generations")
	}
}
