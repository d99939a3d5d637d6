package exportapi

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/seed"
)

// TestSubtreeMatchesOHTK checks the api's subtree CTE against OHTK's own SQL function
// inherit_authority_down on a seeded authority DAG (PostgreSQL only: SQLite has no OHTK
// functions).
func TestSubtreeMatchesOHTK(t *testing.T) {
	if backend != "postgresql" {
		t.Skip("OHTK's SQL functions exist in its PostgreSQL database only")
	}
	ctx := context.Background()
	e := newEnv(t, Options{})
	if _, err := seed.Tenant(ctx, e.bon, seed.Options{TenantName: "Bon", Reports: -1, ZeroReports: -1, Password: "x", Iterations: 1000,
		Now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	roots, err := e.bon.Query(`SELECT id FROM accounts_authority ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var all []int64
	for roots.Next() {
		var id int64
		roots.Scan(&id)
		all = append(all, id)
	}
	roots.Close()
	if len(all) < 10 {
		t.Fatalf("%d authorities seeded", len(all))
	}
	list := func(q string, arg int64) []int64 {
		rows, err := e.bon.Query(q, arg)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	for _, root := range all {
		ours := list(`WITH RECURSIVE `+subtreeCTE("$1")+` SELECT id FROM sub`, root)
		theirs := list(`SELECT id FROM inherit_authority_down($1)`, root)
		if !slices.Equal(ours, theirs) {
			t.Errorf("subtree of %d: %v, OHTK's: %v", root, ours, theirs)
		}
	}
}
