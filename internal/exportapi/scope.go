package exportapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// scope is the part of the tenant a request may read: everything (root 0, superusers
// without authorityId) or the subtree of one authority.
type scope struct {
	root int64
}

func (s scope) whole() bool { return s.root == 0 }

// subtreeCTE is the authority subtree of a root as a recursive CTE named sub. UNION (not
// UNION ALL) drops rows already seen, so cycles and diamonds in the DAG terminate.
func subtreeCTE(root string) string {
	// The cast gives PostgreSQL the parameter's type; SQLite accepts it as is.
	return `sub(id) AS (SELECT CAST(` + root + ` AS BIGINT) UNION SELECT i.from_authority_id FROM accounts_authority_inherits i JOIN sub ON i.to_authority_id = sub.id)`
}

// authorize applies OHTK's rules: superusers see the tenant; ADM and OFC authority users
// see their authority's subtree; reporters and users without an authority are refused.
func (h *handler) authorize(ctx context.Context, db queryer, p *principal) (scope, error) {
	err := db.QueryRowContext(ctx, `SELECT au.role, au.authority_id, a.code, a.name
		FROM accounts_authorityuser au JOIN accounts_authority a ON a.id = au.authority_id
		WHERE au.user_ptr_id = $1`, p.userID).Scan(&p.role, &p.authorityID, &p.authCode, &p.authName)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return scope{}, fmt.Errorf("exportapi: authority user: %w", err)
	}
	switch {
	case p.superuser:
		return scope{}, nil
	case p.authorityID != 0 && (p.role == "ADM" || p.role == "OFC"):
		return scope{root: p.authorityID}, nil
	}
	return scope{}, errForbidden
}

// narrow restricts the request to the subtree of authorityID, which must lie in the
// caller's scope.
func (rq *request) narrow(authorityID int64) error {
	ctx := rq.r.Context()
	var n int
	var err error
	if rq.scope.whole() {
		err = rq.db.QueryRowContext(ctx, `SELECT count(*) FROM accounts_authority WHERE id = $1`, authorityID).Scan(&n)
	} else {
		err = rq.db.QueryRowContext(ctx, `WITH RECURSIVE `+subtreeCTE("$1")+` SELECT count(*) FROM sub WHERE id = $2`,
			rq.scope.root, authorityID).Scan(&n)
	}
	if err != nil {
		return fmt.Errorf("exportapi: authority %d: %w", authorityID, err)
	}
	if n == 0 {
		return &apiError{status: 403, code: "forbidden", desc: "authorityId " + strconv.FormatInt(authorityID, 10) + " is not in your authority's subtree"}
	}
	rq.scope = scope{root: authorityID}
	return nil
}
