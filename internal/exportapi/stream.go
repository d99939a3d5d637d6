package exportapi

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/export"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// errAborted reports that a stream failed after its headers were sent.
var errAborted = errors.New("exportapi: stream aborted")

// request is one Export API request as it is served.
type request struct {
	h       *handler
	w       http.ResponseWriter
	r       *http.Request
	t       *tenant.Tenant
	d       ohtkdb.Dialect // of t.DB
	db      queryer        // t.DB, or the request's snapshot transaction
	p       *principal
	res     *resource
	pathArg string
	scope   scope
	params  *params
	started time.Time

	status int
	rows   int64
	bytes  int64
}

// query is what a resource streams: columns and SQL whose rows scan turns into output rows.
type query struct {
	columns []string
	sql     string
	args    []any
	// keyed queries are ordered by a key; pages end with a cursor built from it.
	keyed bool
	// types are the column types, for the typed formats (xlsx, Parquet).
	types []export.Type
	// sheets are further tables, written beside the rows in formats that hold several
	// (xlsx); sheetRows, set by stream, writes a row of each.
	sheets    []sheet
	sheetRows []func(vals []any) error
	sheetVals []any
	// scan reads the current row and emits zero or more output rows (subforms emit one per
	// instance). It returns the row's keyset position.
	scan func(rows *sql.Rows, emit func([]any) error) (key, id string, err error)
}

// countingWriter counts the bytes of the body.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}

// deadlineWriter pushes the connection's write deadline ahead while the body goes out, at
// most once a second.
type deadlineWriter struct {
	w      io.Writer
	extend func()
	last   time.Time
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > time.Second {
		d.extend()
		d.last = now
	}
	return d.w.Write(b)
}

// flushEvery is how many rows are written between flushes to the client.
const flushEvery = 2000

// stream runs q and writes its rows in the request's format. JSON is one page of at most
// limit rows; the other formats carry the whole result. Memory stays constant: one row is
// held at a time (a Parquet row group; xlsx sheets spill to temporary files) and the body
// goes out through a fixed buffer.
func (rq *request) stream(q *query) error {
	ctx := rq.r.Context()
	sqlText := q.sql
	paginated := q.keyed && rq.params.format.Paginated()
	if paginated {
		sqlText += " LIMIT " + strconv.Itoa(rq.params.limit+1)
	}
	rows, err := rq.db.QueryContext(ctx, sqlText, q.args...)
	if err != nil {
		return fmt.Errorf("exportapi: %s: %w", rq.res.name, err)
	}
	defer rows.Close()

	rq.setHeaders()
	rc := http.NewResponseController(rq.w)
	rq.extendDeadline(rc)
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method == http.MethodHead {
		return nil
	}
	// Writes push the deadline ahead too: an xlsx file goes out only once all its rows are
	// in, as one long copy.
	bw := bufio.NewWriterSize(&deadlineWriter{w: countingWriter{w: rq.w, n: &rq.bytes}, extend: func() { rq.extendDeadline(rc) }}, 64<<10)
	wr, err := export.NewWriter(rq.params.format, bw, export.Options{CSVByteOrderMark: rq.params.bom, Types: q.types, Sheet: rq.sheetName()})
	if err != nil {
		return rq.abort(err)
	}
	defer export.Release(wr)
	if err := wr.Header(q.columns); err != nil {
		return rq.abort(err)
	}
	if err := q.addSheets(wr); err != nil {
		return rq.abort(err)
	}
	emit := func(vals []any) error {
		rq.rows++
		return wr.Row(vals)
	}
	var (
		n          int
		trailer    export.Trailer
		lastKey    string
		lastID     string
		sinceFlush int
		extended   = time.Now()
	)
	for rows.Next() {
		// A sparse filter can keep the database scanning for long between rows: push the
		// deadline ahead before writing again. It is only ever extended while rows come, so
		// a client that stops reading still times out.
		if now := time.Now(); now.Sub(extended) > time.Second {
			rq.extendDeadline(rc)
			extended = now
		}
		if paginated && n == rq.params.limit {
			trailer.NextCursor = rq.h.cursors.encode(cursor{Resource: rq.res.name, DateField: rq.params.dateField,
				Filters: rq.params.filterKey, Key: lastKey, ID: lastID})
			break
		}
		before := rq.rows
		key, id, err := q.scan(rows, emit)
		if err != nil {
			return rq.abort(err)
		}
		lastKey, lastID = key, id
		n++
		sinceFlush += int(rq.rows - before)
		if sinceFlush >= flushEvery {
			sinceFlush = 0
			if err := bw.Flush(); err != nil {
				return rq.abort(err)
			}
			rc.Flush()
			rq.extendDeadline(rc)
			extended = time.Now()
		}
	}
	if err := rows.Err(); err != nil {
		return rq.abort(err)
	}
	if err := wr.Close(trailer); err != nil {
		return rq.abort(err)
	}
	if err := bw.Flush(); err != nil {
		return rq.abort(err)
	}
	return nil
}

