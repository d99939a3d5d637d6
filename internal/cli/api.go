package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/api"
	"github.com/ohtkhub/ohtkhub/internal/datadir"
	"github.com/ohtkhub/ohtkhub/internal/migrate"
)

func init() {
	register(command{
		name:    "api",
		summary: "serve the Export API and the built-in OAuth2 provider",
		run:     runAPI,
	})
}

func runAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("api", stdout, stderr, "ohtkhub api [--config api.yaml]",
		"Serves the tenants' Export API (/api/export/v1/), the built-in OAuth2 provider\n"+
			"(/accounts/login/, /o/…, /api/userinfo/), /health and /metrics until SIGINT or SIGTERM.\n"+
			"Configuration keys: listen, data_dir, database, public_url, provider.enabled,\n"+
			"provider.access_token_lifetime, export.basic_passwords, metrics.listen, metrics.token_file.")
	config := fs.String("config", "api.yaml", "path of the api's configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := api.LoadConfig(*config)
	if err != nil {
		return err
	}
	// The SQLite databases are the api's own: a second api on them would serve the same
	// tenants beside the first. On OHTK's PostgreSQL, replicas share the database by design.
	if !migrate.IsPostgresURL(cfg.Database) {
		lock, err := datadir.Acquire(cfg.DataDir)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	// The same line format as the hub's log.
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := api.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.Metrics.Listen == "" {
		fmt.Fprintf(stdout, "ohtkhub api listening on http://%s\n", ln.Addr())
		return serveHTTP(ctx, ln, srv.Handler())
	}
	mln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("metrics.listen: %w", err)
	}
	fmt.Fprintf(stdout, "ohtkhub api listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "ohtkhub api metrics on http://%s/metrics\n", mln.Addr())
	// Either server stopping stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		defer cancel()
		errc <- serveHTTP(ctx, mln, srv.MetricsHandler())
	}()
	err = serveHTTP(ctx, ln, srv.Handler())
	cancel()
	return errors.Join(err, <-errc)
}

// serveHTTP serves h on ln until ctx is done, then lets running requests finish for up to
// 30 seconds. There is no WriteTimeout: export downloads stream for as long as they need.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
