package analytics

// This file holds the drift endpoints: reference profiles, observations and
// the drift report.

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"abgate"
	"abgate/analytics/drift"
)

// DefaultDriftWindow is the window of a drift report without ?from=.
const DefaultDriftWindow = 24 * time.Hour

// checkNDJSON answers 415 unless the request is NDJSON.
func checkNDJSON(c *gin.Context) bool {
	if !isNDJSON(c.GetHeader("Content-Type")) {
		err := abgate.FieldErrorf("Content-Type", "Content-Type must be application/x-ndjson (one JSON object per line), got %q", c.GetHeader("Content-Type"))
		c.AbortWithStatusJSON(http.StatusUnsupportedMediaType, abgate.NewErrorBody(err))
		return false
	}
	return true
}

func (a *API) uploadReference(c *gin.Context) {
	if !checkNDJSON(c) {
		return
	}
	opts := ReferenceOptions{Variant: c.Query("variant")}
	if b := c.Query("bins"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil {
			a.fail(c, abgate.FieldErrorf("bins", "bins must be a whole number, got %q", b))
			return
		}
		opts.Bins = n
	}
	types, err := parseOverrides("types", c.Query("types"))
	if err != nil {
		a.fail(c, err)
		return
	}
	opts.Types = types
	methods, err := parseOverrides("methods", c.Query("methods"))
	if err != nil {
		a.fail(c, err)
		return
	}
	opts.Methods = map[string]drift.Method{}
	for name, m := range methods {
		method, err := drift.ParseMethod(m)
		if err != nil {
			a.fail(c, abgate.FieldErrorf("methods", "feature %q: %s", name, abgate.ErrorMessage(err)))
			return
		}
		opts.Methods[name] = method
	}
	p, err := BuildProfile(c.Param("name"), c.Request.Body, opts)
	if err != nil {
		a.fail(c, err)
		return
	}
	for _, f := range p.Features {
		if f.Type == Categorical && (f.Method == drift.MethodKS || f.Method == drift.MethodWasserstein) {
			a.fail(c, abgate.FieldErrorf("methods", "feature %q is categorical: %s needs a numeric feature", f.Name, f.Method))
			return
		}
	}
	if err := a.svc.SaveReference(c.Request.Context(), p); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, p)
}

func (a *API) getReference(c *gin.Context) {
	_, p, err := a.svc.Reference(c.Request.Context(), c.Param("name"), c.Query("variant"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (a *API) observe(c *gin.Context) {
	if !checkNDJSON(c) {
		return
	}
	res, err := a.svc.Observe(c.Request.Context(), c.Param("name"), c.Request.Body)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (a *API) drift(c *gin.Context) {
	now := a.svc.opts.Now().UTC()
	to, from := now, now.Add(-DefaultDriftWindow)
	for _, q := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := c.Query(q.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				a.fail(c, abgate.FieldErrorf(q.name, "%s must be an RFC 3339 time such as 2026-01-10T12:00:00Z, got %q", q.name, v))
				return
			}
			*q.t = t
		}
	}
	r, err := a.svc.Drift(c.Request.Context(), c.Param("key"), from, to)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) driftSummary(c *gin.Context) {
	days := 7
	if v := c.Query("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			a.fail(c, abgate.FieldErrorf("days", "days must be a whole number, got %q", v))
			return
		}
		days = n
	}
	sum, err := a.svc.Summary(c.Request.Context(), c.Param("key"), days)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sum)
}

// referenceFromTraffic answers POST /models/{m}/reference/from-traffic:
// a new reference from the observations of ?from= to ?to= (RFC 3339), of
// ?variant= or every variant.
func (a *API) referenceFromTraffic(c *gin.Context) {
	var from, to time.Time
	for _, q := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := c.Query(q.name)
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			a.fail(c, abgate.FieldErrorf(q.name, "%s is required, an RFC 3339 time such as 2026-01-10T12:00:00Z, got %q", q.name, v))
			return
		}
		*q.t = t
	}
	p, err := a.svc.ReferenceFromTraffic(c.Request.Context(), c.Param("name"), c.Query("variant"), from, to)
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.svc.SaveReference(c.Request.Context(), p); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, p)
}
