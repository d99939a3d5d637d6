package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/hubapi"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

func (h *Hub) routes() http.Handler {
	mux := http.NewServeMux()
	b := h.base
	limit := newLimiter(h.cfg.CallbackRate)

	mux.HandleFunc("GET "+b+"{$}", h.root)
	mux.HandleFunc("GET "+b+"hub/{$}", h.root)
	mux.Handle("GET "+b+"hub/static/", http.StripPrefix(b+"hub/static/", web.Static()))
	mux.HandleFunc("GET "+b+"hub/login", h.login.Page)
	// Literal paths per tenant: a {tenant} wildcard would overlap the hub's own pages.
	for _, t := range h.cfg.Tenants {
		withKey := func(f http.HandlerFunc) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				r.SetPathValue("tenant", t.Key)
				f(w, r)
			}
		}
		mux.HandleFunc("GET "+b+"hub/"+t.Key+"/oauth_login", withKey(h.login.Start))
		mux.Handle("GET "+b+"hub/"+t.Key+"/oauth_callback", limit.wrap(withKey(h.login.Callback)))
	}
	mux.HandleFunc("GET "+b+"hub/logout", h.login.Logout)
	mux.HandleFunc("POST "+b+"hub/logout", h.login.Logout)
	mux.HandleFunc("GET "+b+"hub/home", h.signedIn(h.home))
	mux.HandleFunc("GET "+b+"hub/spawn", h.signedIn(h.spawnGet))
	mux.HandleFunc("POST "+b+"hub/spawn", h.signedIn(h.xsrf(h.spawnPost)))
	mux.HandleFunc("POST "+b+"hub/stop", h.signedIn(h.xsrf(h.stopPost)))
	mux.HandleFunc("GET "+b+"hub/spawn-pending/{user}", h.signedIn(h.spawnPending))
	mux.HandleFunc("GET "+b+"hub/token", h.signedIn(h.tokenPage))
	mux.HandleFunc("POST "+b+"hub/token", h.signedIn(h.xsrf(h.tokenPost)))
	mux.HandleFunc("GET "+b+"hub/admin", h.signedIn(h.adminPage))
	mux.HandleFunc("POST "+b+"hub/admin/stop", h.signedIn(h.xsrf(h.adminStop)))
	mux.Handle("GET "+b+"hub/logo", web.Logo())
	mux.HandleFunc("POST "+b+"hub/security/csp-report", h.cspReport)
	mux.HandleFunc("GET "+b+"hub/health", h.health)
	mux.HandleFunc("GET "+b+"hub/metrics", h.metrics)
	h.api.Register(mux)
	h.proxy.Register(mux)

	hubPrefix := b + "hub/"
	csrf := http.NewCrossOriginProtection()
	// Browsers send CSP reports of user servers, which may live on another origin; the
	// handler only logs them.
	csrf.AddInsecureBypassPattern("POST " + b + "hub/security/csp-report")
	hubHandler := csrf.Handler(mux)
	tokenPath := b + "hub/api/oauth2/token"
	tenantTokenSuffix := "/tenant-token"
	cspPath := b + "hub/security/csp-report"
	// Token endpoints are called by servers and notebooks, all from the spawner's few
	// addresses: a wider limit than the browsers' login callbacks. Anonymous CSP reports
	// share it, so they cannot flood the log.
	limited := newLimiter(10 * h.cfg.CallbackRate).wrap(hubHandler)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, hubPrefix) {
			hd := w.Header()
			hd.Set("Content-Security-Policy", "frame-ancestors 'none'")
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set("Referrer-Policy", "same-origin")
			if r.URL.Path == tokenPath || strings.HasSuffix(r.URL.Path, tenantTokenSuffix) || r.URL.Path == cspPath {
				limited.ServeHTTP(w, r)
				return
			}
			hubHandler.ServeHTTP(w, r)
			return
		}
		// User servers do their own XSRF checks and set their own CSP.
		mux.ServeHTTP(w, r)
	})
}

