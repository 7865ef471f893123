package router

// This file holds POST /v1/feedback: outcomes and true labels sent by
// clients after a routed prediction, joined to the prediction's exposure by
// request id (or given a unit id and an experiment) and stored as rows of
// the outcomes table.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"abgate"
	"abgate/experiments"
)

// FeedbackMaxItems is the most items of one POST /v1/feedback.
const FeedbackMaxItems = 10000

// FeedbackItem is one item of POST /v1/feedback: the prediction it is
// about (RequestID, or UnitID with Experiment) and either a Metric with a
// Value, or a true Label (Metric then defaults to the experiment's first
// accuracy metric).
type FeedbackItem struct {
	RequestID  string     `json:"request_id"`
	UnitID     string     `json:"unit_id"`
	Experiment string     `json:"experiment"`
	Metric     string     `json:"metric"`
	Value      *float64   `json:"value"`
	Label      *string    `json:"-"`
	At         *time.Time `json:"at"`
	EventID    string     `json:"event_id"`
}

// feedbackWire is FeedbackItem as it arrives: the label is a string or a
// number.
type feedbackWire struct {
	RequestID  string          `json:"request_id"`
	UnitID     string          `json:"unit_id"`
	Experiment string          `json:"experiment"`
	Metric     string          `json:"metric"`
	Value      *float64        `json:"value"`
	Label      json.RawMessage `json:"label"`
	At         *time.Time      `json:"at"`
	EventID    string          `json:"event_id"`
}

// FeedbackReject is an item refused, by its index in the request (0 for a
// single object).
type FeedbackReject struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ParseFeedback parses the body of POST /v1/feedback: one object or an
// array of them. It returns the items that are well formed (with their
// indexes) and the rejects; the error (EINVALID) is for a body that is
// neither, or holds more than FeedbackMaxItems items.
func ParseFeedback(body []byte) (items []FeedbackItem, indexes []int, rejects []FeedbackReject, err error) {
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(body) == 0:
		return nil, nil, nil, abgate.Errorf(abgate.EINVALID, "empty body: send a feedback object or an array of them")
	case body[0] == '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, nil, nil, abgate.Errorf(abgate.EINVALID, "body is not a JSON array of feedback objects: %v", err)
		}
	case body[0] == '{':
		if !json.Valid(body) {
			return nil, nil, nil, abgate.Errorf(abgate.EINVALID, "body is not valid JSON")
		}
		raws = []json.RawMessage{body}
	default:
		return nil, nil, nil, abgate.Errorf(abgate.EINVALID, "body must be a feedback object or an array of them")
	}
	if len(raws) > FeedbackMaxItems {
		return nil, nil, nil, abgate.Errorf(abgate.EINVALID, "%d items: at most %d per request", len(raws), FeedbackMaxItems)
	}
	for i, raw := range raws {
		it, err := parseFeedbackItem(raw)
		if err != nil {
			rejects = append(rejects, FeedbackReject{Index: i, Error: err.Error()})
			continue
		}
		items = append(items, it)
		indexes = append(indexes, i)
	}
	return items, indexes, rejects, nil
}

func parseFeedbackItem(raw json.RawMessage) (FeedbackItem, error) {
	var w feedbackWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return FeedbackItem{}, fmt.Errorf("not a feedback object: %v", err)
	}
	it := FeedbackItem{RequestID: w.RequestID, UnitID: w.UnitID, Experiment: w.Experiment,
		Metric: w.Metric, Value: w.Value, At: w.At, EventID: w.EventID}
	if len(w.Label) > 0 && string(w.Label) != "null" {
		var s string
		if err := json.Unmarshal(w.Label, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(w.Label, &n); err != nil {
				return it, errors.New("label must be a string or a number")
			}
			s = n.String()
		}
		if s == "" || len(s) > 256 {
			return it, errors.New("label must be 1 to 256 characters")
		}
		it.Label = &s
	}
	switch {
	case it.RequestID == "" && (it.UnitID == "" || it.Experiment == ""):
		return it, errors.New("request_id, or unit_id and experiment, are required")
	case len(it.RequestID) > 128 || len(it.UnitID) > 256 || len(it.EventID) > 256:
		return it, errors.New("request_id, unit_id or event_id too long")
	case it.Value == nil && it.Label == nil:
		return it, errors.New("value (with metric) or label is required")
	case it.Value != nil && it.Label != nil:
		return it, errors.New("give value or label, not both")
	case it.Value != nil && it.Metric == "":
		return it, errors.New("metric is required with value")
	case it.Value != nil && (math.IsNaN(*it.Value) || math.IsInf(*it.Value, 0)):
		return it, errors.New("value must be a finite number")
	}
	return it, nil
}

