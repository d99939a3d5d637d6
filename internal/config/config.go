// Package config loads and validates the hub's configuration file (hub.yaml), and decodes
// YAML configuration files (hub.yaml, api.yaml) with errors of one line naming the field.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hub is the whole hub configuration.
type Hub struct {
	// PublicURL is the URL browsers use, e.g. https://example.org/notebooks/. Its path is the
	// prefix of every hub and user URL.
	PublicURL string `yaml:"public_url"`
	// Listen is the address the hub listens on, e.g. 127.0.0.1:8000.
	Listen string `yaml:"listen"`
	// InternalURL is the URL single-user servers use to reach the hub's API. Default: derived
	// from Listen and the public URL's path.
	InternalURL string `yaml:"internal_url"`
	// DataDir holds the hub database, users' directories and the ohtk Python module.
	DataDir string `yaml:"data_dir"`
	// Database is where the hub keeps its state: a postgres:// (or postgresql://) URL, e.g.
	// postgres://ohtkhub@db.internal:5432/ohtkhub?sslmode=verify-full, which several hub
	// replicas may share; empty means the SQLite database hub.db in DataDir.
	Database string `yaml:"database"`
	// CryptKeys encrypt tenant tokens at rest: the first encrypts, all decrypt (key rotation).
	// Each is 32 bytes, base64 or hex. The environment variable OHTKHUB_CRYPT_KEY (keys
	// separated by ";") is used when the list is empty.
	CryptKeys []string `yaml:"crypt_keys"`
	// Tenants are the OHTK servers users sign in with.
	Tenants []Tenant `yaml:"tenants"`
	// Spawner starts the users' servers.
	Spawner Spawner `yaml:"spawner"`
	// SessionMaxAge is how long a login lasts. Default 14 days.
	SessionMaxAge time.Duration `yaml:"session_max_age"`
	// RedirectToServer sends users to their server after login, starting it if needed, as
	// JupyterHub does; off, they land on /hub/home. Default on.
	RedirectToServer *bool `yaml:"redirect_to_server"`
	// CallbackRate limits OAuth callbacks and token endpoints per client address, per minute.
	// Default 60.
	CallbackRate int `yaml:"callback_rate"`
	// GlobalAdminUsers are hub users ({tenant key}_{username}) who administer every tenant's
	// users and may read /hub/metrics. A tenant's own admin rules (admin_users,
	// admin_if_superuser) only make admins of that tenant's users.
	GlobalAdminUsers []string `yaml:"global_admin_users"`
	// MetricsPublic serves /hub/metrics without authentication. Default off: a global admin's
	// session or API token is required, as JupyterHub's authenticate_prometheus.
	MetricsPublic bool `yaml:"metrics_public"`

	// file is the path the configuration was loaded from, for error messages.
	file string
}