// root sends a signed-in user to their server (or home), anyone else to the login page.
func (h *Hub) root(w http.ResponseWriter, r *http.Request) {
	target := h.base + "hub/login"
	if sess, err := h.sessions.Get(r.Context(), r); err == nil {
		target = h.base + "hub/home"
		if *h.cfg.RedirectToServer {
			target = h.base + "hub/spawn"
			if h.servers.Status(sess.User).State == spawner.StateRunning {
				target = h.userURL(sess.User)
			}
		}
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// user is the signed-in user of a page request.
type user = store.User

// signedIn sends anonymous browsers to the login page, then back.
func (h *Hub) signedIn(next func(http.ResponseWriter, *http.Request, user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := h.sessions.Get(r.Context(), r)
		if err == nil {
			if u, err := h.store.User(r.Context(), sess.User); err == nil {
				next(w, r, u)
				return
			}
		}
		http.Redirect(w, r, h.base+"hub/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusFound)
	}
}

// xsrf checks the form's XSRF token on state-changing page requests (in addition to the
// cross-origin check every hub request gets).
func (h *Hub) xsrf(next func(http.ResponseWriter, *http.Request, user)) func(http.ResponseWriter, *http.Request, user) {
	return func(w http.ResponseWriter, r *http.Request, u user) {
		if !session.CheckXSRF(r) {
			h.render.Error(w, h.pageData(r), http.StatusForbidden, "The form has expired; reload the page and try again.")
			return
		}
		next(w, r, u)
	}
}

// HomeData is the home page's data.
type HomeData struct {
	State       string
	URL         string
	LastError   string
	TenantLabel string
}

func (h *Hub) home(w http.ResponseWriter, r *http.Request, u user) {
	st := h.servers.Status(u.Name)
	p := h.pageData(r)
	p.Title = "Home"
	label := u.TenantKey
	if t, ok := h.cfg.Tenant(u.TenantKey); ok {
		label = t.Label
	}
	p.Data = HomeData{State: st.State, URL: h.userURL(u.Name), LastError: st.LastError, TenantLabel: label}
	h.render.Render(w, http.StatusOK, "home", p)
}

// spawnGet starts the server (as JupyterHub's /hub/spawn does for a browser) and shows progress.
func (h *Hub) spawnGet(w http.ResponseWriter, r *http.Request, u user) {
	h.spawnAndFollow(w, r, u)
}

func (h *Hub) spawnPost(w http.ResponseWriter, r *http.Request, u user) {
	h.spawnAndFollow(w, r, u)
}

func (h *Hub) spawnAndFollow(w http.ResponseWriter, r *http.Request, u user) {
	if st := h.servers.Status(u.Name); st.State == spawner.StateRunning {
		http.Redirect(w, r, h.userURL(u.Name), http.StatusSeeOther)
		return
	}
	if err := h.servers.Start(u.Name); err != nil {
		h.render.Error(w, h.pageData(r), http.StatusConflict, "Your server cannot start now: "+err.Error())
		return
	}
	http.Redirect(w, r, h.base+"hub/spawn-pending/"+web.PathEscape(u.Name), http.StatusSeeOther)
}

func (h *Hub) stopPost(w http.ResponseWriter, r *http.Request, u user) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if err := h.servers.Stop(ctx, u.Name); err != nil {
		h.log.Error("stop server", "user", u.Name, "err", err)
	}
	http.Redirect(w, r, h.base+"hub/home", http.StatusSeeOther)
}

// PendingData is the spawn-pending page's data.
type PendingData struct {
	EventsURL string
}

func (h *Hub) spawnPending(w http.ResponseWriter, r *http.Request, u user) {
	if r.PathValue("user") != u.Name {
		h.render.Error(w, h.pageData(r), http.StatusForbidden, "You can only follow your own server.")
		return
	}
	st := h.servers.Status(u.Name)
	if st.State == spawner.StateRunning {
		http.Redirect(w, r, h.userURL(u.Name), http.StatusFound)
		return
	}
	p := h.pageData(r)
	p.Title = "Starting"
	p.Data = PendingData{EventsURL: h.base + "hub/api/users/" + web.PathEscape(u.Name) + "/server/progress"}
	h.render.Render(w, http.StatusOK, "spawn_pending", p)
}

// TokenData is the token page's data.
type TokenData struct {
	NewToken string
	Tokens   []store.Token
}

func (h *Hub) tokenPage(w http.ResponseWriter, r *http.Request, u user) {
	h.renderTokens(w, r, u, "")
}

func (h *Hub) renderTokens(w http.ResponseWriter, r *http.Request, u user, fresh string) {
	toks, err := h.store.Tokens(r.Context(), u.Name, store.TokenUser)
	if err != nil {
		h.render.Error(w, h.pageData(r), http.StatusInternalServerError, "The hub could not list your tokens.")
		return
	}
	p := h.pageData(r)
	p.Title = "Tokens"
	p.Data = TokenData{NewToken: fresh, Tokens: toks}
	h.render.Render(w, http.StatusOK, "token", p)
}

func (h *Hub) tokenPost(w http.ResponseWriter, r *http.Request, u user) {
	if id := r.PostFormValue("revoke"); id != "" {
		h.store.DeleteToken(r.Context(), u.Name, id)
		http.Redirect(w, r, h.base+"hub/token", http.StatusSeeOther)
		return
	}
	note := r.PostFormValue("note")
	if len(note) > 200 {
		note = note[:200]
	}
	secret, err := h.store.CreateToken(r.Context(), store.Token{User: u.Name, Kind: store.TokenUser, Note: note}, 0)
	if err != nil {
		h.render.Error(w, h.pageData(r), http.StatusInternalServerError, "The hub could not create a token.")
		return
	}
	h.renderTokens(w, r, u, secret)
}

// AdminRow is one row of the admin page.
type AdminRow struct {
	Name, Tenant, State, LastActivity string
	Admin                             bool
}

// adminPage lists the users the admin manages: their own tenant's, or every tenant's for a
// global admin.
func (h *Hub) adminPage(w http.ResponseWriter, r *http.Request, u user) {
	tenant, ok := h.admins.Scope(u)
	if !ok {
		h.render.Error(w, h.pageData(r), http.StatusForbidden, "Only hub admins may see this page.")
		return
	}
	users, _, err := h.store.ListUsers(r.Context(), tenant, 0, 0)
	if err != nil {
		h.render.Error(w, h.pageData(r), http.StatusInternalServerError, "The hub could not list users.")
		return
	}
	rows := make([]AdminRow, 0, len(users))
	for _, x := range users {
		la := ""
		if !x.LastActivity.IsZero() {
			la = x.LastActivity.UTC().Format("2006-01-02 15:04 UTC")
		}
		rows = append(rows, AdminRow{Name: x.Name, Tenant: x.TenantKey, State: h.servers.Status(x.Name).State, LastActivity: la, Admin: h.admins.Any(x)})
	}
	p := h.pageData(r)
	p.Title = "Admin"
	p.Data = rows
	h.render.Render(w, http.StatusOK, "admin", p)
}

func (h *Hub) adminStop(w http.ResponseWriter, r *http.Request, u user) {
	if !h.admins.Any(u) {
		h.render.Error(w, h.pageData(r), http.StatusForbidden, "Only hub admins may stop other users' servers.")
		return
	}
	name := r.PostFormValue("user")
	target, err := h.store.User(r.Context(), name)
	if err != nil || !h.admins.Manages(u, target) {
		// Another tenant's user is as unknown to a tenant admin as one that does not exist.
		h.render.Error(w, h.pageData(r), http.StatusNotFound, "There is no such user among those you administer.")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if err := h.servers.Stop(ctx, target.Name); err != nil {
		h.log.Error("stop server", "user", target.Name, "by", u.Name, "err", err)
	}
	h.log.Info("admin stopped server", "user", target.Name, "by", u.Name)
	http.Redirect(w, r, h.base+"hub/admin", http.StatusSeeOther)
}

// cspReportMax bounds a CSP report's body; browsers send a few hundred bytes.
const cspReportMax = 16 << 10

// cspReport accepts the Content-Security-Policy violation reports browsers send for users'
// servers (their CSP's report-uri points here, as JupyterHub's does) and logs them.
func (h *Hub) cspReport(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cspReportMax))
	if err != nil {
		http.Error(w, "CSP report too large", http.StatusRequestEntityTooLarge)
		return
	}
	var report struct {
		Report struct {
			DocumentURI        string `json:"document-uri"`
			ViolatedDirective  string `json:"violated-directive"`
			EffectiveDirective string `json:"effective-directive"`
			BlockedURI         string `json:"blocked-uri"`
		} `json:"csp-report"`
	}
	if json.Unmarshal(body, &report) == nil && report.Report.ViolatedDirective+report.Report.EffectiveDirective != "" {
		c := report.Report
		h.log.Info("content security policy violation", "document", trimLog(c.DocumentURI), "directive", trimLog(c.ViolatedDirective+" "+c.EffectiveDirective), "blocked", trimLog(c.BlockedURI))
	} else {
		h.log.Info("content security policy report", "body", trimLog(string(body)))
	}
	w.WriteHeader(http.StatusNoContent)
}

// trimLog keeps text from a request short in the log.
func trimLog(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return strings.TrimSpace(s)
}

func (h *Hub) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := h.store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable","database":"down"}`)
		return
	}
	fmt.Fprintln(w, `{"status":"ok"}`)
}

