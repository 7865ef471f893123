package abgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestErrorAccessors(t *testing.T) {
	wrapped := fmt.Errorf("store: %w", FieldErrorf("variants[1].weight", "weight must be > 0"))
	tests := []struct {
		name                 string
		err                  error
		code, message, field string
		status               int
	}{
		{"nil", nil, "", "", "", http.StatusOK},
		{"plain error is internal", errors.New("disk on fire"), EINTERNAL, "internal error", "", http.StatusInternalServerError},
		{"wrapped field error", wrapped, EINVALID, "weight must be > 0", "variants[1].weight", http.StatusBadRequest},
		{"not found", Errorf(ENOTFOUND, "experiment %q not found", "x"), ENOTFOUND, `experiment "x" not found`, "", http.StatusNotFound},
		{"conflict", Errorf(ECONFLICT, "stale"), ECONFLICT, "stale", "", http.StatusConflict},
		{"unauthorized", Errorf(EUNAUTHORIZED, "no token"), EUNAUTHORIZED, "no token", "", http.StatusUnauthorized},
		{"forbidden", Errorf(EFORBIDDEN, "viewer"), EFORBIDDEN, "viewer", "", http.StatusForbidden},
		{"unavailable", Errorf(EUNAVAILABLE, "db down"), EUNAVAILABLE, "db down", "", http.StatusServiceUnavailable},
		{"body too large", &http.MaxBytesError{Limit: 10}, EINTERNAL, "internal error", "", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode: got %q, want %q", got, tt.code)
			}
			if got := ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage: got %q, want %q", got, tt.message)
			}
			if got := ErrorField(tt.err); got != tt.field {
				t.Errorf("ErrorField: got %q, want %q", got, tt.field)
			}
			if got := HTTPStatus(tt.err); got != tt.status {
				t.Errorf("HTTPStatus: got %d, want %d", got, tt.status)
			}
		})
	}
}

func TestWriteHTTPError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{"field error", FieldErrorf("coverage", "coverage must be in [0, 1]"), 400,
			`{"error":{"code":"invalid","message":"coverage must be in [0, 1]","field":"coverage"}}`, ""},
		{"internal hides the cause", errors.New("pq: password authentication failed"), 500,
			`{"error":{"code":"internal","message":"internal error"}}`, ""},
		{"unavailable asks to retry", Errorf(EUNAVAILABLE, "queue full"), 503,
			`{"error":{"code":"unavailable","message":"queue full"}}`, "1"},
		{"too large", &http.MaxBytesError{Limit: 1024}, 413,
			`{"error":{"code":"invalid","message":"request body is larger than the limit of 1024 bytes"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteHTTPError(w, tt.err)
			if w.Code != tt.status {
				t.Errorf("status: got %d, want %d", w.Code, tt.status)
			}
			if got := w.Body.String(); got != tt.body {
				t.Errorf("body: got %s, want %s", got, tt.body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.retryAfter)
			}
			if got, want := w.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
		})
	}
}

type decodeTarget struct {
	Key      string  `json:"key"`
	Coverage float64 `json:"coverage"`
	Variants []struct {
		Key string `json:"key"`
	} `json:"variants"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body      string
		field, contains string
		status          int
	}{
		{"empty", "", "", "empty", 400},
		{"malformed", `{"key": }`, "", "malformed JSON at byte", 400},
		{"truncated", `{"key": "a"`, "", "unexpected end", 400},
		{"unknown field", `{"key": "a", "colour": 1}`, "colour", `unknown field "colour"`, 400},
		{"wrong type", `{"coverage": "half"}`, "coverage", `field "coverage" must be a number, not string`, 400},
		{"not an object", `[1, 2]`, "", "request body must be an object, not array", 400},
		{"two values", `{"key": "a"} {"key": "b"}`, "", "more than one JSON value", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v decodeTarget
			err := DecodeJSON(strings.NewReader(tt.body), &v)
			if got := ErrorCode(err); got != EINVALID {
				t.Fatalf("code: got %q (%v), want invalid", got, err)
			}
			if got := ErrorField(err); got != tt.field {
				t.Errorf("field: got %q, want %q", got, tt.field)
			}
			if !strings.Contains(ErrorMessage(err), tt.contains) {
				t.Errorf("message %q does not contain %q", ErrorMessage(err), tt.contains)
			}
			if got := HTTPStatus(err); got != tt.status {
				t.Errorf("status: got %d, want %d", got, tt.status)
			}
		})
	}
	t.Run("over the body limit", func(t *testing.T) {
		body := `{"key": "` + strings.Repeat("a", 2000) + `"}`
		r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(body)), 1024)
		var v decodeTarget
		err := DecodeJSON(r, &v)
		if got, want := HTTPStatus(err), http.StatusRequestEntityTooLarge; got != want {
			t.Fatalf("status: got %d (%v), want %d", got, err, want)
		}
		if !strings.Contains(ErrorMessage(err), "1024 bytes") {
			t.Errorf("message %q does not name the limit", ErrorMessage(err))
		}
	})
	t.Run("valid", func(t *testing.T) {
		var v decodeTarget
		if err := DecodeJSON(strings.NewReader(`{"key": "a", "coverage": 0.5, "variants": [{"key": "v1"}]}`+"\n"), &v); err != nil {
			t.Fatal(err)
		}
		if v.Key != "a" || v.Coverage != 0.5 || len(v.Variants) != 1 || v.Variants[0].Key != "v1" {
			t.Errorf("got %+v", v)
		}
	})
}

// FuzzDecodeJSON checks that any body either decodes or is an invalid
// error, never another code or a panic, and that what decodes round-trips.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{}`, `{"key":"a","coverage":1,"variants":[{"key":"v"}]}`, `{"x":1}`, `[`, `"s"`, `{"coverage":1e999}`, "{\"key\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v decodeTarget
		err := DecodeJSON(bytes.NewReader(data), &v)
		if err != nil {
			if got := ErrorCode(err); got != EINVALID {
				t.Fatalf("code %q for %q: %v", got, data, err)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var w decodeTarget
		if err := DecodeJSON(bytes.NewReader(again), &w); err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
	})
}
