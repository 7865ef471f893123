package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"abgate"
)

type backendTestKey struct{}

func TestLocalBackendInProcess(t *testing.T) {
	gin.SetMode(gin.TestMode)
	engine := gin.New()
	type seen struct {
		model, uri, remote, header, body string
		ctxValue                         any
	}
	var got seen
	engine.POST("/v2/models/:model/infer", func(c *gin.Context) {
		body, _ := io.ReadAll(c.Request.Body)
		got = seen{
			model:    c.Param("model"),
			uri:      c.Request.RequestURI,
			remote:   c.Request.RemoteAddr,
			header:   c.GetHeader("X-Request-ID"),
			body:     string(body),
			ctxValue: c.Request.Context().Value(backendTestKey{}),
		}
		c.Header("X-Model", c.Param("model"))
		c.JSON(http.StatusCreated, gin.H{"model_name": c.Param("model")})
	})
	engine.GET("/silent", func(c *gin.Context) {})

	b := NewLocalBackend(engine)
	ctx := context.WithValue(context.Background(), backendTestKey{}, "same-process")
	header := http.Header{"X-Request-Id": {"r-1"}}
	status, h, body, err := b.Forward(ctx, http.MethodPost, "/v2/models/iris/infer", header, []byte(`{"inputs":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusCreated || h.Get("X-Model") != "iris" || string(body) != `{"model_name":"iris"}` {
		t.Errorf("answer %d %v %s", status, h, body)
	}
	want := seen{model: "iris", uri: "/v2/models/iris/infer", remote: "", header: "r-1", body: `{"inputs":[]}`, ctxValue: "same-process"}
	if got != want {
		t.Errorf("handler saw %+v, want %+v", got, want)
	}

	t.Run("no body written is 200", func(t *testing.T) {
		status, _, body, err := b.Forward(context.Background(), http.MethodGet, "/silent", nil, nil)
		if err != nil || status != http.StatusOK || len(body) != 0 {
			t.Errorf("got %d %q %v, want 200, empty", status, body, err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, _, err := b.Forward(ctx, http.MethodGet, "/silent", nil, nil)
		if got, want := abgate.ErrorCode(err), abgate.EUNAVAILABLE; got != want {
			t.Errorf("code %q, want %q", got, want)
		}
	})
}

func TestRemoteBackend(t *testing.T) {
	var gotHeader http.Header
	var gotURI string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotURI = r.Header.Clone(), r.URL.RequestURI()
		w.Header().Set("X-Out", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("short and stout"))
	}))
	defer srv.Close()

	b, err := NewRemoteBackend(srv.URL+"/prefix/", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{
		"Connection": {"X-Hop"},
		"X-Hop":      {"drop me"},
		"Upgrade":    {"websocket"},
		"X-User-Id":  {"u1"},
	}
	status, h, body, err := b.Forward(context.Background(), http.MethodPost, "/predict?model=resnet", header, []byte("img"))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusTeapot || string(body) != "short and stout" || h.Get("X-Out") != "1" || h.Get("Keep-Alive") != "" {
		t.Errorf("answer %d %v %q", status, h, body)
	}
	if got, want := gotURI, "/prefix/predict?model=resnet"; got != want {
		t.Errorf("backend saw %q, want %q", got, want)
	}
	for _, name := range []string{"X-Hop", "Upgrade"} {
		if v := gotHeader.Get(name); v != "" {
			t.Errorf("hop-by-hop header %s = %q was forwarded", name, v)
		}
	}
	if got := gotHeader.Get("X-User-Id"); got != "u1" {
		t.Errorf("X-User-Id = %q, want u1", got)
	}
	if got := gotHeader.Get("User-Agent"); got != "" {
		t.Errorf("User-Agent %q added", got)
	}
	if got := header.Get("X-Hop"); got != "drop me" {
		t.Error("Forward modified the caller's header")
	}

	for _, bad := range []string{"", "ftp://h", "http://", "http://u:p@h", "http://h/?q=1", "http://h/#f", "::"} {
		if _, err := NewRemoteBackend(bad, nil, 0); abgate.ErrorCode(err) != abgate.EINVALID {
			t.Errorf("NewRemoteBackend(%q): %v, want EINVALID", bad, err)
		}
	}
}
