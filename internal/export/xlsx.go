package export

import (
	"archive/zip"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// xlsxWriter writes an Excel workbook through excelize's StreamWriter: a bold header
// row, then one row per result row, cells typed by their column (numbers, booleans,
// dates). A sheet holds at most 1,048,576 rows, Excel's limit; the rows after that go on
// a further sheet named "<name> (2)", "(3)"..., each starting with the header again.
//
// Memory stays bounded: each sheet's XML spills to a temporary file once it passes
// excelize's chunk size (16 MiB), and the workbook is assembled into a temporary file,
// not in memory as excelize's WriteTo does, then copied to the output by Close. Text
// longer than a cell holds (32,767 characters) is cut there by excelize.
type xlsxWriter struct {
	out     io.Writer
	opts    Options
	f       *excelize.File
	sheets  []*xlsxSheet
	names   map[string]bool // sheet names in use, lower case
	header  int             // style ids
	date    int
	stamp   int
	maxRows int // rows per sheet, header included
	zipPath string
	done    bool
	texter
}

// xlsxSheet is one table of the workbook, spread over as many sheets as it needs.
type xlsxSheet struct {
	x       *xlsxWriter
	name    string
	part    int
	columns []string
	types   []Type
	sw      *excelize.StreamWriter
	row     int // the last row written
	cells   []any
}

var _ Sheets = (*xlsxWriter)(nil)

func newXLSXWriter(w io.Writer, opts Options) *xlsxWriter {
	return &xlsxWriter{out: w, opts: opts, maxRows: excelize.TotalRows, names: map[string]bool{}}
}

func (x *xlsxWriter) Header(columns []string) error {
	x.f = excelize.NewFile(excelize.Options{TmpDir: x.opts.TempDir})
	var err error
	if x.header, err = x.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		return err
	}
	dateFmt, stampFmt := "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"
	if x.date, err = x.f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt}); err != nil {
		return err
	}
	if x.stamp, err = x.f.NewStyle(&excelize.Style{CustomNumFmt: &stampFmt}); err != nil {
		return err
	}
	name := x.opts.Sheet
	if name == "" {
		name = "data"
	}
	_, err = x.addSheet(name, columns, x.opts.Types)
	return err
}

func (x *xlsxWriter) AddSheet(name string, columns []string, types []Type) (func(vals []any) error, error) {
	if x.f == nil {
		return nil, errors.New("export: xlsx: AddSheet before Header")
	}
	s, err := x.addSheet(name, columns, types)
	if err != nil {
		return nil, err
	}
	return s.write, nil
}

func (x *xlsxWriter) addSheet(name string, columns []string, types []Type) (*xlsxSheet, error) {
	s := &xlsxSheet{x: x, name: name, columns: columns, types: types, cells: make([]any, len(columns))}
	if err := s.start(); err != nil {
		return nil, err
	}
	x.sheets = append(x.sheets, s)
	return s, nil
}

func (x *xlsxWriter) Row(vals []any) error { return x.sheets[0].write(vals) }

// start opens the next sheet of s and writes its header row.
func (s *xlsxSheet) start() error {
	x := s.x
	s.part++
	name := x.sheetName(s.name, s.part)
	if len(x.names) == 0 {
		if err := x.f.SetSheetName(x.f.GetSheetName(0), name); err != nil {
			return fmt.Errorf("export: xlsx: sheet %q: %w", name, err)
		}
	} else if _, err := x.f.NewSheet(name); err != nil {
		return fmt.Errorf("export: xlsx: sheet %q: %w", name, err)
	}
	x.names[strings.ToLower(name)] = true
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return err
	}
	// The header stays in view while scrolling.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	header := make([]any, len(s.columns))
	for i, c := range s.columns {
		header[i] = excelize.Cell{StyleID: x.header, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	s.sw, s.row = sw, 1
	return nil
}

// sheetName makes a valid, unused sheet name from name: at most 31 characters, none of
// []:*?/\, no leading or trailing apostrophe; part 2 and after end in " (part)".
func (x *xlsxWriter) sheetName(name string, part int) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, name)
	name = strings.Trim(name, "'")
	if name == "" {
		name = "sheet"
	}
	for n := part; ; n++ {
		suffix := ""
		if n > 1 {
			suffix = " (" + strconv.Itoa(n) + ")"
		}
		base := name
		for utf8.RuneCountInString(base)+len(suffix) > excelize.MaxSheetNameLength {
			_, size := utf8.DecodeLastRuneInString(base)
			base = base[:len(base)-size]
		}
		if cand := base + suffix; !x.names[strings.ToLower(cand)] {
			return cand
		}
	}
}

