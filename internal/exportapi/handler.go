// Package exportapi serves the protected Export API, /api/export/v1/, over a tenant's OHTK
// tables: authentication (DOT bearer tokens, HTTP Basic with a Django password or an
// ohtkhub API key), OHTK's authority-subtree authorization, filters, keyset pagination,
// streamed JSON/NDJSON/CSV output and an audit row per request.
//
// Rules chosen where OHTK has none:
//   - CSV is UTF-8 with a byte order mark by default, so Excel shows Thai text; bom=false
//     leaves it out (pandas and most CSV readers skip it either way).
//   - reporters lists email, telephone and address only to superusers and ADM users; for
//     OFC users those columns are left out of the result.
//   - from is inclusive and to exclusive for timestamps; a date-only to includes that whole
//     day. Date-only values are read in tz (default UTC). A timestamp keeps its own offset.
//   - authority_ids of a report list only the authorities the caller can see.
//   - Every authenticated request is audited in ohtkhub_export_audit; failed logins are
//     only logged, so they cannot fill the audit table.
//   - report-types lists every report type of the tenant to every authorized caller: form
//     definitions are not data of an authority.
//   - Cursors are opaque, checksummed and bound to the resource and filters; they grant
//     nothing, since every page is still scoped to the caller.
package exportapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// Prefix is the path every Export API request starts with.
const Prefix = "/api/export/v1/"

// Options configure the Export API handler.
type Options struct {
	// BasicPasswords allows HTTP Basic with a user's Django password. API keys are accepted
	// over Basic either way.
	BasicPasswords bool
	// Logger receives errors and failed logins; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FailureLimit and FailureBurst bound failed Basic logins per client IP and username:
	// after FailureBurst failures, attempts are refused with 429 until tokens refill at
	// FailureLimit per second. Zero values mean 5 failures, then one attempt per 12 s.
	// Each client IP alone may fail four times as often, across usernames.
	FailureLimit rate.Limit
	FailureBurst int
	// CursorKey keys the checksum of pagination cursors; nil uses a built-in key. Replicas
	// serving one tenant must share it.
	CursorKey []byte
	// WriteTimeout is how long each flush of a streamed export may take; the connection's
	// write deadline is pushed this far ahead at every flush. Zero means 60 s.
	WriteTimeout time.Duration
}

// handler is the Export API.
type handler struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	limiter   *failureLimiter // per client IP and username
	ipLimiter *failureLimiter // per client IP
	cursors   cursorCodec
	resource  map[string]*resource
	// tokenColumns caches, per tenant database, whether its access tokens lack
	// token_checksum (DOT before 3.0).
	tokenColumns sync.Map
	// standIns are the per-tenant hashes checked for unknown usernames.
	standIns ohtkdb.StandIns
}

// New returns the Export API handler. It expects the tenant in the request context
// (tenant.NewContext) and r.URL.Path starting with Prefix.
func New(opts Options) http.Handler {
	h := &handler{opts: opts, log: opts.Logger, now: opts.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.opts.FailureLimit == 0 {
		h.opts.FailureLimit = rate.Every(12 * time.Second)
	}
	if h.opts.FailureBurst <= 0 {
		h.opts.FailureBurst = 5
	}
	if h.opts.WriteTimeout <= 0 {
		h.opts.WriteTimeout = 60 * time.Second
	}
	h.limiter = newFailureLimiter(h.opts.FailureLimit, h.opts.FailureBurst)
	h.ipLimiter = newFailureLimiter(4*h.opts.FailureLimit, 4*h.opts.FailureBurst)
	h.cursors = newCursorCodec(opts.CursorKey)
	h.resource = resources()
	return h
}

// apiError is an error with its HTTP status and OAuth-style code.
type apiError struct {
	status int
	code   string
	desc   string
	header http.Header
}

func (e *apiError) Error() string { return e.code + ": " + e.desc }

func badParam(name, why string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: "invalid parameter " + name + ": " + why}
}

var (
	errForbidden = &apiError{status: http.StatusForbidden, code: "forbidden", desc: "you do not have access to this data"}
	errNotFound  = &apiError{status: http.StatusNotFound, code: "not_found", desc: "no such resource"}
)

// writeError writes err as the API's JSON error; it is the one place errors become
// statuses.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	var ae *apiError
	if !errors.As(err, &ae) {
		h.log.ErrorContext(r.Context(), "export api", "path", r.URL.Path, "err", err)
		ae = &apiError{status: http.StatusInternalServerError, code: "server_error", desc: "internal error"}
	}
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ae.status)
	body, _ := json.Marshal(map[string]string{"error": ae.code, "error_description": ae.desc})
	w.Write(append(body, '\n'))
	return ae.status
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := tenant.FromContext(r.Context())
	if !ok || t == nil || t.DB == nil {
		h.writeError(w, r, errors.New("exportapi: no tenant in request context"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			desc: "only GET is allowed", header: http.Header{"Allow": {"GET, HEAD"}}})
		return
	}
	res, pathArg, ok := h.route(strings.TrimPrefix(r.URL.Path, Prefix))
	if !ok || !strings.HasPrefix(r.URL.Path, Prefix) {
		h.writeError(w, r, errNotFound)
		return
	}
	started := h.now()
	p, err := h.authenticate(r, t)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	rq := &request{h: h, w: w, r: r, t: t, d: ohtkdb.DialectOf(t.DB), db: t.DB, p: p, res: res, pathArg: pathArg, started: started}
	rq.status = 200
	err = h.serve(rq)
	if err != nil && !errors.Is(err, errAborted) {
		rq.status = h.writeError(w, r, err)
	}
	h.audit(rq)
	if errors.Is(err, errAborted) {
		// Headers and part of the body are out: breaking the connection is the only way to
		// tell the client the file is incomplete.
		panic(http.ErrAbortHandler)
	}
}

// queryer is what resources read through: the tenant's database or a transaction on it.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (h *handler) serve(rq *request) error {
	// Everything the answer is built from (the caller's authority, the form's columns, the
	// rows) is read in one snapshot, however long the export streams and whatever is
	// written meanwhile.
	if opts := rq.d.SnapshotTx(); opts != nil {
		tx, err := rq.t.DB.BeginTx(rq.r.Context(), opts)
		if err != nil {
			return fmt.Errorf("exportapi: begin: %w", err)
		}
		defer tx.Rollback() // read-only: nothing to commit
		rq.db = tx
	}
	scope, err := h.authorize(rq.r.Context(), rq.db, rq.p)
	if err != nil {
		return err
	}
	rq.scope = scope
	params, err := parseParams(rq.r, rq.res, h.cursors)
	if err != nil {
		return err
	}
	rq.params = params
	if params.authorityID != 0 {
		if err := rq.narrow(params.authorityID); err != nil {
			return err
		}
	}
	return rq.res.run(rq)
}

// route maps the path after Prefix to a resource and its path argument (a report type id).
func (h *handler) route(path string) (*resource, string, bool) {
	if res, ok := h.resource[path]; ok {
		return res, "", true
	}
	if rest, ok := strings.CutPrefix(path, "report-types/"); ok {
		if id, ok := strings.CutSuffix(rest, "/columns"); ok && id != "" && !strings.Contains(id, "/") {
			return h.resource["report-types/{id}/columns"], id, true
		}
	}
	return nil, "", false
}
