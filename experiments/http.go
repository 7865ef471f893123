package experiments

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"abgate"
)

// API serves the admin endpoints of experiments, models, API keys and the
// audit log under /api/v1.
type API struct {
	store *Store
	log   *slog.Logger

	// Explain, when not nil, serves GET /experiments/{key}/assign?unit=U
	// (viewer role): it explains the assignment of unit to e, an
	// experiment in any state, and its result is answered as JSON; its
	// error is answered like any other. When nil the route is not
	// registered. Set it before Mount.
	Explain func(ctx context.Context, e *Experiment, unit string, r *http.Request) (any, error)
}

// NewAPI returns the admin API over store. A nil log discards.
func NewAPI(store *Store, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{store: store, log: log}
}

// Mount adds the admin routes to g, which should be the /api/v1 group. It
// installs bearer authentication on g; each route then requires a role.
func (a *API) Mount(g *gin.RouterGroup) {
	g.Use(a.Authenticate)
	viewer, editor, admin := Require(RoleViewer), Require(RoleEditor), Require(RoleAdmin)

	g.GET("/experiments", viewer, a.listExperiments)
	g.POST("/experiments", editor, a.createExperiment)
	g.GET("/experiments/:key", viewer, a.getExperiment)
	g.PATCH("/experiments/:key", editor, a.updateExperiment)
	g.DELETE("/experiments/:key", editor, a.transition(ActionArchive))
	g.POST("/experiments/:key/start", editor, a.transition(ActionStart))
	g.POST("/experiments/:key/pause", editor, a.transition(ActionPause))
	g.POST("/experiments/:key/stop", editor, a.transition(ActionStop))
	if a.Explain != nil {
		g.GET("/experiments/:key/assign", viewer, a.explain)
	}

	g.GET("/models", viewer, a.listModels)
	g.POST("/models", editor, a.registerModel)
	g.GET("/models/:name", viewer, a.getModel)
	g.DELETE("/models/:name", editor, a.deleteModel)

	g.GET("/audit", viewer, a.audit)

	g.GET("/keys", admin, a.listKeys)
	g.POST("/keys", admin, a.createKey)
	g.DELETE("/keys/:name", admin, a.revokeKey)
}

// Authenticate is the bearer-token middleware: it puts the key's actor in
// the request context, or answers 401.
func (a *API) Authenticate(c *gin.Context) {
	header := c.GetHeader("Authorization")
	scheme, token, ok := strings.Cut(header, " ")
	if header != "" && (!ok || !strings.EqualFold(scheme, "Bearer")) {
		a.fail(c, abgate.Errorf(abgate.EUNAUTHORIZED, "Authorization must be \"Bearer <token>\""))
		return
	}
	actor, err := a.store.Authenticate(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Request = c.Request.WithContext(abgate.NewContextWithActor(c.Request.Context(), actor))
	c.Next()
}

// Require answers 403 unless the request's actor has at least role.
func Require(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		actor := abgate.ActorFromContext(c.Request.Context())
		if !RoleAllows(actor.Role, role) {
			WriteError(c, abgate.Errorf(abgate.EFORBIDDEN, "API key %q has role %s; this needs %s", actor.Name, actor.Role, role))
			c.Abort()
			return
		}
		c.Next()
	}
}

// WriteError answers err as the JSON error body with its status and aborts
// the handler chain.
func WriteError(c *gin.Context, err error) {
	abgate.WriteHTTPError(c.Writer, err)
	c.Abort()
}

// fail logs internal errors with their cause and answers err.
func (a *API) fail(c *gin.Context, err error) {
	if abgate.ErrorCode(err) == abgate.EINTERNAL && !isBodyTooLarge(err) {
		a.log.Error("admin request failed", "method", c.Request.Method, "path", c.FullPath(),
			"request_id", abgate.RequestIDFromContext(c.Request.Context()), "err", err)
	}
	WriteError(c, err)
}

// LimitBody is middleware that caps request bodies at n bytes: a declared
// Content-Length over n answers 413 at once, and reading past n fails with
// *http.MaxBytesError, which also answers 413.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			WriteError(c, &http.MaxBytesError{Limit: n})
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

func isBodyTooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

