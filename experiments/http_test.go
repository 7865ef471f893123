package experiments

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"abgate"
	"abgate/migrations/dbtest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// testBodyLimit caps request bodies in the HTTP tests, like
// --max-body-bytes does in abgate serve.
const testBodyLimit = 64 << 10

// apiServer is an httptest server of the admin API with one key per role.
type apiServer struct {
	*httptest.Server
	store                 *Store
	admin, editor, viewer string // bearer tokens
}

func newAPIServer(t *testing.T, db *gorm.DB) *apiServer {
	t.Helper()
	s := newTestStore(t, db)
	a := &apiServer{store: s, admin: "admin-token-for-tests"}
	if _, err := s.EnsureAdmin(t.Context(), a.admin); err != nil {
		t.Fatal(err)
	}
	var err error
	if _, a.editor, err = s.CreateKey(t.Context(), KeyRequest{Name: "ed", Role: RoleEditor}); err != nil {
		t.Fatal(err)
	}
	if _, a.viewer, err = s.CreateKey(t.Context(), KeyRequest{Name: "vi", Role: RoleViewer}); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(LimitBody(testBodyLimit))
	NewAPI(s, nil).Mount(r.Group("/api/v1"))
	a.Server = httptest.NewServer(r)
	t.Cleanup(a.Close)
	return a
}

