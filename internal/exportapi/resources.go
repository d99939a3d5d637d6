package exportapi

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/export"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// resource is one Export API resource.
type resource struct {
	name            string
	params          []string // accepted filters besides format (and limit, cursor when paginated)
	paginated       bool
	jsonOnly        bool
	hasIncidentDate bool
	needsReportType bool
	needsSubform    bool
	intKey          bool // keyset on an integer id alone
	textKey         bool // keyset on a text id alone
	run             func(rq *request) error
}

func (r *resource) formats() []export.Format {
	if r.jsonOnly {
		return []export.Format{export.JSON}
	}
	return []export.Format{export.JSON, export.NDJSON, export.CSV, export.XLSX, export.Parquet}
}

// validKey checks a cursor's position has the shape of this resource's keys.
func (r *resource) validKey(c *cursor) bool {
	if c.Resource != r.name {
		return false
	}
	switch {
	case r.intKey:
		n, err := strconv.ParseInt(c.ID, 10, 64)
		return err == nil && n > 0 && c.Key == ""
	case r.textKey:
		return c.ID != "" && c.Key == ""
	case c.DateField == "incident_date":
		return len(c.Key) == 10 && c.ID != ""
	}
	return validStamp(c.Key) && c.ID != ""
}

func resources() map[string]*resource {
	incidentFilters := reportFilters
	list := []*resource{
		{name: "me", jsonOnly: true, run: runMe},
		{name: "authorities", paginated: true, intKey: true, params: []string{"authorityId", "includeDeleted", "updatedSince", "tz"}, run: runAuthorities},
		{name: "report-types", paginated: true, textKey: true, params: []string{"includeDeleted", "updatedSince", "tz"}, run: runReportTypes},
		{name: "report-types/{id}/columns", run: runColumns},
		{name: "incident-reports", paginated: true, hasIncidentDate: true, params: incidentFilters, run: runIncidents},
		{name: "incident-reports/flat", paginated: true, hasIncidentDate: true, needsReportType: true, params: incidentFilters, run: runFlat},
		{name: "incident-reports/flat/subforms", paginated: true, hasIncidentDate: true, needsReportType: true, needsSubform: true,
			params: append(slices.Clone(incidentFilters), "subform"), run: runSubforms},
		{name: "zero-reports", paginated: true, params: append(slices.Clone(timeFilters), "authorityId", "includeDeleted"), run: runZeroReports},
		{name: "reporters", paginated: true, intKey: true, params: []string{"authorityId"}, run: runReporters},
	}
	m := make(map[string]*resource, len(list))
	for _, r := range list {
		m[r.name] = r
	}
	return m
}

