// Package session keeps browser logins: a random secret in an HttpOnly cookie, its hash in
// the store, so a session can be revoked server-side.
package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/store"
)

// CookieName is the hub's session cookie. Every cookie the hub sets starts with CookiePrefix,
// which the proxy strips from requests to user servers.
const (
	CookieName   = "ohtkhub-session"
	CookiePrefix = "ohtkhub-"
)

// XSRFHeader carries the XSRF token on cookie-authenticated API requests that change state.
const XSRFHeader = "X-XSRFToken"

// Manager starts, reads and ends sessions.
type Manager struct {
	store  *store.Store
	path   string
	secure bool
	maxAge time.Duration
}

// New returns a Manager whose cookie lives under path (the hub's base path) and is Secure
// when secure is set (public URL on https).
func New(st *store.Store, path string, secure bool, maxAge time.Duration) *Manager {
	return &Manager{store: st, path: path, secure: secure, maxAge: maxAge}
}

// Secure reports whether cookies are marked Secure.
func (m *Manager) Secure() bool { return m.secure }

// Start creates a session for user and sets its cookie, ending the request's earlier session.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) (store.Session, error) {
	if c, err := r.Cookie(CookieName); err == nil {
		m.store.DeleteSession(ctx, c.Value)
	}
	secret, sess, err := m.store.CreateSession(ctx, user, m.maxAge)
	if err != nil {
		return store.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: secret, Path: m.path, MaxAge: int(m.maxAge / time.Second),
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// ErrNoSession is returned when a request has no live session.
var ErrNoSession = errors.New("session: not logged in")

// Get returns the request's live session.
func (m *Manager) Get(ctx context.Context, r *http.Request) (store.Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return store.Session{}, ErrNoSession
	}
	sess, err := m.store.SessionBySecret(ctx, c.Value)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNoSession
	}
	return sess, err
}

// End deletes the request's session (and the OAuth tokens issued through it) and clears the
// cookie.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var err error
	if c, cerr := r.Cookie(CookieName); cerr == nil {
		err = m.store.DeleteSession(ctx, c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: m.path, MaxAge: -1, HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode})
	return err
}

// XSRFToken returns the XSRF token of the request's session, derived from the cookie secret
// so it needs no storage and dies with the session. Empty without a session cookie.
func XSRFToken(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return ""
	}
	return store.Hash("xsrf:" + c.Value)[:32]
}

// CheckXSRF reports whether the request carries its session's XSRF token in the X-XSRFToken
// header or the _xsrf form field.
func CheckXSRF(r *http.Request) bool {
	want := XSRFToken(r)
	if want == "" {
		return false
	}
	got := r.Header.Get(XSRFHeader)
	if got == "" {
		got = r.PostFormValue("_xsrf")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// StripHubCookies removes the hub's cookies from a request's Cookie headers, keeping the rest
// byte for byte.
func StripHubCookies(h http.Header) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "=")
			if strings.HasPrefix(strings.TrimSpace(name), CookiePrefix) {
				continue
			}
			kept = append(kept, p)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// APIToken returns the hub API token a request carries, as JupyterHub reads it: the
// Authorization header ("token X" or "Bearer X"), else the token query parameter; "" if none.
func APIToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer") {
			if v := strings.TrimSpace(value); v != "" {
				return v
			}
		}
	}
	return r.URL.Query().Get("token")
}