func (a *API) listExperiments(c *gin.Context) {
	f := ExperimentFilter{Status: Status(c.Query("status")), Route: c.Query("route")}
	switch f.Status {
	case "", StatusDraft, StatusRunning, StatusPaused, StatusStopped, StatusArchived:
	default:
		a.fail(c, abgate.FieldErrorf("status", "status %q is not one of draft, running, paused, stopped, archived", f.Status))
		return
	}
	es, err := a.store.Experiments(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	if es == nil {
		es = []*Experiment{}
	}
	c.JSON(http.StatusOK, gin.H{"experiments": es})
}

func (a *API) createExperiment(c *gin.Context) {
	var d Definition
	if err := abgate.DecodeJSON(c.Request.Body, &d); err != nil {
		a.fail(c, err)
		return
	}
	e, err := a.store.CreateExperiment(c.Request.Context(), d)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/experiments/"+e.Key)
	a.answer(c, http.StatusCreated, e)
}

func (a *API) getExperiment(c *gin.Context) {
	e, err := a.store.Experiment(c.Request.Context(), c.Param("key"))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, e)
}

func (a *API) explain(c *gin.Context) {
	unit := c.Query("unit")
	if unit == "" {
		a.fail(c, abgate.FieldErrorf("unit", "query parameter unit (the unit id to explain) is required"))
		return
	}
	e, err := a.store.Experiment(c.Request.Context(), c.Param("key"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out, err := a.Explain(c.Request.Context(), e, unit, c.Request)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// answer writes an experiment with its version as ETag.
func (a *API) answer(c *gin.Context, status int, e *Experiment) {
	c.Header("ETag", strconv.Quote(strconv.FormatInt(e.Version, 10)))
	c.JSON(status, e)
}

func (a *API) updateExperiment(c *gin.Context) {
	expected, err := ifMatch(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	var p Patch
	if err := abgate.DecodeJSON(c.Request.Body, &p); err != nil {
		a.fail(c, err)
		return
	}
	e, err := a.store.UpdateExperiment(c.Request.Context(), c.Param("key"), p, expected)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, e)
}

func (a *API) transition(action Action) gin.HandlerFunc {
	return func(c *gin.Context) {
		expected, err := ifMatch(c)
		if err != nil {
			a.fail(c, err)
			return
		}
		e, err := a.store.Transition(c.Request.Context(), c.Param("key"), action, expected)
		if err != nil {
			a.fail(c, err)
			return
		}
		a.answer(c, http.StatusOK, e)
	}
}

// ifMatch reads the expected version from If-Match ("3", 3 or W/"3"); nil
// when the header is absent.
func ifMatch(c *gin.Context) (*int64, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" || h == "*" {
		return nil, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return nil, abgate.FieldErrorf("If-Match", "If-Match must be the experiment's version as its ETag gives it (\"3\"), got %q", h)
	}
	return &v, nil
}

func (a *API) listModels(c *gin.Context) {
	ms, err := a.store.Models(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"models": ms})
}

func (a *API) registerModel(c *gin.Context) {
	var r ModelRegistration
	if err := abgate.DecodeJSON(c.Request.Body, &r); err != nil {
		a.fail(c, err)
		return
	}
	m, err := a.store.RegisterModel(c.Request.Context(), r)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/models/"+m.Name)
	c.JSON(http.StatusCreated, m)
}

func (a *API) getModel(c *gin.Context) {
	m, err := a.store.Model(c.Request.Context(), c.Param("name"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, m)
}

func (a *API) deleteModel(c *gin.Context) {
	if err := a.store.DeleteModel(c.Request.Context(), c.Param("name")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) audit(c *gin.Context) {
	f := AuditFilter{EntityType: c.Query("entity_type"), EntityKey: c.Query("entity_key")}
	if exp := c.Query("experiment"); exp != "" {
		f.EntityType, f.EntityKey = "experiment", exp
	}
	var err error
	if f.Limit, err = positiveQuery(c, "limit", 1000); err != nil {
		a.fail(c, err)
		return
	}
	beforeID, err := positiveQuery(c, "before_id", 1<<62)
	if err != nil {
		a.fail(c, err)
		return
	}
	f.BeforeID = int64(beforeID)
	entries, err := a.store.Audit(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"entries": entries})
}

func (a *API) listKeys(c *gin.Context) {
	keys, err := a.store.Keys(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"keys": keys})
}

func (a *API) createKey(c *gin.Context) {
	var r KeyRequest
	if err := abgate.DecodeJSON(c.Request.Body, &r); err != nil {
		a.fail(c, err)
		return
	}
	key, token, err := a.store.CreateKey(c.Request.Context(), r)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, struct {
		*APIKey
		Token string `json:"token"`
	}{key, token})
}

func (a *API) revokeKey(c *gin.Context) {
	key, err := a.store.RevokeKey(c.Request.Context(), c.Param("name"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, key)
}

// positiveQuery reads an optional positive integer query parameter of at
// most max; 0 when absent.
func positiveQuery(c *gin.Context, name string, max int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, abgate.FieldErrorf(name, "%s must be an integer from 1 to %d, got %q", name, max, v)
	}
	return n, nil
}