// scopeCTE starts a query with the caller's subtree as CTE "sub", or nothing for the
// whole tenant.
func (rq *request) scopeCTE(a *sqlArgs) string {
	if rq.scope.whole() {
		return ""
	}
	return "WITH RECURSIVE " + subtreeCTE(a.add(rq.scope.root)) + " "
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// timeConds adds from/to/updatedSince conditions on the given columns.
func (rq *request) timeConds(a *sqlArgs, conds []string, createdCol, dateCol, updatedCol string) []string {
	p := rq.params
	if p.dateField == "incident_date" {
		if p.hasFrom {
			conds = append(conds, dateCol+" >= "+a.add(p.fromDate))
		}
		if p.hasTo {
			conds = append(conds, dateCol+" < "+a.add(p.toDate))
		}
	} else {
		if p.hasFrom {
			conds = append(conds, createdCol+" >= "+a.add(ohtkdb.FormatTime(p.from)))
		}
		if p.hasTo {
			conds = append(conds, createdCol+" < "+a.add(ohtkdb.FormatTime(p.to)))
		}
	}
	if p.hasUpdated {
		conds = append(conds, updatedCol+" >= "+a.add(ohtkdb.FormatTime(p.updatedSince)))
	}
	return conds
}

// keysetCond continues after the cursor on (sortCol, idCol). The row comparison lets both
// databases start the index scan at the cursor; the equivalent OR form makes PostgreSQL
// walk the index from its start on every page.
func (rq *request) keysetCond(a *sqlArgs, conds []string, sortCol, idCol string) []string {
	c := rq.params.cursor
	if c == nil {
		return conds
	}
	k, i := a.add(c.Key), a.add(c.ID)
	return append(conds, "("+sortCol+", "+idCol+") > ("+k+", "+i+")")
}

// reportQuery builds the FROM/WHERE/ORDER of incident reports for the request's filters.
// Scoping uses EXISTS, so a report relevant to several authorities appears once.
// joins are added after the FROM table; extra are further conditions.
func (rq *request) reportQuery(a *sqlArgs, joins string, withCursor bool, extra ...string) (cte, from, order string) {
	p := rq.params
	cte = rq.scopeCTE(a)
	var conds []string
	if !rq.scope.whole() {
		conds = append(conds, `EXISTS (SELECT 1 FROM reports_incidentreport_relevant_authorities ra
			WHERE ra.incidentreport_id = r.id AND ra.authority_id IN (SELECT id FROM sub))`)
	}
	if !p.includeTest {
		conds = append(conds, "NOT r.test_flag")
	}
	if !p.includeDeleted {
		conds = append(conds, "r.deleted_at IS NULL")
	}
	if p.reportTypeID != "" {
		conds = append(conds, "r.report_type_id = "+a.add(p.reportTypeID))
	}
	conds = rq.timeConds(a, conds, "r.created_at", "r.incident_date", "r.updated_at")
	sortCol := "r." + p.dateField
	if withCursor {
		conds = rq.keysetCond(a, conds, sortCol, "r.id")
	}
	conds = append(conds, extra...)
	return cte, " FROM reports_incidentreport r" + joins + where(conds), " ORDER BY " + sortCol + ", r.id"
}

// relevantIDs selects the report's relevant authorities that the caller can see.
func (rq *request) relevantIDs() string {
	cond := ""
	if !rq.scope.whole() {
		cond = " AND ra2.authority_id IN (SELECT id FROM sub)"
	}
	return "(SELECT " + rq.d.GroupConcat("ra2.authority_id") + " FROM reports_incidentreport_relevant_authorities ra2 WHERE ra2.incidentreport_id = r.id" + cond + ")"
}

// reportBase are the columns every incident report row starts with.
var reportBase = []string{"id", "report_type_id", "report_type_name", "incident_date", "created_at", "updated_at", "deleted_at",
	"reported_by_id", "reported_by_username", "authority_ids", "lng", "lat", "test_flag"}

// reportBaseTypes are the types of reportBase.
var reportBaseTypes = []export.Type{export.Text, export.Text, export.Text, export.Date, export.Timestamp, export.Timestamp, export.Timestamp, export.Int, export.Text, export.IntList, export.Float, export.Float, export.Bool}

// reportBaseSQL selects the reportBase columns.
func (rq *request) reportBaseSQL() string {
	d := rq.d
	return d.Text("r.id") + ", " + d.Text("r.report_type_id") + ", rt.name, " + d.Date("r.incident_date") + ", " +
		d.Timestamp("r.created_at") + ", " + d.Timestamp("r.updated_at") + ", " + d.Timestamp("r.deleted_at") +
		", r.reported_by_id, u.username, " + rq.relevantIDs() + ", " + d.Point("r.gps_location") + ", r.test_flag"
}

const reportJoins = ` JOIN reports_reporttype rt ON rt.id = r.report_type_id LEFT JOIN accounts_user u ON u.id = r.reported_by_id`

// reportRow scans the base columns of an incident report.
type reportRow struct {
	id, typeID, typeName, incidentDate, created, updated string
	deleted, username, authorities, gps                  sql.NullString
	reportedBy                                           sql.NullInt64
	test                                                 bool
	ids                                                  []int64
}

func (b *reportRow) dest() []any {
	return []any{&b.id, &b.typeID, &b.typeName, &b.incidentDate, &b.created, &b.updated, &b.deleted,
		&b.reportedBy, &b.username, &b.authorities, &b.gps, &b.test}
}

// values appends the base values; they are valid until the next scan.
func (b *reportRow) values(dst []any) []any {
	b.ids = parseIDs(b.ids[:0], b.authorities.String)
	lng, lat := parsePoint(b.gps.String)
	return append(dst, b.id, b.typeID, b.typeName, b.incidentDate, b.created, b.updated, nullString(b.deleted),
		nullInt(b.reportedBy), nullString(b.username), b.ids, lng, lat, b.test)
}

func (b *reportRow) key(dateField string) (string, string) {
	if dateField == "incident_date" {
		return b.incidentDate, b.id
	}
	return b.created, b.id
}

func nullString(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}

func nullInt(n sql.NullInt64) any {
	if !n.Valid {
		return nil
	}
	return n.Int64
}

// parseIDs parses "3,1,2" into sorted ids.
func parseIDs(dst []int64, s string) []int64 {
	for part := range strings.SplitSeq(s, ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64); err == nil {
			dst = append(dst, n)
		}
	}
	slices.Sort(dst)
	return dst
}

