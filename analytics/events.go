package analytics

// This file holds the NDJSON import of POST /api/v1/experiments/{key}/events:
// exposures and outcomes for backfills, read line by line from the request
// body (never held in memory as a whole), each line validated, the valid
// ones written in batches, the rejects reported by line number. Events
// with an event id are stored once per experiment, so an import can be
// repeated safely.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"

	"abgate"
	"abgate/experiments"
)

// Limits of the NDJSON import.
const (
	// MaxEventLine is the longest line accepted, in bytes.
	MaxEventLine = 64 << 10
	// MaxReportedRejects is how many rejects the answer lists (all are
	// counted).
	MaxReportedRejects = 1000
	// importBatch is how many events one transaction writes.
	importBatch = 1000
)

// Event types.
const (
	EventExposure = "exposure"
	EventOutcome  = "outcome"
)

// Event is one line of the NDJSON import.
type Event struct {
	Type    string     `json:"type"`
	UnitID  string     `json:"unit_id"`
	Variant string     `json:"variant,omitempty"`
	Metric  string     `json:"metric,omitempty"`
	Value   *float64   `json:"value,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	EventID string     `json:"event_id,omitempty"`
	// RequestID ties an exposure to the outcome labels sent for it.
	RequestID string `json:"request_id,omitempty"`
	// Prediction is the predicted label of an exposure; Label the true
	// label of an accuracy outcome (strings or numbers).
	Prediction json.RawMessage `json:"prediction,omitempty"`
	Label      json.RawMessage `json:"label,omitempty"`
}

// ParseEvent decodes and checks one NDJSON line on its own (not against an
// experiment). Errors are EINVALID with a message naming the problem.
func ParseEvent(line []byte) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return ev, abgate.FieldErrorf(typeErr.Field, "%s must be a %s, got %s", typeErr.Field, jsonKind(typeErr.Type.String()), typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return ev, abgate.Errorf(abgate.EINVALID, "a line must be a JSON object, got %s", typeErr.Value)
		}
		var timeErr *time.ParseError
		if errors.As(err, &timeErr) {
			return ev, abgate.FieldErrorf("at", "at must be an RFC 3339 time such as 2026-01-10T12:00:00Z, got %q", timeErr.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return ev, abgate.FieldErrorf(strings.Trim(f, `"`), "unknown field %s", f)
		}
		return ev, abgate.Errorf(abgate.EINVALID, "not a JSON object: %v", err)
	}
	if dec.More() {
		return ev, abgate.Errorf(abgate.EINVALID, "one JSON object per line: found more after the first")
	}
	if ev.UnitID == "" {
		return ev, abgate.FieldErrorf("unit_id", "unit_id is required")
	}
	if len(ev.UnitID) > 256 {
		return ev, abgate.FieldErrorf("unit_id", "unit_id is longer than 256 bytes")
	}
	if len(ev.EventID) > 256 {
		return ev, abgate.FieldErrorf("event_id", "event_id is longer than 256 bytes")
	}
	if len(ev.RequestID) > 128 {
		return ev, abgate.FieldErrorf("request_id", "request_id is longer than 128 bytes")
	}
	switch ev.Type {
	case EventExposure:
		if ev.Variant == "" {
			return ev, abgate.FieldErrorf("variant", "an exposure needs variant")
		}
		if ev.Metric != "" || ev.Value != nil || len(ev.Label) > 0 {
			return ev, abgate.Errorf(abgate.EINVALID, "an exposure takes no metric, value or label")
		}
		if _, err := labelText(ev.Prediction, "prediction"); err != nil {
			return ev, err
		}
	case EventOutcome:
		if ev.Metric == "" {
			return ev, abgate.FieldErrorf("metric", "an outcome needs metric")
		}
		if ev.Variant != "" || len(ev.Prediction) > 0 {
			return ev, abgate.Errorf(abgate.EINVALID, "an outcome takes no variant or prediction")
		}
		label, err := labelText(ev.Label, "label")
		if err != nil {
			return ev, err
		}
		switch {
		case ev.Value == nil && label == nil:
			return ev, abgate.FieldErrorf("value", "an outcome needs value (or label, for accuracy)")
		case ev.Value != nil && label != nil:
			return ev, abgate.Errorf(abgate.EINVALID, "give value or label, not both")
		case label != nil && ev.RequestID == "":
			return ev, abgate.FieldErrorf("request_id", "a label needs the request_id of its prediction")
		}
	case "":
		return ev, abgate.FieldErrorf("type", "type is required: exposure or outcome")
	default:
		return ev, abgate.FieldErrorf("type", "type %q is not exposure or outcome", ev.Type)
	}
	return ev, nil
}

