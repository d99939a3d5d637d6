package oauthserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// usedGrantRetention is how long exchanged codes are remembered for replay detection. A code
// is only valid for CodeLifetime, so a replay later than this could not have succeeded anyway.
const usedGrantRetention = 24 * time.Hour

// token serves /o/token/.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, errInvalidRequest("The token endpoint only accepts POST."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, errInvalidRequest("The request body is not a valid form."))
		return
	}
	grantType := r.PostForm.Get("grant_type")
	switch grantType {
	case "":
		writeOAuthError(w, errInvalidRequest("Missing grant type."))
		return
	case "authorization_code", "refresh_token", "password", "client_credentials":
	default:
		writeOAuthError(w, &oauthError{"unsupported_grant_type", "The grant type is not supported."})
		return
	}
	app, oerr := s.client(r, t, grantType == "client_credentials")
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	if !app.allowsGrant(grantType) {
		writeOAuthError(w, errUnauthorizedClient())
		return
	}
	var out issued
	var err error
	switch grantType {
	case "authorization_code":
		out, oerr, err = s.exchangeCode(r.Context(), r, t, app)
	case "refresh_token":
		out, oerr, err = s.refresh(r.Context(), r, t, app)
	case "password":
		out, oerr, err = s.passwordGrant(r.Context(), r, t, app)
	case "client_credentials":
		out, oerr, err = s.clientCredentials(r.Context(), r, t, app)
	}
	if err != nil {
		s.log.Error("oauthserver: token", "grant_type", grantType, "err", err)
		oerr = &oauthError{"server_error", "The server could not issue a token."}
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, out)
}

// client authenticates the client of a token-endpoint style request, with failed secrets
// rate-limited per client IP and client id.
func (s *Server) client(r *http.Request, t *tenant.Tenant, requireConfidential bool) (*application, *oauthError) {
	id, _, _, oerr := clientCredentials(r)
	if oerr != nil {
		return nil, oerr
	}
	if s.credentialsBlocked(t.SchemaName, r, "client\x00"+id) {
		return nil, &oauthError{"slow_down", "Too many failed client authentications. Try again later."}
	}
	app, oerr := authenticateClient(r.Context(), r, t.DB, requireConfidential)
	if oerr != nil && oerr.Code == "invalid_client" {
		s.credentialsFailed(t.SchemaName, r, "client\x00"+id)
	}
	return app, oerr
}

// exchangeCode implements the authorization_code grant (RFC 6749 section 4.1.3, RFC 7636).
func (s *Server) exchangeCode(ctx context.Context, r *http.Request, t *tenant.Tenant, app *application) (issued, *oauthError, error) {
	code := r.PostForm.Get("code")
	if code == "" {
		return issued{}, errInvalidRequest("Missing code parameter."), nil
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return issued{}, nil, err
	}
	defer tx.Rollback()
	var (
		id, userID, appID           int64
		expires, redirectURI, scope string
		challenge, method           string
	)
	err = tx.QueryRowContext(ctx, `SELECT id, user_id, application_id, expires, redirect_uri, scope, code_challenge, code_challenge_method
		FROM oauth2_provider_grant WHERE code = $1`, code).Scan(&id, &userID, &appID, &expires, &redirectURI, &scope, &challenge, &method)
	if errors.Is(err, sql.ErrNoRows) {
		return s.replayedCode(ctx, tx, app, code)
	}
	if err != nil {
		return issued{}, nil, err
	}
	invalid := errInvalidGrant("Invalid or expired code, redirect URI or code verifier.")
	if appID != app.ID {
		return issued{}, invalid, nil
	}
	if exp, err := ohtkdb.ParseTime(expires); err != nil || !s.now().Before(exp) {
		tx.ExecContext(ctx, `DELETE FROM oauth2_provider_grant WHERE id = $1`, id)
		tx.Commit()
		return issued{}, invalid, nil
	}
	// Without redirect_uri the client means its only registered URI (oauthlib's default
	// redirect URI); either way it must be the one the code was issued for.
	ru := r.PostForm.Get("redirect_uri")
	if ru == "" && len(app.RedirectURIs) == 1 {
		ru = app.RedirectURIs[0]
	}
	if ru != redirectURI {
		return issued{}, invalid, nil
	}
	verifier := r.PostForm.Get("code_verifier")
	if challenge != "" {
		if !validVerifier(verifier) || !pkceMatches(challenge, method, verifier) {
			return issued{}, invalid, nil
		}
	} else if verifier != "" {
		// A verifier for a code issued without a challenge means a PKCE downgrade: the
		// challenge was stripped from the authorization request.
		return issued{}, invalid, nil
	}
	u, err := userByID(ctx, t.DB, userID)
	if errors.Is(err, errNoUser) || (err == nil && !u.IsActive) {
		return issued{}, invalid, nil
	}
	if err != nil {
		return issued{}, nil, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM oauth2_provider_grant WHERE id = $1`, id)
	if err != nil {
		return issued{}, nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return issued{}, invalid, nil
	}
	out, family, err := s.issueTokens(ctx, tx, tokenRequest{app: app, userID: sql.NullInt64{Int64: userID, Valid: true}, scope: scope, refresh: true})
	if err != nil {
		return issued{}, nil, err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `DELETE FROM ohtkhub_used_grant WHERE used < $1`, ohtkdb.FormatTime(now.Add(-usedGrantRetention))); err != nil {
		return issued{}, nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ohtkhub_used_grant (code_hash, application_id, token_family, used) VALUES ($1, $2, $3, $4)`,
		checksum(code), app.ID, family, ohtkdb.FormatTime(now)); err != nil {
		return issued{}, nil, err
	}
	return out, nil, tx.Commit()
}