// sheetName names the first sheet of a workbook after the resource.
func (rq *request) sheetName() string {
	switch rq.res.name {
	case "incident-reports/flat":
		return "reports"
	case "incident-reports/flat/subforms":
		return rq.params.subform
	case "report-types/{id}/columns":
		return "columns"
	}
	return rq.res.name
}

// sheet is a further table of a workbook.
type sheet struct {
	name    string
	columns []string
	types   []export.Type
}

// subformBase are the columns a subform row starts with, linking it to its report.
var subformBase = []string{"report_id", "instance_key"}

// subformSheets lays out a sheet per subform of form, with the columns of
// incident-reports/flat/subforms.
func subformSheets(form *export.Form) []sheet {
	var out []sheet
	for _, name := range form.SubformNames() {
		sub, _ := form.Subform(name)
		out = append(out, sheet{name: name, columns: formColumnNames(subformBase, sub),
			types: append([]export.Type{export.Text, export.Text}, sub.Types()...)})
	}
	return out
}

// addSheets adds q's further tables to wr, if its format holds several.
func (q *query) addSheets(wr export.Writer) error {
	ws, ok := wr.(export.Sheets)
	if !ok {
		return nil
	}
	for _, s := range q.sheets {
		row, err := ws.AddSheet(s.name, s.columns, s.types)
		if err != nil {
			return err
		}
		q.sheetRows = append(q.sheetRows, row)
	}
	return nil
}

// writeSubforms writes the subform instances of one report to the sheets of
// subformSheets, in the order of incident-reports/flat/subforms.
func (q *query) writeSubforms(form *export.Form, reportID string, answers map[string]any, zones export.Zones) error {
	if len(q.sheetRows) == 0 {
		return nil
	}
	loc := zones.Of(answers)
	for i, s := range q.sheets {
		instances, ok := form.SubformAnswer(s.name, answers)
		if !ok {
			continue
		}
		sub, _ := form.Subform(s.name)
		for _, k := range export.SubformKeys(instances) {
			inst, _ := instances[k].(map[string]any)
			q.sheetVals = sub.AppendValues(append(q.sheetVals[:0], reportID, k), inst, loc)
			if err := q.sheetRows[i](q.sheetVals); err != nil {
				return err
			}
		}
	}
	return nil
}

// abort records a failure after the headers went out.
func (rq *request) abort(err error) error {
	rq.status = http.StatusInternalServerError
	if !errors.Is(err, context.Canceled) {
		rq.h.log.ErrorContext(rq.r.Context(), "export api: stream failed", "resource", rq.res.name, "rows", rq.rows, "err", err)
	} else {
		rq.status = 499 // client went away, as nginx records it
	}
	return errAborted
}

func (rq *request) extendDeadline(rc *http.ResponseController) {
	// Servers with a WriteTimeout would otherwise cut long downloads; ErrNotSupported
	// (e.g. recorders in tests) is fine to ignore.
	_ = rc.SetWriteDeadline(time.Now().Add(rq.h.opts.WriteTimeout))
}

func (rq *request) setHeaders() {
	hd := rq.w.Header()
	f := rq.params.format
	hd.Set("Content-Type", f.ContentType())
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	if !f.Paginated() {
		resource := strings.Replace(rq.res.name, "{id}", rq.pathArg, 1)
		name := rq.t.SchemaName + "-" + strings.ReplaceAll(resource, "/", "-") + "-" + rq.h.now().UTC().Format("20060102T150405Z") + "." + f.Extension()
		hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	}
}

// writeObject writes a single JSON document (me).
func (rq *request) writeObject(v []byte) error {
	rq.w.Header().Set("Content-Type", "application/json")
	rq.w.Header().Set("Cache-Control", "no-store")
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method == http.MethodHead {
		return nil
	}
	n, _ := rq.w.Write(append(v, '\n'))
	rq.bytes += int64(n)
	return nil
}

// sqlArgs collects positional arguments and hands out their $n placeholders.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