// request is one call of the admin API.
type request struct {
	method, path string
	token        string
	body         io.Reader // nil = no body
	header       map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (a *apiServer) do(t *testing.T, r request) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, a.URL+"/api/v1"+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := a.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// json calls the API with v marshalled as the body (a string is sent as is).
func (a *apiServer) json(t *testing.T, method, path, token string, v any, header map[string]string) response {
	t.Helper()
	var body io.Reader
	switch v := v.(type) {
	case nil:
	case string:
		body = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return a.do(t, request{method: method, path: path, token: token, body: body, header: header})
}

// wantStatus fails t unless res has status want; it decodes the body into
// out when out is not nil.
func wantStatus(t *testing.T, res response, want int, out any) {
	t.Helper()
	if res.status != want {
		t.Fatalf("status: got %d, want %d; body %s", res.status, want, res.body)
	}
	if out != nil {
		if err := json.Unmarshal(res.body, out); err != nil {
			t.Fatalf("decode %s: %v", res.body, err)
		}
	}
}

// wantError fails t unless res is an error answer with status, code and
// field, in exactly the shape {"error": {"code", "message", "field"?}}.
func wantError(t *testing.T, res response, status int, code, field string) {
	t.Helper()
	if res.status == http.StatusInternalServerError {
		t.Errorf("got 500: %s", res.body)
	}
	if got, want := res.status, status; got != want {
		t.Errorf("status: got %d, want %d; body %s", got, want, res.body)
	}
	if got, want := res.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(res.body, &raw); err != nil {
		t.Fatalf("error body %s is not {\"error\": {...}}: %v", res.body, err)
	}
	if len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("error body %s: want exactly the key \"error\"", res.body)
	}
	var body abgate.ErrorBody
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	if got, want := body.Error.Code, code; got != want {
		t.Errorf("code: got %q, want %q; body %s", got, want, res.body)
	}
	if got, want := body.Error.Field, field; got != want {
		t.Errorf("field: got %q, want %q; body %s", got, want, res.body)
	}
	if body.Error.Message == "" {
		t.Errorf("error without message: %s", res.body)
	}
}

// hiddenLength hides the length of a body so that it is sent chunked.
type hiddenLength struct{ r io.Reader }

func (h hiddenLength) Read(p []byte) (int, error) { return h.r.Read(p) }

func TestAPIBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPIServer(t, db)
		if res := a.json(t, "POST", "/experiments", a.editor, definition("taken", "r"), nil); res.status != http.StatusCreated {
			t.Fatalf("create taken: %d %s", res.status, res.body)
		}
		if res := a.json(t, "POST", "/experiments", a.editor, definition("draft", "r"), nil); res.status != http.StatusCreated {
			t.Fatalf("create draft: %d %s", res.status, res.body)
		}

		oneVariant := definition("new", "r")
		oneVariant.Variants = oneVariant.Variants[:1]
		twoControls := definition("new", "r")
		twoControls.Variants[1].Control = true
		zeroWeight := definition("new", "r")
		zeroWeight.Variants[1].Weight = 0
		unknownModel := definition("new", "r")
		unknownModel.Variants[1].Model = "nope"
		oversize := `{"key":"` + strings.Repeat("a", testBodyLimit) + `"}`

		tests := []struct {
			name   string
			req    request
			status int
			code   string
			field  string
		}{
			{"malformed JSON", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`{"key": "x",`)}, 400, abgate.EINVALID, ""},
			{"not an object", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`[1, 2]`)}, 400, abgate.EINVALID, ""},
			{"empty body", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(``)}, 400, abgate.EINVALID, ""},
			{"two JSON values", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`{} {}`)}, 400, abgate.EINVALID, ""},
			{"unknown field", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`{"key": "x", "colour": "red"}`)}, 400, abgate.EINVALID, "colour"},
			{"unknown nested field", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`{"variants": [{"key": "v1", "wieght": 1}]}`)}, 400, abgate.EINVALID, "wieght"},
			{"wrong type", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(`{"coverage": "all"}`)}, 400, abgate.EINVALID, "coverage"},
			{"oversize body", request{method: "POST", path: "/experiments", token: a.editor, body: strings.NewReader(oversize)}, 413, abgate.EINVALID, ""},
			{"oversize body without a token", request{method: "POST", path: "/experiments", body: strings.NewReader(oversize)}, 413, abgate.EINVALID, ""},
			{"oversize chunked body", request{method: "POST", path: "/experiments", token: a.editor, body: hiddenLength{strings.NewReader(oversize)}}, 413, abgate.EINVALID, ""},
			{"oversize chunked patch", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: hiddenLength{strings.NewReader(`{"name":"` + strings.Repeat("n", testBodyLimit) + `"}`)}}, 413, abgate.EINVALID, ""},
			{"one variant", request{method: "POST", path: "/experiments", token: a.editor, body: jsonBody(t, oneVariant)}, 400, abgate.EINVALID, "variants"},
			{"two controls", request{method: "POST", path: "/experiments", token: a.editor, body: jsonBody(t, twoControls)}, 400, abgate.EINVALID, "variants[1].control"},
			{"zero weight", request{method: "POST", path: "/experiments", token: a.editor, body: jsonBody(t, zeroWeight)}, 400, abgate.EINVALID, "variants[1].weight"},
			{"unknown model", request{method: "POST", path: "/experiments", token: a.editor, body: jsonBody(t, unknownModel)}, 400, abgate.EINVALID, "variants[1].model"},
			{"duplicate experiment key", request{method: "POST", path: "/experiments", token: a.editor, body: jsonBody(t, definition("taken", "r"))}, 409, abgate.ECONFLICT, "key"},
			{"missing token", request{method: "GET", path: "/experiments"}, 401, abgate.EUNAUTHORIZED, ""},
			{"missing token on a write", request{method: "POST", path: "/experiments", body: jsonBody(t, definition("new", "r"))}, 401, abgate.EUNAUTHORIZED, ""},
			{"not a bearer token", request{method: "GET", path: "/experiments", header: map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}}, 401, abgate.EUNAUTHORIZED, ""},
			{"unknown token", request{method: "GET", path: "/experiments", token: "abg_nope"}, 401, abgate.EUNAUTHORIZED, ""},
			{"viewer writing", request{method: "POST", path: "/experiments", token: a.viewer, body: jsonBody(t, definition("new", "r"))}, 403, abgate.EFORBIDDEN, ""},
			{"viewer starting", request{method: "POST", path: "/experiments/draft/start", token: a.viewer}, 403, abgate.EFORBIDDEN, ""},
			{"viewer archiving", request{method: "DELETE", path: "/experiments/draft", token: a.viewer}, 403, abgate.EFORBIDDEN, ""},
			{"editor listing keys", request{method: "GET", path: "/keys", token: a.editor}, 403, abgate.EFORBIDDEN, ""},
			{"editor making a key", request{method: "POST", path: "/keys", token: a.editor, body: strings.NewReader(`{"name":"x","role":"admin"}`)}, 403, abgate.EFORBIDDEN, ""},
			{"stale version via If-Match", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{"coverage": 0.5}`), header: map[string]string{"If-Match": `"7"`}}, 409, abgate.ECONFLICT, "version"},
			{"stale version via body", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{"version": 7, "coverage": 0.5}`)}, 409, abgate.ECONFLICT, "version"},
			{"If-Match and body disagree", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{"version": 1, "coverage": 0.5}`), header: map[string]string{"If-Match": `"2"`}}, 400, abgate.EINVALID, "version"},
			{"If-Match not a version", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{}`), header: map[string]string{"If-Match": `"abc"`}}, 400, abgate.EINVALID, "If-Match"},
			{"stale If-Match on start", request{method: "POST", path: "/experiments/draft/start", token: a.editor, header: map[string]string{"If-Match": `"9"`}}, 409, abgate.ECONFLICT, "version"},
			{"pause a draft", request{method: "POST", path: "/experiments/draft/pause", token: a.editor}, 409, abgate.ECONFLICT, "status"},
			{"stop a draft", request{method: "POST", path: "/experiments/draft/stop", token: a.editor}, 409, abgate.ECONFLICT, "status"},
			{"invalid patch", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{"coverage": 1.5}`)}, 400, abgate.EINVALID, "coverage"},
			{"patch with an unknown field", request{method: "PATCH", path: "/experiments/draft", token: a.editor, body: strings.NewReader(`{"status": "running"}`)}, 400, abgate.EINVALID, "status"},
			{"unknown experiment", request{method: "GET", path: "/experiments/nope", token: a.viewer}, 404, abgate.ENOTFOUND, ""},
			{"patch an unknown experiment", request{method: "PATCH", path: "/experiments/nope", token: a.editor, body: strings.NewReader(`{}`)}, 404, abgate.ENOTFOUND, ""},
			{"start an unknown experiment", request{method: "POST", path: "/experiments/nope/start", token: a.editor}, 404, abgate.ENOTFOUND, ""},
			{"bad status filter", request{method: "GET", path: "/experiments?status=done", token: a.viewer}, 400, abgate.EINVALID, "status"},
			{"bad audit limit", request{method: "GET", path: "/audit?limit=0", token: a.viewer}, 400, abgate.EINVALID, "limit"},
			{"bad audit before_id", request{method: "GET", path: "/audit?before_id=x", token: a.viewer}, 400, abgate.EINVALID, "before_id"},
			{"bad model", request{method: "POST", path: "/models", token: a.editor, body: strings.NewReader(`{"name":"x","backends":["ftp://h"]}`)}, 400, abgate.EINVALID, "backends[0]"},
			{"duplicate model", request{method: "POST", path: "/models", token: a.editor, body: strings.NewReader(`{"name":"m1","backends":["http://h"]}`)}, 409, abgate.ECONFLICT, "name"},
			{"delete a model in use", request{method: "DELETE", path: "/models/m1", token: a.editor}, 409, abgate.ECONFLICT, ""},
			{"unknown model name", request{method: "GET", path: "/models/nope", token: a.viewer}, 404, abgate.ENOTFOUND, ""},
			{"bad key role", request{method: "POST", path: "/keys", token: a.admin, body: strings.NewReader(`{"name":"x","role":"root"}`)}, 400, abgate.EINVALID, "role"},
			{"duplicate key name", request{method: "POST", path: "/keys", token: a.admin, body: strings.NewReader(`{"name":"ed","role":"viewer"}`)}, 409, abgate.ECONFLICT, "name"},
			{"revoke the last admin", request{method: "DELETE", path: "/keys/admin", token: a.admin}, 409, abgate.ECONFLICT, ""},
			{"revoke an unknown key", request{method: "DELETE", path: "/keys/nope", token: a.admin}, 404, abgate.ENOTFOUND, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, a.do(t, tt.req), tt.status, tt.code, tt.field)
			})
		}

		t.Run("nothing changed", func(t *testing.T) {
			var list struct{ Experiments []*Experiment }
			wantStatus(t, a.json(t, "GET", "/experiments", a.viewer, nil, nil), http.StatusOK, &list)
			if got, want := keysOf(list.Experiments), []string{"draft", "taken"}; !slices.Equal(got, want) {
				t.Errorf("experiments: got %v, want %v", got, want)
			}
			for _, e := range list.Experiments {
				if e.Version != 1 || e.Status != StatusDraft {
					t.Errorf("%s: got %s v%d, want draft v1", e.Key, e.Status, e.Version)
				}
			}
		})
	})
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func TestAPIExperimentLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPIServer(t, db)
		var created Experiment
		t.Run("create", func(t *testing.T) {
			res := a.json(t, "POST", "/experiments", a.editor, definition("exp", "r"), nil)
			wantStatus(t, res, http.StatusCreated, &created)
			if got, want := res.header.Get("Location"), "/api/v1/experiments/exp"; got != want {
				t.Errorf("Location: got %q, want %q", got, want)
			}
			if got, want := res.header.Get("ETag"), `"1"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
			if created.Key != "exp" || created.Status != StatusDraft || created.Version != 1 || created.HashVersion != 2 || created.Coverage != 1 {
				t.Errorf("got %+v, want draft exp v1 with defaults", created)
			}
		})
		t.Run("get", func(t *testing.T) {
			var got Experiment
			res := a.json(t, "GET", "/experiments/exp", a.viewer, nil, nil)
			wantStatus(t, res, http.StatusOK, &got)
			if got, want := res.header.Get("ETag"), `"1"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
			if got.Key != created.Key || !got.CreatedAt.Equal(created.CreatedAt) || got.Version != created.Version {
				t.Errorf("got %+v, want %+v", got, created)
			}
		})
		t.Run("patch with If-Match", func(t *testing.T) {
			var got Experiment
			res := a.json(t, "PATCH", "/experiments/exp", a.editor,
				`{"coverage": 0.5, "variants": [{"key": "v1"}, {"key": "v2", "weight": 3}]}`, map[string]string{"If-Match": `"1"`})
			wantStatus(t, res, http.StatusOK, &got)
			if got, want := res.header.Get("ETag"), `"2"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
			if got.Version != 2 || got.Coverage != 0.5 || got.Variants[1].Weight != 3 {
				t.Errorf("got v%d coverage %v v2 weight %v, want v2 0.5 3", got.Version, got.Coverage, got.Variants[1].Weight)
			}
		})
		t.Run("patch with a weak If-Match", func(t *testing.T) {
			res := a.json(t, "PATCH", "/experiments/exp", a.editor, `{"name": "Exp"}`, map[string]string{"If-Match": `W/"2"`})
			wantStatus(t, res, http.StatusOK, nil)
			if got, want := res.header.Get("ETag"), `"3"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
		})
		t.Run("patch with the body version", func(t *testing.T) {
			res := a.json(t, "PATCH", "/experiments/exp", a.editor, `{"version": 3, "description": "d"}`, nil)
			wantStatus(t, res, http.StatusOK, nil)
			if got, want := res.header.Get("ETag"), `"4"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
		})

		steps := []struct {
			method, path string
			status       Status
			etag         string
		}{
			{"POST", "/experiments/exp/start", StatusRunning, `"5"`},
			{"POST", "/experiments/exp/pause", StatusPaused, `"6"`},
			{"POST", "/experiments/exp/start", StatusRunning, `"7"`},
			{"POST", "/experiments/exp/stop", StatusStopped, `"8"`},
			{"DELETE", "/experiments/exp", StatusArchived, `"9"`},
		}
		for _, step := range steps {
			t.Run(step.method+" "+step.path, func(t *testing.T) {
				var got Experiment
				res := a.json(t, step.method, step.path, a.editor, nil, nil)
				wantStatus(t, res, http.StatusOK, &got)
				if got.Status != step.status {
					t.Errorf("status: got %s, want %s", got.Status, step.status)
				}
				if got, want := res.header.Get("ETag"), step.etag; got != want {
					t.Errorf("ETag: got %q, want %q", got, want)
				}
			})
		}

		t.Run("archived is listed on request only", func(t *testing.T) {
			var list struct{ Experiments []*Experiment }
			wantStatus(t, a.json(t, "GET", "/experiments", a.viewer, nil, nil), http.StatusOK, &list)
			if len(list.Experiments) != 0 {
				t.Errorf("default list: got %v, want none", keysOf(list.Experiments))
			}
			wantStatus(t, a.json(t, "GET", "/experiments?status=archived", a.viewer, nil, nil), http.StatusOK, &list)
			if got, want := keysOf(list.Experiments), []string{"exp"}; !slices.Equal(got, want) {
				t.Errorf("archived list: got %v, want %v", got, want)
			}
		})
		t.Run("archived key stays taken", func(t *testing.T) {
			wantError(t, a.json(t, "POST", "/experiments", a.editor, definition("exp", "r"), nil), 409, abgate.ECONFLICT, "key")
		})
		t.Run("empty list is an array", func(t *testing.T) {
			res := a.json(t, "GET", "/experiments?route=none", a.viewer, nil, nil)
			wantStatus(t, res, http.StatusOK, nil)
			if got, want := strings.TrimSpace(string(res.body)), `{"experiments":[]}`; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
		t.Run("audit", func(t *testing.T) {
			var got struct{ Entries []AuditEntry }
			wantStatus(t, a.json(t, "GET", "/audit?experiment=exp", a.viewer, nil, nil), http.StatusOK, &got)
			var actions []string
			for _, e := range got.Entries {
				actions = append(actions, e.Actor+":"+e.Action)
			}
			want := []string{"ed:experiment.archive", "ed:experiment.stop", "ed:experiment.start", "ed:experiment.pause",
				"ed:experiment.start", "ed:experiment.update", "ed:experiment.update", "ed:experiment.update", "ed:experiment.create"}
			if !slices.Equal(actions, want) {
				t.Errorf("audit:\n got %v\nwant %v", actions, want)
			}
			if len(got.Entries) == len(want) {
				var paths []string
				for _, c := range got.Entries[len(want)-2].Diff {
					paths = append(paths, c.Path)
				}
				if want := []string{"coverage", "variants.v2.weight"}; !slices.Equal(paths, want) {
					t.Errorf("first update diff: got %v, want %v", paths, want)
				}
			}
			wantStatus(t, a.json(t, "GET", "/audit?limit=2", a.viewer, nil, nil), http.StatusOK, &got)
			if len(got.Entries) != 2 {
				t.Errorf("limit=2: got %d entries", len(got.Entries))
			}
		})
	})
}

