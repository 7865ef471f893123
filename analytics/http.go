package analytics

// This file holds the report API: results (JSON and CSV), refresh, the
// NDJSON import and the power calculator.

import (
	"encoding/csv"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"abgate"
	"abgate/analytics/stats"
	"abgate/experiments"
)

// API serves the analytics endpoints under /api/v1.
type API struct {
	svc *Service
	log *slog.Logger
}

// NewAPI returns the report API of svc. A nil log discards.
func NewAPI(svc *Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{svc: svc, log: log}
}

// Mount adds the report routes to g, the /api/v1 group whose middleware
// already authenticates (experiments.API.Mount installs it).
func (a *API) Mount(g gin.IRoutes) {
	viewer, editor := experiments.Require(experiments.RoleViewer), experiments.Require(experiments.RoleEditor)
	g.GET("/experiments/:key/results", viewer, a.results)
	g.POST("/experiments/:key/refresh", editor, a.refresh)
	g.GET("/experiments/:key/drift", viewer, a.drift)
	g.GET("/experiments/:key/drift/summary", viewer, a.driftSummary)
	g.GET("/models/:name/reference", viewer, a.getReference)
	g.POST("/models/:name/reference/from-traffic", editor, a.referenceFromTraffic)
	g.GET("/power", viewer, a.power)
}

// MountImport adds the NDJSON uploads to g: POST /experiments/{key}/events,
// /models/{m}/reference and /models/{m}/observations. They stream bodies of
// any size, so g must not cap bodies; auth is the group's authentication
// middleware, run before the role check.
func (a *API) MountImport(g gin.IRoutes, auth gin.HandlerFunc) {
	editor := experiments.Require(experiments.RoleEditor)
	g.POST("/experiments/:key/events", auth, editor, a.importEvents)
	g.POST("/models/:name/reference", auth, editor, a.uploadReference)
	g.POST("/models/:name/observations", auth, editor, a.observe)
}

func (a *API) fail(c *gin.Context, err error) {
	if abgate.ErrorCode(err) == abgate.EINTERNAL {
		a.log.Error("analytics request failed", "method", c.Request.Method, "path", c.FullPath(),
			"request_id", abgate.RequestIDFromContext(c.Request.Context()), "err", err)
	}
	experiments.WriteError(c, err)
}

