package analytics

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"gorm.io/gorm"

	"abgate"
	"abgate/migrations/dbtest"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name, line string
		field      string // "" = valid
		msg        string // part of the message
	}{
		{"exposure", `{"type":"exposure","unit_id":"u1","variant":"a","at":"2026-01-10T12:00:00Z"}`, "", ""},
		{"outcome", `{"type":"outcome","unit_id":"u1","metric":"conv","value":1,"event_id":"e1"}`, "", ""},
		{"label", `{"type":"outcome","unit_id":"u1","metric":"acc","label":3,"request_id":"r1"}`, "", ""},
		{"no type", `{"unit_id":"u1","variant":"a"}`, "type", "type is required"},
		{"bad type", `{"type":"click","unit_id":"u1"}`, "type", `"click"`},
		{"no unit", `{"type":"exposure","variant":"a"}`, "unit_id", "unit_id is required"},
		{"no variant", `{"type":"exposure","unit_id":"u1"}`, "variant", "needs variant"},
		{"no metric", `{"type":"outcome","unit_id":"u1","value":1}`, "metric", "needs metric"},
		{"no value", `{"type":"outcome","unit_id":"u1","metric":"m"}`, "value", "needs value"},
		{"value string", `{"type":"outcome","unit_id":"u1","metric":"m","value":"12"}`, "value", "value must be a number"},
		{"bad time", `{"type":"exposure","unit_id":"u1","variant":"a","at":"yesterday"}`, "at", "RFC 3339"},
		{"unknown field", `{"type":"exposure","unit_id":"u1","variant":"a","colour":"red"}`, "colour", "unknown field"},
		{"array", `[1,2]`, "", "must be a JSON object"},
		{"two objects", `{"type":"exposure","unit_id":"u1","variant":"a"} {}`, "", "one JSON object per line"},
		{"label without request", `{"type":"outcome","unit_id":"u1","metric":"acc","label":"cat"}`, "request_id", "request_id"},
		{"value and label", `{"type":"outcome","unit_id":"u1","metric":"acc","label":"cat","value":1,"request_id":"r"}`, "", "not both"},
		{"exposure with value", `{"type":"exposure","unit_id":"u1","variant":"a","value":1}`, "", "no metric, value or label"},
		{"long unit", `{"type":"exposure","unit_id":"` + strings.Repeat("x", 300) + `","variant":"a"}`, "unit_id", "256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tt.line))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("ParseEvent = %v, want no error", err)
				}
				return
			}
			if abgate.ErrorCode(err) != abgate.EINVALID {
				t.Fatalf("ParseEvent error = %v, want EINVALID", err)
			}
			if !strings.Contains(abgate.ErrorMessage(err), tt.msg) {
				t.Errorf("message %q does not contain %q", abgate.ErrorMessage(err), tt.msg)
			}
			if tt.field != "" && abgate.ErrorField(err) != tt.field {
				t.Errorf("field = %q, want %q", abgate.ErrorField(err), tt.field)
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"exposure","unit_id":"u1","variant":"a","at":"2026-01-10T12:00:00Z"}`))
	f.Add([]byte(`{"type":"outcome","unit_id":"u1","metric":"conv","value":1e308,"event_id":"e1"}`))
	f.Add([]byte(`{"type":"outcome","unit_id":"u1","metric":"acc","label":-0.5,"request_id":"r1"}`))
	f.Add([]byte(`{"type":"outcome","unit_id":"u1","metric":"acc","label":null,"value":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := ParseEvent(line)
		if err != nil {
			if abgate.ErrorCode(err) != abgate.EINVALID || abgate.ErrorMessage(err) == "" {
				t.Fatalf("error %v is not an EINVALID with a message", err)
			}
			return
		}
		if ev.UnitID == "" || (ev.Type != EventExposure && ev.Type != EventOutcome) {
			t.Fatalf("accepted an event without unit or type: %+v", ev)
		}
		if ev.Type == EventOutcome && ev.Value == nil && len(ev.Label) == 0 {
			t.Fatalf("accepted an outcome without value or label: %+v", ev)
		}
		if ev.Type == EventExposure && ev.Variant == "" {
			t.Fatalf("accepted an exposure without variant: %+v", ev)
		}
		if !utf8.ValidString(ev.UnitID) && len(ev.UnitID) > 256 {
			t.Fatalf("accepted a unit id over 256 bytes")
		}
	})
}

