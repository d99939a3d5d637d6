// Package oauthserver is the api's built-in OAuth2 provider. It behaves like Django OAuth
// Toolkit (DOT) as OHTK configures it and keeps all of its data in DOT's tables of the
// tenant's database, so tokens it issues are validated exactly like tokens of a real DOT:
//
//   - /accounts/login/, /accounts/logout/: the browser login (server-side sessions);
//   - /o/authorize/: authorization codes (consent page, PKCE S256 and plain);
//   - /o/token/: authorization_code, refresh_token (rotating), password, client_credentials;
//   - /o/revoke_token/ (RFC 7009), /o/introspect/ (RFC 7662);
//   - /api/userinfo/ (OHTK's JSON) and /api/servers/.
//
// Every handler expects the request's tenant in its context (tenant.NewContext) and paths
// with the tenant's prefix already removed.
package oauthserver

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// Defaults of DOT and of Django as OHTK runs them.
const (
	// DefaultAccessTokenLifetime is DOT's ACCESS_TOKEN_EXPIRE_SECONDS (10 hours).
	DefaultAccessTokenLifetime = 10 * time.Hour
	// CodeLifetime is DOT's AUTHORIZATION_CODE_EXPIRE_SECONDS.
	CodeLifetime = 60 * time.Second
	// DefaultSessionLifetime bounds a browser login. Django's default is two weeks; a
	// login here only serves to approve OAuth clients, so it is kept short.
	DefaultSessionLifetime = 12 * time.Hour
	// SecretIterations is the pbkdf2_sha256 iteration count of the client secrets this
	// package creates. Secrets are 64 random base62 characters (about 380 bits), so key
	// stretching adds no protection against guessing them; a low count keeps every
	// /o/token/ call cheap and denies an attacker a way to burn CPU with bogus secrets.
	// DOT checks any iteration count, so a real DOT accepts these hashes too.
	SecretIterations = 10000
)

// Options configure a Server.
type Options struct {
	// Store lists the tenants for /api/servers/. Required.
	Store *ohtkdb.Store
	// SecretKey signs CSRF tokens. At least 32 bytes; keep it stable across restarts and
	// replicas so forms keep working.
	SecretKey []byte
	// AccessTokenLifetime defaults to DefaultAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// SessionLifetime defaults to DefaultSessionLifetime.
	SessionLifetime time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests (the api runs behind
	// a TLS-terminating proxy). Cookies of requests that arrived over TLS are always Secure.
	SecureCookies bool
	// LoginBurst and LoginInterval rate-limit password checks per client IP and username
	// (login form and password grant): LoginBurst attempts, then one per LoginInterval.
	// Defaults: 5 and 20 s.
	LoginBurst    int
	LoginInterval time.Duration
	// Now is the clock; nil means time.Now. Tests move it forward to expire codes and tokens.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the OAuth2 provider. Its handlers are safe for concurrent use.
type Server struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	limiter *limiter
	// ipLimiter allows each client IP four times the failures of one name.
	ipLimiter *limiter
	mux       *http.ServeMux
	// standIns are the per-tenant hashes checked for unknown usernames.
	standIns ohtkdb.StandIns
}

// New returns a provider configured by opts.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("oauthserver: Options.Store is required")
	}
	if len(opts.SecretKey) < 32 {
		return nil, errors.New("oauthserver: Options.SecretKey must hold at least 32 bytes")
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = DefaultSessionLifetime
	}
	if opts.LoginBurst <= 0 {
		opts.LoginBurst = 5
	}
	if opts.LoginInterval <= 0 {
		opts.LoginInterval = 20 * time.Second
	}
	s := &Server{opts: opts, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.limiter = newLimiter(opts.LoginBurst, opts.LoginInterval, s.now)
	s.ipLimiter = newLimiter(4*opts.LoginBurst, opts.LoginInterval/4, s.now)

	// Browser forms get a second line of defence besides the CSRF token: browsers that
	// send Sec-Fetch-Site or Origin are refused cross-origin POSTs.
	forms := http.NewCrossOriginProtection()
	s.mux = http.NewServeMux()
	s.mux.Handle("/accounts/login/", forms.Handler(http.HandlerFunc(s.login)))
	s.mux.Handle("/accounts/logout/", forms.Handler(http.HandlerFunc(s.logout)))
	s.mux.Handle("/o/authorize/", forms.Handler(http.HandlerFunc(s.authorize)))
	s.mux.HandleFunc("/o/token/", s.token)
	s.mux.HandleFunc("/o/revoke_token/", s.revoke)
	s.mux.HandleFunc("/o/introspect/", s.introspect)
	s.mux.HandleFunc("/api/userinfo/", s.userinfo)
	s.mux.HandleFunc("/api/servers/", s.servers)
	return s, nil
}

// Paths lists the path prefixes Handler serves, for the api's router.
func Paths() []string {
	return []string{"/accounts/login/", "/accounts/logout/", "/o/authorize/", "/o/token/",
		"/o/revoke_token/", "/o/introspect/", "/api/userinfo/", "/api/servers/"}
}

// Handler serves the provider's endpoints for the tenant in the request's context.
// /api/servers/ also works without a tenant.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tenant.FromContext(r.Context()); !ok && r.URL.Path != "/api/servers/" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "tenant_not_found",
				"error_description": "No tenant for this host or path."})
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// ServersHandler serves /api/servers/ for requests that name no tenant.
func (s *Server) ServersHandler() http.Handler { return http.HandlerFunc(s.servers) }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters drawn uniformly from base62 by crypto/rand.
func randomString(n int) string {
	out := make([]byte, n)
	buf := make([]byte, n+n/2+8)
	i := 0
	for i < n {
		rand.Read(buf)
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the draw uniform.
			if b >= 248 {
				continue
			}
			out[i] = base62[b%62]
			i++
			if i == n {
				break
			}
		}
	}
	return string(out)
}

// isSecure reports whether cookies for r must be Secure.
func (s *Server) isSecure(r *http.Request) bool {
	return s.opts.SecureCookies || r.TLS != nil
}

// cookiePath is the path a tenant's cookies are scoped to.
func cookiePath(t *tenant.Tenant) string {
	if t.BasePath == "" {
		return "/"
	}
	return strings.TrimSuffix(t.BasePath, "/") + "/"
}
