package exportapi

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// testNow is the fixed time the tests run at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for the handler.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a running Export API over two tenants of the backend under test, "bunny" (with
// fixtures) and "bon"; db and bon write their tables.
type env struct {
	t     *testing.T
	store *ohtkdb.Store
	db    *sql.DB // bunny
	bon   *sql.DB
	srv   *httptest.Server
	clock *clock
}

// tenantMux resolves /t/{schema}/… to the tenant, as the api server does, and strips the prefix.
func tenantMux(store *ohtkdb.Store, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/t/")
		if !ok {
			h.ServeHTTP(w, r) // no tenant in context
			return
		}
		schema, path, _ := strings.Cut(rest, "/")
		tn, err := store.TenantBySchema(r.Context(), schema)
		if err != nil {
			http.Error(w, `{"error":"not_found"}`, 404)
			return
		}
		db, err := store.TenantDB(r.Context(), schema)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		r2 := r.Clone(tenant.NewContext(r.Context(), &tenant.Tenant{Tenant: tn, DB: db, BasePath: "/t/" + schema}))
		r2.URL.Path = "/" + path
		h.ServeHTTP(w, r2)
	})
}

func newEnv(t testing.TB, opts Options) *env {
	store, db, bon := openStore(t)
	c := &clock{t: testNow}
	opts.Now = c.Now
	srv := httptest.NewServer(tenantMux(store, New(opts)))
	t.Cleanup(srv.Close)
	e := &env{store: store, db: db, bon: bon, srv: srv, clock: c}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	return e
}

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func ts(t time.Time) string { return ohtkdb.FormatTime(t) }

// Authorities of bunny: 1 ROOT ─ 2 CM ─┬ 3 MUEANG ─┐
//
//	│     └ 4 SANSAI ─┴ 6 TAMBON (two parents)
//	└ 5 LAMPHUN
const (
	authRoot    = 1
	authCM      = 2
	authMueang  = 3
	authSansai  = 4
	authLamphun = 5
	authTambon  = 6
)

// Users of bunny.
const (
	userSuper    = 1
	userAdmin    = 2
	userOfficer  = 3
	userReporter = 4
	userInactive = 5
	userLamphun  = 6
	userNobody   = 7 // active, no authority, not superuser
)

const testPassword = "correct horse ทดสอบ"

const reportTypeID = "11111111-1111-4111-8111-111111111111"

// typeDefinition uses every field type of OHTK's form builder.
const typeDefinition = `{"sections":[{"label":"ข้อมูลทั่วไป","questions":[
 {"label":"เหตุการณ์","fields":[
  {"id":"title","name":"title","label":"หัวข้อ","type":"text"},
  {"name":"detail","label":"รายละเอียด","type":"textarea"},
  {"name":"animals","label":"จำนวนสัตว์","type":"integer"},
  {"name":"weight","label":"น้ำหนัก","type":"decimal"},
  {"name":"found_date","label":"วันที่พบ","type":"date"},
  {"name":"found_at","label":"เวลาที่พบ","type":"date","withTime":true},
  {"name":"place","label":"พิกัด","type":"location"},
  {"name":"species","label":"ชนิดสัตว์","type":"singlechoices","options":[{"label":"ไก่","value":"ไก่"},{"label":"อื่นๆ","value":"อื่นๆ","textInput":true}]},
  {"name":"symptoms","label":"อาการ","type":"multiplechoices","options":[{"label":"ไข้","value":"ไข้"},{"label":"ท้องเสีย","value":"ท้องเสีย"},{"label":"อื่นๆ","value":"other","textInput":true}]},
  {"name":"photos","label":"รูปภาพ","type":"images"},
  {"name":"docs","label":"เอกสาร","type":"files"},
  {"name":"herd","label":"สัตว์ในฝูง","type":"subform","formRef":"animal"},
  {"name":"id","label":"รหัสฟาร์ม","type":"text"}
 ]},
 {"label":"ผู้ติดต่อ","name":"contact","fields":[{"name":"name","label":"ชื่อ","type":"text"},{"name":"phone","label":"โทร","type":"text"}]}
]}],
"subforms":[{"animal":{"sections":[{"questions":[{"fields":[
  {"name":"tag","label":"เบอร์หู","type":"text"},
  {"name":"age","label":"อายุ","type":"integer"},
  {"name":"sick","label":"ป่วย","type":"singlechoices","options":[{"label":"ใช่","value":"yes"}]}
]}]}]}}]}`

