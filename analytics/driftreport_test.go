package analytics

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate"
	"abgate/analytics/drift"
	"abgate/migrations/dbtest"
)

func TestBuildProfile(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		country := []string{"de", "fr", "it"}[i%3]
		fmt.Fprintf(&b, `{"age": %d, "country": %q, "clicks": %d, "premium": %v, "prediction": %d}`+"\n", 18+i%50, country, i%3, i%2 == 0, i%10)
	}
	p, err := BuildProfile("m1", strings.NewReader(b.String()), ReferenceOptions{Bins: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		typ    string
		method drift.Method
		bins   int
	}{
		"age":        {Numeric, drift.MethodKS, 4},                 // 50 distinct values, 200 rows: KS
		"country":    {Categorical, drift.MethodChiSquare, 4},      // 3 categories + unseen
		"clicks":     {Categorical, drift.MethodChiSquare, 4},      // numeric with 3 distinct values
		"premium":    {Categorical, drift.MethodChiSquare, 3},      // booleans
		"prediction": {Categorical, drift.MethodChiSquare, 10 + 1}, // predicted classes are categories
	}
	if p.Rows != 200 || len(p.Features) != len(want) {
		t.Fatalf("profile has %d rows and %d features", p.Rows, len(p.Features))
	}
	for _, f := range p.Features {
		w := want[f.Name]
		if f.Type != w.typ || f.Method != w.method || len(f.Counts) != w.bins {
			t.Errorf("%s: type %s, method %s, %d bins; want %s, %s, %d", f.Name, f.Type, f.Method, len(f.Counts), w.typ, w.method, w.bins)
		}
		var n float64
		for _, c := range f.Counts {
			n += c
		}
		if n != 200 {
			t.Errorf("%s: counts add to %v, want 200", f.Name, n)
		}
	}
	// Quartiles of 18..67 (four times each): the edges are the
	// quantiles at 1/4, 2/4 and 3/4.
	age := p.feature("age")
	if len(age.Edges) != 3 || age.Summary == nil || age.Summary.Min != 18 || age.Summary.Max != 67 {
		t.Errorf("age edges %v, summary %+v", age.Edges, age.Summary)
	}
}

func TestBuildProfileBadInput(t *testing.T) {
	tests := []struct {
		name, body string
		opts       ReferenceOptions
		field, msg string
	}{
		{"empty", "", ReferenceOptions{}, "", "empty"},
		{"blank lines", "\n\n", ReferenceOptions{}, "", "empty"},
		{"not json", "{\"a\": 1}\nnope\n", ReferenceOptions{}, "", "line 2"},
		{"array value", `{"a": [1, 2]}`, ReferenceOptions{}, "", "must be a number, string, boolean or null"},
		{"all null", "{\"a\": null, \"b\": 1}\n{\"a\": null, \"b\": 2}\n", ReferenceOptions{}, "a", "null in every row"},
		{"numeric override on strings", `{"a": "x"}`, ReferenceOptions{Types: map[string]string{"a": Numeric}}, "a", "declared numeric"},
		{"unknown type", `{"a": 1}`, ReferenceOptions{Types: map[string]string{"a": "date"}}, "types", "numeric or categorical"},
		{"override of a missing feature", `{"a": 1}`, ReferenceOptions{Types: map[string]string{"b": Numeric}}, "types", `"b"`},
		{"one bin", `{"a": 1}`, ReferenceOptions{Bins: 1}, "bins", "between 2 and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildProfile("m1", strings.NewReader(tt.body), tt.opts)
			if abgate.ErrorCode(err) != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), tt.msg) {
				t.Fatalf("BuildProfile error = %v, want EINVALID mentioning %q", err, tt.msg)
			}
			if tt.field != "" && abgate.ErrorField(err) != tt.field {
				t.Errorf("field = %q, want %q", abgate.ErrorField(err), tt.field)
			}
		})
	}
}