// jsonKind names a Go type of Event as its JSON kind.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "float"):
		return "number"
	case strings.Contains(goType, "Time"):
		return "RFC 3339 time string"
	default:
		return "string"
	}
}

// labelText returns a label given as a JSON string or number as text; nil
// when raw is empty or null.
func labelText(raw json.RawMessage, field string) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			return nil, abgate.FieldErrorf(field, "%s must be a string or a number", field)
		}
		s = n.String()
	}
	if s == "" || len(s) > 256 {
		return nil, abgate.FieldErrorf(field, "%s must be 1 to 256 characters", field)
	}
	return &s, nil
}

// ImportResult is the answer of an import.
type ImportResult struct {
	Accepted int `json:"accepted"`
	// Duplicates counts lines whose event id was imported before; they are
	// accepted and add nothing.
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Rejects    []ImportReject `json:"rejects"`
}

// ImportReject is a line refused, by its number (the first line is 1).
type ImportReject struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// importTarget is what an import checks lines against.
type importTarget struct {
	id       int64
	variants variantIDs
	metrics  map[string]string // key -> type
}

// Import reads NDJSON events from r into experiment key. Lines are checked
// on their own and against the experiment (its variants and metrics); the
// valid ones are written in transactions of importBatch events, so what was
// written stays written when a later line or the connection fails. The
// error is ENOTFOUND for an unknown experiment, EINVALID for a body that is
// not UTF-8 text lines, or the database's.
func (s *Service) Import(ctx context.Context, key string, r io.Reader) (*ImportResult, error) {
	e, id, ids, err := s.experiment(ctx, key)
	if err != nil {
		return nil, err
	}
	t := importTarget{id: id, variants: ids, metrics: map[string]string{}}
	for _, m := range e.Metrics {
		t.metrics[m.Key] = m.Type
	}
	res := &ImportResult{Rejects: []ImportReject{}}
	reject := func(line int, err error) {
		res.Rejected++
		if len(res.Rejects) < MaxReportedRejects {
			res.Rejects = append(res.Rejects, ImportReject{Line: line, Error: abgate.ErrorMessage(err)})
		}
	}
	now := s.opts.Now().UTC()
	var batch []Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		dups, err := s.writeEvents(ctx, t, batch, now)
		if err != nil {
			return err
		}
		res.Accepted += len(batch)
		res.Duplicates += dups
		batch = batch[:0]
		return nil
	}
	err = eachLine(r, func(line int, text []byte, tooLong bool) error {
		if tooLong {
			reject(line, abgate.Errorf(abgate.EINVALID, "line is longer than %d bytes", MaxEventLine))
			return nil
		}
		ev, perr := ParseEvent(text)
		if perr == nil {
			perr = t.check(&ev)
		}
		if perr != nil {
			reject(line, perr)
			return nil
		}
		batch = append(batch, ev)
		if len(batch) >= importBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		// What was read before the failure is kept.
		if ferr := flush(); ferr != nil {
			return res, ferr
		}
		return res, err
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, nil
}

// eachLine calls fn with each non-blank line of the NDJSON body r (without
// its newline, trimmed), numbered from 1; a line over MaxEventLine bytes is
// consumed to its end and passed as nil with tooLong. It stops at the end
// of r, at a read error, or at fn's error, and returns the error.
func eachLine(r io.Reader, fn func(line int, text []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := 1; ; line++ {
		buf = buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			var isPrefix bool
			chunk, isPrefix, err = br.ReadLine()
			if len(buf)+len(chunk) > MaxEventLine {
				tooLong = true
			} else if !tooLong {
				buf = append(buf, chunk...)
			}
			if err != nil || !isPrefix {
				break
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		if trimmed := bytes.TrimSpace(buf); tooLong || len(trimmed) > 0 {
			if tooLong {
				trimmed = nil
			}
			if ferr := fn(line, trimmed, tooLong); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// check checks ev against the experiment.
func (t importTarget) check(ev *Event) error {
	if ev.Type == EventExposure {
		if _, ok := t.variants[ev.Variant]; !ok {
			return abgate.FieldErrorf("variant", "variant %q is not a variant of the experiment", ev.Variant)
		}
		return nil
	}
	typ, ok := t.metrics[ev.Metric]
	switch {
	case !ok:
		return abgate.FieldErrorf("metric", "metric %q is not a metric of the experiment", ev.Metric)
	case len(ev.Label) > 0 && typ != experiments.MetricAccuracy:
		return abgate.FieldErrorf("label", "metric %q is %s: a label needs an accuracy metric", ev.Metric, typ)
	case ev.Value != nil && typ != experiments.MetricBinomial && typ != experiments.MetricContinuous:
		return abgate.FieldErrorf("value", "metric %q is %s: a value needs a binomial or continuous metric", ev.Metric, typ)
	case ev.Value != nil && (math.IsNaN(*ev.Value) || math.IsInf(*ev.Value, 0)):
		return abgate.FieldErrorf("value", "value must be a finite number")
	case ev.Value != nil && typ == experiments.MetricBinomial && *ev.Value != 0 && *ev.Value != 1:
		return abgate.FieldErrorf("value", "metric %q is binomial: value must be 0 or 1, got %v", ev.Metric, *ev.Value)
	}
	return nil
}

// importedExposure and importedOutcome are the rows an import writes.
type importedExposure struct {
	ExperimentID   int64
	VariantID      int64
	UnitID         string
	RequestID      string
	At             time.Time
	PredictedLabel *string
	EventID        *string
}

func (importedExposure) TableName() string { return "exposures" }

type importedOutcome struct {
	ExperimentID int64
	MetricKey    string
	UnitID       string
	RequestID    string
	Value        *float64
	Label        *string
	At           time.Time
	EventID      *string
}

func (importedOutcome) TableName() string { return "outcomes" }

type importedEvent struct {
	ExperimentID int64  `gorm:"primaryKey"`
	EventID      string `gorm:"primaryKey"`
}

func (importedEvent) TableName() string { return "imported_events" }

// writeEvents writes batch in one transaction, leaving out events whose id
// was imported before, and returns how many were left out.
func (s *Service) writeEvents(ctx context.Context, t importTarget, batch []Event, now time.Time) (int, error) {
	dups := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		dups = 0
		fresh := map[string]bool{}
		var ids []importedEvent
		seen := map[string]bool{}
		for _, ev := range batch {
			if ev.EventID != "" && !seen[ev.EventID] {
				seen[ev.EventID] = true
				ids = append(ids, importedEvent{ExperimentID: t.id, EventID: ev.EventID})
			}
		}
		for i := 0; i < len(ids); i += 500 {
			chunk := ids[i:min(i+500, len(ids))]
			var q strings.Builder
			args := make([]any, 0, 2*len(chunk))
			q.WriteString("INSERT INTO imported_events (experiment_id, event_id) VALUES ")
			for j, r := range chunk {
				if j > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?)")
				args = append(args, r.ExperimentID, r.EventID)
			}
			q.WriteString(" ON CONFLICT DO NOTHING RETURNING event_id")
			var inserted []string
			if err := tx.Raw(q.String(), args...).Scan(&inserted).Error; err != nil {
				return err
			}
			for _, id := range inserted {
				fresh[id] = true
			}
		}
		var exps []importedExposure
		var outs []importedOutcome
		for _, ev := range batch {
			if ev.EventID != "" {
				if !fresh[ev.EventID] {
					dups++
					continue
				}
				delete(fresh, ev.EventID) // a repeat within the batch is a duplicate too
			}
			at := now
			if ev.At != nil {
				at = ev.At.UTC()
			}
			var evID *string
			if ev.EventID != "" {
				id := ev.EventID
				evID = &id
			}
			if ev.Type == EventExposure {
				pred, _ := labelText(ev.Prediction, "prediction")
				exps = append(exps, importedExposure{ExperimentID: t.id, VariantID: t.variants[ev.Variant],
					UnitID: ev.UnitID, RequestID: ev.RequestID, At: at, PredictedLabel: pred, EventID: evID})
			} else {
				label, _ := labelText(ev.Label, "label")
				outs = append(outs, importedOutcome{ExperimentID: t.id, MetricKey: ev.Metric, UnitID: ev.UnitID,
					RequestID: ev.RequestID, Value: ev.Value, Label: label, At: at, EventID: evID})
			}
		}
		if len(exps) > 0 {
			if err := tx.CreateInBatches(exps, 500).Error; err != nil {
				return err
			}
		}
		if len(outs) > 0 {
			if err := tx.CreateInBatches(outs, 500).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import events: %w", err)
	}
	return dups, nil
}
