package migrate

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func versions(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM ` + table + ` ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// TestApplyInOrderOnce: migrations run in version order, each once, and a later start applies
// only the new ones.
func TestApplyInOrderOnce(t *testing.T) {
	db := openDB(t)
	fsys := fstest.MapFS{
		"m/0002_b.sql": {Data: []byte(`INSERT INTO t (v) VALUES ('b')`)},
		"m/0001_a.sql": {Data: []byte(`CREATE TABLE t (v TEXT)`)},
	}
	for range 2 {
		if err := Apply(t.Context(), db, fsys, "m", "test_migrations"); err != nil {
			t.Fatal(err)
		}
	}
	fsys["m/0003_c.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO t (v) VALUES ('c')`)}
	if err := Apply(t.Context(), db, fsys, "m", "test_migrations"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow(`SELECT group_concat(v, ',') FROM t`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "b,c" {
		t.Errorf("rows %q, want b,c", got)
	}
	if got := strings.Join(versions(t, db, "test_migrations"), " "); got != "0001_a.sql 0002_b.sql 0003_c.sql" {
		t.Errorf("recorded %q", got)
	}
}

// TestFailedMigrationLeavesNothing: a migration that fails is not recorded and its earlier
// statements are rolled back, so fixing it and starting again applies it whole.
func TestFailedMigrationLeavesNothing(t *testing.T) {
	db := openDB(t)
	fsys := fstest.MapFS{
		"m/0001_a.sql": {Data: []byte(`CREATE TABLE t (v TEXT); INSERT INTO nope VALUES (1)`)},
	}
	err := Apply(t.Context(), db, fsys, "m", "test_migrations")
	if err == nil || !strings.Contains(err.Error(), "migration 0001_a.sql") {
		t.Fatalf("err %v", err)
	}
	if names := versions(t, db, "test_migrations"); len(names) != 0 {
		t.Errorf("recorded %q", names)
	}
	if _, err := db.Exec(`SELECT * FROM t`); err == nil {
		t.Error("table t of the failed migration exists")
	}
}

func TestBadNames(t *testing.T) {
	db := openDB(t)
	if err := Apply(t.Context(), db, fstest.MapFS{"m/x_a.sql": {}}, "m", "test_migrations"); err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("file: %v", err)
	}
	if err := Apply(t.Context(), db, fstest.MapFS{}, "m", "x; DROP TABLE y"); err == nil || !strings.Contains(err.Error(), "bad table name") {
		t.Errorf("table: %v", err)
	}
}
