package migrations

import (
	"slices"
	"testing"
)

func TestParseFileName(t *testing.T) {
	tests := []struct {
		file   string
		want   Migration
		wantOK bool
	}{
		{"0001_init.sql", Migration{Version: 1, Name: "init"}, true},
		{"0042_add_outcome_index.sql", Migration{Version: 42, Name: "add_outcome_index"}, true},
		{"12345_big.sql", Migration{Version: 12345, Name: "big"}, true},
		{"001_short.sql", Migration{}, false},
		{"0000_zero.sql", Migration{}, false},
		{"0001_.sql", Migration{}, false},
		{"0001init.sql", Migration{}, false},
		{"0001_init.txt", Migration{}, false},
		{"00x1_init.sql", Migration{}, false},
		{"+001_init.sql", Migration{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, ok := parseFileName(tt.file)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseFileName(%q) = %+v, %v; want %+v, %v", tt.file, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestDialectsHaveTheSameMigrations checks that every migration exists for
// both dialects, so a database can move from SQLite to PostgreSQL at any
// version.
func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := func(d Dialect) []string {
		scripts, err := load(d)
		if err != nil {
			t.Fatalf("load(%s): %v", d, err)
		}
		var s []string
		for _, sc := range scripts {
			s = append(s, sc.Migration.String())
		}
		return s
	}
	got, want := names(Postgres), names(SQLite)
	if len(want) == 0 {
		t.Fatal("no SQLite migrations embedded")
	}
	if !slices.Equal(got, want) {
		t.Errorf("postgres migrations = %v; sqlite migrations = %v", got, want)
	}
}
