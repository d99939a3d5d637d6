package exportapi

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/pgtest"
)

// Every test of this package runs once per backend: SQLite (the demo's data directory) and
// PostgreSQL (OHTK's own database, a throwaway cluster started by the tests, read by the api
// under a role that cannot write OHTK's tables). OHTKHUB_TEST_BACKENDS=postgresql (or sqlite)
// runs one of them only.
//
// backend is the one the current run of the tests uses.
var backend string

func TestMain(m *testing.M) { pgtest.RunBackends(m, &backend) }

// openStore returns a store holding tenants "bunny" and "bon" with OHTK's tables, and
// connections to both tenants that may write them (the fixtures' way in).
func openStore(t testing.TB) (store *ohtkdb.Store, bunny, bon *sql.DB) {
	ctx := context.Background()
	switch backend {
	case "sqlite":
		store, err := ohtkdb.Open(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if _, err := store.CreateTenant(ctx, "bunny", "Bunny กระต่าย", []string{"bunny.test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateTenant(ctx, "bon", "Bon", []string{"bon.test"}); err != nil {
			t.Fatal(err)
		}
		bunny, _ = store.TenantDB(ctx, "bunny")
		bon, _ = store.TenantDB(ctx, "bon")
		return store, bunny, bon
	case "postgresql":
		return openPostgres(t)
	}
	t.Fatalf("unknown backend %q", backend)
	return nil, nil, nil
}

var databases atomic.Int64

func openPostgres(t testing.TB) (*ohtkdb.Store, *sql.DB, *sql.DB) {
	ctx := context.Background()
	cluster, err := pgtest.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := cluster.CreateOHTK(ctx, fmt.Sprintf("exportapi_%d", databases.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Drop(context.Background()) })
	tenants := map[string]*sql.DB{}
	for _, tn := range []struct{ schema, name, domain string }{{"bunny", "Bunny กระต่าย", "bunny.test"}, {"bon", "Bon", "bon.test"}} {
		if _, err := o.AddTenant(ctx, tn.schema, tn.name, []string{tn.domain}); err != nil {
			t.Fatal(err)
		}
	}
	// The api reads as the read-only role; opening a tenant creates its ohtkhub schema.
	store, err := ohtkdb.OpenPostgres(ctx, o.URL(pgtest.Reader))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, schema := range []string{"bunny", "bon"} {
		if _, err := store.TenantDB(ctx, schema); err != nil {
			t.Fatal(err)
		}
		db, err := o.SchemaDB(schema, ohtkdb.APISchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		tenants[schema] = db
	}
	return store, tenants["bunny"], tenants["bon"]
}

// syncSequences lets rows inserted without an id follow rows inserted with one.
func syncSequences(t testing.TB, db *sql.DB) {
	if backend != "postgresql" {
		return
	}
	if err := pgtest.SyncSequences(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// stamp formats a timestamp read back from the database (text in SQLite, a time.Time from
// PostgreSQL) as the api writes it.
func stamp(v any) string {
	switch v := v.(type) {
	case time.Time:
		return ohtkdb.FormatTime(v)
	case []byte:
		return string(v)
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// goldenPath is the golden file of name for the backend under test: testdata/postgresql/name
// where PostgreSQL's answer differs by design (jsonb keeps object keys in its own order),
// else testdata/name.
func goldenPath(name string) string {
	if backend == "postgresql" {
		p := filepath.Join("testdata", backend, name)
		if _, err := os.Stat(p); err == nil || *update {
			return p
		}
	}
	return filepath.Join("testdata", name)
}
