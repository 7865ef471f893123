package analytics

// This file holds POST /api/v1/models/{m}/observations: NDJSON rows of
// feature values seen in production outside the router (with an optional
// variant, prediction, true label and time), binned on the model's
// reference profile and added to the hourly histograms of drift_counts;
// labelled predictions add to drift_confusion.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"gorm.io/gorm"

	"abgate"
)

// The keys of an observation row that are not features.
const (
	obsVariant    = "variant"
	obsPrediction = "prediction"
	obsLabel      = "label"
	obsAt         = "at"
)

// ObserveResult is the answer of an observations upload.
type ObserveResult struct {
	Accepted int            `json:"accepted"`
	Rejected int            `json:"rejected"`
	Rejects  []ImportReject `json:"rejects"`
	// NewFeatures lists features the reference does not have; they are
	// counted (as "new feature" in drift reports) but not binned.
	NewFeatures []string `json:"new_features"`
}

// countKey is a cell of drift_counts.
type countKey struct {
	ref     int64
	variant string
	feature string
	hour    time.Time
	bin     int
}

type confusionKey struct {
	variant, label, prediction string
	hour                       time.Time
}

// observer accumulates the counts of an upload.
type observer struct {
	counts    map[countKey]float64
	confusion map[confusionKey]float64
}

// Observe reads NDJSON observations of model from r into the histograms.
// Lines are checked against the reference (its feature types); bad lines
// are rejected with their number, the rest counted. ENOTFOUND when the
// model has no reference.
func (s *Service) Observe(ctx context.Context, model string, r io.Reader) (*ObserveResult, error) {
	refs := map[string]struct {
		id int64
		p  *Profile
	}{}
	reference := func(variant string) (int64, *Profile, error) {
		if x, ok := refs[variant]; ok {
			return x.id, x.p, nil
		}
		id, p, err := s.Reference(ctx, model, variant)
		if err != nil {
			return 0, nil, err
		}
		refs[variant] = struct {
			id int64
			p  *Profile
		}{id, p}
		return id, p, nil
	}
	if _, _, err := reference(""); err != nil {
		if abgate.ErrorCode(err) != abgate.ENOTFOUND {
			return nil, err
		}
		// A model may have only per-variant references: lines then name
		// their variant.
		var n int64
		if err := s.db.WithContext(ctx).Table("drift_references").Where("model = ?", model).Count(&n).Error; err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, err
		}
	}
	res := &ObserveResult{Rejects: []ImportReject{}, NewFeatures: []string{}}
	newFeatures := map[string]bool{}
	reject := func(line int, err error) {
		res.Rejected++
		if len(res.Rejects) < MaxReportedRejects {
			res.Rejects = append(res.Rejects, ImportReject{Line: line, Error: abgate.ErrorMessage(err)})
		}
	}
	ob := &observer{counts: map[countKey]float64{}, confusion: map[confusionKey]float64{}}
	now := s.opts.Now().UTC()
	err := eachLine(r, func(line int, text []byte, tooLong bool) error {
		if tooLong {
			reject(line, abgate.Errorf(abgate.EINVALID, "line is longer than %d bytes", MaxEventLine))
			return nil
		}
		if perr := ob.add(text, now, reference, newFeatures); perr != nil {
			reject(line, perr)
		} else {
			res.Accepted++
		}
		if len(ob.counts) >= 50_000 {
			return s.flushObservations(ctx, model, ob)
		}
		return nil
	})
	if err != nil {
		if ferr := s.flushObservations(ctx, model, ob); ferr != nil {
			return res, ferr
		}
		return res, err
	}
	if err := s.flushObservations(ctx, model, ob); err != nil {
		return res, err
	}
	for f := range newFeatures {
		res.NewFeatures = append(res.NewFeatures, f)
	}
	return res, nil
}

