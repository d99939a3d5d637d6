package hubapi

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// ClientPrefix starts the OAuth client id of every single-user server.
const ClientPrefix = "jupyterhub-user-"

// ClientID is the OAuth client id of user's server.
func ClientID(user string) string { return ClientPrefix + web.PathEscape(user) }

// CallbackPath is the OAuth redirect URI of user's server under base.
func CallbackPath(base, user string) string {
	return base + "user/" + web.PathEscape(user) + "/oauth_callback"
}

// codeTTL bounds the time between the authorize redirect and the server's token request.
const codeTTL = 2 * time.Minute

// oauthTokenTTL bounds a browser's token at a single-user server.
const oauthTokenTTL = 14 * 24 * time.Hour

// clientUser returns the user whose server owns clientID.
func clientUser(clientID string) (string, bool) {
	rest, ok := strings.CutPrefix(clientID, ClientPrefix)
	if !ok || rest == "" {
		return "", false
	}
	name, err := url.PathUnescape(rest)
	if err != nil || ClientID(name) != clientID {
		return "", false
	}
	return name, true
}

// authorize serves GET {base}hub/api/oauth2/authorize for single-user servers: the browser's
// hub session is turned into a code, only for the server's owner.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	owner, ok := clientUser(clientID)
	if !ok {
		writeError(w, http.StatusBadRequest, "Unknown OAuth client.")
		return
	}
	if redirectURI != CallbackPath(a.base, owner) {
		writeError(w, http.StatusBadRequest, "The redirect_uri does not belong to this client.")
		return
	}
	if q.Get("response_type") != "code" {
		writeError(w, http.StatusBadRequest, "Only response_type=code is supported.")
		return
	}
	sess, err := a.sessions.Get(r.Context(), r)
	if err != nil {
		http.Redirect(w, r, a.base+"hub/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	if sess.User != owner {
		writeError(w, http.StatusForbidden, "This server belongs to another user.")
		return
	}
	code, err := a.store.CreateCode(r.Context(), store.Code{User: owner, ClientID: clientID, RedirectURI: redirectURI, SessionID: sess.ID}, codeTTL)
	if err != nil {
		a.internal(w, err)
		return
	}
	v := url.Values{"code": {code}}
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	http.Redirect(w, r, redirectURI+"?"+v.Encode(), http.StatusFound)
}

// oauthError writes an OAuth 2 error (RFC 6749 §5.2), which jupyterhub-singleuser reads.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// token serves POST {base}hub/api/oauth2/token: a single-user server exchanges a code for a
// token identifying the browser's user. The client authenticates with its API token.
func (a *API) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The body must be a form.")
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Only authorization_code is supported.")
		return
	}
	owner, ok := clientUser(clientID)
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client.")
		return
	}
	t, err := a.store.TokenBySecret(r.Context(), secret)
	if err != nil || t.Kind != store.TokenServer || t.User != owner {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	code, err := a.store.ConsumeCode(r.Context(), r.PostForm.Get("code"))
	if err != nil || subtle.ConstantTimeCompare([]byte(code.ClientID), []byte(clientID)) != 1 || code.RedirectURI != r.PostForm.Get("redirect_uri") {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The code is invalid, expired or already used.")
		return
	}
	access, err := a.store.CreateToken(r.Context(), store.Token{User: code.User, Kind: store.TokenOAuth, ClientID: clientID, SessionID: code.SessionID, Note: "Server at " + CallbackPath(a.base, owner)}, oauthTokenTTL)
	if err != nil {
		a.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(oauthTokenTTL / time.Second)})
}