// parsePoint reads "SRID=4326;POINT(lng lat)" (or "POINT(lng lat)").
func parsePoint(s string) (lng, lat any) {
	_, rest, ok := strings.Cut(s, "POINT(")
	if !ok {
		return nil, nil
	}
	rest, _, _ = strings.Cut(rest, ")")
	x, y, ok := strings.Cut(strings.TrimSpace(rest), " ")
	if !ok {
		return nil, nil
	}
	if _, err := strconv.ParseFloat(x, 64); err != nil {
		return nil, nil
	}
	if _, err := strconv.ParseFloat(strings.TrimSpace(y), 64); err != nil {
		return nil, nil
	}
	return json.Number(x), json.Number(strings.TrimSpace(y))
}

func runIncidents(rq *request) error {
	var a sqlArgs
	cte, from, order := rq.reportQuery(&a, reportJoins, true)
	q := &query{
		columns: append(slices.Clone(reportBase), "data", "renderer_data"),
		types:   append(slices.Clone(reportBaseTypes), export.Text, export.Text),
		sql:     cte + "SELECT " + rq.reportBaseSQL() + ", " + rq.d.Text("r.data") + ", r.renderer_data" + from + order,
		args:    a,
		keyed:   true,
	}
	var (
		row      reportRow
		data     sql.RawBytes
		renderer sql.NullString
		vals     []any
	)
	dest := append(row.dest(), &data, &renderer)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(dest...); err != nil {
			return "", "", err
		}
		vals = row.values(vals[:0])
		vals = append(vals, json.RawMessage(data), nullString(renderer))
		k, id := row.key(rq.params.dateField)
		return k, id, emit(vals)
	}
	return rq.stream(q)
}

// loadForm returns the flat layout of the request's report type: its definition merged
// with every distinct definition snapshot among the selected reports, in order of first use.
func (rq *request) loadForm() (*export.Form, error) {
	ctx := rq.r.Context()
	var def string
	err := rq.db.QueryRowContext(ctx, `SELECT `+rq.d.Text("definition")+` FROM reports_reporttype WHERE id = $1`, rq.params.reportTypeID).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &apiError{status: 404, code: "not_found", desc: "no report type " + rq.params.reportTypeID}
	}
	if err != nil {
		return nil, fmt.Errorf("exportapi: report type: %w", err)
	}
	form, err := export.ParseForm([]byte(def))
	if err != nil {
		return nil, fmt.Errorf("exportapi: report type %s: %w", rq.params.reportTypeID, err)
	}
	var a sqlArgs
	cte, from, _ := rq.reportQuery(&a, "", false, "r.definition IS NOT NULL")
	rows, err := rq.db.QueryContext(ctx, cte+"SELECT "+rq.d.Text("r.definition")+from+" GROUP BY r.definition ORDER BY min(r.created_at)", a...)
	if err != nil {
		return nil, fmt.Errorf("exportapi: definitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var snap string
		if err := rows.Scan(&snap); err != nil {
			return nil, err
		}
		sf, err := export.ParseForm([]byte(snap))
		if err != nil {
			rq.h.log.WarnContext(ctx, "export api: unreadable definition snapshot", "report_type", rq.params.reportTypeID, "err", err)
			continue
		}
		form.Merge(sf)
	}
	return form, rows.Err()
}

