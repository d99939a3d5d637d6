// Package hubapi serves the hub's REST API under {base}hub/api/: the JupyterHub endpoints
// single-user servers call (version, user identity, activity, the OAuth provider for their
// browser logins), server start/stop/progress and the tenant-token endpoint.
package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// Version is the JupyterHub API version the hub implements; it must be a valid PEP 440
// version (jupyterhub-singleuser 3.0 parses it and crashes otherwise).
const Version = "3.1.1"

// Servers starts, stops and reports on users' servers.
type Servers interface {
	Start(user string) error
	Stop(ctx context.Context, user string) error
	Status(user string) spawner.Status
	Subscribe(user string) ([]spawner.Event, <-chan spawner.Event, func())
}

// TenantTokens hands out users' current tenant tokens.
type TenantTokens interface {
	TenantToken(ctx context.Context, user store.User) (store.TenantToken, *config.Tenant, error)
}

// API is the hub's REST API.
type API struct {
	base     string
	store    *store.Store
	sessions *session.Manager
	servers  Servers
	tokens   TenantTokens
	admins   Admins
	log      *slog.Logger
}

// New returns the API. base is the hub's base path ("/" or "/prefix/").
func New(base string, st *store.Store, sm *session.Manager, servers Servers, tokens TenantTokens, admins Admins, log *slog.Logger) *API {
	return &API{base: base, store: st, sessions: sm, servers: servers, tokens: tokens, admins: admins, log: log}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	p := a.base + "hub/api"
	mux.HandleFunc("GET "+p, a.version)
	mux.HandleFunc("GET "+p+"/{$}", a.version)
	mux.HandleFunc("GET "+p+"/user", a.authed(a.currentUser))
	mux.HandleFunc("GET "+p+"/users", a.authed(a.listUsers))
	mux.HandleFunc("GET "+p+"/users/{name}", a.authed(a.getUser))
	mux.HandleFunc("POST "+p+"/users/{name}/activity", a.authed(a.activity))
	mux.HandleFunc("POST "+p+"/users/{name}/server", a.authed(a.startServer))
	mux.HandleFunc("DELETE "+p+"/users/{name}/server", a.authed(a.stopServer))
	mux.HandleFunc("GET "+p+"/users/{name}/server/progress", a.authed(a.progress))
	mux.HandleFunc("GET "+p+"/users/{name}/tenant-token", a.authed(a.tenantToken))
	mux.HandleFunc("GET "+p+"/users/{name}/tokens", a.authed(a.listTokens))
	mux.HandleFunc("POST "+p+"/users/{name}/tokens", a.authed(a.createToken))
	mux.HandleFunc("DELETE "+p+"/users/{name}/tokens/{id}", a.authed(a.deleteToken))
	mux.HandleFunc("GET "+p+"/oauth2/authorize", a.authorize)
	mux.HandleFunc("POST "+p+"/oauth2/token", a.token)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such API endpoint.")
	})
}

func (a *API) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": Version})
}

// errorBody is the one JSON error shape of the hub API, as JupyterHub's.
type errorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, errorBody{Status: status, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-JupyterHub-Version", Version)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// caller is who makes an API request.
type caller struct {
	user  store.User
	kind  string // store.Token* kinds, or "session"
	token store.Token
	sess  store.Session
}

const kindSession = "session"

// identify authenticates a request by token (Authorization: token|Bearer, or ?token=) or by
// session cookie.
func (a *API) identify(r *http.Request) (caller, error) {
	ctx := r.Context()
	if secret := session.APIToken(r); secret != "" {
		t, err := a.store.TokenBySecret(ctx, secret)
		if err != nil {
			return caller{}, err
		}
		u, err := a.store.User(ctx, t.User)
		if err != nil {
			return caller{}, err
		}
		return caller{user: u, kind: t.Kind, token: t}, nil
	}
	sess, err := a.sessions.Get(ctx, r)
	if err != nil {
		return caller{}, err
	}
	u, err := a.store.User(ctx, sess.User)
	if err != nil {
		return caller{}, err
	}
	return caller{user: u, kind: kindSession, sess: sess}, nil
}

// authed authenticates the request; cookie-authenticated requests that change state must
// carry the session's XSRF token, since user servers share the hub's origin.
func (a *API) authed(h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := a.identify(r)
		if err != nil {
			// 403, not 401: jupyterhub-singleuser treats 403 from /hub/api/user as "no such
			// user" and anything else as a hub failure.
			writeError(w, http.StatusForbidden, "Missing or invalid credentials.")
			return
		}
		if c.kind == kindSession && r.Method != http.MethodGet && r.Method != http.MethodHead && !session.CheckXSRF(r) {
			writeError(w, http.StatusForbidden, "XSRF token missing or invalid for a cookie-authenticated request.")
			return
		}
		h(w, r, c)
	}
}

