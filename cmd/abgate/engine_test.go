package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
