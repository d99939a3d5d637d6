package exportapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/xuri/excelize/v2"
)

const (
	xlsxType    = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	parquetType = "application/vnd.apache.parquet"
)

// table is a result as a user reads it back: a header and rows of values.
type table struct {
	header []string
	rows   [][]any
}

// readCSVTable reads a CSV export.
func readCSVTable(t *testing.T, r response) table {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("csv: %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	tb := table{header: recs[0]}
	for _, rec := range recs[1:] {
		row := make([]any, len(rec))
		for i, v := range rec {
			row[i] = v
		}
		tb.rows = append(tb.rows, row)
	}
	return tb
}

// readXLSX opens an xlsx export and returns its sheets as text, the way Excel shows them.
func readXLSX(t *testing.T, r response) (*excelize.File, map[string]table) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("xlsx: %d %s", r.status, r.body)
	}
	f, err := excelize.OpenReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	sheets := map[string]table{}
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		tb := table{header: rows[0]}
		for _, rec := range rows[1:] {
			row := make([]any, len(tb.header))
			for i := range row {
				row[i] = ""
				if i < len(rec) {
					row[i] = rec[i]
				}
			}
			tb.rows = append(tb.rows, row)
		}
		sheets[name] = tb
	}
	return f, sheets
}

// readParquet reads a Parquet export: its columns, each column's type as pyarrow names
// it, and rows of Go values (string, int64, float64, bool, time.Time, []int64, nil).
func readParquet(t *testing.T, r response) (table, []string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("parquet: %d %s", r.status, r.body)
	}
	b := []byte(r.body)
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var tb table
	var types []string
	for _, fd := range f.Schema().Fields() {
		tb.header = append(tb.header, fd.Name())
		types = append(types, arrowType(fd))
	}
	rd := parquet.NewReader(f)
	defer rd.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := rd.ReadRows(buf)
		for _, pr := range buf[:n] {
			row := make([]any, len(types))
			for _, v := range pr {
				i := v.Column()
				switch typ := types[i]; {
				case typ == "list<int64>":
					if v.DefinitionLevel() == 0 {
						continue
					}
					list, _ := row[i].([]int64)
					if list == nil {
						list = []int64{}
					}
					if v.DefinitionLevel() == 2 {
						list = append(list, v.Int64())
					}
					row[i] = list
				case v.IsNull():
				case typ == "string":
					row[i] = string(v.ByteArray())
				case typ == "int64":
					row[i] = v.Int64()
				case typ == "double":
					row[i] = v.Double()
				case typ == "bool":
					row[i] = v.Boolean()
				case typ == "date32":
					row[i] = time.Unix(int64(v.Int32())*86400, 0).UTC()
				case strings.HasPrefix(typ, "timestamp"):
					row[i] = time.UnixMicro(v.Int64()).UTC()
				default:
					t.Fatalf("column %s: type %s", tb.header[i], typ)
				}
			}
			tb.rows = append(tb.rows, row)
		}
		if err != nil {
			break
		}
	}
	return tb, types
}

func arrowType(fd parquet.Field) string {
	var lt format.LogicalTypeValue
	if l := fd.Type().LogicalType(); l != nil {
		lt = l.Value
	}
	switch lt := lt.(type) {
	case *format.ListType:
		return "list<int64>"
	case *format.StringType:
		return "string"
	case *format.DateType:
		return "date32"
	case *format.TimestampType:
		if lt.IsAdjustedToUTC {
			return "timestamp[us, tz=UTC]"
		}
		return "timestamp[us]"
	}
	switch fd.Type().Kind() {
	case parquet.Int64:
		return "int64"
	case parquet.Double:
		return "double"
	case parquet.Boolean:
		return "bool"
	}
	return fd.Type().String()
}

// column returns the values of column name.
func (tb table) column(t *testing.T, name string) []any {
	t.Helper()
	i := slices.Index(tb.header, name)
	if i < 0 {
		t.Fatalf("no column %s in %q", name, tb.header)
	}
	out := make([]any, len(tb.rows))
	for j, r := range tb.rows {
		out[j] = r[i]
	}
	return out
}

