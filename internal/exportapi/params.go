package exportapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // tz names resolve even where the system has no zoneinfo

	"github.com/ohtkhub/ohtkhub/internal/export"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Limits of the limit parameter.
const (
	defaultLimit = 1000
	maxLimit     = 10000
)

// params are a request's validated query parameters.
type params struct {
	format export.Format
	bom    bool

	dateField      string // created_at or incident_date
	from, to       time.Time
	hasFrom, hasTo bool
	fromDate       string // incident_date bounds: fromDate <= d < toDate
	toDate         string
	updatedSince   time.Time
	hasUpdated     bool
	authorityID    int64
	reportTypeID   string
	includeTest    bool
	includeDeleted bool
	subform        string

	limit  int
	cursor *cursor

	// given holds the parameters as sent, for the audit log; filterKey binds cursors to them.
	given     map[string]string
	filterKey string
}

// Parameter sets that resources accept, besides format, limit, cursor and bom.
var (
	timeFilters   = []string{"from", "to", "tz", "dateField", "updatedSince"}
	reportFilters = append(slices.Clone(timeFilters), "authorityId", "reportTypeId", "includeTest", "includeDeleted")
)

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func parseParams(r *http.Request, res *resource, codec cursorCodec) (*params, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &apiError{status: 400, code: "invalid_request", desc: "invalid query string: " + err.Error()}
	}
	p := &params{dateField: "created_at", limit: defaultLimit, bom: true, given: map[string]string{}}
	allowed := map[string]bool{"format": true}
	if res.paginated {
		allowed["limit"], allowed["cursor"] = true, true
	}
	for _, name := range res.params {
		allowed[name] = true
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "bom" {
			continue // checked with format below
		}
		if !allowed[name] {
			return nil, &apiError{status: 400, code: "invalid_request", desc: "unknown parameter " + name + " for " + res.name}
		}
	}
	for _, name := range names {
		if len(q[name]) != 1 {
			return nil, badParam(name, "given more than once")
		}
		p.given[name] = q.Get(name)
	}

	format, err := pickFormat(q.Get("format"), q.Has("format"), r.Header.Get("Accept"), res)
	if err != nil {
		return nil, err
	}
	p.format = format
	if q.Has("bom") {
		if format != export.CSV {
			return nil, &apiError{status: 400, code: "invalid_request", desc: "unknown parameter bom: only with format=csv"}
		}
		b, err := strconv.ParseBool(q.Get("bom"))
		if err != nil {
			return nil, badParam("bom", "want true or false")
		}
		p.bom = b
	}

	loc := time.UTC
	if q.Has("tz") {
		name := q.Get("tz")
		l, err := time.LoadLocation(name)
		if err != nil || name == "" || name == "Local" {
			return nil, badParam("tz", "want an IANA time zone name such as Asia/Bangkok")
		}
		loc = l
	}
	if q.Has("dateField") {
		switch v := q.Get("dateField"); {
		case v == "created_at":
		case v == "incident_date" && res.hasIncidentDate:
			p.dateField = v
		default:
			if res.hasIncidentDate {
				return nil, badParam("dateField", "want created_at or incident_date")
			}
			return nil, badParam("dateField", "want created_at")
		}
	}
	if q.Has("from") {
		t, _, err := parseInstant(q.Get("from"), loc)
		if err != nil {
			return nil, badParam("from", err.Error())
		}
		p.from, p.hasFrom = t, true
		// A timestamp's own date counts: incident dates are whole days.
		p.fromDate = t.Format(time.DateOnly)
	}
	if q.Has("to") {
		t, dateOnly, err := parseInstant(q.Get("to"), loc)
		if err != nil {
			return nil, badParam("to", err.Error())
		}
		if dateOnly {
			t = t.AddDate(0, 0, 1) // the whole day is included
		}
		p.to, p.hasTo = t, true
		p.toDate = t.Format(time.DateOnly)
		if !dateOnly && !sameDay(t) {
			p.toDate = t.AddDate(0, 0, 1).Format(time.DateOnly)
		}
		if p.hasFrom && !p.to.After(p.from) {
			return nil, badParam("to", "must be after from")
		}
	}
	if q.Has("updatedSince") {
		t, _, err := parseInstant(q.Get("updatedSince"), loc)
		if err != nil {
			return nil, badParam("updatedSince", err.Error())
		}
		p.updatedSince, p.hasUpdated = t, true
	}
	if q.Has("authorityId") {
		id, err := strconv.ParseInt(q.Get("authorityId"), 10, 64)
		if err != nil || id <= 0 {
			return nil, badParam("authorityId", "want a positive integer authority id")
		}
		p.authorityID = id
	}
	if q.Has("reportTypeId") {
		v := q.Get("reportTypeId")
		if !uuidRE.MatchString(v) {
			return nil, badParam("reportTypeId", "want a report type id (UUID)")
		}
		p.reportTypeID = v
	} else if res.needsReportType {
		return nil, badParam("reportTypeId", "required")
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"includeTest", &p.includeTest}, {"includeDeleted", &p.includeDeleted}} {
		if q.Has(b.name) {
			v, err := strconv.ParseBool(q.Get(b.name))
			if err != nil {
				return nil, badParam(b.name, "want true or false")
			}
			*b.dst = v
		}
	}
	if q.Has("subform") {
		v := q.Get("subform")
		if v == "" || len(v) > 300 {
			return nil, badParam("subform", "want the name of a subform field")
		}
		p.subform = v
	} else if res.needsSubform {
		return nil, badParam("subform", "required")
	}
	if q.Has("limit") {
		if !format.Paginated() {
			return nil, badParam("limit", "only with format=json; the other formats return the whole result")
		}
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			return nil, badParam("limit", "want an integer from 1 to "+strconv.Itoa(maxLimit))
		}
		p.limit = n
	}

	// The cursor is bound to the filters: a cursor from another query would skip rows.
	filters := map[string]string{"resource": res.name}
	for k, v := range p.given {
		if k != "cursor" && k != "limit" && k != "format" && k != "bom" {
			filters[k] = v
		}
	}
	fk, _ := json.Marshal(filters)
	sum := sha256.Sum256(fk)
	p.filterKey = base64.RawURLEncoding.EncodeToString(sum[:9])
	if q.Has("cursor") {
		if !format.Paginated() {
			return nil, badParam("cursor", "only with format=json")
		}
		c, err := codec.decode(q.Get("cursor"))
		if err != nil || c.Filters != p.filterKey || c.DateField != p.dateField || !res.validKey(c) {
			return nil, badParam("cursor", "not a cursor returned for this query")
		}
		p.cursor = c
	}
	return p, nil
}