// RecentExposures finds the exposure of a request routed moments ago,
// which may not be written yet; *Proxy is one.
type RecentExposures interface {
	RecentExposure(requestID string) (experimentID int64, unitID string, ok bool)
}

// FeedbackAPI serves POST /v1/feedback over a migrated database.
type FeedbackAPI struct {
	db     *gorm.DB
	recent RecentExposures
	log    *slog.Logger
	// MaxBodyBytes bounds a request body; 0 means 1 MiB.
	MaxBodyBytes int64
	now          func() time.Time
}

// NewFeedbackAPI returns the feedback API over db. recent nil looks up
// exposures in the database only (then feedback on a request arrives
// after its exposure is written, within a flush interval). log nil
// discards.
func NewFeedbackAPI(db *gorm.DB, recent RecentExposures, log *slog.Logger) *FeedbackAPI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FeedbackAPI{db: db, recent: recent, log: log, now: time.Now}
}

// Mount adds POST /v1/feedback to r.
func (f *FeedbackAPI) Mount(r gin.IRouter) {
	r.POST("/v1/feedback", f.handle)
}

// FeedbackResult is the answer of POST /v1/feedback: 200 when at least one
// item was stored (rejects listed), 400 with an error when every item was
// rejected.
type FeedbackResult struct {
	Accepted int              `json:"accepted"`
	Rejected []FeedbackReject `json:"rejected"`
}

func (f *FeedbackAPI) handle(c *gin.Context) {
	limit := f.MaxBodyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := readProxyBody(c, limit)
	if err != nil {
		experiments.WriteError(c, err)
		return
	}
	items, indexes, rejects, err := ParseFeedback(body)
	if err != nil {
		experiments.WriteError(c, err)
		return
	}
	n, more, err := f.Store(c.Request.Context(), items, indexes)
	if err != nil {
		f.log.Error("feedback not stored", "request_id", abgate.RequestIDFromContext(c.Request.Context()), "err", err)
		experiments.WriteError(c, abgate.Errorf(abgate.EINTERNAL, "feedback not stored"))
		return
	}
	rejects = append(rejects, more...)
	sortRejects(rejects)
	res := FeedbackResult{Accepted: n, Rejected: rejects}
	if res.Rejected == nil {
		res.Rejected = []FeedbackReject{}
	}
	if n == 0 {
		msg := "every feedback item was rejected"
		if len(rejects) > 0 {
			msg = fmt.Sprintf("item %d: %s", rejects[0].Index, rejects[0].Error)
		}
		c.JSON(http.StatusBadRequest, gin.H{
			"error":    abgate.NewErrorBody(abgate.Errorf(abgate.EINVALID, "%s", msg)).Error,
			"accepted": 0, "rejected": res.Rejected,
		})
		return
	}
	c.JSON(http.StatusOK, res)
}

func sortRejects(rs []FeedbackReject) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Index < rs[j-1].Index; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// outcomeRow is a row of the outcomes table.
type outcomeRow struct {
	ID           int64 `gorm:"primaryKey"`
	ExperimentID int64
	MetricKey    string
	UnitID       string
	RequestID    string
	Value        *float64
	Label        *string
	At           time.Time
	EventID      *string
}

