package migrations_test

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/migrations/dbtest"
)

// TestSQLiteTransactionsDoNotFailUnderContention runs read-then-write
// transactions from several goroutines on two handles of one file. With
// deferred transactions some would fail with "database is locked"; with the
// immediate ones of Open they queue and none is lost.
func TestSQLiteTransactionsDoNotFailUnderContention(t *testing.T) {
	dsn := dbtest.SQLiteDSN(t)
	dbs := []*gorm.DB{dbtest.Open(t, dsn), dbtest.Open(t, dsn)}
	if err := dbs[0].Exec(`CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Exec(`INSERT INTO counter (id, n) VALUES (1, 0)`).Error; err != nil {
		t.Fatal(err)
	}

	const workersPerHandle, increments = 4, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, db := range dbs {
		for range workersPerHandle {
			wg.Go(func() {
				for range increments {
					err := db.Transaction(func(tx *gorm.DB) error {
						var n int
						if err := tx.Raw(`SELECT n FROM counter WHERE id = 1`).Scan(&n).Error; err != nil {
							return err
						}
						return tx.Exec(`UPDATE counter SET n = ? WHERE id = 1`, n+1).Error
					})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs[:min(len(errs), 3)] {
		t.Errorf("transaction failed: %v", err)
	}

	var got int
	if err := dbs[0].Raw(`SELECT n FROM counter WHERE id = 1`).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if want := len(dbs) * workersPerHandle * increments; got != want {
		t.Errorf("counter = %d; want %d", got, want)
	}
}

// TestSQLiteReadOnlyTransactionsDoNotWait checks that a read-only
// transaction starts while another connection holds the write lock.
func TestSQLiteReadOnlyTransactionsDoNotWait(t *testing.T) {
	dsn := dbtest.SQLiteDSN(t)
	writer, reader := dbtest.Open(t, dsn), dbtest.Open(t, dsn)
	ctx := t.Context()
	w, err := writer.DB()
	if err != nil {
		t.Fatal(err)
	}
	wtx, err := w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wtx.Rollback()

	r, err := reader.DB()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rtx, err := r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only BeginTx: %v", err)
	}
	var one int
	if err := rtx.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("read in read-only transaction: %v", err)
	}
	_ = rtx.Rollback()
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("read-only transaction waited %v for the writer", elapsed)
	}
}
