package router

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// corsEngine mounts a fake POST /predict behind c the way abgate does.
func corsEngine(c *CORS) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	var g gin.IRouter = r
	if c != nil {
		g = r.Group("", c.Handler())
	}
	g.POST("/predict", func(gc *gin.Context) {
		gc.Header(HeaderExperiment, "demo")
		gc.String(http.StatusOK, "ok")
	})
	c.Mount(r, "/predict")
	return r
}

func TestCORS(t *testing.T) {
	cors, err := NewCORS(CORSOptions{Origins: []string{"https://app.example", "HTTP://localhost:3000"}, UnitHeader: "x-visitor", MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	allowHeaders := "Content-Type, X-Visitor, X-Request-ID, Inference-Header-Content-Length, Authorization"
	expose := "X-Request-ID, X-Experiment, X-Variant, X-Model"
	tests := []struct {
		name   string
		cors   *CORS
		method string
		header map[string]string
		status int
		want   map[string]string // "" = absent
	}{
		{"preflight from an allowed origin", cors, http.MethodOptions,
			map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-visitor"},
			204, map[string]string{
				"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": allowHeaders,
				"Access-Control-Max-Age": "3600", "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
				"Access-Control-Expose-Headers": "",
			}},
		{"preflight origin matched without case", cors, http.MethodOptions,
			map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
			204, map[string]string{"Access-Control-Allow-Origin": "http://localhost:3000"}},
		{"preflight from an unlisted origin", cors, http.MethodOptions,
			map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
			204, map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Headers": "",
				"Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": ""}},
		{"preflight for a method not allowed", cors, http.MethodOptions,
			map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
			204, map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{"request from an allowed origin", cors, http.MethodPost,
			map[string]string{"Origin": "https://app.example"},
			200, map[string]string{
				"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": expose, "Vary": "Origin", "Access-Control-Allow-Methods": "",
			}},
		{"request from an unlisted origin", cors, http.MethodPost,
			map[string]string{"Origin": "https://evil.example"},
			200, map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": "", "Access-Control-Allow-Credentials": "", "Vary": "Origin"}},
		{"request without origin", cors, http.MethodPost, nil,
			200, map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{"no origins configured: no preflight route", nil, http.MethodOptions,
			map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
			405, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"no origins configured: no headers", nil, http.MethodPost,
			map[string]string{"Origin": "https://app.example"},
			200, map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": "", "Vary": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/predict", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			corsEngine(tt.cors).ServeHTTP(w, req)
			if got := w.Code; got != tt.status {
				t.Errorf("status = %d; want %d", got, tt.status)
			}
			for k, want := range tt.want {
				if got := strings.Join(w.Result().Header.Values(k), ", "); got != want {
					t.Errorf("%s = %q; want %q", k, got, want)
				}
			}
			if got := w.Result().Header.Get("Access-Control-Allow-Origin"); got == "*" {
				t.Errorf("Access-Control-Allow-Origin is *")
			}
		})
	}
}

func TestNewCORS(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		wantNil bool
		wantErr bool
	}{
		{"none", nil, true, false},
		{"exact origins", []string{"https://app.example", "http://127.0.0.1:8081"}, false, false},
		{"wildcard", []string{"*"}, true, true},
		{"path", []string{"https://app.example/x"}, true, true},
		{"trailing slash", []string{"https://app.example/"}, true, true},
		{"no scheme", []string{"app.example"}, true, true},
		{"other scheme", []string{"ftp://app.example"}, true, true},
		{"user info", []string{"https://u@app.example"}, true, true},
		{"null", []string{"null"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCORS(CORSOptions{Origins: tt.origins})
			if got := err != nil; got != tt.wantErr {
				t.Errorf("err = %v; want error %v", err, tt.wantErr)
			}
			if got := c == nil; got != tt.wantNil {
				t.Errorf("nil = %v; want %v", got, tt.wantNil)
			}
		})
	}
}
