package seed

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func tenantDB(t testing.TB, schema string) *sql.DB {
	t.Helper()
	ctx := t.Context()
	st, err := ohtkdb.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateTenant(ctx, schema, "Bunny Province", []string{schema + ".example.org"}); err != nil {
		t.Fatal(err)
	}
	db, err := st.TenantDB(ctx, schema)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func seedOpts() Options {
	return Options{TenantName: "Bunny Province", RandSeed: 2, Password: "demo-pass", Iterations: 1000, Now: testNow}
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestTenantCountsAndShape(t *testing.T) {
	db := tenantDB(t, "bunny")
	start := time.Now()
	users, err := Tenant(t.Context(), db, seedOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded 3000 reports in %v", time.Since(start))

	if got := count(t, db, `SELECT count(*) FROM reports_incidentreport`); got != 3000 {
		t.Errorf("incident reports = %d, want 3000", got)
	}
	if got := count(t, db, `SELECT count(*) FROM reports_zeroreport`); got != 500 {
		t.Errorf("zero reports = %d, want 500", got)
	}
	// Zero reports come from reporters only.
	if got := count(t, db, `SELECT count(*) FROM reports_zeroreport z JOIN accounts_authorityuser au
		ON au.user_ptr_id = z.reported_by_id WHERE au.role = 'REP'`); got != 500 {
		t.Errorf("zero reports by reporters = %d, want 500", got)
	}

	want := map[string]User{
		"admin":      {Username: "admin", Password: "demo-pass", IsSuperuser: true},
		"alice":      {Username: "alice", Password: "demo-pass", Role: "ADM", AuthorityCode: "5001"},
		"oscar":      {Username: "oscar", Password: "demo-pass", Role: "OFC", AuthorityCode: "5016"},
		"rita":       {Username: "rita", Password: "demo-pass", Role: "REP", AuthorityCode: "500108"},
		"สมชาย ใจดี": {Username: "สมชาย ใจดี", Password: "demo-pass", Role: "OFC", AuthorityCode: "5015"},
		"pravit":     {Username: "pravit", Password: "demo-pass", Role: "ADM", AuthorityCode: "50"},
	}
	if len(users) != len(want) {
		t.Errorf("got %d users, want %d: %+v", len(users), len(want), users)
	}
	for _, u := range users {
		if w, ok := want[u.Username]; !ok || w != u {
			t.Errorf("user %+v, want %+v", u, w)
		}
		var hash string
		var active int
		if err := db.QueryRow(`SELECT password, is_active FROM accounts_user WHERE username = $1`, u.Username).Scan(&hash, &active); err != nil {
			t.Fatal(err)
		}
		if ok, err := djangohash.Check("demo-pass", hash); !ok || err != nil {
			t.Errorf("%s: password does not check: %v", u.Username, err)
		}
		if !strings.HasPrefix(hash, "pbkdf2_sha256$1000$") {
			t.Errorf("%s: hash %q", u.Username, hash)
		}
		if active != 1 {
			t.Errorf("%s is inactive", u.Username)
		}
	}
	if got := count(t, db, `SELECT count(*) FROM accounts_user WHERE is_active = 0 AND username = 'former.officer'`); got != 1 {
		t.Errorf("inactive officer missing")
	}
	if got := count(t, db, `SELECT count(*) FROM accounts_authorityuser WHERE role = 'REP' AND telephone <> '' AND address LIKE '%หมู่%'`); got < 30 {
		t.Errorf("reporters with telephone and address = %d", got)
	}

	// The authority tree: province, 4 districts, subdistricts, one subdistrict with two parents.
	if got := count(t, db, `SELECT count(*) FROM (SELECT from_authority_id FROM accounts_authority_inherits
		GROUP BY from_authority_id HAVING count(*) = 2)`); got != 1 {
		t.Errorf("authorities with two parents = %d, want 1", got)
	}
	depth := count(t, db, `WITH RECURSIVE down(id, depth) AS (
		SELECT id, 1 FROM accounts_authority WHERE code = '50'
		UNION SELECT i.from_authority_id, d.depth + 1 FROM accounts_authority_inherits i JOIN down d ON i.to_authority_id = d.id)
		SELECT max(depth) FROM down`)
	if depth < 3 {
		t.Errorf("tree depth %d, want ≥ 3", depth)
	}
	// alice's and oscar's subtrees differ but share the DAG node.
	subtree := func(code string) string {
		rows, err := db.Query(`WITH RECURSIVE down(id) AS (
			SELECT id FROM accounts_authority WHERE code = $1
			UNION SELECT i.from_authority_id FROM accounts_authority_inherits i JOIN down d ON i.to_authority_id = d.id)
			SELECT a.code FROM down JOIN accounts_authority a ON a.id = down.id ORDER BY a.code`, code)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var codes []string
		for rows.Next() {
			var c string
			rows.Scan(&c)
			codes = append(codes, c)
		}
		return strings.Join(codes, ",")
	}
	if a, o := subtree("5001"), subtree("5016"); a == o || !strings.Contains(a, "500109") || !strings.Contains(o, "500109") {
		t.Errorf("subtrees alice %s, oscar %s", a, o)
	}

	// Thai text.
	if got := count(t, db, `SELECT count(*) FROM accounts_authority WHERE name LIKE 'ตำบล%'`); got < 10 {
		t.Errorf("Thai subdistrict names = %d", got)
	}
	if got := count(t, db, `SELECT count(*) FROM reports_incidentreport WHERE data LIKE '%ป่วย%' OR renderer_data LIKE '%ป่วย%'`); got == 0 {
		t.Error("no Thai text in reports")
	}

	// Relevant authorities: 3 (subdistrict, district, province), 4 for the DAG node, some none.
	perReport := func(n int) int {
		return count(t, db, `SELECT count(*) FROM (SELECT incidentreport_id FROM reports_incidentreport_relevant_authorities
			GROUP BY incidentreport_id HAVING count(*) = $1)`, n)
	}
	if perReport(3) == 0 || perReport(4) == 0 {
		t.Errorf("reports relevant to 3 authorities: %d, to 4: %d", perReport(3), perReport(4))
	}
	none := count(t, db, `SELECT count(*) FROM reports_incidentreport r WHERE NOT EXISTS
		(SELECT 1 FROM reports_incidentreport_relevant_authorities ra WHERE ra.incidentreport_id = r.id)`)
	if none == 0 || none > 150 {
		t.Errorf("reports without relevant authorities = %d", none)
	}

	for _, tc := range []struct {
		what     string
		query    string
		min, max int
	}{
		{"test reports", `SELECT count(*) FROM reports_incidentreport WHERE test_flag = 1`, 20, 120},
		{"soft-deleted reports", `SELECT count(*) FROM reports_incidentreport WHERE deleted_at IS NOT NULL`, 10, 70},
		{"reports without definition", `SELECT count(*) FROM reports_incidentreport WHERE definition IS NULL`, 300, 2700},
		{"reports with definition", `SELECT count(*) FROM reports_incidentreport WHERE definition IS NOT NULL`, 300, 2700},
		{"reports with an older definition", `SELECT count(*) FROM reports_incidentreport r JOIN reports_reporttype t ON t.id = r.report_type_id
			WHERE r.definition IS NOT NULL AND r.definition <> t.definition`, 100, 1500},
		{"follow-up reports", `SELECT count(*) FROM reports_followupreport`, 50, 400},
		{"reports with GPS in Thailand", `SELECT count(*) FROM reports_incidentreport WHERE gps_location LIKE 'SRID=4326;POINT(%'
			AND CAST(substr(gps_location, 17, instr(substr(gps_location, 17), ' ') - 1) AS REAL) BETWEEN 97.3 AND 105.7`, 2800, 3000},
		{"reports within the last year", `SELECT count(*) FROM reports_incidentreport WHERE created_at >= '2025-06-01' AND created_at < '2026-06-01'`, 3000, 3000},
	} {
		if got := count(t, db, tc.query); got < tc.min || got > tc.max {
			t.Errorf("%s = %d, want %d…%d", tc.what, got, tc.min, tc.max)
		}
	}
}

// TestFormsUseEveryFieldType checks the report types' definitions and the answers stored
// for them: every field type, named questions, subforms in OHTK's list shape, and answers
// shaped as OHTK's mobile app writes them.
func TestFormsUseEveryFieldType(t *testing.T) {
	db := tenantDB(t, "bunny")
	if _, err := Tenant(t.Context(), db, seedOpts()); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT definition FROM reports_reporttype ORDER BY ordering`)
	if err != nil {
		t.Fatal(err)
	}
	type fieldJSON struct {
		ID, Name, Type, Label string
		Required              *bool
		WithTime              *bool
		FormRef               string
		Options               []struct {
			Label, Value string
			TextInput    bool
		}
	}
	type defJSON struct {
		Sections []struct {
			Label     string
			Questions []struct {
				Label, Name string
				Fields      []fieldJSON
			}
		}
		Subforms []map[string]json.RawMessage
	}
	types := map[string]bool{}
	var named, thaiOptions, textInput, withTime, subforms int
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d defJSON
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatal(err)
		}
		subforms += len(d.Subforms)
		for _, s := range d.Sections {
			for _, q := range s.Questions {
				if q.Name != "" {
					named++
				}
				for _, f := range q.Fields {
					types[f.Type] = true
					if f.ID == "" || f.Name == "" || f.Label == "" || f.Required == nil {
						t.Errorf("field %+v lacks id, name, label or required", f)
					}
					if f.WithTime != nil && *f.WithTime {
						withTime++
					}
					for _, o := range f.Options {
						if !isASCII(o.Value) {
							thaiOptions++
						}
						if o.TextInput {
							textInput++
						}
					}
				}
			}
		}
	}
	rows.Close()
	for _, typ := range []string{"text", "textarea", "integer", "decimal", "date", "location", "singlechoices", "multiplechoices", "images", "files", "subform"} {
		if !types[typ] {
			t.Errorf("no %s field in any definition", typ)
		}
	}
	if named == 0 || thaiOptions == 0 || textInput == 0 || withTime == 0 || subforms == 0 {
		t.Errorf("named questions %d, Thai option values %d, free-text options %d, dates with time %d, subforms %d",
			named, thaiOptions, textInput, withTime, subforms)
	}

	// Answers of the human form: a named question, multiple choices, subform and files shapes.
	var raw string
	if err := db.QueryRow(`SELECT r.data FROM reports_incidentreport r JOIN reports_reporttype t ON t.id = r.report_type_id
		WHERE t.name = 'ผู้ป่วยสงสัยโรคติดต่อ' AND r.data LIKE '%"contacts":{"%' LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(raw), &data); err != nil {
		t.Fatal(err)
	}
	if data["tz"] == nil {
		t.Errorf("no tz in %s", raw)
	}
	patient, ok := data["patient"].(map[string]any)
	if !ok || patient["age"] == nil || patient["age__value"] == nil || patient["sex"] == nil {
		t.Errorf("named question patient not nested: %s", raw)
	}
	sym, ok := data["symptoms"].(map[string]any)
	if !ok || sym["value"] == nil || sym["ไข้"] == nil {
		t.Errorf("multiple choices shape: %v", data["symptoms"])
	}
	if _, ok := sym["อื่นๆ_text"]; !ok {
		t.Errorf("multiple choices lacks the free-text key: %v", sym)
	}
	contacts, ok := data["contacts"].(map[string]any)
	if !ok || contacts["value"] == "" || data["contacts__value"] != contacts["value"] {
		t.Errorf("subform shape: %v", data["contacts"])
	}
	for _, key := range strings.Split(contacts["value"].(string), ", ") {
		rec, ok := contacts[key].(map[string]any)
		if !ok || rec["contact_name"] == nil {
			t.Errorf("subform record %q: %v", key, contacts[key])
		}
	}
	if _, ok := data["onset_date"].(string); !ok || !strings.HasSuffix(data["onset_date"].(string), "T00:00:00.000") {
		t.Errorf("date without time: %v", data["onset_date"])
	}
	if _, ok := data["lab_results"].(map[string]any); !ok {
		t.Errorf("files shape: %v", data["lab_results"])
	}

	// A field name with a space, and a location answer as "lng,lat".
	if err := db.QueryRow(`SELECT r.data FROM reports_incidentreport r JOIN reports_reporttype t ON t.id = r.report_type_id
		WHERE t.name = 'ปัญหาสิ่งแวดล้อม' LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	data = nil
	json.Unmarshal([]byte(raw), &data)
	if data["smoke level"] == nil {
		t.Errorf("field with a space missing: %s", raw)
	}
	var lng, lat float64
	if _, err := fmt.Sscanf(data["where"].(string), "%g,%g", &lng, &lat); err != nil || lng < 97 || lat > 21 {
		t.Errorf("location %v: %v", data["where"], err)
	}
}

func dump(t *testing.T, db *sql.DB) string {
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, code, name FROM accounts_authority ORDER BY id`,
		`SELECT from_authority_id, to_authority_id FROM accounts_authority_inherits ORDER BY id`,
		`SELECT id, username, first_name, last_name, email, is_active, is_superuser, date_joined, coalesce(last_login, '') FROM accounts_user ORDER BY id`,
		`SELECT user_ptr_id, authority_id, role, telephone, address FROM accounts_authorityuser ORDER BY user_ptr_id`,
		`SELECT id, name, definition FROM reports_reporttype ORDER BY id`,
		`SELECT id, data, renderer_data, coalesce(gps_location, ''), created_at, coalesce(definition, ''), test_flag, coalesce(deleted_at, '') FROM reports_incidentreport ORDER BY id`,
		`SELECT incidentreport_id, authority_id FROM reports_incidentreport_relevant_authorities ORDER BY id`,
		`SELECT id, reported_by_id, created_at FROM reports_zeroreport ORDER BY id`,
		`SELECT id, incident_id, data FROM reports_followupreport ORDER BY id`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

func TestTenantDeterministic(t *testing.T) {
	opts := seedOpts()
	opts.Reports, opts.ZeroReports = 300, 50
	a, b := tenantDB(t, "a"), tenantDB(t, "b")
	if _, err := Tenant(t.Context(), a, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Tenant(t.Context(), b, opts); err != nil {
		t.Fatal(err)
	}
	if da, db := dump(t, a), dump(t, b); da != db {
		t.Error("two seeds with the same options differ")
	}
	opts.RandSeed += 2
	c := tenantDB(t, "c")
	if _, err := Tenant(t.Context(), c, opts); err != nil {
		t.Fatal(err)
	}
	if dump(t, a) == dump(t, c) {
		t.Error("a different RandSeed gave the same data")
	}
}

func TestTenantIdempotent(t *testing.T) {
	db := tenantDB(t, "bunny")
	opts := seedOpts()
	opts.Reports, opts.ZeroReports = 200, 20
	first, err := Tenant(t.Context(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	opts.Password = "another"
	again, err := Tenant(t.Context(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if after := dump(t, db); after != before {
		t.Error("reseeding changed the database")
	}
	if len(again) != len(first) {
		t.Fatalf("reseed returned %d users, first seed %d", len(again), len(first))
	}
	for i := range first {
		want := first[i]
		want.Password = "another"
		if again[i] != want {
			t.Errorf("reseed user %+v, want %+v", again[i], want)
		}
	}
}

func TestTenantNeedsPassword(t *testing.T) {
	db := tenantDB(t, "bunny")
	if _, err := Tenant(context.Background(), db, Options{}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("got %v, want a password error", err)
	}
	if n := count(t, db, `SELECT count(*) FROM accounts_user`); n != 0 {
		t.Errorf("wrote %d users without a password", n)
	}
}

func BenchmarkTenant(b *testing.B) {
	opts := seedOpts()
	for b.Loop() {
		b.StopTimer()
		db := tenantDB(b, fmt.Sprintf("t%d", b.N))
		b.StartTimer()
		if _, err := Tenant(b.Context(), db, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGeneratorHints keeps the generator's hints in step with the definitions they steer.
func TestGeneratorHints(t *testing.T) {
	var walk func(d *formDef)
	walk = func(d *formDef) {
		for _, s := range d.Sections {
			for _, q := range s.Questions {
				for _, f := range q.Fields {
					if f.weights != nil && len(f.weights) != len(f.Options) {
						t.Errorf("%s: %d weights for %d options", f.Name, len(f.weights), len(f.Options))
					}
					hasText := false
					for _, o := range f.Options {
						hasText = hasText || o.TextInput
					}
					if (f.Type == "text" || f.Type == "textarea" || hasText) && len(f.samples) == 0 {
						t.Errorf("%s: no sample answers", f.Name)
					}
					if f.Type == "subform" && d.subform(f.FormRef) == nil {
						t.Errorf("%s: subform %q not defined", f.Name, f.FormRef)
					}
				}
			}
		}
		for _, m := range d.Subforms {
			for _, sub := range m {
				walk(sub)
			}
		}
	}
	for _, rt := range reportTypes() {
		walk(rt.def)
		if rt.followup != nil {
			walk(rt.followup)
		}
	}
}

// TestTenantPasswords checks the seeded hashes: Django's iteration count unless told
// otherwise, a salt per user (one shared salt and hash would let one cracked hash open
// every account), and unusable passwords for the volunteers, which are not logins.
func TestTenantPasswords(t *testing.T) {
	db := tenantDB(t, "bunny")
	opts := seedOpts()
	opts.Iterations, opts.Reports, opts.ZeroReports = 0, -1, -1
	users, err := Tenant(t.Context(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	logins := map[string]bool{}
	for _, u := range users {
		logins[u.Username] = true
	}
	rows, err := db.QueryContext(t.Context(), `SELECT username, password FROM accounts_user`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	salts := map[string]string{}
	unusable := 0
	for rows.Next() {
		var username, hash string
		if err := rows.Scan(&username, &hash); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(hash, "!") {
			if logins[username] {
				t.Errorf("login %s has an unusable password", username)
			}
			if ok, err := djangohash.Check("demo-pass", hash); ok || err == nil {
				t.Errorf("%s: unusable password checks: %v %v", username, ok, err)
			}
			unusable++
			continue
		}
		want := fmt.Sprintf("pbkdf2_sha256$%d$", djangohash.DefaultIterations)
		if !strings.HasPrefix(hash, want) {
			t.Errorf("%s: hash %q, want prefix %q", username, hash, want)
		}
		if ok, err := djangohash.Check("demo-pass", hash); !ok || err != nil {
			t.Errorf("%s: password does not check: %v", username, err)
		}
		salt := strings.Split(hash, "$")[2]
		if other, dup := salts[salt]; dup {
			t.Errorf("%s and %s share the salt %q", username, other, salt)
		}
		salts[salt] = username
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(salts) != len(staff) || unusable < 30 {
		t.Errorf("%d usable hashes (want %d, the staff) and %d unusable ones", len(salts), len(staff), unusable)
	}
}
