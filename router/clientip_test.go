package router

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestTrustProxies(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		remote  string
		header  map[string]string
		want    string
	}{
		{"default: spoofed X-Forwarded-For ignored", nil, "203.0.113.9:4000", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"},
		{"default: X-Real-IP ignored", nil, "203.0.113.9:4000", map[string]string{"X-Real-IP": "1.2.3.4"}, "203.0.113.9"},
		{"default: proxy on loopback not trusted either", nil, "127.0.0.1:4000", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "127.0.0.1"},
		{"trusted proxy: X-Forwarded-For honoured", []string{"10.0.0.0/8"}, "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"},
		{"trusted proxy by IP", []string{"10.1.2.3"}, "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"},
		{"trusted chain: first untrusted from the right", []string{"10.0.0.0/8"}, "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"untrusted peer: X-Forwarded-For ignored", []string{"10.0.0.0/8"}, "203.0.113.9:4000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "203.0.113.9"},
		{"trusted proxy: X-Real-IP still ignored", []string{"10.0.0.0/8"}, "10.1.2.3:4000", map[string]string{"X-Real-IP": "198.51.100.7"}, "10.1.2.3"},
		{"trusted proxy without header", []string{"10.0.0.0/8"}, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"IPv6 proxy", []string{"fd00::/8"}, "[fd00::1]:4000", map[string]string{"X-Forwarded-For": "2001:db8::5"}, "2001:db8::5"},
	}
	gin.SetMode(gin.TestMode)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gin.New()
			if err := TrustProxies(r, tt.proxies); err != nil {
				t.Fatal(err)
			}
			r.GET("/ip", func(c *gin.Context) { c.String(http.StatusOK, c.ClientIP()) })
			req := httptest.NewRequest(http.MethodGet, "/ip", nil)
			req.RemoteAddr = tt.remote
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if got := w.Body.String(); got != tt.want {
				t.Errorf("client IP = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestCheckTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		wantErr bool
	}{
		{"none", nil, false},
		{"IPs and CIDRs", []string{"10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8"}, false},
		{"bad mask", []string{"10.0.0.0/33"}, true},
		{"host name", []string{"proxy.local"}, true},
		{"empty entry", []string{""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTrustedProxies(tt.proxies)
			if got := err != nil; got != tt.wantErr {
				t.Errorf("CheckTrustedProxies(%q) = %v; want error %v", tt.proxies, err, tt.wantErr)
			}
			if err != nil {
				if err := TrustProxies(gin.New(), tt.proxies); err == nil {
					t.Errorf("TrustProxies accepted %q", tt.proxies)
				}
			}
		})
	}
}
