package inference

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadBodyRefuses: a body that ReadBody cannot hold is an error that
// says why, before anything is read.
func TestReadBodyRefuses(t *testing.T) {
	tests := []struct {
		name   string
		length int64
		room   int
		want   string
	}{
		{"unknown length", -1, 16, "unknown length"},
		{"too long", 17, 16, "17 bytes is longer than the 16 expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(strings.Repeat("a", 17)))
			r.ContentLength = tt.length
			_, err := ReadBody(r, make([]byte, tt.room))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
	r := httptest.NewRequest("POST", "/x", strings.NewReader("0123456789"))
	b, err := ReadBody(r, make([]byte, 16))
	if err != nil || string(b) != "0123456789" {
		t.Errorf("ReadBody = %q, %v; want the body", b, err)
	}
}
