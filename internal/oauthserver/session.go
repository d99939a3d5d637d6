package oauthserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/safeurl"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// Cookie and form field names are Django's, so pages and scripts written for OHTK's
// login form work unchanged.
const (
	sessionCookie = "sessionid"
	csrfCookie    = "csrftoken"
	csrfField     = "csrfmiddlewaretoken"
)

// csrfToken returns the form token for the CSRF cookie of r, setting a new cookie when r has
// none. The token is an HMAC of the cookie value and the tenant, so a token only works with
// the browser cookie it was made for, and a cookie planted by a sibling origin is useless
// without the server's key.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request, t *tenant.Tenant) string {
	value := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 32 {
		value = c.Value
	} else {
		value = randomString(32)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: value, Path: cookiePath(t),
			HttpOnly: true, Secure: s.isSecure(r), SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	}
	return s.csrfMAC(t, value)
}

func (s *Server) csrfMAC(t *tenant.Tenant, cookie string) string {
	m := hmac.New(sha256.New, s.opts.SecretKey)
	m.Write([]byte("csrf\x00" + t.SchemaName + "\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether the posted form token matches the request's CSRF cookie.
// The form must already be parsed.
func (s *Server) checkCSRF(r *http.Request, t *tenant.Tenant) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 32 {
		return false
	}
	got := r.PostForm.Get(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(s.csrfMAC(t, c.Value)))
}

const csrfFailure = "CSRF verification failed. Request aborted."

// sessionUser returns the active user logged in by r's session cookie, or nil.
func (s *Server) sessionUser(ctx context.Context, r *http.Request, t *tenant.Tenant) (*user, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	var userID int64
	var expires string
	err = t.DB.QueryRowContext(ctx, `SELECT user_id, expires FROM ohtkhub_session WHERE key_hash = $1`, checksum(c.Value)).Scan(&userID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if exp, err := ohtkdb.ParseTime(expires); err != nil || !s.now().Before(exp) {
		return nil, nil
	}
	u, err := userByID(ctx, t.DB, userID)
	if errors.Is(err, errNoUser) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !u.IsActive {
		return nil, nil
	}
	return u, nil
}

// startSession replaces r's session (if any) with a new one for u and sets its cookie.
// A fresh id on every login prevents session fixation.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, t *tenant.Tenant, u *user) error {
	now := s.now()
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if c, err := r.Cookie(sessionCookie); err == nil {
		tx.ExecContext(ctx, `DELETE FROM ohtkhub_session WHERE key_hash = $1`, checksum(c.Value))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ohtkhub_session WHERE expires < $1`, ohtkdb.FormatTime(now)); err != nil {
		return err
	}
	key := randomString(40)
	if _, err := tx.ExecContext(ctx, `INSERT INTO ohtkhub_session (key_hash, user_id, created, expires, remote_addr) VALUES ($1, $2, $3, $4, $5)`,
		checksum(key), u.ID, ohtkdb.FormatTime(now), ohtkdb.FormatTime(now.Add(s.opts.SessionLifetime)), clientIP(r)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE accounts_user SET last_login = $1 WHERE id = $2`, ohtkdb.FormatTime(now), u.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: key, Path: cookiePath(t), HttpOnly: true,
		Secure: s.isSecure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(s.opts.SessionLifetime.Seconds())})
	return nil
}

// endSession deletes r's session and its cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request, t *tenant.Tenant) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, err := t.DB.ExecContext(ctx, `DELETE FROM ohtkhub_session WHERE key_hash = $1`, checksum(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: cookiePath(t), HttpOnly: true,
		Secure: s.isSecure(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	return nil
}

// safeNext returns next when it is a relative path within the tenant, else "". Absolute
// URLs, scheme-relative "//host" and backslash tricks are refused: the login page must not
// be an open redirector.
func safeNext(t *tenant.Tenant, next string) string {
	// BasePath is in escaped form, as the browser sends it.
	if !safeurl.LocalPath(next, t.BasePath) {
		return ""
	}
	return next
}

// tenantURL returns the path p (starting with "/") as the browser addresses it.
func tenantURL(t *tenant.Tenant, p string) string {
	return strings.TrimSuffix(t.BasePath, "/") + p
}