// scopes returns what a caller may do, in JupyterHub's scope language. A tenant admin's rights
// over their tenant's users have no JupyterHub scope and are left out; only global admins hold
// the unfiltered admin scopes.
func (a *API) scopes(c caller) []string {
	n := c.user.Name
	server := "access:servers!server=" + n + "/"
	switch c.kind {
	case store.TokenOAuth:
		return []string{server, "access:servers!user=" + n, "read:users:name!user=" + n, "read:users:groups!user=" + n}
	case store.TokenServer:
		return []string{server, "access:servers!user=" + n, "read:users:name!user=" + n, "read:users:groups!user=" + n, "users:activity!user=" + n}
	}
	s := []string{server, "access:servers!user=" + n, "read:users!user=" + n, "read:users:name!user=" + n, "read:users:groups!user=" + n,
		"users:activity!user=" + n, "servers!user=" + n, "tokens!user=" + n}
	if a.admins.Global(c.user) {
		s = append(s, "admin:users", "admin:servers", "list:users", "read:users")
	}
	return s
}

// userModel is a user in JupyterHub's JSON shape.
type userModel struct {
	Kind         string   `json:"kind"`
	Name         string   `json:"name"`
	Admin        bool     `json:"admin"`
	Groups       []string `json:"groups"`
	Server       *string  `json:"server"`
	Pending      *string  `json:"pending"`
	Created      string   `json:"created"`
	LastActivity *string  `json:"last_activity"`
	Scopes       []string `json:"scopes,omitempty"`
	SessionID    *string  `json:"session_id,omitempty"`
	Tenant       string   `json:"tenant"`
}

func (a *API) model(u store.User) userModel {
	m := userModel{Kind: "user", Name: u.Name, Admin: a.admins.Any(u), Groups: []string{}, Created: u.CreatedAt.UTC().Format(time.RFC3339Nano), Tenant: u.TenantKey}
	st := a.servers.Status(u.Name)
	switch st.State {
	case spawner.StateRunning:
		url := a.base + "user/" + web.PathEscape(u.Name) + "/"
		m.Server = &url
	case spawner.StatePending:
		p := "spawn"
		m.Pending = &p
	case spawner.StateStopping:
		p := "stop"
		m.Pending = &p
	}
	if !u.LastActivity.IsZero() {
		la := u.LastActivity.UTC().Format(time.RFC3339Nano)
		m.LastActivity = &la
	}
	return m
}

func (a *API) currentUser(w http.ResponseWriter, r *http.Request, c caller) {
	m := a.model(c.user)
	m.Scopes = a.scopes(c)
	sid := ""
	switch c.kind {
	case kindSession:
		sid = c.sess.ID
	default:
		sid = c.token.SessionID
	}
	m.SessionID = &sid
	writeJSON(w, http.StatusOK, m)
}

// Page sizes of GET /hub/api/users, as JupyterHub's api_page_default_limit and
// api_page_max_limit.
const (
	pageDefaultLimit = 200
	pageMaxLimit     = 200
)

