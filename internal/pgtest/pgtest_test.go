package pgtest

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

func TestOHTKOnRealPostgreSQL(t *testing.T) {
	ctx := t.Context()
	c, err := Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.CreateOHTK(ctx, "pgtest_ohtk")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	schema := `we "ird" schéma`
	db, err := o.AddTenant(ctx, schema, "Weird", []string{"weird.test"})
	if err != nil {
		t.Fatal(err)
	}
	// Strings bind to timestamptz, date, uuid and jsonb parameters; points as EWKT.
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts_authority (id, code, name, created_at, updated_at) VALUES (1, 'A', 'a', $1, $1), (2, 'B', 'b', $1, $1), (3, 'C', 'c', $1, $1)`,
		"2026-01-02T03:04:05.000006Z"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts_authority_inherits (from_authority_id, to_authority_id) VALUES (2, 1), (3, 2)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM inherit_authority_down(1)`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("inherit_authority_down: %d %v", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM inherit_authority_up(3)`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("inherit_authority_up: %d %v", n, err)
	}
	var created time.Time
	if err := db.QueryRowContext(ctx, `SELECT created_at FROM accounts_authority WHERE id = 1`).Scan(&created); err != nil ||
		!created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)) {
		t.Fatalf("created_at: %v %v", created, err)
	}

	// The reader role reads and cannot write.
	rd, err := c.Open(o.Name(), Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := rd.QueryRowContext(ctx, `SELECT count(*) FROM `+ident(schema)+`.accounts_authority`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("reader: %d %v", n, err)
	}
	if _, err := rd.ExecContext(ctx, `DELETE FROM `+ident(schema)+`.accounts_authority`); err == nil {
		t.Fatal("the reader role deleted OHTK's rows")
	}
	if _, err := rd.ExecContext(ctx, `INSERT INTO tenants_client (schema_name, name) VALUES ('x', 'x')`); err == nil {
		t.Fatal("the reader role wrote tenants_client")
	}
}
