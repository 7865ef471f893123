package experiments

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"abgate"
	"abgate/migrations/dbtest"
)

func TestAPIExplainHook(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestStore(t, db)
	mustCreate(t, s, definition("draft", "r"))
	mustCreate(t, s, definition("running", "r2"))
	mustTransition(t, s, "running", ActionStart)
	_, viewer, err := s.CreateKey(t.Context(), KeyRequest{Name: "vi", Role: RoleViewer})
	if err != nil {
		t.Fatal(err)
	}

	type seen struct {
		Key, Status, Unit, Query string
	}
	api := NewAPI(s, nil)
	api.Explain = func(ctx context.Context, e *Experiment, unit string, r *http.Request) (any, error) {
		if unit == "boom" {
			return nil, abgate.FieldErrorf("weights", "bad weights")
		}
		return seen{Key: e.Key, Status: string(e.Status), Unit: unit, Query: r.URL.Query().Get("unit")}, nil
	}
	r := gin.New()
	api.Mount(r.Group("/api/v1"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	a := &apiServer{Server: srv, store: s, viewer: viewer}

	tests := []struct {
		name, path, token string
		status            int
		want              seen
		code, field       string
	}{
		{name: "draft", path: "/experiments/draft/assign?unit=u1", token: viewer, status: 200,
			want: seen{Key: "draft", Status: "draft", Unit: "u1", Query: "u1"}},
		{name: "running", path: "/experiments/running/assign?unit=u%202", token: viewer, status: 200,
			want: seen{Key: "running", Status: "running", Unit: "u 2", Query: "u 2"}},
		{name: "no unit", path: "/experiments/draft/assign", token: viewer, status: 400, code: abgate.EINVALID, field: "unit"},
		{name: "empty unit", path: "/experiments/draft/assign?unit=", token: viewer, status: 400, code: abgate.EINVALID, field: "unit"},
		{name: "unknown experiment", path: "/experiments/nope/assign?unit=u1", token: viewer, status: 404, code: abgate.ENOTFOUND},
		{name: "hook error", path: "/experiments/draft/assign?unit=boom", token: viewer, status: 400, code: abgate.EINVALID, field: "weights"},
		{name: "no token", path: "/experiments/draft/assign?unit=u1", status: 401, code: abgate.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := a.do(t, request{method: "GET", path: tt.path, token: tt.token})
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code, tt.field)
				return
			}
			var got seen
			wantStatus(t, res, tt.status, &got)
			if got != tt.want {
				t.Errorf("hook saw %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("nil hook registers nothing", func(t *testing.T) {
		r := gin.New()
		NewAPI(s, nil).Mount(r.Group("/api/v1"))
		srv := httptest.NewServer(r)
		defer srv.Close()
		a := &apiServer{Server: srv, store: s}
		res := a.do(t, request{method: "GET", path: "/experiments/draft/assign?unit=u1", token: viewer})
		if got, want := res.status, http.StatusNotFound; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
}