// flatBase are the report columns of the flat resource, before the form's.
var flatBase = []string{"id", "report_type_id", "incident_date", "created_at", "updated_at", "deleted_at",
	"reported_by_id", "reported_by_username", "authority_ids", "lng", "lat", "test_flag"}

// flatBaseTypes are the types of flatBase.
var flatBaseTypes = []export.Type{export.Text, export.Text, export.Date, export.Timestamp, export.Timestamp, export.Timestamp, export.Int, export.Text, export.IntList, export.Float, export.Float, export.Bool}

// formColumnNames names the form columns; a name taken by a report column gets "data.".
func formColumnNames(base []string, form *export.Form) []string {
	out := slices.Clone(base)
	for _, c := range form.Columns {
		name := c.Name
		if slices.Contains(base, name) {
			name = "data." + name
		}
		out = append(out, name)
	}
	return out
}

func runFlat(rq *request) error {
	form, err := rq.loadForm()
	if err != nil {
		return err
	}
	var a sqlArgs
	cte, from, order := rq.reportQuery(&a, reportJoins, true)
	q := &query{
		columns: formColumnNames(flatBase, form),
		types:   append(slices.Clone(flatBaseTypes), form.Types()...),
		sheets:  subformSheets(form),
		sql:     cte + "SELECT " + rq.reportBaseSQL() + ", " + rq.d.Text("r.data") + from + order,
		args:    a,
		keyed:   true,
	}
	var (
		row   reportRow
		data  sql.RawBytes
		vals  []any
		zones = export.Zones{}
	)
	dest := append(row.dest(), &data)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(dest...); err != nil {
			return "", "", err
		}
		vals = row.values(vals[:0])
		vals = slices.Delete(vals, 2, 3) // the flat layout leaves out report_type_name
		answers, err := export.DecodeData(data)
		if err != nil {
			answers = map[string]any{}
		}
		vals = form.AppendValues(vals, answers, zones.Of(answers))
		k, id := row.key(rq.params.dateField)
		if err := emit(vals); err != nil {
			return "", "", err
		}
		return k, id, q.writeSubforms(form, row.id, answers, zones)
	}
	return rq.stream(q)
}

// sortText reads a report's sort column as text, for keyset cursors.
func (rq *request) sortText(col string) string {
	if rq.params.dateField == "incident_date" {
		return rq.d.Date(col)
	}
	return rq.d.Timestamp(col)
}

func runSubforms(rq *request) error {
	form, err := rq.loadForm()
	if err != nil {
		return err
	}
	sub, ok := form.Subform(rq.params.subform)
	if !ok {
		known := form.SubformNames()
		why := "the report type has no subform field of that name"
		if len(known) > 0 {
			why += "; its subforms: " + strings.Join(known, ", ")
		}
		return badParam("subform", why)
	}
	var a sqlArgs
	cte, from, order := rq.reportQuery(&a, "", true)
	sortCol := "r." + rq.params.dateField
	q := &query{
		columns: formColumnNames([]string{"report_id", "instance_key"}, sub),
		types:   append([]export.Type{export.Text, export.Text}, sub.Types()...),
		sql:     cte + "SELECT " + rq.d.Text("r.id") + ", " + rq.sortText(sortCol) + ", " + rq.d.Text("r.data") + from + order,
		args:    a,
		keyed:   true,
	}
	var (
		id, key string
		data    sql.RawBytes
		vals    []any
		zones   = export.Zones{}
	)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(&id, &key, &data); err != nil {
			return "", "", err
		}
		answers, err := export.DecodeData(data)
		if err != nil {
			return key, id, nil
		}
		instances, ok := form.SubformAnswer(rq.params.subform, answers)
		if !ok {
			return key, id, nil
		}
		loc := zones.Of(answers)
		for _, k := range export.SubformKeys(instances) {
			inst, _ := instances[k].(map[string]any)
			vals = append(vals[:0], id, k)
			vals = sub.AppendValues(vals, inst, loc)
			if err := emit(vals); err != nil {
				return "", "", err
			}
		}
		return key, id, nil
	}
	return rq.stream(q)
}