// snapshotDefinition is an older form of the same type with a field the current one lacks.
const snapshotDefinition = `{"sections":[{"questions":[{"fields":[
  {"name":"title","label":"หัวข้อ","type":"text"},
  {"name":"old_note","label":"หมายเหตุเดิม","type":"text"}
]}]}]}`

// Reports of bunny.
const (
	reportMany    = "aaaaaaaa-0000-4000-8000-000000000001" // relevant to 3, 4 and 6
	reportLamphun = "aaaaaaaa-0000-4000-8000-000000000002" // relevant to 5
	reportTest    = "aaaaaaaa-0000-4000-8000-000000000003" // test report, relevant to 3
	reportDeleted = "aaaaaaaa-0000-4000-8000-000000000004" // soft-deleted, relevant to 3
	reportOrphan  = "aaaaaaaa-0000-4000-8000-000000000005" // no relevant authority
	reportOld     = "aaaaaaaa-0000-4000-8000-000000000006" // definition snapshot, relevant to 6
)

const reportManyData = `{"tz":"Asia/Bangkok","title":"ไก่ตายผิดปกติ","title__value":"ไก่ตายผิดปกติ","detail":"บรรทัดแรก\nline2, \"quoted\"",
 "animals":12,"weight":"3.75","found_date":"2026-05-01T00:00:00.000","found_at":"2026-05-01T10:30:00.000","place":"98.9853,18.7883",
 "species":"อื่นๆ","species_text":"เป็ดไล่ทุ่ง",
 "symptoms":{"ไข้":true,"ท้องเสีย":false,"other":true,"other_text":"ซึม","value":"ไข้, อื่นๆ"},
 "photos":[{"id":"img-1","url":"https://files.test/1.jpg"},"img-2"],"docs":{"ใบรับรอง.pdf":"doc-2","lab.pdf":"doc-1"},
 "herd":{"k2":{"tag":"A-2","age":3},"k1":{"tag":"A-1","age":2,"sick":"yes"},"value":"k1, k2"},
 "contact":{"name":"สมชาย ใจดี","phone":"0812345678"},"id":"FARM-9"}`