// row returns the row whose column col is v.
func (tb table) row(t *testing.T, col string, v any) map[string]any {
	t.Helper()
	i := slices.Index(tb.header, col)
	for _, r := range tb.rows {
		if i >= 0 && reflect.DeepEqual(r[i], v) {
			m := map[string]any{}
			for j, name := range tb.header {
				m[name] = r[j]
			}
			return m
		}
	}
	t.Fatalf("no row with %s = %v", col, v)
	return nil
}

// TestFileFormatsEveryResource exports every resource as xlsx and Parquet and checks each
// file against the CSV export: same columns in the same order, same rows in the same
// order, with the name and type a download gets.
func TestFileFormatsEveryResource(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	for _, path := range []string{
		"authorities",
		"report-types",
		"incident-reports?includeTest=true&includeDeleted=true",
		"incident-reports/flat?reportTypeId=" + reportTypeID,
		"incident-reports/flat/subforms?subform=herd&reportTypeId=" + reportTypeID,
		"zero-reports",
		"reporters",
		"report-types/" + reportTypeID + "/columns",
	} {
		t.Run(path, func(t *testing.T) {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			want := readCSVTable(t, e.get(t, "/t/bunny/api/export/v1/"+path+sep+"format=csv", su))
			resource, _, _ := strings.Cut(path, "?")
			stem := "bunny-" + strings.ReplaceAll(resource, "/", "-") + "-20260601T120000Z"
			if strings.HasPrefix(resource, "report-types/"+reportTypeID) {
				stem = "bunny-report-types-" + reportTypeID + "-columns-20260601T120000Z"
			}
			firstID := want.rows[0][0].(string)

			got := e.get(t, "/t/bunny/api/export/v1/"+path+sep+"format=xlsx", su)
			if ct, cd := got.header.Get("Content-Type"), got.header.Get("Content-Disposition"); ct != xlsxType || cd != "attachment; filename="+stem+".xlsx" {
				t.Errorf("xlsx: Content-Type %q, Content-Disposition %q", ct, cd)
			}
			f, sheets := readXLSX(t, got)
			main := sheets[f.GetSheetName(0)]
			if !slices.Equal(main.header, want.header) || len(main.rows) != len(want.rows) {
				t.Errorf("xlsx: %d rows of %q, want %d rows of %q", len(main.rows), main.header, len(want.rows), want.header)
			} else if main.rows[0][0] != firstID {
				t.Errorf("xlsx: first row %v, want %v", main.rows[0], want.rows[0])
			}

			got = e.get(t, "/t/bunny/api/export/v1/"+path+sep+"format=parquet", su)
			if ct, cd := got.header.Get("Content-Type"), got.header.Get("Content-Disposition"); ct != parquetType || cd != "attachment; filename="+stem+".parquet" {
				t.Errorf("parquet: Content-Type %q, Content-Disposition %q", ct, cd)
			}
			pq, types := readParquet(t, got)
			if !slices.Equal(pq.header, want.header) || len(pq.rows) != len(want.rows) {
				t.Errorf("parquet: %d rows of %q, want %d rows of %q", len(pq.rows), pq.header, len(want.rows), want.header)
			} else if first := pq.rows[0][0]; first != firstID && !(types[0] == "int64" && first == mustInt(firstID)) {
				t.Errorf("parquet: first row %v, want %v", pq.rows[0], want.rows[0])
			}
		})
	}
}

func mustInt(s string) int64 {
	var n int64
	json.Unmarshal([]byte(s), &n)
	return n
}

