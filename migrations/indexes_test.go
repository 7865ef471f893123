package migrations_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"abgate/migrations"
	"abgate/migrations/dbtest"
)

// TestQueriesUseIndexes checks that the queries the router and analytics
// run most are served by the indexes made for them.
func TestQueriesUseIndexes(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		sqlite   string // index in the SQLite plan
		postgres string // index in the PostgreSQL plan (partition indexes are named after their columns)
	}{
		{
			"variant counts of an experiment",
			`SELECT variant_id, count(*) FROM exposures WHERE experiment_id = 1 GROUP BY variant_id`,
			"exposures_experiment_unit", "experiment_id_unit_id_at_variant_id_idx",
		},
		{
			"first exposure of every unit",
			`SELECT unit_id, min(at) FROM exposures WHERE experiment_id = 1 GROUP BY unit_id`,
			"exposures_experiment_unit", "experiment_id_unit_id_at_variant_id_idx",
		},
		{
			"feedback by request id",
			`SELECT experiment_id, variant_id FROM exposures WHERE request_id = 'r1'`,
			"exposures_request", "request_id_idx",
		},
		{
			"outcomes by request id",
			`SELECT unit_id, value FROM outcomes WHERE request_id = 'r1'`,
			"outcomes_request", "outcomes_request",
		},
		{
			"metric values per unit",
			`SELECT unit_id, sum(value) FROM outcomes WHERE experiment_id = 1 AND metric_key = 'revenue' GROUP BY unit_id`,
			"outcomes_experiment_metric_unit", "outcomes_experiment_metric_unit",
		},
		{
			"running experiments of a route",
			`SELECT id FROM experiments WHERE status = 'running' AND route = 'mnist'`,
			"experiments_status_route", "experiments_status_route",
		},
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				plan, index := explain(t, db, tt.query), tt.sqlite
				if migrations.DialectOf(db) == migrations.Postgres {
					index = tt.postgres
				}
				if !strings.Contains(plan, index) || strings.Contains(plan, "Seq Scan") {
					t.Errorf("plan of %s does not use %s:\n%s", tt.query, index, plan)
				}
			})
		}
	})
}

// explain returns the plan of query as text.
func explain(t *testing.T, db *gorm.DB, query string) string {
	t.Helper()
	var lines []string
	err := db.Transaction(func(tx *gorm.DB) error {
		if migrations.DialectOf(db) == migrations.SQLite {
			var rows []struct {
				ID, Parent, Notused int
				Detail              string
			}
			if err := tx.Raw(`EXPLAIN QUERY PLAN ` + query).Scan(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				lines = append(lines, r.Detail)
			}
			return nil
		}
		// On empty tables PostgreSQL prefers scans; forbid them to see
		// whether an index can serve the query at all.
		if err := tx.Exec(`SET LOCAL enable_seqscan = off`).Error; err != nil {
			return err
		}
		return tx.Raw(`EXPLAIN ` + query).Scan(&lines).Error
	})
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return strings.Join(lines, "\n")
}

// TestExposurePartitionsHaveIndexes checks that every partition of
// exposures, the default one and those made later, carries the indexes of
// the partitioned table.
func TestExposurePartitionsHaveIndexes(t *testing.T) {
	db := dbtest.Postgres(t)
	if err := db.Exec(`SELECT abgate_ensure_exposure_partitions('2019-03-01', 1)`).Error; err != nil {
		t.Fatal(err)
	}
	var partitions []string
	err := db.Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'exposures'::regclass ORDER BY 1`).Scan(&partitions).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(partitions) < 2 {
		t.Fatalf("exposures has partitions %v; want the default one and at least one month", partitions)
	}
	for _, parent := range []string{"exposures_experiment_unit", "exposures_request", "exposures_at_brin"} {
		for _, part := range partitions {
			t.Run(parent+"/"+part, func(t *testing.T) {
				var n int
				err := db.Raw(`SELECT count(*) FROM pg_inherits i
					JOIN pg_class ix ON ix.oid = i.inhrelid
					JOIN pg_index x ON x.indexrelid = ix.oid
					WHERE i.inhparent = ?::regclass AND x.indrelid = ?::regclass`, parent, part).Scan(&n).Error
				if err != nil {
					t.Fatal(err)
				}
				if got, want := n, 1; got != want {
					t.Errorf("%s has %d indexes of %s; want %d", part, got, parent, want)
				}
			})
		}
	}
}