// replayedCode answers a code that is not (or no longer) in oauth2_provider_grant. When it
// was exchanged before by the same client, the tokens issued for it are revoked: RFC 6749
// section 4.1.2 asks for this, because one of the two parties presenting the code stole it.
// DOT does not do this; it only refuses the second exchange.
func (s *Server) replayedCode(ctx context.Context, tx *sql.Tx, app *application, code string) (issued, *oauthError, error) {
	var family string
	err := tx.QueryRowContext(ctx, `SELECT token_family FROM ohtkhub_used_grant WHERE code_hash = $1 AND application_id = $2`,
		checksum(code), app.ID).Scan(&family)
	if err == nil {
		if err := s.revokeFamily(ctx, tx, family); err != nil {
			return issued{}, nil, err
		}
		if err := tx.Commit(); err != nil {
			return issued{}, nil, err
		}
		s.log.Warn("oauthserver: authorization code replayed; its tokens are revoked", "client_id", app.ClientID)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return issued{}, nil, err
	}
	return issued{}, errInvalidGrant("Invalid or expired code, redirect URI or code verifier."), nil
}

// pkceMatches checks a code verifier against the stored challenge (RFC 7636 section 4.6).
func pkceMatches(challenge, method, verifier string) bool {
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	} else if method != "plain" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// refresh implements the refresh_token grant with rotation: the presented refresh token is
// revoked and its access token deleted, and a new pair of the same family is issued. A
// revoked refresh token presented again revokes its whole family (DOT's
// REFRESH_TOKEN_REUSE_PROTECTION) and gets invalid_grant; there is no grace period.
func (s *Server) refresh(ctx context.Context, r *http.Request, t *tenant.Tenant, app *application) (issued, *oauthError, error) {
	token := r.PostForm.Get("refresh_token")
	if token == "" {
		return issued{}, errInvalidRequest("Missing refresh_token parameter."), nil
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return issued{}, nil, err
	}
	defer tx.Rollback()
	var (
		id, userID, appID int64
		accessID          sql.NullInt64
		family, revoked   sql.NullString
	)
	err = tx.QueryRowContext(ctx, `SELECT id, user_id, application_id, access_token_id, token_family, revoked
		FROM oauth2_provider_refreshtoken WHERE token = $1 ORDER BY revoked IS NULL DESC LIMIT 1`, token).
		Scan(&id, &userID, &appID, &accessID, &family, &revoked)
	invalid := errInvalidGrant("Invalid refresh token.")
	if errors.Is(err, sql.ErrNoRows) {
		return issued{}, invalid, nil
	}
	if err != nil {
		return issued{}, nil, err
	}
	if appID != app.ID {
		return issued{}, invalid, nil
	}
	if revoked.Valid {
		if family.Valid && family.String != "" {
			if err := s.revokeFamily(ctx, tx, family.String); err != nil {
				return issued{}, nil, err
			}
			if err := tx.Commit(); err != nil {
				return issued{}, nil, err
			}
			s.log.Warn("oauthserver: revoked refresh token presented; its family is revoked", "client_id", app.ClientID)
		}
		return issued{}, invalid, nil
	}
	u, err := userByID(ctx, t.DB, userID)
	if errors.Is(err, errNoUser) || (err == nil && !u.IsActive) {
		return issued{}, invalid, nil
	}
	if err != nil {
		return issued{}, nil, err
	}
	// The refresh token carries no scope in DOT's schema: the scope is its access token's.
	// If that token is gone, only "read" is granted rather than guessing more.
	original := "read"
	if accessID.Valid {
		var sc string
		if err := tx.QueryRowContext(ctx, `SELECT scope FROM oauth2_provider_accesstoken WHERE id = $1`, accessID.Int64).Scan(&sc); err == nil {
			original = sc
		} else if !errors.Is(err, sql.ErrNoRows) {
			return issued{}, nil, err
		}
	}
	scope := original
	if req := r.PostForm.Get("scope"); req != "" {
		norm, ok := normalizeScope(req)
		if !ok || !scopeSubset(norm, original) {
			return issued{}, errInvalidScope(), nil
		}
		scope = norm
	}
	now := ohtkdb.FormatTime(s.now())
	res, err := tx.ExecContext(ctx, `UPDATE oauth2_provider_refreshtoken SET revoked = $1, updated = $1, access_token_id = NULL
		WHERE id = $2 AND revoked IS NULL`, now, id)
	if err != nil {
		return issued{}, nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return issued{}, invalid, nil
	}
	if accessID.Valid {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth2_provider_accesstoken WHERE id = $1`, accessID.Int64); err != nil {
			return issued{}, nil, err
		}
	}
	fam := family.String
	if fam == "" {
		fam = newUUID()
	}
	out, _, err := s.issueTokens(ctx, tx, tokenRequest{app: app, userID: sql.NullInt64{Int64: userID, Valid: true},
		scope: scope, refresh: true, family: fam, source: sql.NullInt64{Int64: id, Valid: true}})
	if err != nil {
		return issued{}, nil, err
	}
	return out, nil, tx.Commit()
}

// passwordGrant implements the resource owner password credentials grant, rate-limited
// like the login form.
func (s *Server) passwordGrant(ctx context.Context, r *http.Request, t *tenant.Tenant, app *application) (issued, *oauthError, error) {
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if username == "" || password == "" {
		return issued{}, errInvalidRequest("Missing username or password parameter."), nil
	}
	scope, ok := normalizeScope(r.PostForm.Get("scope"))
	if !ok {
		return issued{}, errInvalidScope(), nil
	}
	if s.credentialsBlocked(t.SchemaName, r, username) {
		return issued{}, &oauthError{"slow_down", "Too many failed sign-in attempts. Try again later."}, nil
	}
	u, err := s.checkPassword(ctx, t.DB, username, password)
	if errors.Is(err, errNoUser) {
		s.credentialsFailed(t.SchemaName, r, username)
		return issued{}, errInvalidGrant("Invalid credentials given."), nil
	}
	if err != nil {
		return issued{}, nil, err
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return issued{}, nil, err
	}
	defer tx.Rollback()
	out, _, err := s.issueTokens(ctx, tx, tokenRequest{app: app, userID: sql.NullInt64{Int64: u.ID, Valid: true}, scope: scope, refresh: true})
	if err != nil {
		return issued{}, nil, err
	}
	return out, nil, tx.Commit()
}

// clientCredentials implements the client_credentials grant: a token for the application's
// owner (oauth2_provider_application.user_id, often none) and no refresh token.
func (s *Server) clientCredentials(ctx context.Context, r *http.Request, t *tenant.Tenant, app *application) (issued, *oauthError, error) {
	scope, ok := normalizeScope(r.PostForm.Get("scope"))
	if !ok {
		return issued{}, errInvalidScope(), nil
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return issued{}, nil, err
	}
	defer tx.Rollback()
	out, _, err := s.issueTokens(ctx, tx, tokenRequest{app: app, userID: app.UserID, scope: scope})
	if err != nil {
		return issued{}, nil, err
	}
	return out, nil, tx.Commit()
}
