// Package export writes tabular export results (JSON, NDJSON, CSV) as a stream and
// flattens OHTK form answers into columns.
//
// A result is a list of named columns and rows of values. Writers take the rows one at a
// time and never hold more than one row, so a result of any size is written in constant
// memory. New formats (xlsx, parquet) implement Writer and are added to NewWriter.
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

// Options tune the writers.
type Options struct {
	// CSVByteOrderMark starts CSV output with a UTF-8 byte order mark, which spreadsheet
	// programs (Excel) need to read UTF-8 (Thai) text correctly.
	CSVByteOrderMark bool
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
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownFormat, string(f))
}
