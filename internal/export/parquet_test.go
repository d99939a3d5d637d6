package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// readParquet reads a Parquet file as a reader sees it: column names, each column's
// logical type, and rows of Go values (string, int64, float64, bool, time.Time for dates
// and timestamps, []int64 for lists, nil).
func readParquet(t *testing.T, b []byte) (names, types []string, rows [][]any) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	fields := f.Schema().Fields()
	for _, fd := range fields {
		names = append(names, fd.Name())
		types = append(types, parquetTypeName(fd))
	}
	r := parquet.NewReader(f)
	defer r.Close()
	buf := make([]parquet.Row, 100)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			out := make([]any, len(fields))
			for _, v := range row {
				i := v.Column()
				switch {
				case types[i] == "list<int64>":
					if v.DefinitionLevel() == 0 {
						continue
					}
					list, _ := out[i].([]int64)
					if list == nil {
						list = []int64{}
					}
					if v.DefinitionLevel() == 2 {
						list = append(list, v.Int64())
					}
					out[i] = list
				case v.IsNull():
				case types[i] == "string":
					out[i] = string(v.ByteArray())
				case types[i] == "int64":
					out[i] = v.Int64()
				case types[i] == "double":
					out[i] = v.Double()
				case types[i] == "bool":
					out[i] = v.Boolean()
				case types[i] == "date":
					out[i] = time.Unix(int64(v.Int32())*86400, 0).UTC()
				case types[i] == "timestamp[us, UTC]" || types[i] == "timestamp[us]":
					out[i] = time.UnixMicro(v.Int64()).UTC()
				default:
					t.Fatalf("column %s: type %s", names[i], types[i])
				}
			}
			rows = append(rows, out)
		}
		if err != nil {
			break
		}
	}
	return names, types, rows
}

func parquetTypeName(fd parquet.Field) string {
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
		return "date"
	case *format.TimestampType:
		if lt.IsAdjustedToUTC {
			return "timestamp[us, UTC]"
		}
		return "timestamp[us]"
	}
	if !fd.Leaf() {
		return "group"
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

func TestParquetWriter(t *testing.T) {
	var buf bytes.Buffer
	cols := []string{"name", "n", "x", "ok", "day", "at", "seen", "ids", "data", "bad", "ข้อมูล.ชื่อ"}
	w, err := NewWriter(Parquet, &buf, Options{RowGroupRows: 2,
		Types: []Type{Text, Int, Float, Bool, Date, Timestamp, LocalTime, IntList, Text, Float}})
	if err != nil {
		t.Fatal(err)
	}
	w.Header(cols)
	raw := []byte(`{"a":"ไทย"}`)
	rows := [][]any{
		{"ไก่ตาย \"q\"\nบรรทัด 2", int64(12), json.Number("3.75"), true, "2026-05-01", "2026-05-01T01:00:00.000000Z",
			"2026-05-01T10:30:00+07:00", []int64{3, 4, 6}, json.RawMessage(raw), "12 ตัว", "สมชาย"},
		{nil, nil, nil, nil, nil, nil, nil, []int64{}, nil, json.Number("7"), int64(5)},
		{"", int64(-1), 0.5, false, "2026-01-31", "2026-05-01T08:00:00+07:00", "2026-05-01T10:30:00.000", nil, json.RawMessage(`[]`), nil, nil},
	}
	for _, r := range rows {
		if err := w.Row(r); err != nil {
			t.Fatal(err)
		}
		copy(raw, `XXXXXXXXXXXXXXXXX`) // a driver reuses its buffers after each row
	}
	if err := w.Close(Trailer{}); err != nil {
		t.Fatal(err)
	}
	names, types, got := readParquet(t, buf.Bytes())
	if !reflect.DeepEqual(names, cols) {
		t.Errorf("columns %q", names)
	}
	wantTypes := []string{"string", "int64", "double", "bool", "date", "timestamp[us, UTC]", "timestamp[us]", "list<int64>", "string", "double", "string"}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("types %q", types)
	}
	day := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }
	want := [][]any{
		{"ไก่ตาย \"q\"\nบรรทัด 2", int64(12), 3.75, true, day(2026, 5, 1, 0, 0), day(2026, 5, 1, 1, 0), day(2026, 5, 1, 10, 30), []int64{3, 4, 6}, `{"a":"ไทย"}`, nil, "สมชาย"},
		{nil, nil, nil, nil, nil, nil, nil, []int64{}, nil, 7.0, "5"},
		{"", int64(-1), 0.5, false, day(2026, 1, 31, 0, 0), day(2026, 5, 1, 1, 0), day(2026, 5, 1, 10, 30), nil, "[]", nil, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n%s\nwant:\n%s", fmt.Sprint(got), fmt.Sprint(want))
	}
	f, _ := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if n := len(f.RowGroups()); n != 2 {
		t.Errorf("%d row groups, want 2 (of at most 2 rows)", n)
	}
}

func TestParquetEmpty(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(Parquet, &buf, Options{Types: []Type{Int}})
	w.Header([]string{"id", "name"})
	if err := w.Close(Trailer{}); err != nil {
		t.Fatal(err)
	}
	names, types, rows := readParquet(t, buf.Bytes())
	if !reflect.DeepEqual(names, []string{"id", "name"}) || !reflect.DeepEqual(types, []string{"int64", "string"}) || len(rows) != 0 {
		t.Errorf("%q %q %v", names, types, rows)
	}
}
