package exportapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	bodyBadToken    = `{"error":"invalid_token","error_description":"the access token is invalid, expired or revoked"}` + "\n"
	bodyBadBasic    = `{"error":"unauthorized","error_description":"invalid username or password"}` + "\n"
	bodyNoAuth      = `{"error":"unauthorized","error_description":"authentication required: a Bearer token or HTTP Basic credentials"}` + "\n"
	bodyForbidden   = `{"error":"forbidden","error_description":"you do not have access to this data"}` + "\n"
	bodyRateLimited = `{"error":"too_many_requests","error_description":"too many failed logins; retry later"}` + "\n"
)

func seeded(t *testing.T) *env {
	e := newEnv(t, Options{BasicPasswords: true})
	e.seed(t)
	return e
}

func TestAuthentication(t *testing.T) {
	e := seeded(t)
	good := addToken(t, e.db, userAdmin, "good-token", testNow.Add(time.Hour))
	expired := addToken(t, e.db, userAdmin, "expired-token", testNow.Add(-time.Second))
	inactive := addToken(t, e.db, userInactive, "inactive-token", testNow.Add(time.Hour))
	// The same user id exists in bon, but the token lives only in bunny.
	mustExec(t, e.bon, `INSERT INTO accounts_user (id, password, is_superuser, username, date_joined) VALUES (2, '', TRUE, 'admin', $1)`, ts(testNow))

	tests := []struct {
		name   string
		path   string
		auth   authFn
		status int
		body   string
	}{
		{"token of bunny on bon", "/t/bon/api/export/v1/me", bearer(good), 401, bodyBadToken},
		{"expired token", "/t/bunny/api/export/v1/me", bearer(expired), 401, bodyBadToken},
		{"deactivated user's unexpired token", "/t/bunny/api/export/v1/me", bearer(inactive), 401, bodyBadToken},
		{"unknown token", "/t/bunny/api/export/v1/me", bearer("nope"), 401, bodyBadToken},
		{"empty bearer", "/t/bunny/api/export/v1/me", bearer(""), 401, bodyBadToken},
		{"no credentials", "/t/bunny/api/export/v1/me", nil, 401, bodyNoAuth},
		{"unknown scheme", "/t/bunny/api/export/v1/me", func(r *reqT) { r.Header.Set("Authorization", "Digest x") }, 401, bodyNoAuth},
		{"wrong password", "/t/bunny/api/export/v1/me", basic("admin", "wrong"), 401, bodyBadBasic},
		{"unknown user", "/t/bunny/api/export/v1/me", basic("ghost", testPassword), 401, bodyBadBasic},
		{"inactive user's password", "/t/bunny/api/export/v1/me", basic("inactive", testPassword), 401, bodyBadBasic},
		{"reporter", "/t/bunny/api/export/v1/incident-reports", basic("reporter", testPassword), 403, bodyForbidden},
		{"no authority, not superuser", "/t/bunny/api/export/v1/me", basic("nobody", testPassword), 403, bodyForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.get(t, tc.path, tc.auth)
			expect(t, got, tc.status, tc.body)
			if tc.status == 401 && got.header.Get("WWW-Authenticate") != `Bearer realm="ohtk", Basic realm="ohtk", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate = %q", got.header.Get("WWW-Authenticate"))
			}
		})
	}

	got := e.get(t, "/t/bunny/api/export/v1/me", bearer(good))
	expect(t, got, 200, `{"id":2,"username":"admin","first_name":"ชื่อ admin","last_name":"","email":"admin@example.org","is_superuser":false,"role":"ADM","authority":{"id":2,"code":"CM","name":"จังหวัดเชียงใหม่"},"scope":"authority","auth_method":"bearer","tenant":"bunny"}`+"\n")
	got = e.get(t, "/t/bunny/api/export/v1/me", basic("super", testPassword))
	expect(t, got, 200, `{"id":1,"username":"super","first_name":"ชื่อ super","last_name":"","email":"super@example.org","is_superuser":true,"role":null,"authority":null,"scope":"tenant","auth_method":"basic_password","tenant":"bunny"}`+"\n")
}

func TestBasicPasswordsOff(t *testing.T) {
	e := newEnv(t, Options{BasicPasswords: false})
	e.seed(t)
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("admin", testPassword)), 401, bodyBadBasic)
}

func TestBasicRateLimit(t *testing.T) {
	e := seeded(t)
	path := "/t/bunny/api/export/v1/me"
	for i := range 5 {
		got := e.get(t, path, basic("admin", fmt.Sprintf("wrong%d", i)))
		expect(t, got, 401, bodyBadBasic)
	}
	got := e.get(t, path, basic("admin", "wrong again"))
	expect(t, got, 429, bodyRateLimited)
	if got.header.Get("Retry-After") != "12" {
		t.Errorf("Retry-After = %q, want 12", got.header.Get("Retry-After"))
	}
	// The right password is refused too while blocked: that is what stops guessing.
	expect(t, e.get(t, path, basic("admin", testPassword)), 429, bodyRateLimited)
	// Other usernames from the same client are counted apart.
	if got := e.get(t, path, basic("super", testPassword)); got.status != 200 {
		t.Fatalf("super: %d %s", got.status, got.body)
	}
	e.clock.Advance(12 * time.Second)
	if got := e.get(t, path, basic("admin", testPassword)); got.status != 200 {
		t.Fatalf("after waiting: %d %s", got.status, got.body)
	}

	// Spraying one password over many usernames from one client is stopped too: the
	// client has 20 failures in all (5 were spent above).
	e.clock.Advance(time.Hour)
	cheap := djangohash.Make("another password", 1000)
	for i := range 21 {
		mustExec(t, e.db, `INSERT INTO accounts_user (password, username, date_joined) VALUES ($1, $2, $3)`, cheap, fmt.Sprintf("user%d", i), ts(testNow))
	}
	for i := range 20 {
		expect(t, e.get(t, path, basic(fmt.Sprintf("user%d", i), "123456")), 401, bodyBadBasic)
	}
	got = e.get(t, path, basic("user20", "123456"))
	expect(t, got, 429, bodyRateLimited)
	if got.header.Get("Retry-After") != "3" {
		t.Errorf("Retry-After = %q, want 3", got.header.Get("Retry-After"))
	}
}

func TestAPIKey(t *testing.T) {
	e := seeded(t)
	add := func(user int, key string, expires, revoked any) {
		mustExec(t, e.db, `INSERT INTO ohtkhub_apikey (user_id, name, prefix, key_hash, created, expires, revoked) VALUES ($1, 'nb', $2, $3, $4, $5, $6)`,
			user, key[:9], checksum(key), ts(testNow), expires, revoked)
	}
	add(userOfficer, "ohtk_live_key", nil, nil)
	add(userOfficer, "ohtk_revoked_key", nil, ts(testNow.Add(-time.Hour)))
	add(userOfficer, "ohtk_expired_key", ts(testNow.Add(-time.Minute)), nil)
	add(userOfficer, "ohtk_future_key", ts(testNow.Add(time.Hour)), nil)

	got := e.get(t, "/t/bunny/api/export/v1/me", basic("officer", "ohtk_live_key"))
	if got.status != 200 || !strings.Contains(got.body, `"auth_method":"api_key"`) {
		t.Fatalf("live key: %d %s", got.status, got.body)
	}
	var lastUsed any
	e.db.QueryRow(`SELECT last_used FROM ohtkhub_apikey WHERE key_hash = $1`, checksum("ohtk_live_key")).Scan(&lastUsed)
	if stamp(lastUsed) != ts(testNow) {
		t.Errorf("last_used = %v", lastUsed)
	}
	if got := e.get(t, "/t/bunny/api/export/v1/me", basic("officer", "ohtk_future_key")); got.status != 200 {
		t.Errorf("unexpired key: %d %s", got.status, got.body)
	}
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("officer", "ohtk_revoked_key")), 401, bodyBadBasic)
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("officer", "ohtk_expired_key")), 401, bodyBadBasic)
	// A key belongs to its user: another username with it fails.
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("admin", "ohtk_live_key")), 401, bodyBadBasic)
	// Keys work even with passwords off.
	e2 := newEnv(t, Options{})
	e2.seed(t)
	mustExec(t, e2.db, `INSERT INTO ohtkhub_apikey (user_id, name, prefix, key_hash, created) VALUES (3, 'nb', 'ohtk_live', $1, $2)`, checksum("ohtk_live_key"), ts(testNow))
	if got := e2.get(t, "/t/bunny/api/export/v1/me", basic("officer", "ohtk_live_key")); got.status != 200 {
		t.Errorf("key with passwords off: %d %s", got.status, got.body)
	}
}

func TestRequestErrors(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	expect(t, e.get(t, "/api/export/v1/me", su), 500, `{"error":"server_error","error_description":"internal error"}`+"\n")
	expect(t, e.get(t, "/t/bunny/api/export/v1/nothing", su), 404, `{"error":"not_found","error_description":"no such resource"}`+"\n")
	expect(t, e.get(t, "/t/bunny/api/export/v1/report-types/not-a-uuid/columns", su), 404, `{"error":"not_found","error_description":"no such resource"}`+"\n")
	expect(t, e.get(t, "/t/bunny/api/export/v1/report-types/22222222-1111-4111-8111-111111111111/columns", su), 404,
		`{"error":"not_found","error_description":"no report type 22222222-1111-4111-8111-111111111111"}`+"\n")
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?reportTypeId=22222222-1111-4111-8111-111111111111", su), 404,
		`{"error":"not_found","error_description":"no report type 22222222-1111-4111-8111-111111111111"}`+"\n")

	req, _ := newRequest("POST", e.srv.URL+"/t/bunny/api/export/v1/incident-reports")
	su(req)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d Allow=%q", res.StatusCode, res.Header.Get("Allow"))
	}

	req, _ = newRequest("HEAD", e.srv.URL+"/t/bunny/api/export/v1/incident-reports?format=csv")
	su(req)
	res, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" || res.ContentLength > 0 {
		t.Errorf("HEAD: %d %q %d", res.StatusCode, res.Header.Get("Content-Type"), res.ContentLength)
	}
}

func TestBadParameters(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	bad := func(desc string) string {
		return `{"error":"invalid_request","error_description":"` + desc + `"}` + "\n"
	}
	const instant = "want an RFC 3339 timestamp with offset (2024-03-01T00:00:00+07:00) or a date YYYY-MM-DD (read in tz)"
	tests := []struct {
		resource, query, desc string
	}{
		{"incident-reports", "from=yesterday", "invalid parameter from: " + instant},
		{"incident-reports", "from=2026-13-01", "invalid parameter from: " + instant},
		{"incident-reports", "from=2026-05-01T00:00:00", "invalid parameter from: " + instant},
		{"incident-reports", "to=2026-05-01T25:00:00Z", "invalid parameter to: " + instant},
		{"incident-reports", "from=2026-05-02&to=2026-05-01", "invalid parameter to: must be after from"},
		{"incident-reports", "tz=Mars/Olympus", "invalid parameter tz: want an IANA time zone name such as Asia/Bangkok"},
		{"incident-reports", "tz=Local", "invalid parameter tz: want an IANA time zone name such as Asia/Bangkok"},
		{"incident-reports", "dateField=deleted_at", "invalid parameter dateField: want created_at or incident_date"},
		{"zero-reports", "dateField=incident_date", "invalid parameter dateField: want created_at"},
		{"incident-reports", "authorityId=abc", "invalid parameter authorityId: want a positive integer authority id"},
		{"incident-reports", "authorityId=-3", "invalid parameter authorityId: want a positive integer authority id"},
		{"incident-reports", "reportTypeId=1-DROP", "invalid parameter reportTypeId: want a report type id (UUID)"},
		{"incident-reports", "reportTypeId=1;DROP", "invalid query string: invalid semicolon separator in query"},
		{"incident-reports", "from=%zz", `invalid query string: invalid URL escape \"%zz\"`},
		{"incident-reports", "includeTest=maybe", "invalid parameter includeTest: want true or false"},
		{"incident-reports", "includeDeleted=yes", "invalid parameter includeDeleted: want true or false"},
		{"incident-reports", "updatedSince=last+week", "invalid parameter updatedSince: " + instant},
		{"incident-reports", "limit=0", "invalid parameter limit: want an integer from 1 to 10000"},
		{"incident-reports", "limit=10001", "invalid parameter limit: want an integer from 1 to 10000"},
		{"incident-reports", "limit=ten", "invalid parameter limit: want an integer from 1 to 10000"},
		{"incident-reports", "format=csv&limit=5", "invalid parameter limit: only with format=json; the other formats return the whole result"},
		{"incident-reports", "cursor=garbage", "invalid parameter cursor: not a cursor returned for this query"},
		{"incident-reports", "format=xml", "invalid parameter format: want one of json, ndjson, csv, xlsx, parquet"},
		{"incident-reports", "format=csv&bom=perhaps", "invalid parameter bom: want true or false"},
		{"incident-reports", "bom=true", "unknown parameter bom: only with format=csv"},
		{"incident-reports", "limit=5&limit=6", "invalid parameter limit: given more than once"},
		{"incident-reports", "colour=red", "unknown parameter colour for incident-reports"},
		{"incident-reports/flat", "", "invalid parameter reportTypeId: required"},
		{"incident-reports/flat/subforms", "reportTypeId=" + reportTypeID, "invalid parameter subform: required"},
		{"incident-reports/flat/subforms", "reportTypeId=" + reportTypeID + "&subform=nope", "invalid parameter subform: the report type has no subform field of that name; its subforms: herd"},
		{"reporters", "from=2026-01-01", "unknown parameter from for reporters"},
		{"me", "format=csv", "invalid parameter format: want one of json"},
		{"authorities", "includeTest=true", "unknown parameter includeTest for authorities"},
		{"report-types", "updatedSince=2026-02-30", "invalid parameter updatedSince: " + instant},
	}
	for _, tc := range tests {
		t.Run(tc.resource+"?"+tc.query, func(t *testing.T) {
			expect(t, e.get(t, "/t/bunny/api/export/v1/"+tc.resource+"?"+tc.query, su), 400, bad(tc.desc))
		})
	}
}

func TestAuthorization(t *testing.T) {
	e := seeded(t)
	officer := basic("officer", testPassword) // OFC of MUEANG: MUEANG and TAMBON
	admin := basic("admin", testPassword)     // ADM of CM: CM, MUEANG, SANSAI, TAMBON
	su := basic("super", testPassword)
	lamphun := basic("สมหญิง", testPassword)

	page := func(auth authFn, q string) []string {
		t.Helper()
		rows, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?"+q, auth))
		return ids(rows)
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	check("officer", page(officer, ""), []string{reportOld, reportMany})
	check("admin", page(admin, ""), []string{reportOld, reportMany})
	check("lamphun officer", page(lamphun, ""), []string{reportLamphun})
	check("superuser", page(su, ""), []string{reportOld, reportMany, reportLamphun, reportOrphan})
	check("superuser with test and deleted", page(su, "includeTest=true&includeDeleted=true"),
		[]string{reportOld, reportMany, reportLamphun, reportTest, reportDeleted, reportOrphan})
	check("admin narrowed to SANSAI", page(admin, "authorityId=4"), []string{reportOld, reportMany})
	check("superuser narrowed to LAMPHUN", page(su, "authorityId=5"), []string{reportLamphun})

	outside := `{"error":"forbidden","error_description":"authorityId 5 is not in your authority's subtree"}` + "\n"
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?authorityId=5", officer), 403, outside)
	expect(t, e.get(t, "/t/bunny/api/export/v1/authorities?authorityId=2", officer), 403,
		`{"error":"forbidden","error_description":"authorityId 2 is not in your authority's subtree"}`+"\n")
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?authorityId=999", su), 403,
		`{"error":"forbidden","error_description":"authorityId 999 is not in your authority's subtree"}`+"\n")

	// The report relevant to MUEANG, SANSAI and TAMBON appears once, with the ids the
	// caller may see.
	rows, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=json", admin))
	for _, r := range rows {
		if r["id"] == reportMany {
			if b, _ := json.Marshal(r["authority_ids"]); string(b) != "[3,4,6]" {
				t.Errorf("authority_ids = %s", b)
			}
		}
	}
	rows, _ = results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports", officer))
	if b, _ := json.Marshal(rows[1]["authority_ids"]); string(b) != "[3,6]" {
		t.Errorf("officer's authority_ids = %s", b)
	}
	csvBody := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=csv", admin).body
	if n := strings.Count(csvBody, reportMany); n != 1 {
		t.Errorf("CSV has report %d times", n)
	}
	nd := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=ndjson", admin).body
	if n := strings.Count(nd, reportMany); n != 1 || strings.Count(nd, "\n") != 2 {
		t.Errorf("NDJSON: %q", nd)
	}

	auths, _ := results(t, e.get(t, "/t/bunny/api/export/v1/authorities", officer))
	check("officer's authorities", ids(auths), []string{"3", "6"})
	auths, _ = results(t, e.get(t, "/t/bunny/api/export/v1/authorities", admin))
	check("admin's authorities", ids(auths), []string{"2", "3", "4", "6"})
	if b, _ := json.Marshal(auths[3]); string(b) != `{"code":"TAMBON","created_at":"2026-05-31T12:00:00.000000Z","deleted_at":null,"id":6,"name":"ตำบลหนองหาร","parent_ids":[3,4],"updated_at":"2026-05-31T12:00:00.000000Z"}` {
		t.Errorf("authority: %s", b)
	}

	zero, _ := results(t, e.get(t, "/t/bunny/api/export/v1/zero-reports", officer))
	if len(zero) != 2 || zero[0]["reported_by_username"] != "reporter" || zero[1]["reported_by_username"] != "officer" {
		t.Errorf("officer's zero reports: %v", zero)
	}
	zero, _ = results(t, e.get(t, "/t/bunny/api/export/v1/zero-reports", su))
	if len(zero) != 3 {
		t.Errorf("superuser's zero reports: %v", zero)
	}
}

func TestReporters(t *testing.T) {
	e := seeded(t)
	got := e.get(t, "/t/bunny/api/export/v1/reporters?format=csv&bom=false", basic("officer", testPassword))
	want := "id,username,first_name,last_name,role,authority_id,authority_code,authority_name,is_active,date_joined\n" +
		"3,officer,ชื่อ officer,,OFC,3,MUEANG,อำเภอเมืองเชียงใหม่,true,2026-05-31T12:00:00.000000Z\n" +
		"4,reporter,ชื่อ reporter,,REP,3,MUEANG,อำเภอเมืองเชียงใหม่,true,2026-05-31T12:00:00.000000Z\n"
	expect(t, got, 200, want)
	got = e.get(t, "/t/bunny/api/export/v1/reporters?format=csv&bom=false&authorityId=3", basic("admin", testPassword))
	want = "id,username,first_name,last_name,role,authority_id,authority_code,authority_name,is_active,date_joined,email,telephone,address\n" +
		"3,officer,ชื่อ officer,,OFC,3,MUEANG,อำเภอเมืองเชียงใหม่,true,2026-05-31T12:00:00.000000Z,officer@example.org,081000003,บ้านเลขที่ 3\n" +
		"4,reporter,ชื่อ reporter,,REP,3,MUEANG,อำเภอเมืองเชียงใหม่,true,2026-05-31T12:00:00.000000Z,reporter@example.org,081000004,บ้านเลขที่ 4\n"
	expect(t, got, 200, want)
}

func TestDateFilters(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	list := func(q string) []string {
		t.Helper()
		rows, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?"+q, su))
		return ids(rows)
	}
	// reportMany was created 2026-05-01T01:00Z = 08:00 in Bangkok; reportLamphun at 02:00Z.
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"from=2026-05-01T01:30:00Z", []string{reportLamphun, reportOrphan}},
		{"from=2026-05-01T08:30:00%2B07:00", []string{reportLamphun, reportOrphan}}, // converted, not replaced
		{"to=2026-05-01T08:30:00%2B07:00", []string{reportOld, reportMany}},         // to is exclusive
		{"from=2026-05-01&to=2026-05-01&tz=Asia/Bangkok", []string{reportMany, reportLamphun, reportOrphan}},
		{"from=2026-05-02&tz=Asia/Bangkok", nil},
		{"to=2026-04-30&tz=Asia/Bangkok", []string{reportOld}},
		{"dateField=incident_date&from=2026-05-01&to=2026-05-01", []string{reportMany, reportLamphun, reportOrphan}},
		{"dateField=incident_date&to=2026-04-30", []string{reportOld}},
		{"updatedSince=2026-05-01T01:30:00Z", []string{reportLamphun, reportOrphan}},
		{"reportTypeId=" + reportTypeID + "&from=2026-05-01T04:00:00Z", []string{reportOrphan}},
	} {
		if got := list(tc.q); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: got %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestKeysetPagination(t *testing.T) {
	e := seeded(t)
	// 95 more reports, many sharing one created_at so ties are broken by id.
	at := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	for i := range 95 {
		id := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", 95-i)
		created := at.Add(time.Duration(i/10) * time.Minute)
		mustExec(t, e.db, `INSERT INTO reports_incidentreport (id, report_type_id, data, incident_date, created_at, updated_at) VALUES ($1, $2, '{}', $3, $4, $4)`,
			id, reportTypeID, created.AddDate(0, 0, -(i%7)).Format(time.DateOnly), ts(created))
		mustExec(t, e.db, `INSERT INTO reports_incidentreport_relevant_authorities (incidentreport_id, authority_id) VALUES ($1, 3), ($1, 6)`, id)
	}
	officer := basic("officer", testPassword)
	for _, dateField := range []string{"created_at", "incident_date"} {
		t.Run(dateField, func(t *testing.T) {
			seen := map[string]int{}
			var order []string
			q := url.Values{"limit": {"7"}, "dateField": {dateField}}
			pages := 0
			for {
				rows, next := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?"+q.Encode(), officer))
				pages++
				for _, id := range ids(rows) {
					seen[id]++
					order = append(order, id)
				}
				if next == nil {
					break
				}
				q.Set("cursor", *next)
			}
			if len(seen) != 97 || len(order) != 97 {
				t.Fatalf("%d distinct of %d rows over %d pages", len(seen), len(order), pages)
			}
			if pages != 14 {
				t.Errorf("pages = %d, want 14", pages)
			}
			all, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?limit=1000&dateField="+dateField, officer))
			if !slices.Equal(ids(all), order) {
				t.Errorf("pages differ from the single page")
			}
		})
	}

	_, next := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?limit=5", officer))
	badCursor := `{"error":"invalid_request","error_description":"invalid parameter cursor: not a cursor returned for this query"}` + "\n"
	// An edited cursor is refused.
	body, mac, _ := strings.Cut(*next, ".")
	tampered := strings.Replace(body, body[len(body)-4:], "AAAA", 1) + "." + mac
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?limit=5&cursor="+url.QueryEscape(tampered), officer), 400, badCursor)
	// A cursor is bound to its filters and resource.
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?includeTest=true&cursor="+url.QueryEscape(*next), officer), 400, badCursor)
	expect(t, e.get(t, "/t/bunny/api/export/v1/zero-reports?cursor="+url.QueryEscape(*next), officer), 400, badCursor)
	expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=csv&cursor="+url.QueryEscape(*next), officer), 400,
		`{"error":"invalid_request","error_description":"invalid parameter cursor: only with format=json"}`+"\n")

	// ndjson and csv carry everything, past any page size.
	nd := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=ndjson", officer)
	if n := strings.Count(nd.body, "\n"); n != 97 {
		t.Errorf("ndjson rows = %d", n)
	}
}

