package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// tenancy resolves the request's tenant as django-tenants does and passes the request on
// with the tenant in its context:
//
//   - by Host: port and a leading "www." removed, exact match on tenants_domain.domain;
//   - else by path: /t/{schema_name}/..., the prefix removed from the path and kept in
//     tenant.Tenant.BasePath.
//
// A host that names a tenant wins over the path, so one tenant's domain never serves another
// tenant's /t/ prefix. Unknown and soft-deleted tenants get 404; there is no fallback tenant.
func (s *Server) tenancy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, err := s.store.TenantByHost(ctx, r.Host)
		base := ""
		if errors.Is(err, ohtkdb.ErrNotFound) {
			schema, rest, ok := splitTenantPath(r.URL.Path)
			if !ok {
				tenantNotFound(w)
				return
			}
			t, err = s.store.TenantBySchema(ctx, schema)
			if errors.Is(err, ohtkdb.ErrNotFound) {
				tenantNotFound(w)
				return
			}
			base = "/t/" + url.PathEscape(schema)
			r = r.Clone(ctx)
			r.URL.Path = rest
			r.URL.RawPath = ""
		}
		if err != nil {
			s.log.Error("api: tenant", "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
			return
		}
		db, err := s.store.TenantDB(ctx, t.SchemaName)
		if err != nil {
			s.log.Error("api: tenant database", "tenant", t.SchemaName, "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
			return
		}
		tt := &tenant.Tenant{Tenant: t, DB: db, BasePath: base}
		next.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), tt)))
	})
}

// splitTenantPath splits "/t/{schema}/rest" into the schema and "/rest". "/t/{schema}"
// alone maps to "/".
func splitTenantPath(p string) (schema, rest string, ok bool) {
	tail, found := strings.CutPrefix(p, "/t/")
	if !found {
		return "", "", false
	}
	schema, rest, _ = strings.Cut(tail, "/")
	if schema == "" {
		return "", "", false
	}
	return schema, "/" + rest, true
}

func tenantNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "tenant_not_found", "No tenant for this host or path.")
}
