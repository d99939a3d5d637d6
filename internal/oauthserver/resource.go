package oauthserver

import (
	"database/sql"
	"errors"
	"net/http"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// revoke serves /o/revoke_token/ (RFC 7009). The answer is 200 with an empty body whether
// or not the token existed, so the endpoint reveals nothing about tokens. Only tokens of the
// authenticated client are revoked. Revoking an access token also revokes the refresh token
// issued with it (RFC 7009 section 2.1 allows this; DOT keeps the refresh token alive, which
// would let a revoked session come back by refreshing).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, errInvalidRequest("The revocation endpoint only accepts POST."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, errInvalidRequest("The request body is not a valid form."))
		return
	}
	app, oerr := s.client(r, t, false)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, errInvalidRequest("Missing token parameter."))
		return
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	defer tx.Rollback()
	now := ohtkdb.FormatTime(s.now())
	// The hint only orders the lookups (RFC 7009 section 2.1); both kinds are tried.
	var accessID sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT id FROM oauth2_provider_accesstoken WHERE token_checksum = $1 AND application_id = $2`,
		checksum(token), app.ID).Scan(&accessID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.serverErrorJSON(w, err)
		return
	}
	if accessID.Valid {
		if _, err := tx.ExecContext(ctx, `UPDATE oauth2_provider_refreshtoken SET revoked = $1, updated = $1, access_token_id = NULL
			WHERE access_token_id = $2 AND revoked IS NULL`, now, accessID.Int64); err != nil {
			s.serverErrorJSON(w, err)
			return
		}
		if err := deleteAccessToken(ctx, tx, accessID.Int64); err != nil {
			s.serverErrorJSON(w, err)
			return
		}
	} else {
		var refreshID int64
		var access sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id, access_token_id FROM oauth2_provider_refreshtoken
			WHERE token = $1 AND application_id = $2 AND revoked IS NULL`, token, app.ID).Scan(&refreshID, &access)
		if err == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE oauth2_provider_refreshtoken SET revoked = $1, updated = $1, access_token_id = NULL WHERE id = $2`, now, refreshID); err != nil {
				s.serverErrorJSON(w, err)
				return
			}
			if access.Valid {
				if _, err := tx.ExecContext(ctx, `DELETE FROM oauth2_provider_accesstoken WHERE id = $1`, access.Int64); err != nil {
					s.serverErrorJSON(w, err)
					return
				}
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			s.serverErrorJSON(w, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// introspect serves /o/introspect/ (RFC 7662) as DOT does: the caller is a client with its
// credentials, or a resource server with a Bearer token holding the "introspection" scope.
// The token to inspect comes in "token" (POST form or, as DOT allows, GET query).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	ctx := r.Context()
	var token string
	switch r.Method {
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, errInvalidRequest("The request body is not a valid form."))
			return
		}
		token = r.PostForm.Get("token")
	case http.MethodGet:
		r.PostForm = map[string][]string{}
		token = r.URL.Query().Get("token")
	default:
		w.Header().Set("Allow", "GET, POST")
		writeOAuthError(w, errInvalidRequest("The introspection endpoint accepts GET and POST."))
		return
	}
	if b := bearer(r); b != "" {
		caller, _, err := s.activeToken(ctx, t.DB, b)
		if err != nil && !errors.Is(err, errNoToken) {
			s.serverErrorJSON(w, err)
			return
		}
		if caller == nil || !scopeSubset("introspection", caller.Scope) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="oauth2", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token",
				"error_description": "The Bearer token is invalid, expired or lacks the introspection scope."})
			return
		}
	} else if _, oerr := s.client(r, t, true); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	tok, u, err := s.activeToken(ctx, t.DB, token)
	if errors.Is(err, errNoToken) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	if err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	out := map[string]any{"active": true, "scope": tok.Scope, "exp": tok.Expires.Unix(), "client_id": tok.ClientID}
	if u != nil {
		out["username"] = u.Username
	}
	writeJSON(w, http.StatusOK, out)
}

// userinfo serves /api/userinfo/ with exactly the JSON of OHTK's accounts.views.userinfo.
// A missing, unknown or expired token, a token without a user and an inactive user all get
// 401 (OHTK's decorator answers 403; 401 with a challenge is what OAuth clients expect).
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "Use GET."})
		return
	}
	_, u, err := s.activeToken(ctx, t.DB, bearer(r))
	if err != nil && !errors.Is(err, errNoToken) {
		s.serverErrorJSON(w, err)
		return
	}
	if u == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token",
			"error_description": "Authentication credentials were missing, invalid or expired."})
		return
	}
	var authority any
	var a struct {
		ID         int64
		Name, Code string
	}
	err = t.DB.QueryRowContext(ctx, `SELECT a.id, a.name, a.code FROM accounts_authorityuser au
		JOIN accounts_authority a ON a.id = au.authority_id WHERE au.user_ptr_id = $1`, u.ID).Scan(&a.ID, &a.Name, &a.Code)
	switch {
	case err == nil:
		authority = authorityInfo{ID: a.ID, Name: a.Name, Code: a.Code}
	case errors.Is(err, sql.ErrNoRows):
	default:
		s.serverErrorJSON(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, userInfo{ID: u.ID, Username: t.Name + "_" + u.Username, Email: u.Email,
		FirstName: u.FirstName, LastName: u.LastName, IsSuperuser: u.IsSuperuser, Authority: authority})
}

// userInfo fixes the key order of the userinfo JSON to OHTK's.
type userInfo struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	Email       string `json:"email"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	IsSuperuser bool   `json:"is_superuser"`
	Authority   any    `json:"authority"`
}

// authorityInfo fixes the key order of the userinfo's authority to OHTK's.
type authorityInfo struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Code string `json:"code"`
}

// server is one entry of /api/servers/.
type server struct {
	Label    string `json:"label"`
	Domain   string `json:"domain"`
	External bool   `json:"external"`
}

// servers serves /api/servers/: every active tenant by its primary domain, then the
// external installations of tenants_externaldomain, as OHTK's mobile app expects.
func (s *Server) servers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenants, err := s.opts.Store.Tenants(ctx)
	if err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	out := []server{}
	for _, tn := range tenants {
		if len(tn.Domains) == 0 {
			continue
		}
		out = append(out, server{Label: tn.Name, Domain: tn.Domains[0]})
	}
	rows, err := s.opts.Store.Public().QueryContext(ctx, `SELECT name, domain FROM tenants_externaldomain ORDER BY id`)
	if err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var e server
		if err := rows.Scan(&e.Label, &e.Domain); err != nil {
			s.serverErrorJSON(w, err)
			return
		}
		e.External = true
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		s.serverErrorJSON(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}

// serverErrorJSON logs err and answers a JSON 500 without details.
func (s *Server) serverErrorJSON(w http.ResponseWriter, err error) {
	s.log.Error("oauthserver", "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "Internal server error."})
}
