package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeCORS checks that `abgate serve --cors-origins` answers the
// preflight of routed predictions and feedback for a listed origin only,
// and exposes the experiment headers to it.
func TestServeCORS(t *testing.T) {
	srv := startServer(t, "--cors-origins", "https://app.example", "--trusted-proxies", "10.0.0.0/8")
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, "http://"+srv.addr+path, strings.NewReader(loadBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User-ID", "cors-user")
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-user-id")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name, method, path, origin string
		status                     int               // 0: not checked
		want                       map[string]string // "" = absent
	}{
		{"preflight of predictions", http.MethodOptions, "/v2/models/classifier/infer", "https://app.example", 204, map[string]string{
			"Access-Control-Allow-Origin":  "https://app.example",
			"Access-Control-Allow-Headers": "Content-Type, X-User-Id, X-Request-ID, Inference-Header-Content-Length, Authorization",
			"Access-Control-Allow-Methods": "POST, OPTIONS",
		}},
		{"preflight of feedback", http.MethodOptions, "/v1/feedback", "https://app.example", 204, map[string]string{"Access-Control-Allow-Origin": "https://app.example"}},
		{"preflight from another origin", http.MethodOptions, "/predict", "https://evil.example", 204, map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{"prediction", http.MethodPost, "/v2/models/classifier/infer", "https://app.example", 200, map[string]string{
			"Access-Control-Allow-Origin":   "https://app.example",
			"Access-Control-Expose-Headers": "X-Request-ID, X-Experiment, X-Variant, X-Model",
			"X-Experiment":                  "demo",
		}},
		{"prediction from another origin", http.MethodPost, "/v2/models/classifier/infer", "https://evil.example", 200, map[string]string{
			"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": "", "X-Experiment": "demo",
		}},
		{"other routes have no CORS", http.MethodOptions, "/healthz", "https://app.example", 0, map[string]string{"Access-Control-Allow-Origin": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(tt.method, tt.path, tt.origin)
			if tt.status != 0 && resp.StatusCode != tt.status {
				t.Errorf("status = %d; want %d", resp.StatusCode, tt.status)
			}
			for k, want := range tt.want {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q; want %q", k, got, want)
				}
			}
		})
	}
	srv.stop(t)
}