func TestThaiRoundTrip(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	got := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=csv", su)
	if got.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q", got.header.Get("Content-Type"))
	}
	if cd := got.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename=bunny-incident-reports-20260601T120000Z.csv`) {
		t.Errorf("Content-Disposition = %q", cd)
	}
	body, ok := strings.CutPrefix(got.body, "\ufeff")
	if !ok {
		t.Fatal("CSV has no byte order mark")
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "data")
	var data map[string]any
	if err := json.Unmarshal([]byte(recs[2][col]), &data); err != nil {
		t.Fatal(err)
	}
	if data["title"] != "ไก่ตายผิดปกติ" || data["detail"] != "บรรทัดแรก\nline2, \"quoted\"" {
		t.Errorf("CSV data: %v", data)
	}
	if recs[2][slices.Index(recs[0], "report_type_name")] != "สัตว์ป่วยตาย" {
		t.Errorf("report_type_name: %q", recs[2])
	}

	rows, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports", su))
	d := rows[1]["data"].(map[string]any)
	if d["title"] != "ไก่ตายผิดปกติ" || rows[1]["renderer_data"] != "รายงาน 1" || rows[1]["report_type_name"] != "สัตว์ป่วยตาย" {
		t.Errorf("JSON row: %v", rows[1])
	}
	if rows[1]["lng"] != 98.9853 || rows[1]["lat"] != 18.7883 {
		t.Errorf("point: %v %v", rows[1]["lng"], rows[1]["lat"])
	}
	// The Thai username works for Basic too.
	if got := e.get(t, "/t/bunny/api/export/v1/me", basic("สมหญิง", testPassword)); got.status != 200 {
		t.Errorf("Thai username: %d %s", got.status, got.body)
	}
}

func TestFlatGolden(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	for _, tc := range []struct{ file, path string }{
		{"flat.csv", "incident-reports/flat?format=csv&bom=false&reportTypeId=" + reportTypeID},
		{"flat.json", "incident-reports/flat?reportTypeId=" + reportTypeID},
		{"subforms.csv", "incident-reports/flat/subforms?format=csv&bom=false&subform=herd&reportTypeId=" + reportTypeID},
		{"columns.csv", "report-types/" + reportTypeID + "/columns?format=csv&bom=false"},
		{"incident-reports.ndjson", "incident-reports?format=ndjson&includeTest=true&includeDeleted=true"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := e.get(t, "/t/bunny/api/export/v1/"+tc.path, su)
			if got.status != 200 {
				t.Fatalf("%d %s", got.status, got.body)
			}
			body := got.body
			if strings.HasSuffix(tc.file, ".json") {
				var buf bytes.Buffer
				json.Indent(&buf, []byte(body), "", "  ")
				body = buf.String()
			}
			golden(t, tc.file, body)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		if backend == "postgresql" {
			// Only answers that differ from SQLite's get a file of their own.
			if shared, _ := os.ReadFile(filepath.Join("testdata", name)); string(shared) == got {
				os.Remove(path)
				return
			}
			os.MkdirAll(filepath.Dir(path), 0o755)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file (run with -update to see):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestAudit(t *testing.T) {
	e := seeded(t)
	tok := addToken(t, e.db, userOfficer, "officer-token", testNow.Add(time.Hour))
	got := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=csv&includeTest=false", bearer(tok))
	if got.status != 200 {
		t.Fatal(got.status, got.body)
	}
	e.get(t, "/t/bunny/api/export/v1/incident-reports?authorityId=5", bearer(tok))
	e.get(t, "/t/bunny/api/export/v1/me", basic("officer", "wrong")) // not audited: no one authenticated
	rows, err := e.db.Query(`SELECT user_id, username, auth_method, resource, filters, format, status, rows, bytes, started, duration_ms, remote_addr FROM ohtkhub_export_audit ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var (
			user, status, n, bytes, dur                    int64
			username, method, res, filters, format, remote string
			started                                        any
		)
		if err := rows.Scan(&user, &username, &method, &res, &filters, &format, &status, &n, &bytes, &started, &dur, &remote); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(remote, "127.0.0.1:") {
			t.Errorf("remote_addr = %q", remote)
		}
		lines = append(lines, fmt.Sprintf("%d %s %s %s %s %s %d %d %d %s %d", user, username, method, res, filters, format, status, n, bytes, stamp(started), dur))
	}
	want := []string{
		fmt.Sprintf(`3 officer bearer incident-reports {"format":"csv","includeTest":"false"} csv 200 2 %d 2026-06-01T12:00:00.000000Z 0`, len(got.body)),
		`3 officer bearer incident-reports {"authorityId":"5"} json 403 0 0 2026-06-01T12:00:00.000000Z 0`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("audit rows:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestSubtreeCycle(t *testing.T) {
	e := seeded(t)
	// A cycle TAMBON → CM makes CM a child of TAMBON; the subtree query must still end.
	mustExec(t, e.db, `INSERT INTO accounts_authority_inherits (from_authority_id, to_authority_id) VALUES (2, 6)`)
	auths, _ := results(t, e.get(t, "/t/bunny/api/export/v1/authorities", basic("officer", testPassword)))
	if got := ids(auths); !slices.Equal(got, []string{"2", "3", "4", "6"}) {
		t.Errorf("authorities = %v", got)
	}
}

func TestAcceptHeader(t *testing.T) {
	e := seeded(t)
	for accept, ct := range map[string]string{
		"text/csv":                        "text/csv; charset=utf-8",
		"application/x-ndjson":            "application/x-ndjson",
		"text/html, application/json;q=1": "application/json",
		"image/png":                       "application/json",
	} {
		got := e.get(t, "/t/bunny/api/export/v1/authorities", func(r *reqT) {
			basic("super", testPassword)(r)
			r.Header.Set("Accept", accept)
		})
		if got.header.Get("Content-Type") != ct {
			t.Errorf("Accept %q: Content-Type %q", accept, got.header.Get("Content-Type"))
		}
	}
}

// TestUnknownUserCostsWhatKnownUsersCost checks that the hash checked for a username that
// does not exist has the algorithm and iteration count of the tenant's stored hashes, not a
// fixed default: otherwise a wrong username answers measurably slower (or faster) than a
// wrong password, and usernames can be told apart by the time a 401 takes.
func TestUnknownUserCostsWhatKnownUsersCost(t *testing.T) {
	e := seeded(t) // every user's hash has 1000 iterations
	ctx := t.Context()
	db, err := e.store.TenantDB(ctx, "bunny")
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{BasicPasswords: true}).(*handler)
	cost := func() string {
		algo, n := h.standIn(ctx, db).Cost()
		return fmt.Sprintf("%s$%d", algo, n)
	}
	// The first request after a start is for an unknown username: the stand-in already
	// costs what the stored hashes cost.
	if _, err := h.basic(ctx, db, "no such user", "guess"); !errors.Is(err, errBadBasic) {
		t.Fatalf("unknown user: %v", err)
	}
	if got := cost(); got != "pbkdf2_sha256$1000" {
		t.Fatalf("stand-in before any real check: %s, want pbkdf2_sha256$1000", got)
	}
	// It follows the hashes checked since.
	mustExec(t, e.db, `INSERT INTO accounts_user (password, username, date_joined) VALUES ($1, 'sha1 user', $2)`,
		"pbkdf2_sha1$3000$salt$"+strings.Repeat("A", 27)+"=", ts(testNow))
	if _, err := h.basic(ctx, db, "sha1 user", "guess"); !errors.Is(err, errBadBasic) {
		t.Fatalf("wrong password: %v", err)
	}
	if got := cost(); got != "pbkdf2_sha1$3000" {
		t.Fatalf("stand-in after a sha1 hash: %s", got)
	}
	// The other tenant's stand-in is its own.
	bon, _ := e.store.TenantDB(ctx, "bon")
	if algo, n := h.standIn(ctx, bon).Cost(); algo != "pbkdf2_sha256" || n == 3000 {
		t.Fatalf("bon's stand-in: %s %d", algo, n)
	}
	// And the answers stay the same 401 either way.
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("no such user", "guess")), 401, bodyBadBasic)
	expect(t, e.get(t, "/t/bunny/api/export/v1/me", basic("sha1 user", "guess")), 401, bodyBadBasic)
}
