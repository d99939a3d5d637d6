// Package hub assembles the hub: configuration, store, sessions, tenant logins, spawner,
// proxy, REST API and pages behind one http.Handler.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/hubapi"
	"github.com/ohtkhub/ohtkhub/internal/login"
	"github.com/ohtkhub/ohtkhub/internal/proxy"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/spawner/docker"
	"github.com/ohtkhub/ohtkhub/internal/spawner/local"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
	"github.com/ohtkhub/ohtkhub/python"
)

// Hub is a running hub.
type Hub struct {
	cfg      config.Hub
	base     string
	log      *slog.Logger
	store    *store.Store
	sessions *session.Manager
	render   *web.Renderer
	login    *login.Login
	spawner  spawner.Spawner
	servers  *spawner.Manager
	api      *hubapi.API
	admins   hubapi.Admins
	proxy    *proxy.Proxy
	handler  http.Handler
	internal string // URL of the hub's API as servers reach it
	started  time.Time

	logins atomic.Int64
}

// New opens the hub's state (in cfg.Database, or hub.db under cfg.DataDir), installs the ohtk
// Python module and prepares the handlers. cfg is validated (and defaulted) first.
func New(ctx context.Context, cfg config.Hub, logger *slog.Logger) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	var keys [][]byte
	for _, k := range cfg.CryptKeys {
		b, err := config.DecodeKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, b)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	if err := installPython(filepath.Join(dataDir, "python")); err != nil {
		return nil, fmt.Errorf("hub: install the ohtk module: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database, dataDir, keys)
	if err != nil {
		return nil, err
	}
	pub, _ := url.Parse(cfg.PublicURL)
	h := &Hub{cfg: cfg, base: cfg.BasePath(), log: logger, store: st, started: time.Now()}
	h.internal = cfg.InternalURL
	if h.internal == "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("hub: listen address %q: %w", cfg.Listen, err)
		}
		// Servers on this machine reach a hub listening on every interface at loopback.
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		h.internal = "http://" + net.JoinHostPort(host, port) + h.base
	}
	h.internal = strings.TrimSuffix(h.internal, "/") + "/"
	h.sessions = session.New(st, h.base, pub.Scheme == "https", cfg.SessionMaxAge)
	if h.render, err = web.NewRenderer(logger); err != nil {
		st.Close()
		return nil, err
	}
	h.login = login.New(&h.cfg, st, h.sessions, h.render, logger)
	h.login.PageData = h.pageData
	sp, err := newSpawner(h.cfg, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	h.spawner = sp
	if d, ok := sp.(*docker.Spawner); ok && cfg.InternalURL == "" {
		if h.internal, err = dockerInternalURL(d, cfg.Listen, h.base); err != nil {
			d.Close()
			st.Close()
			return nil, err
		}
	}
	h.servers = spawner.NewManager(sp, spawner.Options{
		StartTimeout: cfg.Spawner.StartTimeout, HTTPTimeout: cfg.Spawner.HTTPTimeout, PollInterval: cfg.Spawner.PollInterval,
		Prepare: h.prepare, Cleanup: h.cleanup, PublicURL: h.userURL, Records: serverRecords{st},
	}, logger)
	if err := h.servers.Reconcile(ctx); err != nil {
		logger.Warn("reconcile servers", "err", err)
	}
	h.admins = hubapi.NewAdmins(cfg.GlobalAdmin)
	h.api = hubapi.New(h.base, st, h.sessions, h.servers, h.login, h.admins, logger)
	h.proxy = proxy.New(h.base, h.servers, h.sessions, st, h.render, h.pageData, logger)
	h.handler = h.routes()
	return h, nil
}

func newSpawner(cfg config.Hub, log *slog.Logger) (spawner.Spawner, error) {
	switch cfg.Spawner.Kind {
	case "local":
		return local.New(cfg.Spawner.Local, cfg.Spawner.Env, cfg.DataDir, log)
	case "docker":
		d := cfg.Spawner.Docker
		env := map[string]string{}
		maps.Copy(env, cfg.Spawner.Env)
		maps.Copy(env, d.Env)
		return docker.New(docker.Config{Image: d.Image, Network: d.Network, HubID: d.HubID, MemoryLimit: d.MemLimitBytes,
			CPULimit: d.CPULimit, NotebookDir: d.NotebookDir, NamePrefix: d.NamePrefix, VolumePrefix: d.VolumePrefix,
			Env: env, Host: d.Host, ConnectToNetwork: d.ConnectToNetwork})
	}
	return nil, fmt.Errorf("hub: unknown spawner %q", cfg.Spawner.Kind)
}

// dockerInternalURL is the hub's URL as containers reach it when internal_url is not set: the
// hub must listen on every interface or on the address containers reach it at (the network's
// gateway, or the hub container's address on the network).
func dockerInternalURL(d *docker.Spawner, listen, base string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("hub: listen address %q: %w", listen, err)
	}
	ip := net.ParseIP(host)
	addr := d.HubAddress()
	if host != "" && (ip == nil || !ip.IsUnspecified() && ip.String() != addr.String()) {
		return "", fmt.Errorf("hub: containers cannot reach the hub listening on %s: listen on %s or 0.0.0.0, or set internal_url", listen, net.JoinHostPort(addr.String(), port))
	}
	p, _ := strconv.Atoi(port)
	return d.HubURLFromContainer(p) + base, nil
}

// installPython writes the embedded ohtk module under dir, replacing an older copy.
func installPython(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, "ohtk")); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.CopyFS(dir, python.FS)
}