func TestAPIKeysAndModels(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPIServer(t, db)
		var created struct {
			Name, Role, Token string
		}
		t.Run("create key", func(t *testing.T) {
			wantStatus(t, a.json(t, "POST", "/keys", a.admin, `{"name": "ci", "role": "editor"}`, nil), http.StatusCreated, &created)
			if created.Name != "ci" || created.Role != RoleEditor || created.Token == "" {
				t.Fatalf("got %+v, want ci/editor with a token", created)
			}
		})
		t.Run("scheme is case-insensitive", func(t *testing.T) {
			res := a.do(t, request{method: "GET", path: "/models", header: map[string]string{"Authorization": "bearer " + created.Token}})
			wantStatus(t, res, http.StatusOK, nil)
		})
		t.Run("token works as bearer", func(t *testing.T) {
			res := a.json(t, "POST", "/models", created.Token, `{"name": "remote-m", "version": "2", "backends": ["http://127.0.0.1:9/"]}`, nil)
			var m Model
			wantStatus(t, res, http.StatusCreated, &m)
			if got, want := res.header.Get("Location"), "/api/v1/models/remote-m"; got != want {
				t.Errorf("Location: got %q, want %q", got, want)
			}
			if m.Source != SourceRemote || len(m.Backends) != 1 || m.Backends[0] != "http://127.0.0.1:9" {
				t.Errorf("got %+v, want a remote model with backend http://127.0.0.1:9", m)
			}
		})
		t.Run("token shown once", func(t *testing.T) {
			res := a.json(t, "GET", "/keys", a.admin, nil, nil)
			var list struct{ Keys []map[string]any }
			wantStatus(t, res, http.StatusOK, &list)
			if bytes.Contains(res.body, []byte(created.Token)) || bytes.Contains(res.body, []byte(`"token`)) {
				t.Errorf("key list shows a token: %s", res.body)
			}
			var names []string
			for _, k := range list.Keys {
				names = append(names, k["name"].(string))
			}
			if want := []string{"admin", "ci", "ed", "vi"}; !slices.Equal(names, want) {
				t.Errorf("keys: got %v, want %v", names, want)
			}
		})
		t.Run("models", func(t *testing.T) {
			var got Model
			wantStatus(t, a.json(t, "GET", "/models/remote-m", a.viewer, nil, nil), http.StatusOK, &got)
			if got.Name != "remote-m" || got.Version != "2" {
				t.Errorf("got %+v", got)
			}
			var list struct{ Models []Model }
			wantStatus(t, a.json(t, "GET", "/models", a.viewer, nil, nil), http.StatusOK, &list)
			if got, want := len(list.Models), 4; got != want {
				t.Errorf("got %d models, want %d", got, want)
			}
			res := a.json(t, "DELETE", "/models/remote-m", a.editor, nil, nil)
			wantStatus(t, res, http.StatusNoContent, nil)
			wantError(t, a.json(t, "GET", "/models/remote-m", a.viewer, nil, nil), 404, abgate.ENOTFOUND, "")
		})
		t.Run("revoked token stops working", func(t *testing.T) {
			var key APIKey
			wantStatus(t, a.json(t, "DELETE", "/keys/ci", a.admin, nil, nil), http.StatusOK, &key)
			if key.RevokedAt == nil {
				t.Errorf("revoked key without revoked_at: %+v", key)
			}
			wantError(t, a.json(t, "GET", "/experiments", created.Token, nil, nil), 401, abgate.EUNAUTHORIZED, "")
		})
		t.Run("audit names the key", func(t *testing.T) {
			var got struct{ Entries []AuditEntry }
			wantStatus(t, a.json(t, "GET", "/audit?entity_type=model&entity_key=remote-m", a.viewer, nil, nil), http.StatusOK, &got)
			var actions []string
			for _, e := range got.Entries {
				actions = append(actions, e.Actor+":"+e.Action)
			}
			if want := []string{"ed:model.delete", "ci:model.register"}; !slices.Equal(actions, want) {
				t.Errorf("got %v, want %v", actions, want)
			}
		})
	})
}