func sameDay(t time.Time) bool {
	h, m, s := t.Clock()
	return h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0
}

// parseInstant reads an RFC 3339 timestamp with an offset, or a date (midnight in loc).
func parseInstant(s string, loc *time.Location) (time.Time, bool, error) {
	if len(s) == len(time.DateOnly) {
		t, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			return time.Time{}, false, errInstant
		}
		return t, true, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, errInstant
	}
	return t, false, nil
}

var errInstant = instantError{}

type instantError struct{}

func (instantError) Error() string {
	return "want an RFC 3339 timestamp with offset (2024-03-01T00:00:00+07:00) or a date YYYY-MM-DD (read in tz)"
}

// pickFormat chooses the output format from format= or else the Accept header.
func pickFormat(v string, given bool, accept string, res *resource) (export.Format, error) {
	if given {
		f := export.Format(v)
		if !slices.Contains(res.formats(), f) {
			names := make([]string, 0, 3)
			for _, f := range res.formats() {
				names = append(names, string(f))
			}
			return "", badParam("format", "want one of "+strings.Join(names, ", "))
		}
		return f, nil
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		var f export.Format
		switch mt {
		case "application/json":
			f = export.JSON
		case "application/x-ndjson", "application/ndjson":
			f = export.NDJSON
		case "text/csv":
			f = export.CSV
		case export.XLSX.ContentType():
			f = export.XLSX
		case export.Parquet.ContentType(), "application/x-parquet":
			f = export.Parquet
		default:
			continue
		}
		if slices.Contains(res.formats(), f) {
			return f, nil
		}
	}
	return export.JSON, nil
}

// cursor is a keyset position: the last row's sort key and id.
type cursor struct {
	Resource  string `json:"r"`
	DateField string `json:"d"`
	Filters   string `json:"f"`
	Key       string `json:"k"`
	ID        string `json:"i"`
}

// cursorCodec encodes cursors as base64url JSON plus a keyed checksum, so edited cursors
// are refused with 400 instead of silently moving the position.
type cursorCodec struct{ key []byte }

func newCursorCodec(key []byte) cursorCodec {
	if len(key) == 0 {
		key = []byte("ohtkhub export cursor v1")
	}
	return cursorCodec{key: key}
}

func (c cursorCodec) sum(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:12]
}

func (c cursorCodec) encode(cur cursor) string {
	b, _ := json.Marshal(cur)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(c.sum(b))
}

func (c cursorCodec) decode(s string) (*cursor, error) {
	body, mac, ok := strings.Cut(s, ".")
	if !ok || len(s) > 2048 {
		return nil, errInstant
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	m, err2 := base64.RawURLEncoding.DecodeString(mac)
	if err1 != nil || err2 != nil || !hmac.Equal(m, c.sum(b)) {
		return nil, errInstant
	}
	var cur cursor
	if err := json.Unmarshal(b, &cur); err != nil {
		return nil, err
	}
	return &cur, nil
}

// validStamp reports whether s is a stored timestamp.
func validStamp(s string) bool {
	_, err := ohtkdb.ParseTime(s)
	return err == nil
}