func (s *xlsxSheet) write(vals []any) error {
	if s.row >= s.x.maxRows {
		if err := s.sw.Flush(); err != nil {
			return err
		}
		if err := s.start(); err != nil {
			return err
		}
	}
	for i, v := range vals {
		t := Text
		if i < len(s.types) {
			t = s.types[i]
		}
		s.cells[i] = s.x.cell(v, t)
	}
	s.row++
	err := s.sw.SetRow("A"+strconv.Itoa(s.row), s.cells[:len(vals)])
	clear(s.cells)
	return err
}

// cell returns the cell value of v in a column of type t.
func (x *xlsxWriter) cell(v any, t Type) any {
	if v == nil {
		return nil
	}
	switch t {
	case Int:
		if n, ok := asInt(v); ok {
			return n
		}
	case Float:
		if f, ok := asFloat(v); ok {
			return f
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return b
		}
	case Date:
		if d, ok := asDate(v); ok {
			return excelize.Cell{StyleID: x.date, Value: d}
		}
	case Timestamp, LocalTime:
		if ts, ok := asTime(v, t == LocalTime); ok {
			return excelize.Cell{StyleID: x.stamp, Value: ts}
		}
	}
	switch v := v.(type) {
	case string:
		return v
	case json.RawMessage:
		return string(v)
	}
	return x.text(v)
}

func (x *xlsxWriter) Close(Trailer) error {
	if x.done {
		return nil
	}
	defer x.release()
	for _, s := range x.sheets {
		if err := s.sw.Flush(); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(x.opts.TempDir, "ohtkhub-export-*.xlsx")
	if err != nil {
		return fmt.Errorf("export: xlsx: %w", err)
	}
	x.zipPath = tmp.Name()
	defer tmp.Close()
	z := newZipFile(tmp)
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return z })
	// Write assembles the workbook into z; what it hands to io.Discard is empty.
	if err := x.f.Write(io.Discard); err != nil {
		return fmt.Errorf("export: xlsx: %w", err)
	}
	if z.err != nil {
		return z.err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(x.out, tmp)
	return err
}

// release removes the temporary files.
func (x *xlsxWriter) release() {
	if x.done {
		return
	}
	x.done = true
	if x.f != nil {
		x.f.Close()
	}
	if x.zipPath != "" {
		os.Remove(x.zipPath)
	}
}

// zipFile is the ZIP writer excelize assembles the workbook with: a file, not a buffer.
// An entry of 4 GiB or more gets ZIP64's version (4.5) in its local header as well as in
// the central directory, which Excel needs to open it; archive/zip writes it only in the
// central directory when sizes are not known in advance.
type zipFile struct {
	f       *os.File
	n       *countingWriter
	zw      *zip.Writer
	entries []*zipEntry
	limit   int64 // size from which an entry needs ZIP64
	err     error
}

type zipEntry struct {
	w      io.Writer
	offset int64 // of the local header
	n      int64 // bytes before compression
}

func (e *zipEntry) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	e.n += int64(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func newZipFile(f *os.File) *zipFile {
	cw := &countingWriter{w: f}
	zw := zip.NewWriter(cw)
	// The sheets are most of the work of a large export; the fastest level costs a few
	// percent in size and saves about half the compression time.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	return &zipFile{f: f, n: cw, zw: zw, limit: math.MaxUint32}
}

func (z *zipFile) Create(name string) (io.Writer, error) {
	w, err := z.zw.Create(name)
	if err != nil {
		return nil, err
	}
	// The local header was just written: 30 bytes and the name (archive/zip adds no
	// extra field to entries created by name).
	if err := z.zw.Flush(); err != nil {
		return nil, err
	}
	e := &zipEntry{w: w, offset: z.n.n - 30 - int64(len(name))}
	z.entries = append(z.entries, e)
	return e, nil
}

func (z *zipFile) AddFS(fs.FS) error { return errors.New("export: xlsx: AddFS is not used") }

func (z *zipFile) Close() error {
	if err := z.zw.Close(); err != nil {
		z.err = err
		return err
	}
	for _, e := range z.entries {
		if e.n < z.limit {
			continue
		}
		var hdr [6]byte
		if _, err := z.f.ReadAt(hdr[:], e.offset); err != nil || binary.LittleEndian.Uint32(hdr[:4]) != 0x04034b50 {
			z.err = fmt.Errorf("export: xlsx: no local header at %d", e.offset)
			return z.err
		}
		binary.LittleEndian.PutUint16(hdr[4:], 45)
		if _, err := z.f.WriteAt(hdr[4:], e.offset+4); err != nil {
			z.err = err
			return err
		}
	}
	return nil
}
