package exportapi

import (
	"context"
	"encoding/json"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// audit records one authenticated request in ohtkhub_export_audit, after its body was
// written. It uses a context the client cannot cancel, so aborted downloads are recorded too.
func (h *handler) audit(rq *request) {
	ctx := context.WithoutCancel(rq.r.Context())
	filters := map[string]string{}
	format := ""
	if rq.params != nil {
		filters = rq.params.given
		format = string(rq.params.format)
	} else {
		for k, v := range rq.r.URL.Query() {
			if len(v) > 0 {
				filters[k] = v[0]
			}
		}
	}
	if rq.pathArg != "" {
		filters["id"] = rq.pathArg
	}
	fj, _ := json.Marshal(filters)
	dur := h.now().Sub(rq.started).Milliseconds()
	_, err := rq.t.DB.ExecContext(ctx, `INSERT INTO ohtkhub_export_audit
		(user_id, username, auth_method, resource, filters, format, status, rows, bytes, started, duration_ms, remote_addr)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		rq.p.userID, rq.p.username, rq.p.method, rq.res.name, string(fj), format, rq.status, rq.rows, rq.bytes,
		ohtkdb.FormatTime(rq.started), dur, rq.r.RemoteAddr)
	if err != nil {
		h.log.ErrorContext(ctx, "export api: audit", "err", err)
	}
	h.log.InfoContext(ctx, "export", "tenant", rq.t.SchemaName, "user", rq.p.username, "auth", rq.p.method,
		"resource", rq.res.name, "format", format, "status", rq.status, "rows", rq.rows, "bytes", rq.bytes, "duration_ms", dur)
}
