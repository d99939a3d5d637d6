package oauthserver

import (
	"errors"
	"net/http"

	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// maxFormBytes bounds the body of every form this package reads.
const maxFormBytes = 64 << 10

// loginFailed is Django's message for a wrong username or password.
const loginFailed = "Please enter a correct username and password. Note that both fields may be case-sensitive."

// login serves /accounts/login/: the form on GET, the password check on POST.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	ctx := r.Context()
	d := pageData{Title: "Sign in", TenantName: t.Name, Action: tenantURL(t, "/accounts/login/"),
		LogoutURL: tenantURL(t, "/accounts/logout/")}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		d.Next = safeNext(t, r.URL.Query().Get("next"))
		d.CSRF = s.csrfToken(w, r, t)
		u, err := s.sessionUser(ctx, r, t)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if u != nil {
			d.User = u.Username
		}
		renderPage(w, http.StatusOK, "login", d)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			writeText(w, http.StatusBadRequest, "Bad request.")
			return
		}
		if !s.checkCSRF(r, t) {
			writeText(w, http.StatusForbidden, csrfFailure)
			return
		}
		username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
		d.Next = safeNext(t, r.PostForm.Get("next"))
		d.Username = username
		d.CSRF = s.csrfToken(w, r, t)
		if username == "" || password == "" {
			d.Error = loginFailed
			renderPage(w, http.StatusOK, "login", d)
			return
		}
		if s.credentialsBlocked(t.SchemaName, r, username) {
			w.Header().Set("Retry-After", "60")
			writeText(w, http.StatusTooManyRequests, "Too many sign-in attempts. Try again later.")
			return
		}
		u, err := s.checkPassword(ctx, t.DB, username, password)
		if errors.Is(err, errNoUser) {
			s.credentialsFailed(t.SchemaName, r, username)
			s.log.Info("login failed", "tenant", t.SchemaName, "username", username, "remote", clientIP(r))
			d.Error = loginFailed
			renderPage(w, http.StatusOK, "login", d)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if err := s.startSession(ctx, w, r, t, u); err != nil {
			s.serverError(w, r, err)
			return
		}
		next := d.Next
		if next == "" {
			next = tenantURL(t, "/accounts/login/")
		}
		http.Redirect(w, r, next, http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
}

// logout serves /accounts/logout/: a confirmation form on GET (a state change by GET would
// let any page log the user out), the logout on POST.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	d := pageData{Title: "Sign out", TenantName: t.Name, Action: tenantURL(t, "/accounts/logout/")}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		d.Next = safeNext(t, r.URL.Query().Get("next"))
		d.CSRF = s.csrfToken(w, r, t)
		renderPage(w, http.StatusOK, "logout", d)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			writeText(w, http.StatusBadRequest, "Bad request.")
			return
		}
		if !s.checkCSRF(r, t) {
			writeText(w, http.StatusForbidden, csrfFailure)
			return
		}
		if err := s.endSession(r.Context(), w, r, t); err != nil {
			s.serverError(w, r, err)
			return
		}
		next := safeNext(t, r.PostForm.Get("next"))
		if next == "" {
			next = tenantURL(t, "/accounts/login/")
		}
		http.Redirect(w, r, next, http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
}

// serverError logs err and answers 500 without details.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("oauthserver", "path", r.URL.Path, "err", err)
	writeText(w, http.StatusInternalServerError, "Internal server error.")
}