func FuzzParseReferenceRow(f *testing.F) {
	f.Add([]byte(`{"age": 35, "country": "de", "premium": true, "x": null}`))
	f.Add([]byte(`{"a": [1]}`))
	f.Add([]byte(`{"": 1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		row, err := ParseReferenceRow(line)
		if err != nil {
			if abgate.ErrorCode(err) != abgate.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		for name, v := range row {
			if name == "" {
				t.Fatal("accepted an empty feature name")
			}
			switch v.(type) {
			case []any, map[string]any:
				t.Fatalf("accepted a nested value for %q", name)
			}
			// Every accepted value bins on a numeric and a categorical
			// profile without a panic.
			num := &FeatureProfile{Name: name, Type: Numeric, Edges: []float64{0, 1}}
			cat := &FeatureProfile{Name: name, Type: Categorical, Categories: []string{"a"}}
			_, _ = num.binOf(v)
			_, _ = cat.binOf(v)
		}
	})
}

// TestDriftReport uploads a reference for the models of both variants,
// observations that keep one feature's distribution and shift another's
// for v2, and reads the drift report.
func TestDriftReport(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		srv, svc := newTestServer(t, db, fixtureDefinition())
		now := time.Date(2026, 1, 10, 12, 30, 0, 0, time.UTC)
		svc.opts.Now = func() time.Time { return now }
		rng := rand.New(rand.NewPCG(5, 6))
		var ref strings.Builder
		for range 2000 {
			fmt.Fprintf(&ref, `{"age": %.3f, "income": %.1f, "country": %q, "prediction": %d}`+"\n",
				30+10*rng.NormFloat64(), 50000+1000*rng.NormFloat64(), []string{"de", "fr"}[rng.IntN(2)], rng.IntN(3))
		}
		for _, m := range []string{"m1", "m2"} {
			resp, body := call(t, "POST", srv.URL+"/api/v1/models/"+m+"/reference", "application/x-ndjson", ref.String())
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("reference of %s: %d %s", m, resp.StatusCode, body)
			}
		}
		// Observations: v1 like the reference; v2 with age shifted by two
		// standard deviations; both with a feature the reference lacks; v1
		// with labels, 3 of 4 right.
		var obs strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&obs, `{"variant": "a", "age": %.3f, "income": %.1f, "country": %q, "prediction": %d, "label": %d, "at": "2026-01-10T10:15:00Z", "new_thing": 1}`+"\n",
				30+10*rng.NormFloat64(), 50000+1000*rng.NormFloat64(), []string{"de", "fr"}[rng.IntN(2)], i%3, map[bool]int{true: i % 3, false: (i + 1) % 3}[i%4 != 0])
		}
		resp, body := call(t, "POST", srv.URL+"/api/v1/models/m1/observations", "application/x-ndjson", obs.String())
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"accepted":1000`) || !strings.Contains(string(body), `"new_thing"`) {
			t.Fatalf("observations of m1: %d %s", resp.StatusCode, body)
		}
		obs.Reset()
		for range 1000 {
			fmt.Fprintf(&obs, `{"variant": "b", "age": %.3f, "income": %.1f, "country": %q, "prediction": %d, "at": "2026-01-10T11:59:59Z"}`+"\n",
				50+10*rng.NormFloat64(), 50000+1000*rng.NormFloat64(), []string{"de", "fr"}[rng.IntN(2)], rng.IntN(3))
		}
		obs.WriteString(`{"variant": "b", "age": "old"}` + "\n")            // line 1001: wrong type
		obs.WriteString(`{"variant": "b", "age": 40, "at": "noon"}` + "\n") // line 1002: bad time
		resp, body = call(t, "POST", srv.URL+"/api/v1/models/m2/observations", "application/x-ndjson", obs.String())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("observations of m2: %d %s", resp.StatusCode, body)
		}
		var or ObserveResult
		if err := json.Unmarshal(body, &or); err != nil {
			t.Fatal(err)
		}
		if or.Accepted != 1000 || or.Rejected != 2 || or.Rejects[0].Line != 1001 || !strings.Contains(or.Rejects[0].Error, `"age" is numeric`) || or.Rejects[1].Line != 1002 {
			t.Errorf("observations of m2 = %+v", or)
		}

		resp, body = call(t, "GET", srv.URL+"/api/v1/experiments/exp/drift?from=2026-01-10T00:00:00Z&to=2026-01-10T12:00:00Z", "", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("drift: %d %s", resp.StatusCode, body)
		}
		var r DriftReport
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Variants) != 2 {
			t.Fatalf("drift variants = %+v", r.Variants)
		}
		byName := func(vd VariantDrift) map[string]FeatureDrift {
			out := map[string]FeatureDrift{}
			for _, f := range vd.Features {
				out[f.Name] = f
			}
			return out
		}
		a, b := byName(r.Variants[0]), byName(r.Variants[1])
		// 2000 reference rows: the numeric features use PSI (threshold
		// 0.1), country Jensen-Shannon. A shift by two standard deviations
		// is far past PSI 0.25, and the normed Wasserstein distance is
		// about 2.
		if f := b["age"]; !f.Drifted || f.Method != "psi" || f.Statistic == nil || *f.Statistic < 0.25 || f.Severity != drift.SeverityHigh ||
			f.Observations != 1000 || f.Wasserstein == nil || math.Abs(*f.Wasserstein-2) > 0.3 {
			t.Errorf("v2 age = %+v, want drifted by about 2 standard deviations", f)
		}
		for _, name := range []string{"income", "country"} {
			if f := b[name]; f.Drifted || f.Statistic == nil {
				t.Errorf("v2 %s = %+v, want no drift", name, f)
			}
		}
		if f := a["age"]; f.Drifted || f.PSI == nil || *f.PSI > 0.1 || f.KS == nil {
			t.Errorf("v1 age = %+v, want no drift", f)
		}
		if f := a["new_thing"]; !f.NewFeature || f.Observations != 1000 {
			t.Errorf("v1 new_thing = %+v, want a new feature seen 1000 times", f)
		}
		if r.Variants[0].DatasetDrift || r.Variants[1].DatasetDrift || math.Abs(r.Variants[1].DriftShare-1.0/3) > 1e-12 {
			t.Errorf("dataset drift: v1 %v, v2 %v share %v; want none (1 of 3 features in v2)",
				r.Variants[0].DatasetDrift, r.Variants[1].DatasetDrift, r.Variants[1].DriftShare)
		}
		if r.Variants[1].PredictionDrift == nil || r.Variants[1].PredictionDrift.Drifted {
			t.Errorf("v2 prediction drift = %+v, want computed, no drift", r.Variants[1].PredictionDrift)
		}
		// Labels: 750 of 1000 right.
		if p := r.Variants[0].Performance; p.Labelled != 1000 || p.Accuracy == nil || *p.Accuracy != 0.75 {
			t.Errorf("v1 performance = %+v, want accuracy 0.75 over 1000 labels", p)
		}
		// Outside the window: nothing observed.
		resp, body = call(t, "GET", srv.URL+"/api/v1/experiments/exp/drift?from=2026-01-09T00:00:00Z&to=2026-01-10T00:00:00Z", "", "")
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("drift: %d %s", resp.StatusCode, body)
		}
		if f := byName(r.Variants[1])["age"]; f.Observations != 0 || f.Drifted || f.Statistic != nil {
			t.Errorf("v2 age before the observations = %+v, want nothing observed", f)
		}

		// A refresh stores the last day's drift: the summary counts it and
		// the gauges export it.
		resp, body = call(t, "POST", srv.URL+"/api/v1/experiments/exp/refresh", "", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %s", resp.StatusCode, body)
		}
		resp, body = call(t, "GET", srv.URL+"/api/v1/experiments/exp/drift/summary?days=1", "", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("summary: %d %s", resp.StatusCode, body)
		}
		var sum DriftSummary
		if err := json.Unmarshal(body, &sum); err != nil {
			t.Fatal(err)
		}
		wantData := []SeverityCount{{Variant: "b", Feature: "age", Severity: drift.SeverityHigh, Count: 1}}
		if sum.Snapshots != 1 || len(sum.History) != 2 || fmt.Sprint(sum.Data) != fmt.Sprint(wantData) {
			t.Errorf("summary = %+v, want one snapshot with b/age high", sum)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewGauges(svc))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		drifted := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "abgate_drift_feature_drifted" {
				continue
			}
			for _, m := range mf.Metric {
				labels := map[string]string{}
				for _, l := range m.Label {
					labels[l.GetName()] = l.GetValue()
				}
				drifted[labels["variant"]+"/"+labels["feature"]] = m.GetGauge().GetValue()
			}
		}
		if drifted["b/age"] != 1 || drifted["a/age"] != 0 || drifted["b/income"] != 0 {
			t.Errorf("abgate_drift_feature_drifted = %v, want 1 for b/age only", drifted)
		}
	})
}

