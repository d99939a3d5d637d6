package export

import (
	"encoding/json"
	"io"
	"reflect"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// parquetWriter writes an Apache Parquet file whose columns keep the result's order and
// types: Text as UTF-8 strings, Int as INT64, Float as DOUBLE, Bool as BOOLEAN, Date as
// DATE, Timestamp as TIMESTAMP(MICROS) adjusted to UTC, LocalTime as TIMESTAMP(MICROS)
// not adjusted to UTC, IntList as a LIST of INT64. Every column is optional: null is
// null, and so is a value that does not fit its column's type.
//
// Rows are buffered in a row group that is written out every RowGroupRows rows or about
// 64 MiB of values, whichever comes first, so memory stays bounded whatever the size of
// the result.
type parquetWriter struct {
	out     io.Writer
	opts    Options
	types   []Type
	w       *parquet.Writer
	row     parquet.Row
	rows    []parquet.Row
	inGroup int
	size    int // bytes of values in the current row group, roughly
	maxRows int
	texter
}

// parquetGroupBytes bounds the values buffered in one row group.
const parquetGroupBytes = 64 << 20

func newParquetWriter(w io.Writer, opts Options) *parquetWriter {
	n := opts.RowGroupRows
	if n <= 0 {
		n = 50_000
	}
	return &parquetWriter{out: w, opts: opts, maxRows: n, rows: make([]parquet.Row, 1)}
}

func (p *parquetWriter) Header(columns []string) error {
	fields := make(orderedGroup, len(columns))
	p.types = make([]Type, len(columns))
	for i, name := range columns {
		p.types[i] = p.opts.typeOf(i)
		fields[i] = &namedNode{Node: parquet.Optional(parquetNode(p.types[i])), name: name}
	}
	p.w = parquet.NewWriter(p.out, parquet.NewSchema("export", fields), parquet.Compression(&parquet.Snappy),
		parquet.CreatedBy("ohtkhub", "", ""))
	return nil
}

func parquetNode(t Type) parquet.Node {
	switch t {
	case Int:
		return parquet.Int(64)
	case Float:
		return parquet.Leaf(parquet.DoubleType)
	case Bool:
		return parquet.Leaf(parquet.BooleanType)
	case Date:
		return parquet.Date()
	case Timestamp:
		return parquet.Timestamp(parquet.Microsecond)
	case LocalTime:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case IntList:
		return parquet.List(parquet.Int(64))
	}
	return parquet.String()
}

func (p *parquetWriter) Row(vals []any) error {
	r := p.row[:0]
	for i, v := range vals {
		r = p.appendValue(r, i, v)
	}
	p.row = r
	p.rows[0] = r
	// WriteRows copies the values into the row group, so vals may change after Row.
	if _, err := p.w.WriteRows(p.rows); err != nil {
		return err
	}
	p.inGroup++
	if p.inGroup >= p.maxRows || p.size >= parquetGroupBytes {
		p.inGroup, p.size = 0, 0
		return p.w.Flush()
	}
	return nil
}

// appendValue appends the value of column i to r: definition level 0 is null, 1 a value
// (2 for an element of a list, whose level 1 is the empty list).
func (p *parquetWriter) appendValue(r parquet.Row, i int, v any) parquet.Row {
	null := parquet.NullValue().Level(0, 0, i)
	if v == nil {
		return append(r, null)
	}
	var val parquet.Value
	switch p.types[i] {
	case Int:
		n, ok := asInt(v)
		if !ok {
			return append(r, null)
		}
		val = parquet.Int64Value(n)
	case Float:
		f, ok := asFloat(v)
		if !ok {
			return append(r, null)
		}
		val = parquet.DoubleValue(f)
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return append(r, null)
		}
		val = parquet.BooleanValue(b)
	case Date:
		d, ok := asDate(v)
		if !ok {
			return append(r, null)
		}
		val = parquet.Int32Value(int32(d.Unix() / 86400))
	case Timestamp, LocalTime:
		t, ok := asTime(v, p.types[i] == LocalTime)
		if !ok {
			return append(r, null)
		}
		val = parquet.Int64Value(t.UnixMicro())
	case IntList:
		list, ok := v.([]int64)
		if !ok {
			return append(r, null)
		}
		if len(list) == 0 {
			return append(r, parquet.NullValue().Level(0, 1, i))
		}
		for j, n := range list {
			rep := 1
			if j == 0 {
				rep = 0
			}
			r = append(r, parquet.Int64Value(n).Level(rep, 2, i))
		}
		p.size += 8 * len(list)
		return r
	default:
		var b []byte
		switch v := v.(type) {
		case string:
			b = unsafe.Slice(unsafe.StringData(v), len(v))
		case json.RawMessage:
			b = v
		default:
			s := p.text(v)
			b = unsafe.Slice(unsafe.StringData(s), len(s))
		}
		p.size += len(b)
		return append(r, parquet.ByteArrayValue(b).Level(0, 1, i))
	}
	p.size += 8
	return append(r, val.Level(0, 1, i))
}

func (p *parquetWriter) Close(Trailer) error {
	if p.w == nil {
		return nil
	}
	return p.w.Close()
}

// orderedGroup is a parquet group whose fields keep their order; parquet.Group sorts
// them by name.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return "group" }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }

// namedNode is a field of an orderedGroup.
type namedNode struct {
	parquet.Node
	name string
}

func (n *namedNode) Name() string                      { return n.name }
func (n *namedNode) Value(reflect.Value) reflect.Value { return reflect.Value{} }