// Tenant is one OHTK server users can sign in with.
type Tenant struct {
	Key          string   `yaml:"key"`
	Label        string   `yaml:"label"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	AuthorizeURL string   `yaml:"authorize_url"`
	TokenURL     string   `yaml:"token_url"`
	UserinfoURL  string   `yaml:"userinfo_url"`
	APIURL       string   `yaml:"api_url"`
	Scopes       []string `yaml:"scopes"`
	// PKCE sends an S256 code challenge; default on.
	PKCE *bool `yaml:"pkce"`
	// ClientAuth is "basic" (HTTP Basic) or "body" (client_secret in the form); default basic.
	ClientAuth string `yaml:"client_auth"`
	// UsernameClaim is the userinfo field holding the username; default "username".
	UsernameClaim string `yaml:"username_claim"`
	// UsernameStripPrefix is removed from the start of the username (OHTK returns
	// "<tenant display name>_<username>").
	UsernameStripPrefix string   `yaml:"username_strip_prefix"`
	AllowAll            bool     `yaml:"allow_all"`
	AllowedUsers        []string `yaml:"allowed_users"`
	AdminUsers          []string `yaml:"admin_users"`
	// AdminIfSuperuser makes users whose userinfo has is_superuser=true hub admins.
	AdminIfSuperuser bool   `yaml:"admin_if_superuser"`
	LogoutURL        string `yaml:"logout_url"`
	// InsecureSkipVerify disables TLS verification towards the tenant (development only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Spawner chooses and configures the spawner.
type Spawner struct {
	// Kind is "local" (default) or "docker".
	Kind   string        `yaml:"kind"`
	Local  LocalSpawner  `yaml:"local"`
	Docker DockerSpawner `yaml:"docker"`
	// StartTimeout bounds a spawn from start to ready. Default 60s.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// HTTPTimeout bounds the wait for the server to answer HTTP after it started. Default 30s.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
	// PollInterval is how often running servers are checked. Default 10s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Env is added to every server's environment.
	Env map[string]string `yaml:"env"`
}

// LocalSpawner runs each user's server as a process on this machine.
type LocalSpawner struct {
	// Command starts the server; default ["jupyterhub-singleuser"].
	Command []string `yaml:"command"`
	// Python is the interpreter whose directory comes first on PATH; default /usr/bin/python3.
	Python string `yaml:"python"`
	// SkeletonDir's files are copied into a user's new directory.
	SkeletonDir string `yaml:"skeleton_dir"`
	// Env is added to the servers' environment.
	Env map[string]string `yaml:"env"`
	// Isolate runs each user's server under a uid and gid of its own, without access to the
	// hub's files or other users' directories and processes: "on", "off", or "auto" (the
	// default: on when the hub runs as root, the only way it can switch uids).
	Isolate string `yaml:"isolate"`
	// UIDBase is added to a user's number in the hub's store to make the uid and gid of the
	// user's server. Default 200000; no account of this machine may use the uids above it.
	UIDBase int64 `yaml:"uid_base"`
}

// Local spawner isolation settings.
const (
	IsolateAuto = "auto"
	IsolateOn   = "on"
	IsolateOff  = "off"
)

// DefaultUIDBase is the default LocalSpawner.UIDBase.
const DefaultUIDBase = 200000

// DockerSpawner runs each user's server in a container on a Docker Engine. Empty fields take
// the docker spawner's defaults.
type DockerSpawner struct {
	// Image is the single-user image, e.g. ohtkhub-notebook:latest. It is never pulled.
	Image string `yaml:"image"`
	// Network is the user-defined bridge network of the containers; created if missing.
	Network string `yaml:"network"`
	// HubID labels this hub's containers; two hubs on one engine need different ids.
	HubID string `yaml:"hub_id"`
	// MemLimit is the memory limit of each container in bytes or with a binary unit, as
	// Docker's --memory: 512M, 2G.
	MemLimit string `yaml:"mem_limit"`
	// MemLimitBytes is MemLimit in bytes, set by Validate.
	MemLimitBytes int64 `yaml:"-"`
	// CPULimit is the number of CPUs each container may use, e.g. 1.5.
	CPULimit float64 `yaml:"cpu_limit"`
	// NotebookDir is where the user's volume is mounted; default /home/jovyan/work.
	NotebookDir string `yaml:"notebook_dir"`
	// NamePrefix and VolumePrefix start the containers' and volumes' names.
	NamePrefix   string `yaml:"name_prefix"`
	VolumePrefix string `yaml:"volume_prefix"`
	// Host is the Docker daemon's address; default from DOCKER_HOST, else the local socket.
	Host string `yaml:"host"`
	// ConnectToNetwork, for a hub running in a container, connects that container to Network.
	ConnectToNetwork bool `yaml:"connect_to_network"`
	// Env is added to the servers' environment.
	Env map[string]string `yaml:"env"`
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Load reads, applies defaults to and validates the file at path.
func Load(path string) (Hub, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Hub{}, fmt.Errorf("config: %w", err)
	}
	var h Hub
	if err := DecodeYAML(path, b, &h); err != nil {
		return Hub{}, err
	}
	h.file = path
	// Relative paths are taken relative to the file, as the api's are.
	for _, p := range []*string{&h.DataDir, &h.Spawner.Local.SkeletonDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
	if err := h.Validate(); err != nil {
		return Hub{}, err
	}
	return h, nil
}

// reservedKeys are hub page names a tenant key (a path segment under /hub/) cannot take.
var reservedKeys = map[string]bool{"api": true, "static": true, "login": true, "logout": true, "home": true, "spawn": true,
	"spawn-pending": true, "stop": true, "token": true, "admin": true, "health": true, "metrics": true, "user": true}

// ReservedTenantKey reports whether key is a hub page name no tenant key may take.
func ReservedTenantKey(key string) bool { return reservedKeys[key] }

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Validate fills in defaults and reports the first problem, naming the file, the field and
// the problem.
func (h *Hub) Validate() error {
	file := h.file
	if file == "" {
		file = "hub config"
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w: %s", file, field, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if h.PublicURL == "" {
		return bad("public_url", "missing")
	}
	u, err := url.Parse(h.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("public_url", "%q is not an http(s) URL", h.PublicURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	h.PublicURL = u.String()
	if h.Listen == "" {
		h.Listen = "127.0.0.1:8000"
	}
	if h.DataDir == "" {
		return bad("data_dir", "missing")
	}
	if h.Database != "" {
		// The URL is not quoted back: it may hold a password.
		u, err := url.Parse(h.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return bad("database", "want a postgres:// URL, or nothing for the SQLite database hub.db in data_dir")
		}
	}
	if h.InternalURL != "" {
		iu, err := url.Parse(h.InternalURL)
		if err != nil || (iu.Scheme != "http" && iu.Scheme != "https") || iu.Host == "" {
			return bad("internal_url", "%q is not an http(s) URL", h.InternalURL)
		}
	}
	if len(h.CryptKeys) == 0 {
		if env := os.Getenv("OHTKHUB_CRYPT_KEY"); env != "" {
			h.CryptKeys = strings.Split(env, ";")
		}
	}
	if len(h.CryptKeys) == 0 {
		return bad("crypt_keys", "missing (or set OHTKHUB_CRYPT_KEY): 32 random bytes, base64 or hex")
	}
	for i := range h.CryptKeys {
		if _, err := DecodeKey(h.CryptKeys[i]); err != nil {
			return bad(fmt.Sprintf("crypt_keys[%d]", i), "%v", err)
		}
	}
	if h.SessionMaxAge < 0 {
		return bad("session_max_age", "%v is negative", h.SessionMaxAge)
	}
	if h.CallbackRate < 0 {
		return bad("callback_rate", "%d is negative: want callbacks per minute, or 0 for the default 60", h.CallbackRate)
	}
	if h.SessionMaxAge == 0 {
		h.SessionMaxAge = 14 * 24 * time.Hour
	}
	if h.RedirectToServer == nil {
		on := true
		h.RedirectToServer = &on
	}
	if h.CallbackRate == 0 {
		h.CallbackRate = 60
	}
	if len(h.Tenants) == 0 {
		return bad("tenants", "at least one tenant is needed")
	}
	seen := map[string]bool{}
	for i := range h.Tenants {
		t := &h.Tenants[i]
		f := func(name string) string { return fmt.Sprintf("tenants[%d].%s", i, name) }
		if !keyPattern.MatchString(t.Key) {
			return bad(f("key"), "%q must be 1-40 characters of a-z, 0-9, _ and -, starting with a letter or digit", t.Key)
		}
		if reservedKeys[t.Key] {
			return bad(f("key"), "%q is reserved for the hub's own pages", t.Key)
		}
		if seen[t.Key] {
			return bad(f("key"), "duplicate tenant key %q", t.Key)
		}
		for other := range seen {
			a, b := other, t.Key
			if len(b) < len(a) {
				a, b = b, a
			}
			if strings.HasPrefix(b, a+"_") {
				// Hub users are {key}_{username}: "a" + "b_c" and "a_b" + "c" would both be a_b_c.
				rest := strings.TrimPrefix(b, a+"_")
				return bad(f("key"), "tenant keys %q and %q clash: user %q of %q and user \"x\" of %q would both be the hub user %q; rename one of the keys",
					other, t.Key, rest+"_x", a, b, b+"_x")
			}
		}
		seen[t.Key] = true
		if t.Label == "" {
			t.Label = t.Key
		}
		if t.ClientID == "" {
			return bad(f("client_id"), "missing")
		}
		if t.ClientSecret == "" {
			return bad(f("client_secret"), "missing")
		}
		if strings.TrimSpace(t.ClientSecret) != t.ClientSecret {
			return bad(f("client_secret"), "has leading or trailing white space")
		}
		for name, v := range map[string]*string{"authorize_url": &t.AuthorizeURL, "token_url": &t.TokenURL, "userinfo_url": &t.UserinfoURL, "api_url": &t.APIURL} {
			if *v == "" {
				return bad(f(name), "missing")
			}
			pu, err := url.Parse(*v)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return bad(f(name), "%q is not an http(s) URL", *v)
			}
		}
		if t.LogoutURL != "" {
			if pu, err := url.Parse(t.LogoutURL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
				return bad(f("logout_url"), "%q is not an http(s) URL", t.LogoutURL)
			}
		}
		if t.PKCE == nil {
			on := true
			t.PKCE = &on
		}
		switch t.ClientAuth {
		case "":
			t.ClientAuth = "basic"
		case "basic", "body":
		default:
			return bad(f("client_auth"), "%q must be basic or body", t.ClientAuth)
		}
		if t.UsernameClaim == "" {
			t.UsernameClaim = "username"
		}
		if !t.AllowAll && len(t.AllowedUsers) == 0 && len(t.AdminUsers) == 0 && !t.AdminIfSuperuser {
			return bad(f("allow_all"), "no user could sign in: set allow_all, allowed_users, admin_users or admin_if_superuser")
		}
	}
	for i, name := range h.GlobalAdminUsers {
		if _, ok := h.TenantOf(name); !ok {
			return bad(fmt.Sprintf("global_admin_users[%d]", i), "%q is not a hub user name: {tenant key}_{username} with a configured tenant key", name)
		}
	}
	s := &h.Spawner
	switch s.Kind {
	case "", "local":
		s.Kind = "local"
	case "docker":
		d := &s.Docker
		if d.MemLimit != "" {
			n, err := ParseBytes(d.MemLimit)
			if err != nil {
				return bad("spawner.docker.mem_limit", "%v", err)
			}
			d.MemLimitBytes = n
		}
		if d.CPULimit < 0 {
			return bad("spawner.docker.cpu_limit", "%v is negative", d.CPULimit)
		}
		if d.NotebookDir != "" && !strings.HasPrefix(d.NotebookDir, "/") {
			return bad("spawner.docker.notebook_dir", "%q is not an absolute path", d.NotebookDir)
		}
	default:
		return bad("spawner.kind", "%q is not a known spawner (local, docker)", s.Kind)
	}
	if len(s.Local.Command) == 0 {
		s.Local.Command = []string{"jupyterhub-singleuser"}
	}
	if s.Local.Python == "" {
		s.Local.Python = "/usr/bin/python3"
	}
	switch s.Local.Isolate {
	case "":
		s.Local.Isolate = IsolateAuto
	case IsolateAuto, IsolateOn, IsolateOff:
	default:
		return bad("spawner.local.isolate", "%q must be auto, on or off", s.Local.Isolate)
	}
	if s.Local.UIDBase == 0 {
		s.Local.UIDBase = DefaultUIDBase
	}
	// Below 65536 lie the system's and people's accounts; a uid must stay below 2^31 with
	// room for many users.
	if s.Local.UIDBase < 65536 || s.Local.UIDBase > 1<<31-1<<24 {
		return bad("spawner.local.uid_base", "%d is out of range (65536 to %d)", s.Local.UIDBase, int64(1<<31-1<<24))
	}
	if s.StartTimeout == 0 {
		s.StartTimeout = 60 * time.Second
	}
	if s.HTTPTimeout == 0 {
		s.HTTPTimeout = 30 * time.Second
	}
	if s.PollInterval == 0 {
		s.PollInterval = 10 * time.Second
	}
	if s.StartTimeout < 0 || s.HTTPTimeout < 0 || s.PollInterval < 0 {
		return bad("spawner", "timeouts must be positive")
	}
	return nil
}

// DecodeKey decodes a 32-byte key written as base64 (standard or URL alphabet) or hex.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("not a 32-byte key in base64 or hex")
}

var byteSize = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?$`)

