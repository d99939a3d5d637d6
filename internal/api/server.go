// Package api assembles the ohtkhub api server: tenancy routing (Host or /t/{schema}/),
// the built-in OAuth2 provider, the Export API, /health and /metrics.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/migrate"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Server is one api instance over the store of its Config.
type Server struct {
	cfg     Config
	store   *ohtkdb.Store
	log     *slog.Logger
	oauth   *oauthserver.Server
	export  http.Handler
	metrics *metrics
	// metricsToken opens /metrics on the api's address; "" keeps it closed there.
	metricsToken string
	handler      http.Handler
}

// New opens the store (cfg.Database, else the SQLite databases under cfg.DataDir, applying
// migrations) and builds the handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, store: store, log: log, metrics: newMetrics()}
	if s.metricsToken, err = cfg.metricsToken(); err != nil {
		store.Close()
		return nil, err
	}
	key, err := secretKey(cfg.DataDir)
	if err != nil {
		store.Close()
		return nil, err
	}
	s.export = exportHandler(cfg, s.log, deriveKey(key, "export cursor"))
	if cfg.Provider.Enabled {
		s.oauth, err = oauthserver.New(oauthserver.Options{
			Store:               store,
			SecretKey:           deriveKey(key, "oauthserver csrf"),
			AccessTokenLifetime: cfg.Provider.AccessTokenLifetime,
			SecureCookies:       cfg.secureCookies(),
			Logger:              s.log,
		})
		if err != nil {
			store.Close()
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// OpenStore opens the store cfg selects: OHTK's PostgreSQL database when cfg.Database is a
// postgres:// URL, else the SQLite databases under cfg.DataDir.
func OpenStore(ctx context.Context, cfg Config) (*ohtkdb.Store, error) {
	if migrate.IsPostgresURL(cfg.Database) {
		return ohtkdb.OpenPostgres(ctx, cfg.Database)
	}
	return ohtkdb.Open(ctx, cfg.DataDir)
}

// Handler serves every request of the api.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves /metrics to every request, for the separate listener of
// Config.Metrics.Listen.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	return securityHeaders(mux)
}

// Store returns the databases the server reads.
func (s *Server) Store() *ohtkdb.Store { return s.store }

// Provider returns the built-in OAuth2 provider, or nil when it is disabled.
func (s *Server) Provider() *oauthserver.Server { return s.oauth }

// Close closes the databases.
func (s *Server) Close() error { return s.store.Close() }

// routes builds the request path: instance-wide endpoints first, then the tenant's.
func (s *Server) routes() http.Handler {
	tenantMux := http.NewServeMux()
	tenantMux.Handle("/api/export/v1/", s.metrics.instrument("export", s.export))
	if s.oauth != nil {
		h := s.metrics.instrument("oauth", s.oauth.Handler())
		for _, p := range oauthserver.Paths() {
			tenantMux.Handle(p, h)
		}
	}
	tenantMux.Handle("/", s.metrics.instrument("not_found", http.HandlerFunc(notFound)))

	root := http.NewServeMux()
	root.Handle("GET /health", s.metrics.instrument("health", http.HandlerFunc(s.health)))
	root.Handle("GET /metrics", s.metricsBearer(s.metrics.handler()))
	tenanted := s.tenancy(tenantMux)
	root.Handle("/", tenanted)
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /api/servers/ lists the instance's tenants and needs none itself.
		if s.oauth != nil && r.URL.Path == "/api/servers/" && !s.hostIsTenant(r) {
			s.metrics.instrument("servers", s.oauth.ServersHandler()).ServeHTTP(w, r)
			return
		}
		root.ServeHTTP(w, r)
	}))
}

func (s *Server) hostIsTenant(r *http.Request) bool {
	_, err := s.store.TenantByHost(r.Context(), r.Host)
	return err == nil
}

// health answers 200 when the public database answers a query.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	var one int
	if err := s.store.Public().QueryRowContext(r.Context(), `SELECT 1`).Scan(&one); err != nil {
		s.log.Error("api: health", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The database does not answer.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "No such resource.")
}

// securityHeaders sets the headers every answer of the api carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if h.Get("Content-Security-Policy") == "" {
			h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r)
	})
}

// deriveKey gives each use of the instance key its own key.
func deriveKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// secretKey reads the instance's signing key from data_dir/secret_key, creating it on first
// start. Keeping it in the data directory keeps forms valid across restarts and replicas
// that share the directory.
func secretKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret_key")
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		enc := hex.EncodeToString(key) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return secretKey(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("api: secret key: %w", err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, fmt.Errorf("api: secret key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("api: secret key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("api: secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(body)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("api: secret key %s: want at least 64 hex digits", path)
	}
	return key, nil
}