// listUsers serves GET /hub/api/users: every user for a global admin, the users of their own
// tenant for a tenant admin. Offsets, limits and totals count only the users the caller may see.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request, c caller) {
	tenant, ok := a.admins.Scope(c.user)
	if !ok || c.kind == store.TokenOAuth || c.kind == store.TokenServer {
		writeError(w, http.StatusForbidden, "Only admins may list users.")
		return
	}
	q := r.URL.Query()
	offset, limit := 0, pageDefaultLimit
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "offset must be a non-negative integer.")
			return
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive integer.")
			return
		}
		limit = min(n, pageMaxLimit)
	}
	users, total, err := a.store.ListUsers(r.Context(), tenant, offset, limit)
	if err != nil {
		a.internal(w, err)
		return
	}
	out := make([]userModel, 0, len(users))
	for _, u := range users {
		out = append(out, a.model(u))
	}
	if strings.Contains(r.Header.Get("Accept"), "application/jupyterhub-pagination+json") {
		var next any
		if offset+len(out) < total {
			nq := url.Values{"offset": {strconv.Itoa(offset + limit)}, "limit": {strconv.Itoa(limit)}}
			next = map[string]any{"offset": offset + limit, "limit": limit, "url": a.base + "hub/api/users?" + nq.Encode()}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": out, "_pagination": map[string]any{"offset": offset, "limit": limit, "total": total, "next": next}})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// target resolves {name} and checks the caller may act on it (themselves, or an admin of the
// user's tenant using a session or their own API token). To a tenant admin, another tenant's
// user is as absent as one that does not exist.
func (a *API) target(w http.ResponseWriter, r *http.Request, c caller, allowAdmin bool) (store.User, bool) {
	name := r.PathValue("name")
	if name == c.user.Name {
		return c.user, true
	}
	if allowAdmin && a.admins.Any(c.user) && (c.kind == kindSession || c.kind == store.TokenUser) {
		u, err := a.store.User(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) || err == nil && !a.admins.Manages(c.user, u) {
			writeError(w, http.StatusNotFound, "No such user.")
			return store.User{}, false
		}
		if err != nil {
			a.internal(w, err)
			return store.User{}, false
		}
		return u, true
	}
	writeError(w, http.StatusForbidden, "Not allowed for this user.")
	return store.User{}, false
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.target(w, r, c, true)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, a.model(u))
}

func (a *API) activity(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.target(w, r, c, false)
	if !ok {
		return
	}
	var body struct {
		LastActivity *time.Time `json:"last_activity"`
		Servers      map[string]struct {
			LastActivity *time.Time `json:"last_activity"`
		} `json:"servers"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Body must be JSON with last_activity as an ISO 8601 time.")
		return
	}
	latest := time.Time{}
	if body.LastActivity != nil {
		latest = *body.LastActivity
	}
	for _, s := range body.Servers {
		if s.LastActivity != nil && s.LastActivity.After(latest) {
			latest = *s.LastActivity
		}
	}
	if latest.IsZero() {
		writeError(w, http.StatusBadRequest, "last_activity is missing.")
		return
	}
	if latest.After(time.Now().Add(time.Minute)) {
		latest = time.Now()
	}
	if err := a.store.SetActivity(r.Context(), u.Name, latest); err != nil {
		a.internal(w, err)
		return
	}
	w.Header().Set("X-JupyterHub-Version", Version)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) startServer(w http.ResponseWriter, r *http.Request, c caller) {
	if c.kind == store.TokenOAuth || c.kind == store.TokenServer {
		writeError(w, http.StatusForbidden, "This token may not start servers.")
		return
	}
	u, ok := a.target(w, r, c, true)
	if !ok {
		return
	}
	if st := a.servers.Status(u.Name); st.State == spawner.StateRunning {
		writeError(w, http.StatusBadRequest, u.Name+" is already running")
		return
	}
	if err := a.servers.Start(u.Name); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, a.model(u))
}

func (a *API) stopServer(w http.ResponseWriter, r *http.Request, c caller) {
	if c.kind == store.TokenOAuth {
		writeError(w, http.StatusForbidden, "This token may not stop servers.")
		return
	}
	u, ok := a.target(w, r, c, true)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if err := a.servers.Stop(ctx, u.Name); err != nil {
		a.internal(w, err)
		return
	}
	w.Header().Set("X-JupyterHub-Version", Version)
	w.WriteHeader(http.StatusNoContent)
}

// progress streams spawn events as server-sent events until the server is ready or failed.
func (a *API) progress(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.target(w, r, c, true)
	if !ok {
		return
	}
	// Progress streams outlive http.Server.WriteTimeout.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	past, ch, cancel := a.servers.Subscribe(u.Name)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.Header().Set("X-JupyterHub-Version", Version)
	w.WriteHeader(http.StatusOK)
	send := func(e spawner.Event) bool {
		b, _ := json.Marshal(e)
		if _, err := w.Write([]byte("data: " + string(b) + "\n\n")); err != nil {
			return false
		}
		rc.Flush()
		return !e.Ready && !e.Failed
	}
	st := a.servers.Status(u.Name)
	switch st.State {
	case spawner.StateRunning:
		url := a.base + "user/" + web.PathEscape(u.Name) + "/"
		send(spawner.Event{Progress: 100, Ready: true, Message: "Server ready at " + url, URL: url})
		return
	case spawner.StateStopped, spawner.StateStopping:
		msg := "Server is not running"
		if st.LastError != "" {
			msg = "Spawn failed: " + st.LastError
		}
		send(spawner.Event{Progress: 100, Failed: true, Message: msg})
		return
	}
	for _, e := range past {
		if e.Ready || e.Failed {
			continue // events of an earlier spawn
		}
		send(e)
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-ch:
			if !send(e) {
				return
			}
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			rc.Flush()
		}
	}
}

// tenantTokenBody is the tenant-token endpoint's answer.
type tenantTokenBody struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresAt   *string `json:"expires_at"`
	APIURL      string  `json:"api_url"`
	Tenant      string  `json:"tenant"`
}

func (a *API) tenantToken(w http.ResponseWriter, r *http.Request, c caller) {
	if c.kind != store.TokenServer && c.kind != store.TokenUser {
		writeError(w, http.StatusForbidden, "Use the server's JUPYTERHUB_API_TOKEN or your own API token.")
		return
	}
	u, ok := a.target(w, r, c, false)
	if !ok {
		return
	}
	tok, tenant, err := a.tokens.TenantToken(r.Context(), u)
	if err != nil {
		a.log.Warn("tenant token", "user", u.Name, "err", err)
		writeError(w, http.StatusUnauthorized, "No valid credentials for your tenant; sign in to the hub again.")
		return
	}
	body := tenantTokenBody{AccessToken: tok.AccessToken, TokenType: "Bearer", APIURL: tenant.APIURL, Tenant: tenant.Key}
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC().Format(time.RFC3339)
		body.ExpiresAt = &e
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *API) internal(w http.ResponseWriter, err error) {
	a.log.Error("hub api", "err", err)
	writeError(w, http.StatusInternalServerError, "Internal error.")
}
