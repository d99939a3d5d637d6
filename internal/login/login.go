// Package login signs users in with their tenant's OHTK server (OAuth 2 authorization code
// with state and PKCE), maps them to hub users and keeps the tenant's tokens for their
// notebooks.
package login

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/safeurl"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// stateTTL bounds the time between leaving for the tenant and coming back.
const stateTTL = 10 * time.Minute

// stateCookiePrefix starts the name of the per-login state cookie. The name also holds the
// tenant key and a hash of the state, so logins in several tabs (same or different tenants)
// each keep their own cookie.
const stateCookiePrefix = session.CookiePrefix + "oauth-"

// Login serves the login pages and keeps tenant tokens fresh.
type Login struct {
	cfg      *config.Hub
	base     string
	store    *store.Store
	sessions *session.Manager
	render   *web.Renderer
	log      *slog.Logger
	tenants  map[string]*tenantClient

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// PageData fills the common page fields for a request (signed-in user, XSRF token).
	PageData func(r *http.Request) web.Page
}

type tenantClient struct {
	cfg    *config.Tenant
	oauth  *oauth2.Config
	client *http.Client
}

// New returns the login handlers for cfg's tenants.
func New(cfg *config.Hub, st *store.Store, sm *session.Manager, render *web.Renderer, log *slog.Logger) *Login {
	l := &Login{cfg: cfg, base: cfg.BasePath(), store: st, sessions: sm, render: render, log: log,
		tenants: map[string]*tenantClient{}, locks: map[string]*sync.Mutex{}}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		style := oauth2.AuthStyleInHeader
		if t.ClientAuth == "body" {
			style = oauth2.AuthStyleInParams
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		if t.InsecureSkipVerify {
			transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		l.tenants[t.Key] = &tenantClient{
			cfg: t,
			oauth: &oauth2.Config{
				ClientID: t.ClientID, ClientSecret: t.ClientSecret, Scopes: t.Scopes,
				Endpoint:    oauth2.Endpoint{AuthURL: t.AuthorizeURL, TokenURL: t.TokenURL, AuthStyle: style},
				RedirectURL: strings.TrimSuffix(cfg.PublicURL, "/") + "/hub/" + t.Key + "/oauth_callback",
			},
			client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		}
	}
	l.PageData = func(r *http.Request) web.Page { return web.Page{Base: l.base} }
	return l
}

// RedirectURL is the callback URL to register at the tenant's OAuth provider.
func (l *Login) RedirectURL(tenantKey string) string {
	if t, ok := l.tenants[tenantKey]; ok {
		return t.oauth.RedirectURL
	}
	return ""
}

// LoginData is the login page's data.
type LoginData struct {
	Tenants []config.Tenant
	Next    string
	Message string
}

// Page serves GET /hub/login.
func (l *Login) Page(w http.ResponseWriter, r *http.Request) {
	p := l.PageData(r)
	next := l.safeNext(r.URL.Query().Get("next"))
	if p.User != "" && r.URL.Query().Get("next") != "" {
		http.Redirect(w, r, next, http.StatusFound)
		return
	}
	p.Title = "Sign in"
	p.Data = LoginData{Tenants: l.cfg.Tenants, Next: r.URL.Query().Get("next")}
	l.render.Render(w, http.StatusOK, "login", p)
}

// Start serves GET /hub/{tenant}/oauth_login: it remembers state and PKCE verifier and sends
// the browser to the tenant's authorize URL.
func (l *Login) Start(w http.ResponseWriter, r *http.Request) {
	t, ok := l.tenants[r.PathValue("tenant")]
	if !ok {
		l.render.Error(w, l.PageData(r), http.StatusNotFound, "There is no such tenant.")
		return
	}
	state := store.NewSecret()
	verifier := oauth2.GenerateVerifier()
	ls := store.LoginState{TenantKey: t.cfg.Key, Verifier: verifier, Next: l.safeNext(r.URL.Query().Get("next"))}
	if err := l.store.SaveLoginState(r.Context(), state, ls, stateTTL); err != nil {
		l.log.Error("save login state", "err", err)
		l.render.Error(w, l.PageData(r), http.StatusInternalServerError, "The hub could not start the sign-in.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookieName(t.cfg.Key, state), Value: state, Path: l.base + "hub/" + t.cfg.Key + "/",
		MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: l.sessions.Secure(), SameSite: http.SameSiteLaxMode,
	})
	var opts []oauth2.AuthCodeOption
	if *t.cfg.PKCE {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	http.Redirect(w, r, t.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

func stateCookieName(key, state string) string {
	return stateCookiePrefix + key + "-" + store.Hash(state)[:12]
}

// Callback serves GET /hub/{tenant}/oauth_callback.
func (l *Login) Callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := l.PageData(r)
	t, ok := l.tenants[r.PathValue("tenant")]
	if !ok {
		l.render.Error(w, p, http.StatusNotFound, "There is no such tenant.")
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		l.render.Error(w, p, http.StatusBadRequest, "The sign-in answer has no state. Please sign in again.")
		return
	}
	cookieName := stateCookieName(t.cfg.Key, state)
	c, err := r.Cookie(cookieName)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		l.render.Error(w, p, http.StatusForbidden, "The sign-in state does not match this browser. Please sign in again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: l.base + "hub/" + t.cfg.Key + "/", MaxAge: -1, HttpOnly: true, Secure: l.sessions.Secure(), SameSite: http.SameSiteLaxMode})
	ls, err := l.store.ConsumeLoginState(ctx, state)
	if err != nil || ls.TenantKey != t.cfg.Key {
		l.render.Error(w, p, http.StatusForbidden, "This sign-in has expired or was already used. Please sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := e
		if d := q.Get("error_description"); d != "" {
			msg = e + ": " + d
		}
		l.render.Error(w, p, http.StatusForbidden, t.cfg.Label+" refused the sign-in ("+msg+").")
		return
	}
	code := q.Get("code")
	if code == "" {
		l.render.Error(w, p, http.StatusBadRequest, "The sign-in answer has no code. Please sign in again.")
		return
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, t.client)
	var opts []oauth2.AuthCodeOption
	if *t.cfg.PKCE {
		opts = append(opts, oauth2.VerifierOption(ls.Verifier))
	}
	tok, err := t.oauth.Exchange(octx, code, opts...)
	if err != nil {
		l.log.Warn("tenant code exchange failed", "tenant", t.cfg.Key, "err", err)
		l.render.Error(w, p, http.StatusBadGateway, t.cfg.Label+" did not accept the sign-in code. Please sign in again.")
		return
	}
	info, err := t.userinfo(ctx, tok.AccessToken)
	if err != nil {
		l.log.Warn("tenant userinfo failed", "tenant", t.cfg.Key, "err", err)
		l.render.Error(w, p, http.StatusBadGateway, "The hub could not read your user information from "+t.cfg.Label+".")
		return
	}
	id, err := t.identify(info)
	if err != nil {
		l.render.Error(w, p, http.StatusForbidden, err.Error())
		return
	}
	// Global admins may sign in whatever their tenant's allow rules say.
	id.allowed = id.allowed || l.cfg.GlobalAdmin(t.cfg.Key+"_"+id.username)
	if !id.allowed {
		l.render.Error(w, p, http.StatusForbidden, fmt.Sprintf("The user %s of %s may not use this hub.", id.username, t.cfg.Label))
		return
	}
	user, err := l.store.SaveUser(ctx, store.User{
		Name: t.cfg.Key + "_" + id.username, TenantKey: t.cfg.Key, Subject: id.subject,
		Username: id.username, Slug: store.Slug(t.cfg.Key + "_" + id.username), Admin: id.admin,
	})
	if err != nil {
		l.log.Error("save user", "tenant", t.cfg.Key, "err", err)
		l.render.Error(w, p, http.StatusConflict, "The hub could not record your user.")
		return
	}
	tt := store.TenantToken{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.Type(), Expiry: tok.Expiry}
	if err := l.store.PutTenantToken(ctx, user.Name, tt); err != nil {
		l.log.Error("store tenant token", "user", user.Name, "err", err)
		l.render.Error(w, p, http.StatusInternalServerError, "The hub could not store your tenant credentials.")
		return
	}
	if _, err := l.sessions.Start(ctx, w, r, user.Name); err != nil {
		l.log.Error("start session", "user", user.Name, "err", err)
		l.render.Error(w, p, http.StatusInternalServerError, "The hub could not start your session.")
		return
	}
	l.log.Info("user signed in", "user", user.Name, "tenant", t.cfg.Key, "admin", user.Admin)
	http.Redirect(w, r, ls.Next, http.StatusFound)
}

// Logout serves /hub/logout: it ends the session and goes back to the login page (or the
// tenant's logout URL).
func (l *Login) Logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	target := l.base + "hub/login"
	if sess, err := l.sessions.Get(ctx, r); err == nil {
		if u, err := l.store.User(ctx, sess.User); err == nil {
			if t, ok := l.tenants[u.TenantKey]; ok && t.cfg.LogoutURL != "" {
				target = t.cfg.LogoutURL
			}
		}
	}
	if err := l.sessions.End(ctx, w, r); err != nil {
		l.log.Error("end session", "err", err)
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// safeNext keeps only local paths under the hub's base path, so "next" cannot send a user
// to another site.
func (l *Login) safeNext(next string) string {
	def := l.base + "hub/home"
	if *l.cfg.RedirectToServer {
		def = l.base + "hub/spawn"
	}
	if !safeurl.LocalPath(next, l.base) {
		return def
	}
	return next
}

func (t *tenantClient) userinfo(ctx context.Context, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.UserinfoURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: %s: %.200s", resp.Status, body)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	return info, nil
}

type identity struct {
	username, subject string
	admin, allowed    bool
}

// identify applies the tenant's username and allow/admin rules to a userinfo answer.
func (t *tenantClient) identify(info map[string]any) (identity, error) {
	raw, _ := info[t.cfg.UsernameClaim].(string)
	if raw == "" {
		return identity{}, fmt.Errorf("%s did not send a user name (%s).", t.cfg.Label, t.cfg.UsernameClaim)
	}
	name := strings.TrimPrefix(raw, t.cfg.UsernameStripPrefix)
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return identity{}, fmt.Errorf("%s sent a user name the hub cannot use.", t.cfg.Label)
	}
	id := identity{username: name, subject: name}
	switch v := info["id"].(type) {
	case float64:
		id.subject = "id:" + strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		if v != "" {
			id.subject = "id:" + v
		}
	}
	superuser, _ := info["is_superuser"].(bool)
	id.admin = slices.Contains(t.cfg.AdminUsers, name) || (t.cfg.AdminIfSuperuser && superuser)
	id.allowed = t.cfg.AllowAll || id.admin || slices.Contains(t.cfg.AllowedUsers, name)
	return id, nil
}

// ErrNoTenantToken is returned when the hub holds no usable tenant token for a user; they
// must sign in again.
var ErrNoTenantToken = errors.New("login: no tenant token; sign in again")

// refreshWindow: tokens expiring within it are refreshed before being handed out.
const refreshWindow = 5 * time.Minute

// TenantToken returns the user's current tenant token and tenant, refreshing it first when it
// expires within five minutes. Refreshes for one user are serialised in this process, and the
// store's compare-and-swap keeps a rotated refresh token from being lost across processes.
func (l *Login) TenantToken(ctx context.Context, user store.User) (store.TenantToken, *config.Tenant, error) {
	t, ok := l.tenants[user.TenantKey]
	if !ok {
		return store.TenantToken{}, nil, fmt.Errorf("login: tenant %q is no longer configured", user.TenantKey)
	}
	mu := l.userLock(user.Name)
	mu.Lock()
	defer mu.Unlock()
	for range 3 {
		tok, err := l.store.GetTenantToken(ctx, user.Name)
		if errors.Is(err, store.ErrNotFound) {
			return store.TenantToken{}, t.cfg, ErrNoTenantToken
		}
		if err != nil {
			return store.TenantToken{}, t.cfg, err
		}
		if tok.Expiry.IsZero() || time.Until(tok.Expiry) > refreshWindow {
			return tok, t.cfg, nil
		}
		if tok.RefreshToken == "" {
			if time.Now().Before(tok.Expiry) {
				return tok, t.cfg, nil
			}
			return store.TenantToken{}, t.cfg, ErrNoTenantToken
		}
		// Not cancelled with the request: once the provider has rotated the refresh token, the
		// new one must reach the store or the user's credentials are lost.
		octx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, t.client), 30*time.Second)
		fresh, err := t.oauth.TokenSource(octx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
		if err != nil {
			cancel()
			// Another replica may have rotated the refresh token under us: look again.
			if again, gerr := l.store.GetTenantToken(ctx, user.Name); gerr == nil && again.Version != tok.Version {
				continue
			}
			l.log.Warn("tenant token refresh failed", "user", user.Name, "err", err)
			if time.Now().Before(tok.Expiry) {
				return tok, t.cfg, nil
			}
			return store.TenantToken{}, t.cfg, fmt.Errorf("%w: %v", ErrNoTenantToken, err)
		}
		next := store.TenantToken{AccessToken: fresh.AccessToken, RefreshToken: fresh.RefreshToken, TokenType: fresh.Type(), Expiry: fresh.Expiry, Version: tok.Version}
		if next.RefreshToken == "" {
			next.RefreshToken = tok.RefreshToken
		}
		saved, err := l.store.SwapTenantToken(octx, user.Name, next)
		cancel()
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return store.TenantToken{}, t.cfg, err
		}
		l.log.Info("tenant token refreshed", "user", user.Name)
		return saved, t.cfg, nil
	}
	return store.TenantToken{}, t.cfg, errors.New("login: tenant token changed concurrently too often")
}

func (l *Login) userLock(name string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	mu, ok := l.locks[name]
	if !ok {
		mu = &sync.Mutex{}
		l.locks[name] = mu
	}
	return mu
}