// seed fills bunny with the fixtures above.
func (e *env) seed(t testing.TB) {
	db := e.db
	now := ts(testNow.Add(-24 * time.Hour))
	for _, a := range []struct {
		id         int
		code, name string
	}{{1, "ROOT", "กรมปศุสัตว์"}, {2, "CM", "จังหวัดเชียงใหม่"}, {3, "MUEANG", "อำเภอเมืองเชียงใหม่"}, {4, "SANSAI", "อำเภอสันทราย"}, {5, "LAMPHUN", "จังหวัดลำพูน"}, {6, "TAMBON", "ตำบลหนองหาร"}} {
		mustExec(t, db, `INSERT INTO accounts_authority (id, code, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`, a.id, a.code, a.name, now)
	}
	for _, edge := range [][2]int{{2, 1}, {3, 2}, {4, 2}, {5, 1}, {6, 3}, {6, 4}} {
		mustExec(t, db, `INSERT INTO accounts_authority_inherits (from_authority_id, to_authority_id) VALUES ($1, $2)`, edge[0], edge[1])
	}
	hash := djangohash.Make(testPassword, 1000)
	for _, u := range []struct {
		id            int
		name          string
		super, active bool
		role          string
		authority     int
	}{
		{userSuper, "super", true, true, "", 0},
		{userAdmin, "admin", false, true, "ADM", authCM},
		{userOfficer, "officer", false, true, "OFC", authMueang},
		{userReporter, "reporter", false, true, "REP", authMueang},
		{userInactive, "inactive", false, false, "OFC", authCM},
		{userLamphun, "สมหญิง", false, true, "OFC", authLamphun},
		{userNobody, "nobody", false, true, "", 0},
	} {
		mustExec(t, db, `INSERT INTO accounts_user (id, password, is_superuser, username, first_name, email, is_active, date_joined)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, u.id, hash, u.super, u.name, "ชื่อ "+u.name, u.name+"@example.org", u.active, now)
		if u.role != "" {
			mustExec(t, db, `INSERT INTO accounts_authorityuser (user_ptr_id, authority_id, role, telephone, address) VALUES ($1, $2, $3, $4, $5)`,
				u.id, u.authority, u.role, "08100000"+string(rune('0'+u.id)), "บ้านเลขที่ "+string(rune('0'+u.id)))
		}
	}
	mustExec(t, db, `INSERT INTO reports_category (id, name, created_at, updated_at) VALUES (1, 'สัตว์ปีก', $1, $1)`, now)
	mustExec(t, db, `INSERT INTO reports_reporttype (id, name, category_id, definition, published, created_at, updated_at) VALUES ($1, $2, 1, $3, TRUE, $4, $4)`,
		reportTypeID, "สัตว์ป่วยตาย", typeDefinition, now)
	type rep struct {
		id          string
		created     time.Time
		data, def   string
		test        bool
		deleted     bool
		authorities []int
	}
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []rep{
		{reportMany, base.Add(1 * time.Hour), reportManyData, "", false, false, []int{authMueang, authSansai, authTambon}},
		{reportLamphun, base.Add(2 * time.Hour), `{"tz":"Asia/Bangkok","title":"ลำพูน"}`, "", false, false, []int{authLamphun}},
		{reportTest, base.Add(3 * time.Hour), `{"title":"ทดสอบ"}`, "", true, false, []int{authMueang}},
		{reportDeleted, base.Add(4 * time.Hour), `{"title":"ลบแล้ว"}`, "", false, true, []int{authMueang}},
		{reportOrphan, base.Add(5 * time.Hour), `{"title":"ไม่มีหน่วยงาน"}`, "", false, false, nil},
		{reportOld, base.Add(-30 * 24 * time.Hour), `{"title":"แบบฟอร์มเก่า","old_note":"บันทึก"}`, snapshotDefinition, false, false, []int{authTambon}},
	} {
		var deleted, def any
		if r.deleted {
			deleted = ts(r.created.Add(time.Hour))
		}
		if r.def != "" {
			def = r.def
		}
		mustExec(t, db, `INSERT INTO reports_incidentreport (id, reported_by_id, report_type_id, data, renderer_data, test_flag, incident_date,
			gps_location, definition, created_at, updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`,
			r.id, userReporter, reportTypeID, r.data, "รายงาน "+r.id[len(r.id)-1:], r.test, r.created.Format(time.DateOnly),
			"SRID=4326;POINT(98.9853 18.7883)", def, ts(r.created), deleted)
		for _, a := range r.authorities {
			mustExec(t, db, `INSERT INTO reports_incidentreport_relevant_authorities (incidentreport_id, authority_id) VALUES ($1, $2)`, r.id, a)
		}
	}
	for i, u := range []int{userReporter, userLamphun, userOfficer} {
		mustExec(t, db, `INSERT INTO reports_zeroreport (id, platform, reported_by_id, created_at, updated_at) VALUES ($1, 'android', $2, $3, $3)`,
			"dddddddd-0000-4000-8000-00000000000"+string(rune('1'+i)), u, ts(base.Add(time.Duration(i)*time.Hour)))
	}
	syncSequences(t, db)
}

// token stores a DOT access token for user in db and returns it.
func addToken(t testing.TB, db *sql.DB, user int, token string, expires time.Time) string {
	mustExec(t, db, `INSERT INTO oauth2_provider_accesstoken (user_id, token, token_checksum, expires, scope, created, updated)
		VALUES ($1, $2, $3, $4, 'read write', $5, $5)`, user, token, HashAPIKey(token), ts(expires), ts(testNow))
	return token
}

// response is what a test request got back.
type response struct {
	status int
	header http.Header
	body   string
}

func (e *env) get(t testing.TB, path string, auth func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// expect checks status and exact body.
func expect(t *testing.T, got response, status int, body string) {
	t.Helper()
	if got.status != status || got.body != body {
		t.Fatalf("got %d %q\nwant %d %q", got.status, got.body, status, body)
	}
}

// results decodes a JSON page.
func results(t *testing.T, r response) ([]map[string]any, *string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var page struct {
		Results    []map[string]any `json:"results"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(r.body), &page); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return page.Results, page.NextCursor
}

func ids(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		switch v := r["id"].(type) {
		case string:
			out[i] = v
		default:
			b, _ := json.Marshal(v)
			out[i] = string(b)
		}
	}
	return out
}

type reqT = http.Request

type authFn = func(*http.Request)

func newRequest(method, url string) (*http.Request, error) { return http.NewRequest(method, url, nil) }
