package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"abgate"
)

// TestEngineErrors checks the JSON answers of the shared engine for an
// unknown route (404), a wrong method (405) and a panic (500).
func TestEngineErrors(t *testing.T) {
	r := newEngine(slog.New(slog.DiscardHandler))
	r.GET("/thing", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/boom", func(c *gin.Context) { panic("boom") })
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown route", "GET", "/nothing", http.StatusNotFound, abgate.ENOTFOUND},
		{"wrong method", "POST", "/thing", http.StatusMethodNotAllowed, abgate.EINVALID},
		{"panic", "GET", "/boom", http.StatusInternalServerError, abgate.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.status {
				t.Errorf("status: got %d, want %d", w.Code, tt.status)
			}
			var body abgate.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("error: got %+v, want code %s with a message", body.Error, tt.code)
			}
			if w.Header().Get("X-Request-ID") == "" {
				t.Error("no X-Request-ID")
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	r := newEngine(slog.New(slog.DiscardHandler))
	r.GET("/id", func(c *gin.Context) { c.String(200, abgate.RequestIDFromContext(c.Request.Context())) })
	get := func(id string) (header, seen string) {
		req := httptest.NewRequest("GET", "/id", nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Header().Get("X-Request-ID"), w.Body.String()
	}
	seen := map[string]bool{}
	for range 1000 {
		h, ctx := get("")
		if h != ctx || len(h) != 32 || strings.Trim(h, "0123456789abcdef") != "" || seen[h] {
			t.Fatalf("made id %q (context %q): want 32 new hex digits", h, ctx)
		}
		seen[h] = true
	}
	if h, ctx := get("client-7"); h != "client-7" || ctx != "client-7" {
		t.Errorf("client id: header %q, context %q; want client-7", h, ctx)
	}
	if h, _ := get(strings.Repeat("x", 129)); len(h) != 32 {
		t.Errorf("an id over 128 bytes was kept: %q", h)
	}
}
