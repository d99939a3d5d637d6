package export

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

func TestXLSXWriter(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	w, err := NewWriter(XLSX, &buf, Options{Sheet: "reports", TempDir: dir,
		Types: []Type{Text, Int, Float, Bool, Date, Timestamp, LocalTime, IntList, Text, Float}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Header([]string{"name", "n", "x", "ok", "day", "at", "seen", "ids", "data", "bad"}); err != nil {
		t.Fatal(err)
	}
	sub, err := w.(Sheets).AddSheet("herd: [1/2]", []string{"report_id", "tag"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]any{
		{"ไก่ตาย \"q\"\nบรรทัด 2", int64(12), json.Number("3.75"), true, "2026-05-01", "2026-05-01T01:00:00.000000Z",
			"2026-05-01T10:30:00+07:00", []int64{3, 4, 6}, json.RawMessage(`{"a":"ไทย"}`), "12 ตัว"},
		{nil, nil, nil, nil, nil, nil, nil, []int64{}, nil, json.Number("7")},
	}
	for _, r := range rows {
		if err := w.Row(r); err != nil {
			t.Fatal(err)
		}
		if err := sub([]any{"r1", "A-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(Trailer{}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.GetSheetList(); !slices.Equal(got, []string{"reports", "herd_ _1_2_"}) {
		t.Errorf("sheets %q", got)
	}
	got, _ := f.GetRows("reports")
	want := [][]string{
		{"name", "n", "x", "ok", "day", "at", "seen", "ids", "data", "bad"},
		{"ไก่ตาย \"q\"\nบรรทัด 2", "12", "3.75", "TRUE", "2026-05-01", "2026-05-01 01:00:00", "2026-05-01 10:30:00", "3,4,6", `{"a":"ไทย"}`, "12 ตัว"},
		{"", "", "", "", "", "", "", "", "", "7"},
	}
	for i := range want {
		if i >= len(got) || !slices.Equal(got[i][:min(len(got[i]), len(want[i]))], want[i][:min(len(got[i]), len(want[i]))]) {
			t.Errorf("row %d: %q, want %q", i, got, want[i])
		}
	}
	// Typed cells: a number is a number, a date a date.
	for cell, typ := range map[string]excelize.CellType{"A2": excelize.CellTypeInlineString, "B2": excelize.CellTypeUnset, "C2": excelize.CellTypeUnset,
		"D2": excelize.CellTypeBool, "J2": excelize.CellTypeInlineString} {
		if ct, _ := f.GetCellType("reports", cell); ct != typ {
			t.Errorf("%s type %v, want %v", cell, ct, typ)
		}
	}
	raw, _ := f.GetCellValue("reports", "E2", excelize.Options{RawCellValue: true})
	if raw != "46143" {
		t.Errorf("date serial %q, want 46143 (2026-05-01)", raw)
	}
	if v, _ := f.GetCellValue("reports", "F2", excelize.Options{RawCellValue: true}); v != "46143.041666666664" && v != "46143.04166666666" {
		t.Errorf("timestamp serial %q", v)
	}
	sheet, _ := f.GetRows("herd_ _1_2_")
	if len(sheet) != 3 || !slices.Equal(sheet[1], []string{"r1", "A-1"}) {
		t.Errorf("subform sheet %q", sheet)
	}
}

func TestXLSXContinuesOnFurtherSheets(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(XLSX, &buf, Options{Types: []Type{Int}})
	w.(*xlsxWriter).maxRows = 4 // header and 3 rows a sheet
	w.Header([]string{"n"})
	for i := range 8 {
		if err := w.Row([]any{int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(Trailer{}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.GetSheetList(); !slices.Equal(got, []string{"data", "data (2)", "data (3)"}) {
		t.Fatalf("sheets %q", got)
	}
	var all []string
	for _, s := range f.GetSheetList() {
		rows, _ := f.GetRows(s)
		if rows[0][0] != "n" {
			t.Errorf("%s starts with %q", s, rows[0])
		}
		for _, r := range rows[1:] {
			all = append(all, r[0])
		}
	}
	if !slices.Equal(all, []string{"0", "1", "2", "3", "4", "5", "6", "7"}) {
		t.Errorf("rows %q", all)
	}
}

func TestXLSXRelease(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(XLSX, &bytes.Buffer{}, Options{TempDir: dir})
	w.Header([]string{"a"})
	w.Row([]any{"x"})
	Release(w)
	Release(w)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestZipFileMarksLargeEntries(t *testing.T) {
	tmp, err := os.CreateTemp(t.TempDir(), "z")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	z := newZipFile(tmp)
	z.limit = 10 // stands in for 4 GiB
	for _, e := range []struct{ name, body string }{{"small.xml", "<a/>"}, {"xl/worksheets/sheet1.xml", "<worksheet>ไทย</worksheet>"}, {"b.xml", "<b/>"}} {
		w, err := z.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(tmp.Name())
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range zr.File {
		off := z.entries[i].offset
		if binary.LittleEndian.Uint32(b[off:]) != 0x04034b50 {
			t.Fatalf("%s: no local header at %d", f.Name, off)
		}
		want := uint16(20)
		if f.Name == "xl/worksheets/sheet1.xml" {
			want = 45
		}
		if v := binary.LittleEndian.Uint16(b[off+4:]); v != want {
			t.Errorf("%s: version %d, want %d", f.Name, v, want)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

func TestTypedValues(t *testing.T) {
	bkk := time.FixedZone("ICT", 7*3600)
	for _, tc := range []struct {
		v     any
		local bool
		want  string
	}{
		{"2026-05-01T01:00:00.000000Z", false, "2026-05-01T01:00:00Z"},
		{"2026-05-01T08:00:00+07:00", false, "2026-05-01T01:00:00Z"},
		{"2026-05-01 08:00:00+07", false, "2026-05-01T01:00:00Z"},
		{"2026-05-01T08:00:00+07:00", true, "2026-05-01T08:00:00Z"},
		{"2026-05-01T10:30:00.000", true, "2026-05-01T10:30:00Z"},
		{time.Date(2026, 5, 1, 8, 0, 0, 0, bkk), false, "2026-05-01T01:00:00Z"},
		{time.Date(2026, 5, 1, 8, 0, 0, 0, bkk), true, "2026-05-01T08:00:00Z"},
	} {
		got, ok := asTime(tc.v, tc.local)
		if !ok || got.Format(time.RFC3339) != tc.want {
			t.Errorf("asTime(%v, %v) = %v %v, want %s", tc.v, tc.local, got, ok, tc.want)
		}
	}
	if _, ok := asTime("yesterday", false); ok {
		t.Error("asTime accepted yesterday")
	}
	if f, ok := asFloat(json.Number("3.75")); !ok || f != 3.75 {
		t.Errorf("asFloat = %v %v", f, ok)
	}
	if _, ok := asFloat("12 ตัว"); ok {
		t.Error("asFloat accepted text")
	}
	if d, ok := asDate("2026-05-01"); !ok || d != time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("asDate = %v %v", d, ok)
	}
}
