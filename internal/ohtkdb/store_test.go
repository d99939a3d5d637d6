package ohtkdb

import (
	"errors"
	"testing"
)

func TestTenantResolution(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateTenant(ctx, "bunny", "Bunny Province", []string{"bunny.example.org"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTenant(ctx, "we ird\"schema", "Weird", []string{"weird.example.org"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTenant(ctx, "bunny", "again", nil); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate tenant: got %v", err)
	}
	for _, tc := range []struct {
		host, want string
	}{
		{"bunny.example.org", "bunny"},
		{"www.bunny.example.org:8443", "bunny"},
		{"BUNNY.example.org", "bunny"},
		{"weird.example.org", "we ird\"schema"},
		{"example.org", ""},
		{"evil.bunny.example.org", ""},
	} {
		got, err := st.TenantByHost(ctx, tc.host)
		if tc.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: got %v, %v; want ErrNotFound", tc.host, got, err)
			}
			continue
		}
		if err != nil || got.SchemaName != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.host, got.SchemaName, err, tc.want)
		}
	}
	if _, err := st.Public().ExecContext(ctx, `UPDATE tenants_client SET deleted_at = '2026-01-01T00:00:00.000000Z' WHERE schema_name = 'bunny'`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TenantByHost(ctx, "bunny.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("soft-deleted tenant resolved: %v", err)
	}
	// Positional $N placeholders bind in order on SQLite.
	db, err := st.TenantDB(ctx, "we ird\"schema")
	if err != nil {
		t.Fatal(err)
	}
	var a, b string
	if err := db.QueryRowContext(ctx, `SELECT $2, $1`, "one", "two").Scan(&a, &b); err != nil || a != "two" || b != "one" {
		t.Fatalf("placeholders: %q %q %v", a, b, err)
	}
}