func runColumns(rq *request) error {
	if !uuidRE.MatchString(rq.pathArg) {
		return errNotFound
	}
	var def string
	err := rq.db.QueryRowContext(rq.r.Context(), `SELECT `+rq.d.Text("definition")+` FROM reports_reporttype WHERE id = $1`, rq.pathArg).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return &apiError{status: 404, code: "not_found", desc: "no report type " + rq.pathArg}
	}
	if err != nil {
		return fmt.Errorf("exportapi: report type: %w", err)
	}
	form, err := export.ParseForm([]byte(def))
	if err != nil {
		return fmt.Errorf("exportapi: report type %s: %w", rq.pathArg, err)
	}
	var out [][]any
	add := func(base []string, f *export.Form, subform string) {
		names := formColumnNames(base, f)
		for i, name := range names {
			if i < len(base) {
				out = append(out, []any{name, "report", nil, nil, nil, nil, nil, subform})
				continue
			}
			c := f.Columns[i-len(base)]
			out = append(out, []any{name, "form", c.FieldType, c.Label, emptyNil(c.Question), c.Field, emptyNil(c.Option), subform})
		}
	}
	add(flatBase, form, "")
	for _, name := range form.SubformNames() {
		sf, _ := form.Subform(name)
		add([]string{"report_id", "instance_key"}, sf, name)
	}
	return rq.streamRows([]string{"name", "source", "field_type", "label", "question", "field", "option", "subform"}, out)
}

func emptyNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// streamRows writes rows held in memory (small, fixed results).
func (rq *request) streamRows(columns []string, rows [][]any) error {
	rq.setHeaders()
	rq.w.WriteHeader(200)
	if rq.r.Method == "HEAD" {
		return nil
	}
	cw := countingWriter{w: rq.w, n: &rq.bytes}
	wr, err := export.NewWriter(rq.params.format, cw, export.Options{CSVByteOrderMark: rq.params.bom, Sheet: rq.sheetName()})
	if err != nil {
		return rq.abort(err)
	}
	defer export.Release(wr)
	if err := wr.Header(columns); err != nil {
		return rq.abort(err)
	}
	for _, r := range rows {
		rq.rows++
		if err := wr.Row(r); err != nil {
			return rq.abort(err)
		}
	}
	if err := wr.Close(export.Trailer{}); err != nil {
		return rq.abort(err)
	}
	return nil
}

func runReportTypes(rq *request) error {
	d := rq.d
	var a sqlArgs
	var conds []string
	if !rq.params.includeDeleted {
		conds = append(conds, "rt.deleted_at IS NULL")
	}
	if rq.params.hasUpdated {
		conds = append(conds, "rt.updated_at >= "+a.add(ohtkdb.FormatTime(rq.params.updatedSince)))
	}
	if c := rq.params.cursor; c != nil {
		conds = append(conds, "rt.id > "+a.add(c.ID))
	}
	q := &query{
		columns: []string{"id", "name", "category_id", "category_name", "published", "ordering", "created_at", "updated_at", "deleted_at", "definition"},
		types:   []export.Type{export.Text, export.Text, export.Int, export.Text, export.Bool, export.Int, export.Timestamp, export.Timestamp, export.Timestamp, export.Text},
		sql: `SELECT ` + d.Text("rt.id") + `, rt.name, rt.category_id, c.name, rt.published, rt.ordering, ` + d.Timestamp("rt.created_at") + `, ` +
			d.Timestamp("rt.updated_at") + `, ` + d.Timestamp("rt.deleted_at") + `, ` + d.Text("rt.definition") + `
			FROM reports_reporttype rt LEFT JOIN reports_category c ON c.id = rt.category_id` + where(conds) + " ORDER BY rt.id",
		args:  a,
		keyed: true,
	}
	var (
		id, name, created, updated string
		catID                      sql.NullInt64
		catName, deleted           sql.NullString
		published                  bool
		ordering                   int64
		def                        sql.RawBytes
	)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(&id, &name, &catID, &catName, &published, &ordering, &created, &updated, &deleted, &def); err != nil {
			return "", "", err
		}
		return "", id, emit([]any{id, name, nullInt(catID), nullString(catName), published, ordering, created, updated, nullString(deleted), json.RawMessage(def)})
	}
	return rq.stream(q)
}