func (a *API) results(c *gin.Context) {
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		a.fail(c, abgate.FieldErrorf("format", "format %q is not json or csv", format))
		return
	}
	r, err := a.svc.Results(c.Request.Context(), c.Param("key"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", r.Experiment+"-results.csv"))
		c.Status(http.StatusOK)
		if err := WriteCSV(c.Writer, r); err != nil {
			a.log.Warn("results csv not fully written", "experiment", r.Experiment, "err", err)
		}
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) refresh(c *gin.Context) {
	refresh := a.svc.Refresh
	switch c.Query("rebuild") {
	case "", "false":
	case "true":
		refresh = a.svc.Rebuild
	default:
		a.fail(c, abgate.FieldErrorf("rebuild", "rebuild must be true or false, got %q", c.Query("rebuild")))
		return
	}
	r, err := refresh(c.Request.Context(), c.Param("key"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if _, err := a.svc.RefreshDrift(c.Request.Context(), c.Param("key")); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// importContentTypes are the media types of NDJSON bodies.
var importContentTypes = map[string]bool{
	"application/x-ndjson": true,
	"application/ndjson":   true,
	"application/jsonl":    true,
	"application/x-jsonl":  true,
}

// isNDJSON reports whether contentType is one of importContentTypes.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && importContentTypes[mt]
}

func (a *API) importEvents(c *gin.Context) {
	if !checkNDJSON(c) {
		return
	}
	res, err := a.svc.Import(c.Request.Context(), c.Param("key"), c.Request.Body)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// PowerResult is the answer of GET /api/v1/power.
type PowerResult struct {
	Metric      string   `json:"metric"` // binomial or continuous
	Baseline    *float64 `json:"baseline,omitempty"`
	Stddev      *float64 `json:"stddev,omitempty"`
	MDE         float64  `json:"mde"`
	RelativeMDE *float64 `json:"relative_mde,omitempty"`
	Alpha       float64  `json:"alpha"`
	Power       float64  `json:"power"`
	// NPerVariant is the units each variant needs (rounded up).
	NPerVariant float64 `json:"n_per_variant"`
	Variants    int     `json:"variants"`
	// NTotal is NPerVariant times Variants.
	NTotal float64 `json:"n_total"`
}

// power answers the sample size per variant for baseline (a conversion
// rate) or stddev (a continuous metric), mde (absolute), alpha and power;
// given n instead of mde, the minimum detectable effect for n per variant.
func (a *API) power(c *gin.Context) {
	res, err := Power(c.Request.URL.Query())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// Power computes the answer of GET /api/v1/power from its query
// parameters: baseline or stddev; mde or n; alpha (0.05), power (0.8),
// variants (2). EINVALID names a bad parameter.
func Power(q map[string][]string) (*PowerResult, error) {
	get := func(name string, def float64, required bool) (float64, bool, error) {
		vs, ok := q[name]
		if !ok || len(vs) == 0 || vs[0] == "" {
			if required {
				return 0, false, abgate.FieldErrorf(name, "%s is required", name)
			}
			return def, false, nil
		}
		v, err := strconv.ParseFloat(vs[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false, abgate.FieldErrorf(name, "%s must be a number, got %q", name, vs[0])
		}
		return v, true, nil
	}
	alpha, _, err := get("alpha", 0.05, false)
	if err != nil {
		return nil, err
	}
	pow, _, err := get("power", 0.8, false)
	if err != nil {
		return nil, err
	}
	nv, _, err := get("variants", 2, false)
	if err != nil {
		return nil, err
	}
	if nv < 2 || nv > 100 || nv != math.Trunc(nv) {
		return nil, abgate.FieldErrorf("variants", "variants must be a whole number from 2 to 100")
	}
	baseline, hasBaseline, err := get("baseline", 0, false)
	if err != nil {
		return nil, err
	}
	sd, hasSD, err := get("stddev", 0, false)
	if err != nil {
		return nil, err
	}
	if hasBaseline == hasSD {
		return nil, abgate.FieldErrorf("baseline", "give baseline (a conversion rate) or stddev (of a continuous metric), one of them")
	}
	mde, hasMDE, err := get("mde", 0, false)
	if err != nil {
		return nil, err
	}
	n, hasN, err := get("n", 0, false)
	if err != nil {
		return nil, err
	}
	if hasMDE == hasN {
		return nil, abgate.FieldErrorf("mde", "give mde (for the sample size) or n (for the minimum detectable effect), one of them")
	}
	if hasMDE && mde <= 0 {
		return nil, abgate.FieldErrorf("mde", "mde must be positive (an absolute difference), got %v", mde)
	}
	if hasN && n < 2 {
		return nil, abgate.FieldErrorf("n", "n must be at least 2 units per variant, got %v", n)
	}
	res := &PowerResult{Alpha: alpha, Power: pow, Variants: int(nv)}
	if hasBaseline {
		res.Metric = "binomial"
		res.Baseline = &baseline
		if hasMDE {
			res.MDE = mde
			res.NPerVariant, err = stats.SampleSizeProportions(baseline, mde, alpha, pow)
		} else {
			res.NPerVariant = n
			res.MDE, err = stats.MDEProportions(baseline, n, alpha, pow)
		}
		if err == nil && baseline > 0 {
			rel := res.MDE / baseline
			res.RelativeMDE = &rel
		}
	} else {
		res.Metric = "continuous"
		res.Stddev = &sd
		if hasMDE {
			res.MDE = mde
			res.NPerVariant, err = stats.SampleSizeMeans(sd, mde, alpha, pow)
		} else {
			res.NPerVariant = n
			res.MDE, err = stats.MDEMeans(sd, n, alpha, pow)
		}
	}
	if err != nil {
		return nil, err
	}
	if hasMDE {
		res.NPerVariant = math.Ceil(res.NPerVariant - 1e-9)
	}
	res.NTotal = res.NPerVariant * nv
	return res, nil
}

// csvHeader is the header line of the CSV report.
var csvHeader = []string{"experiment", "computed_at", "metric", "type", "role", "direction", "variant", "control", "n",
	"mean", "stddev", "abs_lift", "rel_lift", "ci95_low", "ci95_high", "rel_ci95_low", "rel_ci95_high",
	"p_value", "p_value_adjusted", "test", "significant", "chance_to_beat_control", "expected_loss",
	"sequential_p_value", "cuped_p_value", "srm_p_value", "srm_flagged"}

// WriteCSV writes r as CSV: one line per metric and variant, empty cells
// for undefined values.
func WriteCSV(w http.ResponseWriter, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	lo := func(p *[2]float64, i int) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(p[i], 'g', -1, 64)
	}
	for _, m := range r.Metrics {
		for _, v := range m.Variants {
			rec := []string{r.Experiment, r.ComputedAt.Format("2006-01-02T15:04:05.000Z07:00"), m.Key, m.Type, m.Role, m.Direction,
				v.Key, strconv.FormatBool(v.Control), strconv.FormatFloat(v.N, 'g', -1, 64),
				f(v.Mean), f(v.Stddev), f(v.AbsLift), f(v.RelLift), lo(v.CI95, 0), lo(v.CI95, 1), lo(v.RelCI95, 0), lo(v.RelCI95, 1),
				f(v.PValue), f(v.PValueAdjusted), v.Test, strconv.FormatBool(v.Significant), f(v.ChanceToBeatControl), f(v.ExpectedLoss),
				f(v.SequentialPValue), f(v.CUPEDPValue), f(r.SRM.PValue), strconv.FormatBool(r.SRM.Flagged)}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