// TestXLSXFlat checks what a user sees in the workbook of incident-reports/flat: the
// reports on one sheet with typed cells and Thai text intact, and each subform's rows on a
// sheet of its own, linked to the report by report_id, as the subforms CSV has them.
func TestXLSXFlat(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	f, sheets := readXLSX(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=xlsx&reportTypeId="+reportTypeID, su))
	if got := f.GetSheetList(); !slices.Equal(got, []string{"reports", "herd"}) {
		t.Fatalf("sheets %q", got)
	}
	flat := readCSVTable(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=csv&reportTypeId="+reportTypeID, su))
	reports := sheets["reports"]
	if !slices.Equal(reports.header, flat.header) || !slices.Equal(reports.column(t, "id"), flat.column(t, "id")) {
		t.Errorf("reports sheet %q %v, want %q %v", reports.header, reports.column(t, "id"), flat.header, flat.column(t, "id"))
	}
	herd := readCSVTable(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat/subforms?format=csv&subform=herd&reportTypeId="+reportTypeID, su))
	if !reflect.DeepEqual(sheets["herd"], herd) {
		t.Errorf("herd sheet %v, want %v", sheets["herd"], herd)
	}

	r := reports.row(t, "id", reportMany)
	for col, want := range map[string]string{
		"title":          "ไก่ตายผิดปกติ",
		"detail":         "บรรทัดแรก\nline2, \"quoted\"",
		"contact.name":   "สมชาย ใจดี",
		"symptoms.ไข้":   "TRUE",
		"animals":        "12",
		"weight":         "3.75",
		"found_date":     "2026-05-01",
		"found_at":       "2026-05-01 10:30:00", // the reporter's clock (Asia/Bangkok)
		"created_at":     "2026-05-01 01:00:00", // UTC
		"incident_date":  "2026-05-01",
		"authority_ids":  "3,4,6",
		"reported_by_id": "4",
		"test_flag":      "FALSE",
		"place_lng":      "98.9853",
	} {
		if r[col] != want {
			t.Errorf("%s = %q, want %q", col, r[col], want)
		}
	}
	// The cells hold numbers, booleans and dates, not text that looks like them.
	cellOf := func(col string) string {
		i := slices.Index(reports.header, col)
		row := 2 + slices.Index(reports.column(t, "id"), any(reportMany))
		name, _ := excelize.CoordinatesToCellName(i+1, row)
		return name
	}
	for col, want := range map[string]excelize.CellType{
		"title": excelize.CellTypeInlineString, "animals": excelize.CellTypeUnset, "lat": excelize.CellTypeUnset,
		"symptoms.ไข้": excelize.CellTypeBool, "found_date": excelize.CellTypeUnset, "created_at": excelize.CellTypeUnset,
	} {
		if got, _ := f.GetCellType("reports", cellOf(col)); got != want {
			t.Errorf("%s: cell type %v, want %v", col, got, want)
		}
	}
	for col, want := range map[string]string{"found_date": "46143", "animals": "12", "created_at": "46143.041666666664"} {
		raw, _ := f.GetCellValue("reports", cellOf(col), excelize.Options{RawCellValue: true})
		if raw != want && !(col == "created_at" && strings.HasPrefix(raw, "46143.04166666")) {
			t.Errorf("%s: raw cell %q, want %q", col, raw, want)
		}
	}
}

// TestParquetTypedColumns checks the column types and values of Parquet exports as
// pandas or DuckDB would read them.
func TestParquetTypedColumns(t *testing.T) {
	e := seeded(t)
	su := basic("super", testPassword)
	day := func(d, h, m int) time.Time { return time.Date(2026, 5, d, h, m, 0, 0, time.UTC) }

	reports, types := readParquet(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=parquet", su))
	wantTypes := map[string]string{"id": "string", "incident_date": "date32", "created_at": "timestamp[us, tz=UTC]", "deleted_at": "timestamp[us, tz=UTC]",
		"reported_by_id": "int64", "authority_ids": "list<int64>", "lng": "double", "test_flag": "bool", "data": "string", "renderer_data": "string"}
	for col, want := range wantTypes {
		if got := types[slices.Index(reports.header, col)]; got != want {
			t.Errorf("incident-reports %s: %s, want %s", col, got, want)
		}
	}
	r := reports.row(t, "id", reportMany)
	want := map[string]any{"incident_date": day(1, 0, 0), "created_at": day(1, 1, 0), "deleted_at": nil, "reported_by_id": int64(4),
		"reported_by_username": "reporter", "authority_ids": []int64{3, 4, 6}, "lng": 98.9853, "lat": 18.7883, "test_flag": false,
		"report_type_name": "สัตว์ป่วยตาย", "renderer_data": "รายงาน 1"}
	for col, w := range want {
		if !reflect.DeepEqual(r[col], w) {
			t.Errorf("%s = %#v, want %#v", col, r[col], w)
		}
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(r["data"].(string)), &data); err != nil || data["title"] != "ไก่ตายผิดปกติ" || data["detail"] != "บรรทัดแรก\nline2, \"quoted\"" {
		t.Errorf("data %v %v", data, err)
	}
	if orphan := reports.row(t, "id", reportOrphan); !reflect.DeepEqual(orphan["authority_ids"], []int64{}) {
		t.Errorf("no authorities: %#v", orphan["authority_ids"])
	}

	flat, types := readParquet(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=parquet&reportTypeId="+reportTypeID, su))
	csvFlat := readCSVTable(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=csv&reportTypeId="+reportTypeID, su))
	if !slices.Equal(flat.header, csvFlat.header) {
		t.Errorf("flat columns %q, want %q", flat.header, csvFlat.header)
	}
	for col, want := range map[string]string{"animals": "double", "weight": "double", "place_lng": "double", "found_date": "date32",
		"found_at": "timestamp[us]", "symptoms.ไข้": "bool", "title": "string", "herd": "string", "old_note": "string"} {
		if got := types[slices.Index(flat.header, col)]; got != want {
			t.Errorf("flat %s: %s, want %s", col, got, want)
		}
	}
	r = flat.row(t, "id", reportMany)
	for col, w := range map[string]any{"title": "ไก่ตายผิดปกติ", "animals": 12.0, "weight": 3.75, "found_date": day(1, 0, 0),
		"found_at": day(1, 10, 30), "symptoms.ไข้": true, "symptoms.ท้องเสีย": false, "symptoms.other_text": "ซึม", "species_text": "เป็ดไล่ทุ่ง",
		"place_lat": 18.7883, "herd": "k1, k2", "contact.phone": "0812345678", "data.id": "FARM-9", "old_note": nil} {
		if !reflect.DeepEqual(r[col], w) {
			t.Errorf("flat %s = %#v, want %#v", col, r[col], w)
		}
	}
	if old := flat.row(t, "id", reportOld); old["old_note"] != "บันทึก" || old["animals"] != nil {
		t.Errorf("old report: %v", old)
	}

	people, types := readParquet(t, e.get(t, "/t/bunny/api/export/v1/reporters?format=parquet", su))
	if got := types[slices.Index(people.header, "is_active")]; got != "bool" {
		t.Errorf("is_active: %s", got)
	}
	if p := people.row(t, "id", int64(userLamphun)); p["username"] != "สมหญิง" || p["authority_id"] != int64(authLamphun) {
		t.Errorf("reporter: %v", p)
	}
}

// TestFileFormatsScoped checks that a report relevant to several authorities of the
// caller appears once, and that the files have the rows JSON and CSV have.
func TestFileFormatsScoped(t *testing.T) {
	e := seeded(t)
	admin := basic("admin", testPassword) // CM: MUEANG, SANSAI and TAMBON
	rows, _ := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports", admin))
	want := ids(rows)
	csvIDs := readCSVTable(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=csv", admin)).column(t, "id")

	_, sheets := readXLSX(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=xlsx", admin))
	pq, _ := readParquet(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?format=parquet", admin))
	for name, got := range map[string][]any{"csv": csvIDs, "xlsx": sheets["incident-reports"].column(t, "id"), "parquet": pq.column(t, "id")} {
		var s []string
		for _, v := range got {
			s = append(s, v.(string))
		}
		if !slices.Equal(s, want) {
			t.Errorf("%s ids %v, want %v (JSON)", name, s, want)
		}
	}
	if r := pq.row(t, "id", reportMany); !reflect.DeepEqual(r["authority_ids"], []int64{3, 4, 6}) {
		t.Errorf("authority_ids %v", r["authority_ids"])
	}

	flat, _ := readParquet(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=parquet&reportTypeId="+reportTypeID, admin))
	_, sheets = readXLSX(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=xlsx&reportTypeId="+reportTypeID, admin))
	if len(flat.rows) != len(want) || len(sheets["reports"].rows) != len(want) || len(sheets["herd"].rows) != 2 {
		t.Errorf("flat: parquet %d, xlsx %d rows, herd %d; want %d, 2", len(flat.rows), len(sheets["reports"].rows), len(sheets["herd"].rows), len(want))
	}
}

// TestFileFormatsRequests covers HEAD, Accept, errors before the file starts, and that no
// temporary files outlive a request.
func TestFileFormatsRequests(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	e := seeded(t)
	su := basic("super", testPassword)

	for _, f := range []struct{ name, ct string }{{"xlsx", xlsxType}, {"parquet", parquetType}} {
		req, _ := newRequest("HEAD", e.srv.URL+"/t/bunny/api/export/v1/incident-reports?format="+f.name)
		su(req)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != f.ct || res.ContentLength > 0 ||
			!strings.HasSuffix(res.Header.Get("Content-Disposition"), "."+f.name) {
			t.Errorf("HEAD %s: %d %q %q %d", f.name, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), res.ContentLength)
		}

		got := e.get(t, "/t/bunny/api/export/v1/authorities", func(r *reqT) {
			su(r)
			r.Header.Set("Accept", "text/html, "+f.ct)
		})
		if got.status != 200 || got.header.Get("Content-Type") != f.ct {
			t.Errorf("Accept %s: %d %q", f.ct, got.status, got.header.Get("Content-Type"))
		}

		expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format="+f.name, su), 400,
			`{"error":"invalid_request","error_description":"invalid parameter reportTypeId: required"}`+"\n")
		expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?limit=5&format="+f.name, su), 400,
			`{"error":"invalid_request","error_description":"invalid parameter limit: only with format=json; the other formats return the whole result"}`+"\n")
		expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?bom=false&format="+f.name, su), 400,
			`{"error":"invalid_request","error_description":"unknown parameter bom: only with format=csv"}`+"\n")
		expect(t, e.get(t, "/t/bunny/api/export/v1/me?format="+f.name, su), 400,
			`{"error":"invalid_request","error_description":"invalid parameter format: want one of json"}`+"\n")
		expect(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?reportTypeId=22222222-1111-4111-8111-111111111111&format="+f.name, su), 404,
			`{"error":"not_found","error_description":"no report type 22222222-1111-4111-8111-111111111111"}`+"\n")
	}
	readXLSX(t, e.get(t, "/t/bunny/api/export/v1/incident-reports/flat?format=xlsx&reportTypeId="+reportTypeID, su))
	left, _ := os.ReadDir(tmp)
	for _, d := range left {
		if strings.HasPrefix(d.Name(), "excelize-") || strings.HasPrefix(d.Name(), "ohtkhub-export-") {
			t.Errorf("temporary file left: %s", d.Name())
		}
	}
}

// TestXLSXPastOHTKRowCap exports more reports than OHTK's own .xls holds (65,535 rows):
// they all land on the one sheet, in order.
func TestXLSXPastOHTKRowCap(t *testing.T) {
	e := seeded(t)
	const n = 70_000
	seedReports(t, e, n)
	got := e.get(t, "/t/bunny/api/export/v1/incident-reports?format=xlsx", basic("super", testPassword))
	if got.status != 200 {
		t.Fatalf("%d %s", got.status, got.body)
	}
	f, err := excelize.OpenReader(strings.NewReader(got.body))
	if err != nil {
		t.Fatal(err)
	}
	if sheets := f.GetSheetList(); !slices.Equal(sheets, []string{"incident-reports"}) {
		t.Fatalf("sheets %q", sheets)
	}
	rows, err := f.Rows("incident-reports")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count, last := 0, ""
	for rows.Next() {
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		count++
		last = cols[0]
	}
	// The header, the generated reports and the fixtures' 4, the last created last.
	if count != 1+4+n || last != reportOrphan {
		t.Errorf("%d rows, last %s; want %d", count, last, 1+4+n)
	}
}