func runAuthorities(rq *request) error {
	d := rq.d
	var a sqlArgs
	cte := rq.scopeCTE(&a)
	var conds []string
	if !rq.scope.whole() {
		conds = append(conds, "a.id IN (SELECT id FROM sub)")
	}
	if !rq.params.includeDeleted {
		conds = append(conds, "a.deleted_at IS NULL")
	}
	if rq.params.hasUpdated {
		conds = append(conds, "a.updated_at >= "+a.add(ohtkdb.FormatTime(rq.params.updatedSince)))
	}
	if c := rq.params.cursor; c != nil {
		id, _ := strconv.ParseInt(c.ID, 10, 64)
		conds = append(conds, "a.id > "+a.add(id))
	}
	q := &query{
		columns: []string{"id", "code", "name", "parent_ids", "created_at", "updated_at", "deleted_at"},
		types:   []export.Type{export.Int, export.Text, export.Text, export.IntList, export.Timestamp, export.Timestamp, export.Timestamp},
		sql: cte + `SELECT a.id, a.code, a.name, (SELECT ` + d.GroupConcat("i.to_authority_id") + ` FROM accounts_authority_inherits i WHERE i.from_authority_id = a.id),
			` + d.Timestamp("a.created_at") + `, ` + d.Timestamp("a.updated_at") + `, ` + d.Timestamp("a.deleted_at") + ` FROM accounts_authority a` + where(conds) + " ORDER BY a.id",
		args:  a,
		keyed: true,
	}
	var (
		id               int64
		code, name       string
		parents, deleted sql.NullString
		created, updated string
		ids              []int64
	)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(&id, &code, &name, &parents, &created, &updated, &deleted); err != nil {
			return "", "", err
		}
		ids = parseIDs(ids[:0], parents.String)
		return "", strconv.FormatInt(id, 10), emit([]any{id, code, name, ids, created, updated, nullString(deleted)})
	}
	return rq.stream(q)
}

func runZeroReports(rq *request) error {
	d := rq.d
	var a sqlArgs
	cte := rq.scopeCTE(&a)
	var conds []string
	if !rq.scope.whole() {
		// OHTK scopes zero reports by the reporter's current authority.
		conds = append(conds, "au.authority_id IN (SELECT id FROM sub)")
	}
	if !rq.params.includeDeleted {
		conds = append(conds, "z.deleted_at IS NULL")
	}
	conds = rq.timeConds(&a, conds, "z.created_at", "", "z.updated_at")
	conds = rq.keysetCond(&a, conds, "z.created_at", "z.id")
	q := &query{
		columns: []string{"id", "platform", "reported_by_id", "reported_by_username", "authority_id", "created_at", "updated_at", "deleted_at"},
		types:   []export.Type{export.Text, export.Text, export.Int, export.Text, export.Int, export.Timestamp, export.Timestamp, export.Timestamp},
		sql: cte + `SELECT ` + d.Text("z.id") + `, z.platform, z.reported_by_id, u.username, au.authority_id, ` + d.Timestamp("z.created_at") + `, ` +
			d.Timestamp("z.updated_at") + `, ` + d.Timestamp("z.deleted_at") + `
			FROM reports_zeroreport z JOIN accounts_user u ON u.id = z.reported_by_id
			LEFT JOIN accounts_authorityuser au ON au.user_ptr_id = z.reported_by_id` + where(conds) + " ORDER BY z.created_at, z.id",
		args:  a,
		keyed: true,
	}
	var (
		id, username, created, updated string
		platform, deleted              sql.NullString
		by                             int64
		authority                      sql.NullInt64
	)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		if err := rows.Scan(&id, &platform, &by, &username, &authority, &created, &updated, &deleted); err != nil {
			return "", "", err
		}
		return created, id, emit([]any{id, nullString(platform), by, username, nullInt(authority), created, updated, nullString(deleted)})
	}
	return rq.stream(q)
}