// ParseBytes reads a size in bytes with an optional binary unit (k, m, g, t, as Docker's
// --memory; "Mi", "MB" and "MiB" mean the same as "m").
func ParseBytes(s string) (int64, error) {
	m := byteSize.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size such as 512M or 2G", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 512M or 2G", s)
	}
	f *= map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m[2]]
	if f < 1 || f > 1<<62 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(math.Floor(f)), nil
}

// BasePath is the path prefix of every hub URL, starting and ending with "/".
func (h *Hub) BasePath() string {
	u, err := url.Parse(h.PublicURL)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}

// TenantOf returns the tenant of a hub user name ({tenant key}_{username}). Validate rejects
// tenant keys that would make this ambiguous.
func (h *Hub) TenantOf(name string) (*Tenant, bool) {
	for i := range h.Tenants {
		if rest, ok := strings.CutPrefix(name, h.Tenants[i].Key+"_"); ok && rest != "" {
			return &h.Tenants[i], true
		}
	}
	return nil, false
}

// GlobalAdmin reports whether the hub user name is one of global_admin_users.
func (h *Hub) GlobalAdmin(name string) bool {
	return slices.Contains(h.GlobalAdminUsers, name)
}

// Tenant returns the tenant with the given key.
func (h *Hub) Tenant(key string) (*Tenant, bool) {
	for i := range h.Tenants {
		if h.Tenants[i].Key == key {
			return &h.Tenants[i], true
		}
	}
	return nil, false
}