// Handler returns the hub's HTTP handler.
func (h *Hub) Handler() http.Handler { return h.handler }

// Close stops every server and closes the store.
func (h *Hub) Close(ctx context.Context) error {
	err := errors.Join(h.servers.Close(ctx), h.store.Close())
	if c, ok := h.spawner.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

// LoginRedirectURL is the OAuth redirect URI to register at a tenant's provider.
func (h *Hub) LoginRedirectURL(tenantKey string) string { return h.login.RedirectURL(tenantKey) }

// userURL is the browser path of a user's server.
func (h *Hub) userURL(user string) string { return h.base + "user/" + web.PathEscape(user) + "/" }

// prepare builds a server's spec: a fresh API token and the JupyterHub and OHTK environment.
func (h *Hub) prepare(ctx context.Context, name string) (spawner.Spec, error) {
	u, err := h.store.User(ctx, name)
	if err != nil {
		return spawner.Spec{}, fmt.Errorf("unknown user %s", name)
	}
	tok, tenant, err := h.login.TenantToken(ctx, u)
	if err != nil {
		// The reason (a refresh refused, a key that no longer decrypts) is for the log, not
		// for the user, who can only sign in again.
		h.log.Warn("no tenant token for spawn", "user", name, "err", err)
		return spawner.Spec{}, errors.New("no valid credentials for your tenant; sign in again")
	}
	h.store.DeleteTokens(ctx, name, store.TokenServer, "")
	apiToken, err := h.store.CreateToken(ctx, store.Token{User: name, Kind: store.TokenServer, ClientID: hubapi.ClientID(name), Note: "server"}, 0)
	if err != nil {
		return spawner.Spec{}, err
	}
	prefix := h.userURL(name)
	access := []string{"access:servers!server=" + name + "/", "access:servers!user=" + name}
	accessJSON, _ := json.Marshal(access)
	pub, _ := url.Parse(h.cfg.PublicURL)
	env := map[string]string{
		"JUPYTERHUB_API_TOKEN":           apiToken,
		"JPY_API_TOKEN":                  apiToken,
		"JUPYTERHUB_CLIENT_ID":           hubapi.ClientID(name),
		"JUPYTERHUB_API_URL":             h.internal + "hub/api",
		"JUPYTERHUB_ACTIVITY_URL":        h.internal + "hub/api/users/" + web.PathEscape(name) + "/activity",
		"JUPYTERHUB_BASE_URL":            h.base,
		"JUPYTERHUB_SERVICE_PREFIX":      prefix,
		"JUPYTERHUB_USER":                name,
		"JUPYTERHUB_SERVER_NAME":         "",
		"JUPYTERHUB_HOST":                "",
		"JUPYTERHUB_OAUTH_CALLBACK_URL":  hubapi.CallbackPath(h.base, name),
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES": string(accessJSON),
		"JUPYTERHUB_OAUTH_SCOPES":        string(accessJSON),
		// 4.x/5.x: the server asks for no extra scopes on its users' tokens.
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
		"JUPYTERHUB_ADMIN_ACCESS":                "0",
		"JUPYTERHUB_DEFAULT_URL":                 "/tree/",
		"OHTK_TENANT":                            tenant.Key,
		"OHTK_API_URL":                           tenant.APIURL,
		"OHTK_ACCESS_TOKEN":                      tok.AccessToken,
	}
	if h.cfg.Spawner.Kind == "local" {
		// Images bring their own ohtk module and choose their notebook application.
		env["JUPYTERHUB_SINGLEUSER_APP"] = "notebook.notebookapp.NotebookApp"
		env["PYTHONPATH"] = filepath.Join(h.cfg.DataDir, "python")
	}
	if pub.Scheme == "https" {
		env["JUPYTERHUB_COOKIE_OPTIONS"] = `{"secure": true}`
	}
	return spawner.Spec{User: name, Slug: u.Slug, Number: u.Number, ServicePrefix: prefix, Env: env}, nil
}

// cleanup revokes a stopped server's tokens.
func (h *Hub) cleanup(ctx context.Context, name string) {
	if err := h.store.DeleteTokens(ctx, name, store.TokenServer, ""); err != nil {
		h.log.Error("revoke server token", "user", name, "err", err)
	}
}

// pageData fills the common page fields from the request's session.
func (h *Hub) pageData(r *http.Request) web.Page {
	p := web.Page{Base: h.base}
	if sess, err := h.sessions.Get(r.Context(), r); err == nil {
		if u, err := h.store.User(r.Context(), sess.User); err == nil {
			p.User, p.Admin = u.Name, h.admins.Any(u)
			p.XSRF = session.XSRFToken(r)
		}
	}
	return p
}

var _ fs.FS = python.FS

// serverRecords keeps the spawner's records in the store.
type serverRecords struct{ st *store.Store }

func (r serverRecords) SaveServer(ctx context.Context, user string, h spawner.Handle, started time.Time) error {
	return r.st.SaveServer(ctx, store.ServerRecord{User: user, HandleID: h.ID, URL: h.URL, Started: started})
}

func (r serverRecords) DeleteServer(ctx context.Context, user string) error {
	return r.st.DeleteServer(ctx, user)
}

func (r serverRecords) Servers(ctx context.Context) (map[string]spawner.Handle, error) {
	recs, err := r.st.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]spawner.Handle, len(recs))
	for _, rec := range recs {
		out[rec.User] = spawner.Handle{ID: rec.HandleID, URL: rec.URL}
	}
	return out, nil
}
