// Package export writes tabular export results (JSON, NDJSON, CSV, xlsx, Parquet) as a
// stream and flattens OHTK form answers into columns.
//
// A result is a list of named columns and rows of values. Writers take the rows one at a
// time and hold a bounded amount of them (one row; a Parquet row group; an xlsx sheet
// spills to temporary files), so a result of any size is written in constant memory.
package export

import (
	"errors"
	"fmt"
	"io"
)

// Format names an output format.
type Format string

// The formats NewWriter knows.
const (
	JSON   Format = "json"
	NDJSON Format = "ndjson"
	CSV    Format = "csv"
	// XLSX is an Excel workbook (Office Open XML).
	XLSX Format = "xlsx"
	// Parquet is an Apache Parquet file with typed columns.
	Parquet Format = "parquet"
)

// ErrUnknownFormat is returned by NewWriter for a format it does not know.
var ErrUnknownFormat = errors.New("export: unknown format")

// ContentType returns the media type of f.
func (f Format) ContentType() string {
	switch f {
	case NDJSON:
		return "application/x-ndjson"
	case CSV:
		return "text/csv; charset=utf-8"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case Parquet:
		return "application/vnd.apache.parquet"
	default:
		return "application/json"
	}
}

// Extension returns the file name extension of f, without the dot.
func (f Format) Extension() string { return string(f) }

// Paginated reports whether results in f are returned one page at a time. File formats
// carry the whole result instead.
func (f Format) Paginated() bool { return f == JSON }

// Trailer is what a writer learns only at the end of a result.
type Trailer struct {
	// NextCursor continues a paginated result; "" when there are no more rows.
	NextCursor string
}

// Writer writes one result. Header is called once, then Row once per row, then Close.
//
// Row values are nil, string, int64, float64, bool, json.Number, json.RawMessage (a JSON
// document, written as is in JSON and as text in CSV), []int64 and []string, or anything
// encoding/json can encode. Writers must not retain vals after Row returns.
type Writer interface {
	Header(columns []string) error
	Row(vals []any) error
	Close(t Trailer) error
}

// Type is what a column holds, for the formats whose cells or columns are typed (xlsx,
// Parquet). JSON and CSV write each value as it is and ignore types.
type Type uint8

// The column types.
const (
	// Text is UTF-8 text. Values of other kinds are written as their CSV text.
	Text Type = iota
	// Int is a 64-bit integer (int64).
	Int
	// Float is a double (float64, json.Number, or a number as text).
	Float
	// Bool is true or false.
	Bool
	// Date is a calendar date, "2006-01-02".
	Date
	// Timestamp is an instant: RFC 3339 text with an offset, or a time.Time. Typed formats
	// hold it in UTC.
	Timestamp
	// LocalTime is a date and wall-clock time without a zone, as the reporter saw it: RFC
	// 3339 text (its offset is dropped, its clock kept) or "2006-01-02T15:04:05".
	LocalTime
	// IntList is a list of integers ([]int64). Parquet holds it as a LIST; xlsx as "1,2,3".
	IntList
)

// Options tune the writers.
type Options struct {
	// CSVByteOrderMark starts CSV output with a UTF-8 byte order mark, which spreadsheet
	// programs (Excel) need to read UTF-8 (Thai) text correctly.
	CSVByteOrderMark bool
	// Types are the column types in column order, for xlsx and Parquet; columns without
	// one are Text.
	Types []Type
	// Sheet names the first sheet of an xlsx workbook; "" means "data".
	Sheet string
	// TempDir holds the temporary files of xlsx output; "" means os.TempDir().
	TempDir string
	// RowGroupRows is the most rows a Parquet row group holds, which bounds the memory
	// the writer needs; 0 means 50,000. Row groups are also cut at about 64 MiB of values.
	RowGroupRows int
}

// typeOf returns the type of column i.
func (o *Options) typeOf(i int) Type {
	if i < len(o.Types) {
		return o.Types[i]
	}
	return Text
}

// NewWriter returns a writer of format f writing to w. w should be buffered.
func NewWriter(f Format, w io.Writer, opts Options) (Writer, error) {
	switch f {
	case JSON:
		return &jsonWriter{w: w}, nil
	case NDJSON:
		return &jsonWriter{w: w, lines: true}, nil
	case CSV:
		return newCSVWriter(w, opts.CSVByteOrderMark), nil
	case XLSX:
		return newXLSXWriter(w, opts), nil
	case Parquet:
		return newParquetWriter(w, opts), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownFormat, string(f))
}

// Sheets is implemented by writers of formats that hold several tables in one file (the
// sheets of an xlsx workbook).
type Sheets interface {
	// AddSheet adds a table after the ones before; call it after Header and before the
	// first Row. Its rows may be written between the main table's; Close finishes every
	// table. It returns the function that writes one row of the new table.
	AddSheet(name string, columns []string, types []Type) (func(vals []any) error, error)
}

// Release frees what w holds outside memory (temporary files) when a result is abandoned
// before Close. It does nothing for writers that hold nothing, and after Close.
func Release(w Writer) {
	if r, ok := w.(interface{ release() }); ok {
		r.release()
	}
}
