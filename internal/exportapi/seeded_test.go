package exportapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/seed"
)

// TestSeededTenant runs the Export API over the synthetic OHTK data of internal/seed: every
// field of every report type must land in some flat column, pages must add up to the
// streamed result without duplicates, and each subform must export.
func TestSeededTenant(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{BasicPasswords: true})
	const pw = "seeded-password"
	users, err := seed.Tenant(ctx, e.bon, seed.Options{TenantName: "Bon", Reports: 1500, ZeroReports: 100, RandSeed: 2, Password: pw, Iterations: 1000,
		Now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var super, admin string
	for _, u := range users {
		if u.IsSuperuser && super == "" {
			super = u.Username
		}
		if !u.IsSuperuser && u.Role == seed.RoleAdmin && admin == "" {
			admin = u.Username
		}
	}
	su, adm := basic(super, pw), basic(admin, pw)

	types, _ := results(t, e.get(t, "/t/bon/api/export/v1/report-types", su))
	if len(types) == 0 {
		t.Fatal("no report types")
	}
	for _, rt := range types {
		id := rt["id"].(string)
		t.Run(rt["name"].(string), func(t *testing.T) {
			cols := readCSV(t, e.get(t, "/t/bon/api/export/v1/report-types/"+id+"/columns?format=csv", su))
			flat := readCSV(t, e.get(t, "/t/bon/api/export/v1/incident-reports/flat?format=csv&includeTest=true&reportTypeId="+id, su))
			all, _ := results(t, e.get(t, "/t/bon/api/export/v1/incident-reports?limit=10000&includeTest=true&reportTypeId="+id, su))
			if len(flat)-1 != len(all) {
				t.Errorf("flat rows %d, reports %d", len(flat)-1, len(all))
			}
			t.Logf("%d reports, %d flat columns", len(all), len(flat[0]))
			if len(all) < 20 {
				return // too few answers to expect every field
			}
			// Every form field (question.field) has a value in some row.
			header := flat[0]
			filled := map[string]bool{}
			fieldOf := map[string]string{}
			for _, c := range cols[1:] {
				if c[1] == "form" && c[7] == "" {
					fieldOf[c[0]] = c[4] + "." + c[5]
					filled[c[4]+"."+c[5]] = false
				}
			}
			for _, row := range flat[1:] {
				if len(row) != len(header) {
					t.Fatalf("row of %d fields under a header of %d", len(row), len(header))
				}
				for i, v := range row {
					if f, ok := fieldOf[header[i]]; ok && v != "" && v != "false" {
						filled[f] = true
					}
				}
			}
			for f, ok := range filled {
				if !ok {
					t.Errorf("field %s is empty in all %d reports", f, len(all))
				}
			}
			var subforms []string
			for _, c := range cols[1:] {
				if c[7] != "" && !slices.Contains(subforms, c[7]) {
					subforms = append(subforms, c[7])
				}
			}
			for _, s := range subforms {
				rows := readCSV(t, e.get(t, "/t/bon/api/export/v1/incident-reports/flat/subforms?format=csv&includeTest=true&reportTypeId="+id+"&subform="+url.QueryEscape(s), su))
				if len(rows) < 2 {
					t.Errorf("subform %s: no rows", s)
				}
			}
		})
	}

	// An authority admin's pages add up to the streamed result, each report once.
	var paged []string
	q := url.Values{"limit": {"97"}}
	for {
		rows, next := results(t, e.get(t, "/t/bon/api/export/v1/incident-reports?"+q.Encode(), adm))
		paged = append(paged, ids(rows)...)
		if next == nil {
			break
		}
		q.Set("cursor", *next)
	}
	nd := e.get(t, "/t/bon/api/export/v1/incident-reports?format=ndjson", adm)
	var streamed []string
	for line := range strings.SplitSeq(strings.TrimSuffix(nd.body, "\n"), "\n") {
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, r.ID)
	}
	t.Logf("admin %s sees %d reports", admin, len(streamed))
	if len(paged) == 0 || !slices.Equal(paged, streamed) {
		t.Errorf("admin: %d paged, %d streamed", len(paged), len(streamed))
	}
	seen := map[string]bool{}
	for _, id := range streamed {
		if seen[id] {
			t.Fatalf("report %s twice", id)
		}
		seen[id] = true
	}
	var total int
	e.bon.QueryRow(`SELECT count(*) FROM reports_incidentreport WHERE deleted_at IS NULL AND NOT test_flag`).Scan(&total)
	if len(streamed) == 0 || len(streamed) >= total {
		t.Errorf("admin sees %d of %d reports: not a proper subtree", len(streamed), total)
	}
}

func readCSV(t *testing.T, r response) [][]string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