func TestImport(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := newFixture(t, db, fixtureDefinition())
		lines := []string{
			`{"type":"exposure","unit_id":"u1","variant":"a","at":"2026-01-10T12:00:00Z","event_id":"x1"}`,
			`{"type":"exposure","unit_id":"u2","variant":"zz","event_id":"x2"}`, // 2: unknown variant
			`{"type":"outcome","unit_id":"u1","metric":"conv","value":1,"event_id":"o1"}`,
			`{"type":"outcome","unit_id":"u1","metric":"nope","value":1}`,    // 4: unknown metric
			`{"type":"outcome","unit_id":"u1","metric":"rev","value":"ten"}`, // 5: not a number
			`{"type":"outcome","unit_id":"u1","metric":"rev","value":12.5,"event_id":"o2"}`,
			``,
			`{"type":"outcome","unit_id":"u1","metric":"conv","value":7}`,              // 8: binomial value
			`{"type":"outcome","unit_id":"` + strings.Repeat("x", MaxEventLine) + `"}`, // 9: too long
			`{"type":"outcome","unit_id":"u1","metric":"acc","value":1}`,               // 10: accuracy takes labels
			`not json`, // 11
			`{"type":"outcome","unit_id":"u1","metric":"acc","label":"cat","request_id":"r1","event_id":"o3"}`,
			`{"type":"outcome","unit_id":"u1","metric":"rev","value":1,"event_id":"o2"}`, // repeats o2 in the body
		}
		body := strings.Join(lines, "\n")
		res, err := s.Import(t.Context(), "exp", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		wantLines := []int{2, 4, 5, 8, 9, 10, 11}
		if res.Accepted != 5 || res.Rejected != len(wantLines) || res.Duplicates != 1 {
			t.Errorf("result = %+v, want 5 accepted (1 duplicate), %d rejected", res, len(wantLines))
		}
		for i, r := range res.Rejects {
			if i < len(wantLines) && r.Line != wantLines[i] {
				t.Errorf("reject %d at line %d, want line %d (%s)", i, r.Line, wantLines[i], r.Error)
			}
		}
		if len(res.Rejects) == len(wantLines) {
			for i, part := range []string{`variant "zz"`, `metric "nope"`, "value must be a number", "value must be 0 or 1", "longer than", "needs a binomial or continuous", "not a JSON object"} {
				if !strings.Contains(res.Rejects[i].Error, part) {
					t.Errorf("reject of line %d = %q, want it to mention %q", res.Rejects[i].Line, res.Rejects[i].Error, part)
				}
			}
		}
		count := func(table string) int64 {
			var n int64
			if err := db.Table(table).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if got := count("exposures"); got != 1 {
			t.Errorf("exposures = %d, want 1", got)
		}
		if got := count("outcomes"); got != 3 {
			t.Errorf("outcomes = %d, want 3", got)
		}
		// Repeating the import adds nothing that had an event id.
		res2, err := s.Import(t.Context(), "exp", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if res2.Duplicates != 5 || res2.Accepted != 5 {
			t.Errorf("repeat = %+v, want 5 accepted, all duplicates", res2)
		}
		if got := count("exposures"); got != 1 {
			t.Errorf("exposures after the repeat = %d, want 1", got)
		}
		if got := count("outcomes"); got != 3 {
			t.Errorf("outcomes after the repeat = %d, want 3", got)
		}
	})
}

func TestImportUnknownExperiment(t *testing.T) {
	db := dbtest.SQLite(t)
	s, _ := newFixture(t, db, fixtureDefinition())
	_, err := s.Import(t.Context(), "nope", strings.NewReader(`{}`))
	if abgate.ErrorCode(err) != abgate.ENOTFOUND {
		t.Errorf("Import into an unknown experiment = %v, want ENOTFOUND", err)
	}
}

// TestImportBatches imports more lines than one transaction writes.
func TestImportBatches(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := newFixture(t, db, fixtureDefinition())
		var b strings.Builder
		const n = 2*importBatch + 17
		for i := range n {
			fmt.Fprintf(&b, `{"type":"exposure","unit_id":"u%d","variant":"b","event_id":"e%d"}`+"\n", i, i)
		}
		res, err := s.Import(t.Context(), "exp", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != n || res.Rejected != 0 {
			t.Errorf("result = %+v, want %d accepted", res, n)
		}
		var got int64
		db.Table("exposures").Count(&got)
		if got != n {
			t.Errorf("exposures = %d, want %d", got, n)
		}
	})
}
