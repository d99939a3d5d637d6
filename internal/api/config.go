package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/migrate"
)

// Config is the api's configuration file (api.yaml).
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8001.
	Listen string `yaml:"listen"`
	// DataDir holds the secret key and, unless Database names a PostgreSQL server, the
	// SQLite databases. Required. A relative path is taken relative to the configuration file.
	DataDir string `yaml:"data_dir"`
	// Database selects the store: a postgres:// (or postgresql://) URL of OHTK's own
	// PostgreSQL database, read in each tenant's schema, e.g.
	// postgres://ohtkhub@db.internal:5432/ohtk?sslmode=verify-full. Empty means the SQLite
	// databases under DataDir.
	Database string `yaml:"database"`
	// PublicURL is the URL browsers reach the api at, when it differs from the listen
	// address (behind a proxy). An https URL makes every cookie Secure.
	PublicURL string         `yaml:"public_url"`
	Provider  ProviderConfig `yaml:"provider"`
	Export    ExportConfig   `yaml:"export"`
	Metrics   MetricsConfig  `yaml:"metrics"`
	// Logger receives the api's log lines (one per export, provider events); nil means
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// MetricsConfig says who may read the Prometheus metrics. With neither field set they are not
// served: /metrics answers 404.
type MetricsConfig struct {
	// Listen is a separate host:port serving /metrics to anyone who reaches it, as Dex's
	// telemetry address and oauth2-proxy's metrics address: bind it where only the scraper
	// connects (127.0.0.1:9101, a private network). Default: none.
	Listen string `yaml:"listen"`
	// TokenFile holds a secret (surrounding whitespace ignored) that opens /metrics on the
	// api's own address to requests with "Authorization: Bearer <secret>", what Prometheus
	// sends with authorization: {credentials_file: …}. A relative path is taken relative to
	// the configuration file; the file is read at start.
	TokenFile string `yaml:"token_file"`
}

// ProviderConfig configures the built-in OAuth2 provider.
type ProviderConfig struct {
	// Enabled serves /accounts/, /o/ and /api/userinfo/. Default true. Turn it off when a
	// real ohtk-api issues the tokens.
	Enabled bool `yaml:"enabled"`
	// AccessTokenLifetime defaults to 10h, DOT's default.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
}

// ExportConfig configures the Export API.
type ExportConfig struct {
	// BasicPasswords accepts HTTP Basic with a user's password (API keys always work).
	// Default true.
	BasicPasswords bool `yaml:"basic_passwords"`
}

// DefaultConfig returns the configuration an empty file gives.
func DefaultConfig() Config {
	return Config{
		Listen:   "127.0.0.1:8001",
		Provider: ProviderConfig{Enabled: true, AccessTokenLifetime: 10 * time.Hour},
		Export:   ExportConfig{BasicPasswords: true},
	}
}

// LoadConfig reads a YAML configuration. Unknown keys and an empty file are errors; every
// error is one line naming the file and the field (with its line for YAML errors), as the
// hub's configuration's.
func LoadConfig(path string) (Config, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg := DefaultConfig()
	if err := config.DecodeYAML(path, body, &cfg); err != nil {
		return Config{}, err
	}
	for _, p := range []*string{&cfg.DataDir, &cfg.Metrics.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	// The secret is read again at start; reading it here names the file it was set in.
	if _, err := cfg.metricsToken(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the configuration and names the first bad field.
func (c Config) Validate() error {
	if c.Listen == "" {
		return errors.New("listen: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: required")
	}
	if c.Database != "" && !migrate.IsPostgresURL(c.Database) {
		return errors.New("database: want a postgres:// URL, or nothing for the SQLite databases under data_dir")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("public_url: %q is not an absolute http(s) URL", c.PublicURL)
		}
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %q is not host:port", c.Metrics.Listen)
		}
		if _, port, _ := net.SplitHostPort(c.Listen); c.Metrics.Listen == c.Listen && port != "0" {
			return fmt.Errorf("metrics.listen: %q is listen's address too; give it a port of its own", c.Metrics.Listen)
		}
	}
	if c.Provider.AccessTokenLifetime < time.Minute {
		return fmt.Errorf("provider.access_token_lifetime: %s is shorter than one minute", c.Provider.AccessTokenLifetime)
	}
	return nil
}

// metricsToken reads the secret of Metrics.TokenFile, or returns "" when there is none.
func (c Config) metricsToken() (string, error) {
	if c.Metrics.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.Metrics.TokenFile)
	if err != nil {
		return "", fmt.Errorf("metrics.token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("metrics.token_file: %s holds %d characters; want a secret of at least 16", c.Metrics.TokenFile, len(token))
	}
	return token, nil
}

// secureCookies reports whether public_url promises https.
func (c Config) secureCookies() bool {
	u, err := url.Parse(c.PublicURL)
	return err == nil && u.Scheme == "https"
}