// add bins one observation line; nothing is counted when it is rejected.
func (ob *observer) add(line []byte, now time.Time, reference func(string) (int64, *Profile, error), newFeatures map[string]bool) error {
	row, err := ParseReferenceRow(line)
	if err != nil {
		return err
	}
	variant := ""
	if v, ok := row[obsVariant]; ok {
		s, isString := v.(string)
		if !isString || s == "" || len(s) > 64 {
			return abgate.FieldErrorf(obsVariant, "variant must be a variant key (a string)")
		}
		variant = s
	}
	at := now
	if v, ok := row[obsAt]; ok {
		s, isString := v.(string)
		t, perr := time.Parse(time.RFC3339Nano, s)
		if !isString || perr != nil {
			return abgate.FieldErrorf(obsAt, "at must be an RFC 3339 time such as 2026-01-10T12:00:00Z")
		}
		at = t.UTC()
	}
	hour := at.Truncate(time.Hour)
	refID, p, err := reference(variant)
	if err != nil {
		return err
	}
	var label, prediction *string
	if v, ok := row[obsLabel]; ok && v != nil {
		s, isCat := categoryOf(v)
		if !isCat {
			return abgate.FieldErrorf(obsLabel, "label must be a string, number or boolean")
		}
		label = &s
	}
	if v, ok := row[obsPrediction]; ok && v != nil {
		s, isCat := categoryOf(v)
		if !isCat {
			return abgate.FieldErrorf(obsPrediction, "prediction must be a string, number or boolean")
		}
		prediction = &s
	}
	if label != nil && prediction == nil {
		return abgate.FieldErrorf(obsLabel, "a label needs the prediction it is the truth of")
	}
	// Bin every feature first, so that a bad value rejects the whole line.
	type cell struct {
		feature string
		bin     int
	}
	var cells []cell
	for name, v := range row {
		switch name {
		case obsVariant, obsAt, obsLabel:
			continue
		}
		f := p.feature(name)
		if f == nil {
			cells = append(cells, cell{name, -2})
			continue
		}
		bin, err := f.binOf(v)
		if err != nil {
			return err
		}
		cells = append(cells, cell{name, bin})
	}
	for _, c := range cells {
		if c.bin == -2 {
			newFeatures[c.feature] = true
		}
		ob.counts[countKey{refID, variant, c.feature, hour, c.bin}]++
	}
	if label != nil {
		ob.confusion[confusionKey{variant, *label, *prediction, hour}]++
	}
	return nil
}

// flushObservations adds the accumulated counts to the tables, in one
// transaction, and empties them.
func (s *Service) flushObservations(ctx context.Context, model string, ob *observer) error {
	if len(ob.counts) == 0 && len(ob.confusion) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := upsertAdd(tx, "drift_counts", []string{"reference_id", "variant", "feature", "hour", "bin"}, len(ob.counts), func(add func(...any)) {
			for k, n := range ob.counts {
				add(k.ref, k.variant, k.feature, k.hour, k.bin, n)
			}
		}); err != nil {
			return err
		}
		return upsertAdd(tx, "drift_confusion", []string{"model", "variant", "hour", "label", "prediction"}, len(ob.confusion), func(add func(...any)) {
			for k, n := range ob.confusion {
				add(model, k.variant, k.hour, k.label, k.prediction, n)
			}
		})
	})
	if err != nil {
		return fmt.Errorf("store observations: %w", err)
	}
	clear(ob.counts)
	clear(ob.confusion)
	return nil
}

// upsertAdd inserts rows of key columns plus a count into table, adding
// the count to rows that exist, in statements of at most 500 rows.
func upsertAdd(tx *gorm.DB, table string, keys []string, n int, rows func(add func(...any))) error {
	if n == 0 {
		return nil
	}
	cols := append(append([]string{}, keys...), "count")
	rowParams := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	tail := " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET count = " + table + ".count + excluded.count"
	var args []any
	var vals []string
	flush := func() error {
		if len(vals) == 0 {
			return nil
		}
		err := tx.Exec(head+strings.Join(vals, ", ")+tail, args...).Error
		args, vals = args[:0], vals[:0]
		return err
	}
	var err error
	rows(func(v ...any) {
		if err != nil {
			return
		}
		args = append(args, v...)
		vals = append(vals, rowParams)
		if len(vals) >= 500 {
			err = flush()
		}
	})
	if err != nil {
		return err
	}
	return flush()
}