func (outcomeRow) TableName() string { return "outcomes" }

// feedbackExperiment is what Store knows of an experiment.
type feedbackExperiment struct {
	id      int64
	metrics map[string]string // key -> type
	acc     string            // first accuracy metric
}

// Store resolves items (indexes: their positions in the request) to
// experiments and units and writes the outcome rows in one transaction. It
// returns how many were stored and the items rejected (unknown request id
// or experiment, metric not of the experiment); the error is the
// database's.
func (f *FeedbackAPI) Store(ctx context.Context, items []FeedbackItem, indexes []int) (int, []FeedbackReject, error) {
	db := f.db.WithContext(ctx)
	var rejects []FeedbackReject
	var rows []outcomeRow
	byID := map[int64]*feedbackExperiment{}
	byKey := map[string]*feedbackExperiment{}
	now := f.now().UTC()
	for i, it := range items {
		reject := func(format string, args ...any) {
			rejects = append(rejects, FeedbackReject{Index: indexes[i], Error: fmt.Sprintf(format, args...)})
		}
		var e *feedbackExperiment
		unit := it.UnitID
		if it.RequestID != "" {
			expID, u, ok, err := f.exposureOf(db, it.RequestID)
			if err != nil {
				return 0, nil, err
			}
			if !ok {
				reject("no prediction with request_id %q", it.RequestID)
				continue
			}
			if unit != "" && unit != u {
				reject("unit_id %q is not the unit of request_id %q", unit, it.RequestID)
				continue
			}
			unit = u
			if e = byID[expID]; e == nil {
				if e, err = f.experiment(db, "id = ?", expID); err != nil {
					return 0, nil, err
				}
				byID[expID] = e
			}
		} else {
			var err error
			if e = byKey[it.Experiment]; e == nil {
				if e, err = f.experiment(db, "key = ?", it.Experiment); err != nil {
					return 0, nil, err
				}
				byKey[it.Experiment] = e
			}
		}
		if e == nil {
			reject("no experiment %q", it.Experiment)
			continue
		}
		metric := it.Metric
		if it.Label != nil && metric == "" {
			if metric = e.acc; metric == "" {
				reject("the experiment has no accuracy metric for a label")
				continue
			}
		}
		typ, ok := e.metrics[metric]
		switch {
		case !ok:
			reject("metric %q is not a metric of the experiment", metric)
			continue
		case it.Label != nil && typ != experiments.MetricAccuracy:
			reject("metric %q is %s: a label needs an accuracy metric", metric, typ)
			continue
		case it.Value != nil && typ != experiments.MetricBinomial && typ != experiments.MetricContinuous:
			reject("metric %q is %s: a value needs a binomial or continuous metric", metric, typ)
			continue
		}
		at := now
		if it.At != nil {
			at = it.At.UTC()
		}
		row := outcomeRow{ExperimentID: e.id, MetricKey: metric, UnitID: unit, RequestID: it.RequestID,
			Value: it.Value, Label: it.Label, At: at}
		if it.EventID != "" {
			ev := it.EventID
			row.EventID = &ev
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		if err := db.CreateInBatches(rows, 500).Error; err != nil {
			return 0, nil, err
		}
	}
	return len(rows), rejects, nil
}

// exposureOf finds the experiment and unit of the primary (not shadow)
// exposure of requestID: in the recently routed requests, else in the
// database.
func (f *FeedbackAPI) exposureOf(db *gorm.DB, requestID string) (int64, string, bool, error) {
	if f.recent != nil {
		if id, u, ok := f.recent.RecentExposure(requestID); ok {
			return id, u, true, nil
		}
	}
	var rows []struct {
		ExperimentID int64
		UnitID       string
	}
	err := db.Raw("SELECT experiment_id, unit_id FROM exposures WHERE request_id = ? AND shadow = ? LIMIT 1", requestID, false).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return 0, "", false, err
	}
	return rows[0].ExperimentID, rows[0].UnitID, true, nil
}

