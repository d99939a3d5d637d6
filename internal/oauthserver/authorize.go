package oauthserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// authRequest is a validated authorization request.
type authRequest struct {
	app         *application
	redirectURI string // the resolved redirect URI codes and errors go to
	scope       string
	state       string
	challenge   string
	method      string
	// params are the request's own parameters, carried through the consent form.
	params url.Values
}

// authParams are the parameters the consent form carries back.
var authParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}

// pageError is an authorization error that cannot go to the client (RFC 6749 section 4.1.2.1:
// unknown client or bad redirect URI), so it is shown to the user.
type pageError struct{ code, description string }

// parseAuthRequest validates the parameters of an authorization request. A *pageError means
// the user sees an error page; an *oauthError goes to the redirect URI in ar.
func parseAuthRequest(ctx context.Context, t *tenant.Tenant, q url.Values) (ar *authRequest, perr *pageError, oerr *oauthError) {
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, &pageError{"invalid_request", "Missing client_id parameter."}, nil
	}
	app, err := loadApplication(ctx, t.DB, clientID)
	if errors.Is(err, errNoApplication) {
		return nil, &pageError{"invalid_client", "Invalid client_id parameter value."}, nil
	}
	if err != nil {
		return nil, &pageError{"server_error", "The server could not read the client."}, nil
	}
	ar = &authRequest{app: app, params: url.Values{}}
	for _, p := range authParams {
		if v := q.Get(p); v != "" {
			ar.params.Set(p, v)
		}
	}
	if ru := q.Get("redirect_uri"); ru != "" {
		if !app.redirectURIAllowed(ru) {
			return nil, &pageError{"invalid_request", "Mismatching redirect URI."}, nil
		}
		ar.redirectURI = ru
	} else if len(app.RedirectURIs) == 1 {
		ar.redirectURI = app.RedirectURIs[0]
	} else {
		return nil, &pageError{"invalid_request", "Missing redirect URI."}, nil
	}
	ar.state = q.Get("state")
	if q.Get("response_type") != "code" {
		if q.Get("response_type") == "" {
			return ar, nil, errInvalidRequest("Missing response_type parameter.")
		}
		return ar, nil, &oauthError{"unsupported_response_type", "Only the authorization code flow (response_type=code) is supported."}
	}
	if app.GrantType != GrantAuthorizationCode {
		return ar, nil, errUnauthorizedClient()
	}
	scope, ok := normalizeScope(q.Get("scope"))
	if !ok {
		return ar, nil, errInvalidScope()
	}
	ar.scope = scope
	ar.challenge, ar.method = q.Get("code_challenge"), q.Get("code_challenge_method")
	if ar.challenge == "" && ar.method != "" {
		return ar, nil, errInvalidRequest("Code challenge required.")
	}
	if ar.challenge != "" {
		if ar.method == "" {
			ar.method = "plain" // RFC 7636 section 4.3
		}
		if ar.method != "S256" && ar.method != "plain" {
			return ar, nil, errInvalidRequest("Transform algorithm not supported.")
		}
		if !validVerifier(ar.challenge) {
			return ar, nil, errInvalidRequest("Invalid code_challenge.")
		}
	}
	return ar, nil, nil
}

// validVerifier checks the RFC 7636 syntax shared by code verifiers and challenges:
// 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// redirectWith sends the browser to the client's redirect URI with params added to its query.
func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		writeText(w, http.StatusBadRequest, "Bad redirect URI.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func redirectError(w http.ResponseWriter, r *http.Request, ar *authRequest, e *oauthError) {
	p := url.Values{"error": {e.Code}, "error_description": {e.Description}}
	if ar.state != "" {
		p.Set("state", ar.state)
	}
	redirectWith(w, r, ar.redirectURI, p)
}

// authorize serves /o/authorize/: GET validates and shows the consent page, POST takes the
// user's answer. Both send a logged-out user to the login page first.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	ctx := r.Context()
	var q url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q = r.URL.Query()
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
		q = r.PostForm
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	ar, perr, oerr := parseAuthRequest(ctx, t, q)
	if perr != nil {
		status := http.StatusBadRequest
		if perr.code == "server_error" {
			status = http.StatusInternalServerError
		}
		renderPage(w, status, "error", pageData{Title: "Error", TenantName: t.Name, Error: perr.code, Description: perr.description})
		return
	}
	if oerr != nil {
		redirectError(w, r, ar, oerr)
		return
	}
	u, err := s.sessionUser(ctx, r, t)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if u == nil {
		next := tenantURL(t, "/o/authorize/") + "?" + ar.params.Encode()
		http.Redirect(w, r, tenantURL(t, "/accounts/login/")+"?"+url.Values{"next": {next}}.Encode(), http.StatusFound)
		return
	}
	if r.Method == http.MethodPost {
		if q.Get("allow") == "" {
			redirectError(w, r, ar, &oauthError{"access_denied", "The user denied the request."})
			return
		}
	} else if !ar.app.SkipAuthorization {
		d := pageData{Title: "Authorize", TenantName: t.Name, Action: tenantURL(t, "/o/authorize/"),
			CSRF: s.csrfToken(w, r, t), User: u.Username, AppName: ar.app.Name, Scopes: strings.Fields(ar.scope)}
		if d.AppName == "" {
			d.AppName = ar.app.ClientID
		}
		for _, p := range authParams {
			if v := ar.params.Get(p); v != "" {
				d.Hidden = append(d.Hidden, hiddenField{p, v})
			}
		}
		renderPage(w, http.StatusOK, "consent", d)
		return
	}
	code, err := s.createGrant(ctx, t, ar, u)
	if err != nil {
		s.log.Error("oauthserver: grant", "err", err)
		redirectError(w, r, ar, &oauthError{"server_error", "The server could not issue a code."})
		return
	}
	p := url.Values{"code": {code}}
	if ar.state != "" {
		p.Set("state", ar.state)
	}
	redirectWith(w, r, ar.redirectURI, p)
}

// createGrant writes an authorization code to oauth2_provider_grant, as DOT does.
func (s *Server) createGrant(ctx context.Context, t *tenant.Tenant, ar *authRequest, u *user) (string, error) {
	code := randomString(40)
	now := s.now()
	// Codes nobody exchanged would stay forever (DOT leaves them to its cleartokens command).
	if _, err := t.DB.ExecContext(ctx, `DELETE FROM oauth2_provider_grant WHERE expires < $1`, ohtkdb.FormatTime(now)); err != nil {
		return "", err
	}
	_, err := t.DB.ExecContext(ctx, `INSERT INTO oauth2_provider_grant
		(user_id, code, application_id, expires, redirect_uri, scope, created, updated, code_challenge, code_challenge_method, nonce, claims)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, '', '')`,
		u.ID, code, ar.app.ID, ohtkdb.FormatTime(now.Add(CodeLifetime)), ar.redirectURI, ar.scope,
		ohtkdb.FormatTime(now), ar.challenge, ar.method)
	return code, err
}