func TestDriftBadInput(t *testing.T) {
	srv, _ := newTestServer(t, dbtest.SQLite(t), fixtureDefinition())
	resp, body := call(t, "POST", srv.URL+"/api/v1/models/m1/reference", "application/x-ndjson", `{"age": 1}`+"\n"+`{"age": 2}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("reference: %d %s", resp.StatusCode, body)
	}
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		msg                                   string
	}{
		{"reference of an unknown model", "POST", "/models/nope/reference", "application/x-ndjson", `{"a": 1}`, 404, `nope`},
		{"empty reference", "POST", "/models/m1/reference", "application/x-ndjson", ``, 400, "empty"},
		{"reference content type", "POST", "/models/m1/reference", "application/json", `{"a": 1}`, 415, "application/x-ndjson"},
		{"unknown method", "POST", "/models/m1/reference?methods=a:magic", "application/x-ndjson", `{"a": 1}`, 400, "magic"},
		{"observations without reference", "POST", "/models/m2/observations", "application/x-ndjson", `{"a": 1}`, 404, "no reference"},
		{"drift of an unknown experiment", "GET", "/experiments/nope/drift", "", "", 404, `nope`},
		{"drift with a bad time", "GET", "/experiments/exp/drift?from=yesterday", "", "", 400, "RFC 3339"},
		{"summary of 0 days", "GET", "/experiments/exp/drift/summary?days=0", "", "", 400, "days"},
		{"summary of many days", "GET", "/experiments/exp/drift/summary?days=1000", "", "", 400, "days"},
		{"drift window reversed", "GET", "/experiments/exp/drift?from=2026-01-10T00:00:00Z&to=2026-01-09T00:00:00Z", "", "", 400, "before"},
		{"reference of a model without one", "GET", "/models/m2/reference", "", "", 404, "no reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, tt.method, srv.URL+"/api/v1"+tt.path, tt.contentType, tt.body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.msg) {
				t.Errorf("status %d %s; want %d mentioning %q", resp.StatusCode, body, tt.status, tt.msg)
			}
		})
	}
}

// TestReferenceFromTraffic makes a reference from a window of observations
// and finds no drift in more of the same.
func TestReferenceFromTraffic(t *testing.T) {
	srv, svc := newTestServer(t, dbtest.SQLite(t), fixtureDefinition())
	now := time.Date(2026, 1, 10, 12, 30, 0, 0, time.UTC)
	svc.opts.Now = func() time.Time { return now }
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, `{"age": %d, "country": %q}`+"\n", 20+i%40, []string{"de", "fr"}[i%2])
	}
	if resp, body := call(t, "POST", srv.URL+"/api/v1/models/m1/reference", "application/x-ndjson", b.String()); resp.StatusCode != 201 {
		t.Fatalf("reference: %d %s", resp.StatusCode, body)
	}
	// Live traffic is older: ages 50 to 89.
	observe := func(at string) {
		var o strings.Builder
		for i := range 400 {
			fmt.Fprintf(&o, `{"variant": "a", "age": %d, "country": %q, "at": %q}`+"\n", 50+i%40, []string{"de", "fr"}[i%2], at)
		}
		if resp, body := call(t, "POST", srv.URL+"/api/v1/models/m1/observations", "application/x-ndjson", o.String()); resp.StatusCode != 200 {
			t.Fatalf("observations: %d %s", resp.StatusCode, body)
		}
	}
	observe("2026-01-09T10:00:00Z")
	resp, body := call(t, "POST", srv.URL+"/api/v1/models/m1/reference/from-traffic?from=2026-01-09T00:00:00Z&to=2026-01-10T00:00:00Z", "", "")
	if resp.StatusCode != 201 {
		t.Fatalf("from traffic: %d %s", resp.StatusCode, body)
	}
	var p Profile
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	// Same bins as before, the window's counts: ages 50 to 89 fill the
	// top bins (the last one is open-ended), and the estimated mean moves
	// up from the old reference's 39.5.
	age := p.feature("age")
	var n float64
	if age != nil {
		for _, c := range age.Counts {
			n += c
		}
	}
	if p.Rows != 400 || age == nil || n != 400 || age.Counts[len(age.Counts)-1] != 340 || age.Summary == nil || age.Summary.Mean < 50 {
		t.Fatalf("new reference = %+v", p)
	}
	observe("2026-01-10T10:00:00Z")
	resp, body = call(t, "GET", srv.URL+"/api/v1/experiments/exp/drift?from=2026-01-10T00:00:00Z&to=2026-01-10T12:00:00Z", "", "")
	var r DriftReport
	if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("drift: %d %s", resp.StatusCode, body)
	}
	for _, f := range r.Variants[0].Features {
		if f.Observations != 400 || f.Drifted {
			t.Errorf("against the traffic reference, %s = %+v, want 400 observations, no drift", f.Name, f)
		}
	}
	// An empty window is refused.
	resp, body = call(t, "POST", srv.URL+"/api/v1/models/m1/reference/from-traffic?from=2025-01-09T00:00:00Z&to=2025-01-10T00:00:00Z", "", "")
	if resp.StatusCode != 400 || !strings.Contains(string(body), "no observation") {
		t.Errorf("empty window: %d %s", resp.StatusCode, body)
	}
}

func TestSeedDemoReferences(t *testing.T) {
	db := dbtest.SQLite(t)
	svc, _ := newFixture(t, db, fixtureDefinition())
	if err := svc.SeedDemoReferences(t.Context(), []string{"m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	id1, p, err := svc.Reference(t.Context(), "m1", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != DemoReferenceRows || len(p.Features) != 4 || p.feature("income").Type != Numeric {
		t.Fatalf("demo reference = %+v", p)
	}
	// Seeding again keeps what is there.
	if err := svc.SeedDemoReferences(t.Context(), []string{"m1"}); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := svc.Reference(t.Context(), "m1", ""); id != id1 {
		t.Errorf("reference replaced: id %d, was %d", id, id1)
	}
}
