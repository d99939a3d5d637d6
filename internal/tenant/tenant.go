// Package tenant carries the tenant a request of the api was resolved to.
package tenant

import (
	"context"
	"database/sql"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Tenant is the tenant of one api request: its public row and its database.
type Tenant struct {
	ohtkdb.Tenant
	// DB holds the tenant's OHTK tables (PostgreSQL: a connection bound to its schema).
	DB *sql.DB
	// BasePath is the path prefix the tenant was addressed by ("/t/bunny"), or "" when
	// it was resolved from the Host header. Links the api builds start with it.
	BasePath string
}

type ctxKey struct{}

// NewContext returns a copy of ctx that carries t.
func NewContext(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the tenant stored in ctx, if any.
func FromContext(ctx context.Context) (*Tenant, bool) {
	t, ok := ctx.Value(ctxKey{}).(*Tenant)
	return t, ok
}
