package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/pgtest"
)

// Every test of this package runs once per backend: SQLite (hub.db in a data directory) and
// PostgreSQL (a throwaway cluster started by the tests, an empty database per test).
// OHTKHUB_TEST_BACKENDS=postgresql (or sqlite) runs one of them only. Missing PostgreSQL
// binaries fail the PostgreSQL run; they are never a reason to skip it.
// backend is the one the current run of the tests uses.
var backend string

func TestMain(m *testing.M) { pgtest.RunBackends(m, &backend) }

// testDB is where one test's hub state lives: the data directory, and with PostgreSQL the
// URL of an empty database of the test's own.
type testDB struct {
	database, dir string
}

var databases atomic.Int64

func newDB(t testing.TB) testDB {
	t.Helper()
	d := testDB{dir: t.TempDir()}
	switch backend {
	case "sqlite":
	case "postgresql":
		ctx := context.Background()
		cluster, err := pgtest.Shared(ctx)
		if err != nil {
			t.Fatal(err)
		}
		url, drop, err := cluster.CreateDatabase(ctx, fmt.Sprintf("hubstore_%d", databases.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := drop(); err != nil {
				t.Errorf("drop database: %v", err)
			}
		})
		d.database = url
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	return d
}
