package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"abgate"
)

type auditRow struct {
	ID         int64 `gorm:"primaryKey"`
	At         time.Time
	Actor      string
	Action     string
	EntityType string
	EntityKey  string
	Before     *string
	After      *string
	Diff       *string
}

func (auditRow) TableName() string { return "audit_log" }

// AuditEntry is one recorded change: who (the API key's name, or "system"),
// what (action such as experiment.update), on which entity, when, the
// entity before and after, and the diff between them.
type AuditEntry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	EntityType string          `json:"entity_type"`
	EntityKey  string          `json:"entity_key"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Diff       []Change        `json:"diff"`
}

// Change is one changed value of an audited entity. Path is dotted; list
// elements with a key are addressed by it ("variants.v2.weight").
type Change struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

func newAuditRow(at time.Time, actor, action, entityType, entityKey string, before, after any) (*auditRow, error) {
	row := &auditRow{At: at, Actor: actor, Action: action, EntityType: entityType, EntityKey: entityKey}
	b, bj, err := plain(before)
	if err != nil {
		return nil, err
	}
	a, aj, err := plain(after)
	if err != nil {
		return nil, err
	}
	row.Before, row.After = bj, aj
	changes := Diff(b, a)
	d, err := json.Marshal(changes)
	if err != nil {
		return nil, err
	}
	ds := string(d)
	row.Diff = &ds
	return row, nil
}

// plain returns v as generic JSON values and as JSON text (nil for nil).
func plain(v any) (any, *string, error) {
	if rv := reflect.ValueOf(v); !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, err
	}
	s := string(b)
	return out, &s, nil
}

// ignoredPaths are bookkeeping fields left out of diffs.
var ignoredPaths = map[string]bool{"version": true, "updated_at": true}

// Diff lists the changes from before to after, two values decoded from
// JSON, in path order. Objects are compared field by field; lists whose
// elements all have a "key" are compared by key, other lists as a whole.
func Diff(before, after any) []Change {
	changes := []Change{}
	diff("", before, after, &changes)
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes
}

func diff(path string, before, after any, out *[]Change) {
	if ignoredPaths[path] {
		return
	}
	bm, bok := before.(map[string]any)
	am, aok := after.(map[string]any)
	if bok && aok {
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for k := range keys {
			diff(join(path, k), bm[k], am[k], out)
		}
		return
	}
	bl, bkeyed := keyed(before)
	al, akeyed := keyed(after)
	if bkeyed && akeyed {
		diff(path, bl, al, out)
		return
	}
	if !reflect.DeepEqual(before, after) {
		*out = append(*out, Change{Path: path, Before: before, After: after})
	}
}

// keyed turns a list of objects that all have a string "key" into a map
// by key.
func keyed(v any) (map[string]any, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	m := make(map[string]any, len(list))
	for _, el := range list {
		obj, ok := el.(map[string]any)
		if !ok {
			return nil, false
		}
		k, ok := obj["key"].(string)
		if !ok {
			return nil, false
		}
		m[k] = obj
	}
	return m, true
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// AuditFilter selects audit entries. Zero values select everything.
type AuditFilter struct {
	EntityType string
	EntityKey  string
	// BeforeID pages backwards: only entries with a smaller id.
	BeforeID int64
	// Limit caps the count; 0 means 100, at most 1000.
	Limit int
}

// Audit lists audit entries, newest first.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return nil, abgate.FieldErrorf("limit", "limit must be at most 1000, got %d", f.Limit)
	}
	q := s.db.WithContext(ctx).Order("id DESC").Limit(f.Limit)
	if f.EntityType != "" {
		q = q.Where("entity_type = ?", f.EntityType)
	}
	if f.EntityKey != "" {
		q = q.Where("entity_key = ?", f.EntityKey)
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	var rows []auditRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		e := AuditEntry{ID: r.ID, At: r.At.UTC(), Actor: r.Actor, Action: r.Action, EntityType: r.EntityType, EntityKey: r.EntityKey, Diff: []Change{}}
		if r.Before != nil {
			e.Before = json.RawMessage(*r.Before)
		}
		if r.After != nil {
			e.After = json.RawMessage(*r.After)
		}
		if r.Diff != nil {
			if err := json.Unmarshal([]byte(*r.Diff), &e.Diff); err != nil {
				return nil, fmt.Errorf("audit entry %d: diff: %w", r.ID, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}
