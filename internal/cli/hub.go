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

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/datadir"
	"github.com/ohtkhub/ohtkhub/internal/hub"
)

func init() {
	register(command{name: "hub", summary: "run the hub (tenant logins, users' Jupyter servers, proxy)", run: runHub})
}

func runHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hub", stdout, stderr, "ohtkhub hub [--config hub.yaml]",
		"Runs the hub until SIGINT or SIGTERM: the login page with a \"Sign in with\" button per tenant,\n"+
			"one Jupyter server per user started by the configured spawner, the proxy to those servers,\n"+
			"the JupyterHub REST API (/hub/api/), /hub/health and /hub/metrics.")
	path := fs.String("config", "hub.yaml", "path of the hub's configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// Before the hub adopts the running servers: a second hub on the same directory would
	// take over (and reconcile away) the first one's.
	lock, err := datadir.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	h, err := hub.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		h.Close(context.Background())
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 20 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "hub listening on %s, public URL %s\n", ln.Addr(), cfg.PublicURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if cerr := h.Close(sctx); cerr != nil {
		log.Error("close hub", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
