package dbtest_test

import (
	"net/url"
	"strings"
	"testing"

	"gorm.io/gorm"

	"abgate/migrations"
	"abgate/migrations/dbtest"
)

func TestEachGivesMigratedDatabases(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var n int64
		if err := db.Raw(`SELECT count(*) FROM schema_migrations`).Scan(&n).Error; err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		if n == 0 {
			t.Error("schema_migrations is empty; want the database migrated")
		}
	})
}

func TestPostgresDSNSchemaIsPrivateAndDropped(t *testing.T) {
	var schema string
	t.Run("test", func(t *testing.T) {
		dsn := dbtest.PostgresDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema = u.Query().Get("search_path")
		if !strings.HasPrefix(schema, "t_") {
			t.Fatalf("search_path = %q; want a test schema t_<hex>", schema)
		}
		db := dbtest.Open(t, dsn)
		var current string
		if err := db.Raw(`SELECT current_schema()`).Scan(&current).Error; err != nil {
			t.Fatal(err)
		}
		if current != schema {
			t.Errorf("current_schema() = %q; want %q", current, schema)
		}
		if _, err := migrations.Up(t.Context(), db); err != nil {
			t.Fatalf("Up: %v", err)
		}
	})
	if schema == "" {
		return // skipped
	}
	db := dbtest.Open(t, dbtest.PostgresDSN(t))
	var n int64
	if err := db.Raw(`SELECT count(*) FROM pg_namespace WHERE nspname = ?`, schema).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after its test", schema)
	}
}
