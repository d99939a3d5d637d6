// Package proxy forwards /user/{name}/… to the user's running server, in process: HTTP,
// streaming responses and WebSockets. Only the owner's browser gets through; token-bearing
// requests are passed on for the server itself to check with the hub.
package proxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// Targets tells where a user's running server is.
type Targets interface {
	Target(user string) (*url.URL, bool)
}

// Dialer is implemented by Targets that check each new connection to a server (that the
// process listening at its address is the server); the proxy then opens its connections only
// through DialContext.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Sessions identifies the browser's hub user.
type Sessions interface {
	Get(ctx context.Context, r *http.Request) (store.Session, error)
}

// Tokens finds the hub API tokens that requests without a hub session carry.
type Tokens interface {
	TokenBySecret(ctx context.Context, secret string) (store.Token, error)
}

// Proxy is the handler for {base}user/.
type Proxy struct {
	base     string
	targets  Targets
	sessions Sessions
	tokens   Tokens
	render   *web.Renderer
	pageData func(r *http.Request) web.Page
	log      *slog.Logger
	rp       *httputil.ReverseProxy
	// Requests counts forwarded requests (for metrics).
	Requests atomic.Int64
}

type targetKey struct{}

// New returns the proxy. pageData fills the common fields of the pages it renders.
func New(base string, targets Targets, sessions Sessions, tokens Tokens, render *web.Renderer, pageData func(*http.Request) web.Page, log *slog.Logger) *Proxy {
	p := &Proxy{base: base, targets: targets, sessions: sessions, tokens: tokens, render: render, pageData: pageData, log: log}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	transport.ResponseHeaderTimeout = 0
	if d, ok := targets.(Dialer); ok {
		transport.DialContext = d.DialContext
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(forward)
			pr.Out.URL.Scheme = t.target.Scheme
			pr.Out.URL.Host = t.target.Host
			pr.Out.URL.Path = t.path
			pr.Out.URL.RawPath = t.rawPath
			// Keep the browser's Host: Jupyter compares a WebSocket's Origin with it.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			session.StripHubCookies(pr.Out.Header)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Warn("proxy error", "path", r.URL.Path, "err", err)
			if r.Context().Err() != nil {
				return
			}
			if isAPI(r) {
				writeJSON(w, http.StatusBadGateway, "The server did not answer; it may have stopped.")
				return
			}
			p.render.Error(w, p.pageData(r), http.StatusBadGateway, "Your server did not answer; it may have stopped. Go home to start it again.")
		},
	}
	return p
}

type forward struct {
	target        *url.URL
	path, rawPath string
}

func isAPI(r *http.Request) bool {
	rest := r.PathValue("rest")
	return strings.HasPrefix(rest, "api/") || rest == "api" || r.Header.Get("Upgrade") != ""
}

// isNavigation reports whether a browser asks for a page to show (a tab, a frame), as its
// Fetch Metadata headers say; API clients send none.
func isNavigation(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Dest") {
	case "document", "iframe", "frame", "embed", "object":
		return true
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate"
}

func writeJSON(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "message": message})
}

// Register adds the proxy's routes to mux.
func (p *Proxy) Register(mux *http.ServeMux) {
	mux.HandleFunc(p.base+"user/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p.base+"user/"+web.PathEscape(r.PathValue("name"))+"/"+queryOf(r), http.StatusFound)
	})
	mux.Handle(p.base+"user/{name}/{rest...}", p)
}

func queryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// ServeHTTP checks who is asking and forwards to the owner's running server.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// A browser signed in as someone else never reaches this server, token or not: the server's
	// pages run on the hub's origin, where the browser's hub session would be theirs to use.
	sess, err := p.sessions.Get(r.Context(), r)
	switch {
	case err == nil && sess.User != name:
		if isAPI(r) {
			writeJSON(w, http.StatusForbidden, "This server belongs to another user.")
			return
		}
		p.render.Error(w, p.pageData(r), http.StatusForbidden, "This server belongs to another user.")
		return
	case err != nil:
		// Without a session, only a hub API token of the server's owner gets through (the
		// server checks it again with the hub).
		// A page a browser opens on a token alone would run on the hub's origin, where the
		// browser may sign in later: browsers get the owner's session or the login page.
		secret := session.APIToken(r)
		if secret == "" || isNavigation(r) {
			if isAPI(r) {
				writeJSON(w, http.StatusForbidden, "Not signed in.")
				return
			}
			http.Redirect(w, r, p.base+"hub/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		if tok, err := p.tokens.TokenBySecret(r.Context(), secret); err != nil || tok.User != name {
			writeJSON(w, http.StatusForbidden, "The token does not give access to this server.")
			return
		}
	}
	target, ok := p.targets.Target(name)
	if !ok {
		if isAPI(r) {
			writeJSON(w, http.StatusFailedDependency, "The server of "+name+" is not running.")
			return
		}
		pd := p.pageData(r)
		pd.Title = "Server not running"
		pd.Data = NotRunning{Owner: name, CanStart: pd.User == name, Next: r.URL.RequestURI()}
		p.render.Render(w, http.StatusFailedDependency, "not_running", pd)
		return
	}
	// Rebuild the path with the canonical encoding of the name (the one the server's base URL
	// uses) and the rest exactly as the browser sent it.
	rawRest := rawRestOf(r, p.base)
	prefix := p.base + "user/" + web.PathEscape(name) + "/"
	rawPath := prefix + rawRest
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, "Bad path encoding.")
		return
	}
	// Streams (events, long downloads, WebSockets) outlive the server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	p.Requests.Add(1)
	ctx := context.WithValue(r.Context(), targetKey{}, forward{target: target, path: path, rawPath: rawPath})
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// NotRunning is the data of the page shown for a stopped server.
type NotRunning struct {
	Owner    string
	CanStart bool
	Next     string
}

// rawRestOf returns the escaped path after {base}user/{name}/.
func rawRestOf(r *http.Request, base string) string {
	ep := r.URL.EscapedPath()
	after := strings.TrimPrefix(ep, base+"user/")
	_, rest, _ := strings.Cut(after, "/")
	return rest
}