// seesContacts is the rule for reporters' contact details (email, telephone, address):
// superusers and authority admins (ADM) see them; officers (OFC) do not.
func (p *principal) seesContacts() bool { return p.superuser || p.role == "ADM" }

func runReporters(rq *request) error {
	var a sqlArgs
	cte := rq.scopeCTE(&a)
	var conds []string
	if !rq.scope.whole() {
		conds = append(conds, "au.authority_id IN (SELECT id FROM sub)")
	}
	if c := rq.params.cursor; c != nil {
		id, _ := strconv.ParseInt(c.ID, 10, 64)
		conds = append(conds, "u.id > "+a.add(id))
	}
	contacts := rq.p.seesContacts()
	columns := []string{"id", "username", "first_name", "last_name", "role", "authority_id", "authority_code", "authority_name", "is_active", "date_joined"}
	extra := ""
	if contacts {
		columns = append(columns, "email", "telephone", "address")
		extra = ", u.email, au.telephone, au.address"
	}
	q := &query{
		columns: columns,
		types:   []export.Type{export.Int, export.Text, export.Text, export.Text, export.Text, export.Int, export.Text, export.Text, export.Bool, export.Timestamp, export.Text, export.Text, export.Text}[:len(columns)],
		sql: cte + `SELECT u.id, u.username, u.first_name, u.last_name, au.role, au.authority_id, a.code, a.name, u.is_active, ` + rq.d.Timestamp("u.date_joined") + extra + `
			FROM accounts_authorityuser au JOIN accounts_user u ON u.id = au.user_ptr_id JOIN accounts_authority a ON a.id = au.authority_id` +
			where(conds) + " ORDER BY u.id",
		args:  a,
		keyed: true,
	}
	var (
		id, authority                                   int64
		username, first, last, role, code, name, joined string
		active                                          bool
		email                                           string
		phone, address                                  sql.NullString
	)
	q.scan = func(rows *sql.Rows, emit func([]any) error) (string, string, error) {
		dest := []any{&id, &username, &first, &last, &role, &authority, &code, &name, &active, &joined}
		if contacts {
			dest = append(dest, &email, &phone, &address)
		}
		if err := rows.Scan(dest...); err != nil {
			return "", "", err
		}
		vals := []any{id, username, first, last, role, authority, code, name, active, joined}
		if contacts {
			vals = append(vals, email, nullString(phone), nullString(address))
		}
		return "", strconv.FormatInt(id, 10), emit(vals)
	}
	return rq.stream(q)
}

func runMe(rq *request) error {
	p := rq.p
	type authority struct {
		ID   int64  `json:"id"`
		Code string `json:"code"`
		Name string `json:"name"`
	}
	me := struct {
		ID          int64      `json:"id"`
		Username    string     `json:"username"`
		FirstName   string     `json:"first_name"`
		LastName    string     `json:"last_name"`
		Email       string     `json:"email"`
		IsSuperuser bool       `json:"is_superuser"`
		Role        *string    `json:"role"`
		Authority   *authority `json:"authority"`
		Scope       string     `json:"scope"`
		AuthMethod  string     `json:"auth_method"`
		Tenant      string     `json:"tenant"`
	}{ID: p.userID, Username: p.username, FirstName: p.firstName, LastName: p.lastName, Email: p.email,
		IsSuperuser: p.superuser, Scope: "authority", AuthMethod: p.method, Tenant: rq.t.SchemaName}
	if p.role != "" {
		me.Role = &p.role
		me.Authority = &authority{ID: p.authorityID, Code: p.authCode, Name: p.authName}
	}
	if rq.scope.whole() {
		me.Scope = "tenant"
	}
	b, err := json.Marshal(me)
	if err != nil {
		return err
	}
	rq.rows = 1
	return rq.writeObject(b)
}