// experiment loads the id and metrics of the experiment matching where;
// nil when there is none.
func (f *FeedbackAPI) experiment(db *gorm.DB, where string, arg any) (*feedbackExperiment, error) {
	var rows []struct {
		ID  int64
		Key string
	}
	if err := db.Raw("SELECT id, key FROM experiments WHERE "+where+" LIMIT 1", arg).Scan(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	x, err := experiments.NewStore(db, nil).Experiment(db.Statement.Context, rows[0].Key)
	if abgate.ErrorCode(err) == abgate.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	e := &feedbackExperiment{id: rows[0].ID, metrics: map[string]string{}}
	for _, m := range x.Metrics {
		e.metrics[m.Key] = m.Type
		if m.Type == experiments.MetricAccuracy && e.acc == "" {
			e.acc = m.Key
		}
	}
	return e, nil
}

// recentExposures remembers the experiment and unit of the last routed
// requests, in two generations of at most recentPerGeneration entries, so
// that feedback sent right after a prediction finds it before its exposure
// is written. The generations hold no pointers, so that the garbage
// collector does not walk their entries on every cycle: each keeps the
// request and unit ids in one byte arena, indexed by a hash of the request
// id. The zero value is empty and ready to use.
type recentExposures struct {
	mu        sync.Mutex
	seed      maphash.Seed // made with the first generation
	cur, prev *recentGeneration
}

type recentExposure struct {
	experimentID int64
	unitID       string
}

const recentPerGeneration = 50000

// recentGeneration is one generation of recentExposures.
type recentGeneration struct {
	index map[uint64]recentSlot // by the hash of the request id
	arena []byte
}

// recentSlot locates an entry in its generation's arena: the request id
// at off, then the unit id.
type recentSlot struct {
	experimentID    int64
	off             uint32
	reqLen, unitLen uint32
}

func (r *recentExposures) add(requestID string, experimentID int64, unitID string) {
	if requestID == "" {
		return
	}
	n := len(requestID) + len(unitID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		r.seed = maphash.MakeSeed()
	}
	if g := r.cur; g == nil || len(g.index) >= recentPerGeneration || len(g.arena)+n > math.MaxUint32 {
		r.prev = r.cur
		r.cur = &recentGeneration{
			index: make(map[uint64]recentSlot, recentPerGeneration),
			arena: make([]byte, 0, recentPerGeneration*48), // a 32-digit request id and a short unit id
		}
	}
	if n > math.MaxUint32 {
		return
	}
	g := r.cur
	slot := recentSlot{experimentID: experimentID, off: uint32(len(g.arena)), reqLen: uint32(len(requestID)), unitLen: uint32(len(unitID))}
	g.arena = append(append(g.arena, requestID...), unitID...)
	g.index[maphash.String(r.seed, requestID)] = slot
}

func (r *recentExposures) get(requestID string) (recentExposure, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return recentExposure{}, false
	}
	h := maphash.String(r.seed, requestID)
	for _, g := range [2]*recentGeneration{r.cur, r.prev} {
		if g == nil {
			continue
		}
		// A different request id of the same hash replaced the entry: a
		// miss, as if it had aged out.
		if s, ok := g.index[h]; ok && string(g.arena[s.off:s.off+s.reqLen]) == requestID {
			unit := g.arena[s.off+s.reqLen : s.off+s.reqLen+s.unitLen]
			return recentExposure{s.experimentID, string(unit)}, true
		}
	}
	return recentExposure{}, false
}

// RecentExposure implements RecentExposures over the requests this Proxy
// routed lately.
func (p *Proxy) RecentExposure(requestID string) (int64, string, bool) {
	e, ok := p.recent.get(requestID)
	return e.experimentID, e.unitID, ok
}

var _ RecentExposures = (*Proxy)(nil)