// metrics writes a few gauges and counters in Prometheus' text format. Unless metrics_public
// is set, only a global admin may read them (they count every tenant's users), with a session
// or an API token, as JupyterHub's authenticate_prometheus.
func (h *Hub) metrics(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.MetricsPublic {
		_, err := h.api.GlobalAdmin(r)
		switch {
		case errors.Is(err, hubapi.ErrNoCredentials):
			w.Header().Set("WWW-Authenticate", `token realm="ohtkhub"`)
			http.Error(w, "Metrics need a global admin's API token (Authorization: token …) or session.", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, "Only global admins may read the metrics.", http.StatusForbidden)
			return
		}
	}
	users, err := h.store.Users(r.Context())
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	counts := map[string]int{}
	for _, u := range users {
		counts[h.servers.Status(u.Name).State]++
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP ohtkhub_users Users known to the hub.")
	fmt.Fprintln(w, "# TYPE ohtkhub_users gauge")
	fmt.Fprintf(w, "ohtkhub_users %d\n", len(users))
	fmt.Fprintln(w, "# HELP ohtkhub_servers Users' servers by state.")
	fmt.Fprintln(w, "# TYPE ohtkhub_servers gauge")
	for _, s := range []string{spawner.StateRunning, spawner.StatePending, spawner.StateStopping, spawner.StateStopped} {
		fmt.Fprintf(w, "ohtkhub_servers{state=%q} %d\n", s, counts[s])
	}
	fmt.Fprintln(w, "# HELP ohtkhub_proxy_requests_total Requests forwarded to users' servers.")
	fmt.Fprintln(w, "# TYPE ohtkhub_proxy_requests_total counter")
	fmt.Fprintf(w, "ohtkhub_proxy_requests_total %d\n", h.proxy.Requests.Load())
	fmt.Fprintln(w, "# HELP ohtkhub_uptime_seconds Seconds since the hub started.")
	fmt.Fprintln(w, "# TYPE ohtkhub_uptime_seconds gauge")
	fmt.Fprintf(w, "ohtkhub_uptime_seconds %.0f\n", time.Since(h.started).Seconds())
}
