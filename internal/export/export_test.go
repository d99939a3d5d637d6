package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestJSONWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Format
		next  string
		want  string
		empty bool
	}{
		{"page", JSON, "abc", `{"results":[{"a":"ไทย \"q\"\n\u0001\ufffd\u2028","b":[1,2],"c":{"x":1},"d":null,"e":true,"f":1.5,"g":"not json"},{"a":"","b":[],"c":"","d":7,"e":false,"f":null,"g":null}],"next_cursor":"abc"}` + "\n", false},
		{"lines", NDJSON, "", `{"a":"ไทย \"q\"\n\u0001\ufffd\u2028","b":[1,2],"c":{"x":1},"d":null,"e":true,"f":1.5,"g":"not json"}` + "\n" + `{"a":"","b":[],"c":"","d":7,"e":false,"f":null,"g":null}` + "\n", false},
		{"empty page", JSON, "", `{"results":[],"next_cursor":null}` + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(tc.f, &buf, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w.Header([]string{"a", "b", "c", "d", "e", "f", "g"})
			if !tc.empty {
				w.Row([]any{"ไทย \"q\"\n\x01\xff\u2028", []int64{1, 2}, json.RawMessage("{\n \"x\": 1}"), nil, true, 1.5, json.RawMessage("not json")})
				w.Row([]any{"", []int64{}, json.RawMessage(""), int64(7), false, json.Number(""), nil})
			}
			w.Close(Trailer{NextCursor: tc.next})
			if buf.String() != tc.want {
				t.Errorf("got  %s\nwant %s", buf.String(), tc.want)
			}
			if tc.f == JSON && !json.Valid(buf.Bytes()) {
				t.Error("not valid JSON")
			}
		})
	}
}

func TestCSVWriter(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(CSV, &buf, Options{CSVByteOrderMark: true})
	w.Header([]string{"a", "b", "c"})
	w.Row([]any{"ไทย, \"q\"", []string{"x", "y"}, json.RawMessage(`{"k":1}`)})
	w.Row([]any{nil, []int64{3}, 2.25})
	w.Close(Trailer{NextCursor: "ignored"})
	want := "\ufeffa,b,c\n\"ไทย, \"\"q\"\"\",\"x,y\",\"{\"\"k\"\":1}\"\n,3,2.25\n"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	if _, err := NewWriter("xml", &buf, Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("xml: %v", err)
	}
}

func TestParseFormSubformList(t *testing.T) {
	// subforms may be a list of named definitions; unknown field types keep their value.
	f, err := ParseForm([]byte(`{"sections":[{"questions":[{"fields":[
		{"name":"s","type":"subform","formRef":"pets"},{"name":"r","type":"rating"},{"type":"text"}]}]}],
		"subforms":[{"name":"pets","sections":[{"questions":[{"name":"q","fields":[{"name":"kind","type":"text"}]}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range f.Columns {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"s", "r"}) {
		t.Errorf("columns = %v", names)
	}
	sub, ok := f.Subform("s")
	if !ok || len(sub.Columns) != 1 || sub.Columns[0].Name != "q.kind" {
		t.Fatalf("subform = %+v", sub)
	}
	data, _ := DecodeData([]byte(`{"s":{"b":{"q":{"kind":"แมว"}},"a":{"q":{"kind":"หมา"}}},"r":{"stars":4}}`))
	vals := f.AppendValues(nil, data, nil)
	if vals[0] != "a, b" || vals[1] != `{"stars":4}` {
		t.Errorf("values = %v", vals)
	}
	inst, _ := f.SubformAnswer("s", data)
	if keys := SubformKeys(inst); !slices.Equal(keys, []string{"a", "b"}) {
		t.Errorf("keys = %v", keys)
	}
	// OHTK's builder writes a list of one-entry objects keyed by formRef; a subform inside a
	// subform is found in the top-level list.
	f, err = ParseForm([]byte(`{"sections":[{"questions":[{"fields":[{"name":"farm","type":"subform","formRef":"farm"}]}]}],
		"subforms":[{"farm":{"sections":[{"questions":[{"fields":[{"name":"pens","type":"subform","formRef":"pen"}]}]}]}},
		{"pen":{"sections":[{"questions":[{"fields":[{"name":"size","type":"decimal"},{"name":"files","type":"files"}]}]}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	farm, _ := f.Subform("farm")
	pen, ok := farm.Subform("pens")
	if !ok || len(pen.Columns) != 2 {
		t.Fatalf("nested subform = %+v", pen)
	}
	data, _ = DecodeData([]byte(`{"size":"12.50","files":{"b.pdf":"id-b","a.pdf":"id-a"}}`))
	if vals := pen.AppendValues(nil, data, nil); vals[0] != json.Number("12.50") || vals[1] != "id-a,id-b" {
		t.Errorf("values = %#v", vals)
	}
	if _, err := ParseForm([]byte(`{"sections":"no"}`)); err == nil {
		t.Error("bad definition accepted")
	}
}

func TestDates(t *testing.T) {
	f, _ := ParseForm([]byte(`{"sections":[{"questions":[{"fields":[{"name":"d","type":"date"},{"name":"t","type":"date","withTime":true}]}]}]}`))
	zones := Zones{}
	for _, tc := range []struct {
		data string
		want []any
	}{
		// 17:30 UTC is already the next day in Bangkok: the date is the reporter's.
		{`{"tz":"Asia/Bangkok","d":"2026-05-01T17:30:00.000Z","t":"2026-05-01T17:30:00.000Z"}`, []any{"2026-05-02", "2026-05-02T00:30:00+07:00"}},
		{`{"d":"2026-05-01T17:30:00Z","t":"2026-05-01T17:30:00+02:00"}`, []any{"2026-05-01", "2026-05-01T17:30:00+02:00"}},
		{`{"tz":"Nowhere/Land","d":"2026-05-01","t":"garbage"}`, []any{"2026-05-01", "garbage"}},
		// The app writes the reporter's wall-clock time without an offset.
		{`{"tz":"Asia/Bangkok","d":"2026-05-01T00:00:00.000","t":"2026-05-01T23:15:00.000"}`, []any{"2026-05-01", "2026-05-01T23:15:00+07:00"}},
		{`{"d":"2026-05-01T00:00:00.000","t":"2026-05-01T23:15:00.000"}`, []any{"2026-05-01", "2026-05-01T23:15:00.000"}},
		{`{}`, []any{nil, nil}},
	} {
		data, _ := DecodeData([]byte(tc.data))
		if got := f.AppendValues(nil, data, zones.Of(data)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.data, got, tc.want)
		}
	}
	if zones["Asia/Bangkok"] == nil || zones["Asia/Bangkok"].String() != "Asia/Bangkok" {
		t.Error("zone not cached")
	}
}
