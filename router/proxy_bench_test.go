package router

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"abgate/experiments"
)

// benchV2Answer is the answer of the upstreams of the proxy benchmarks:
// the shape `abgate bench router` uses, a label and a probabilities
// output.
func benchV2Answer(model string) []byte {
	return []byte(`{"model_name":"` + model + `","model_version":"1","outputs":[` +
		`{"name":"label","shape":[1],"datatype":"BYTES","data":["` + model + `-yes"]},` +
		`{"name":"probabilities","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}]}`)
}

// countingRecorder is an ExposureRecorder that only counts.
type countingRecorder struct{ n atomic.Int64 }

func (r *countingRecorder) Record(Exposure) bool { r.n.Add(1); return true }

// BenchmarkProxyV2 measures a routed V2 request through the Gin handler,
// in-process, to two upstream servers over loopback: a 50/50 experiment,
// metrics registered, exposures counted.
func BenchmarkProxyV2(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	var ups []string
	for _, m := range []string{"up-a", "up-b"} {
		answer := benchV2Answer(m)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
			_, _ = w.Write(answer)
		}))
		b.Cleanup(srv.Close)
		ups = append(ups, srv.URL)
	}
	snap := NewSnapshot(1, []*experiments.Experiment{{
		Key: "bench", Route: "bench", Status: experiments.StatusRunning, HashVersion: 2, Coverage: 1,
		Variants: []experiments.Variant{
			{Key: "control", Model: "up-a", Weight: 0.5, Control: true},
			{Key: "treatment", Model: "up-b", Weight: 0.5},
		},
	}}, func(e, v string) int64 { return int64(len(e) + len(v)) })
	if len(snap.Problems) > 0 {
		b.Fatal(snap.Problems)
	}
	reg := prometheus.NewRegistry()
	pools, err := NewPools([]*experiments.Model{
		{Name: "up-a", Source: experiments.SourceRemote, Backends: ups[:1]},
		{Name: "up-b", Source: experiments.SourceRemote, Backends: ups[1:]},
	}, nil, PoolOptions{HealthInterval: -1}, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pools.Close() })
	rec := &countingRecorder{}
	p, err := NewProxy(snap, pools, rec, nil, ProxyOptions{}, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	r := gin.New()
	p.Mount(r)
	body := []byte(`{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [35, 52000, 14, 3]}]}`)
	units := benchUnits()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/bench/infer", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "bench")
		req.Header.Set(DefaultUnitHeader, units[i&1023])
		i++
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"label"`) {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
		}
	}
	if rec.n.Load() == 0 {
		b.Fatal("no exposure recorded")
	}
}

func BenchmarkExtractPredictionV2(b *testing.B) {
	body := benchV2Answer("up-a")
	h := http.Header{"Content-Type": {"application/json"}}
	b.ReportAllocs()
	for b.Loop() {
		label, conf := extractPrediction(proxyV2, h, body)
		if label == nil || conf == nil {
			b.Fatal("no prediction")
		}
	}
}
