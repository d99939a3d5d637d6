package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/datadir"
	"github.com/ohtkhub/ohtkhub/internal/demo"
)

func init() {
	register(command{
		name:    "demo",
		summary: "run api and hub with two seeded tenants on 127.0.0.1",
		run:     runDemo,
	})
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stdout, stderr, "ohtkhub demo [--data-dir .data/demo] [--hub-addr A] [--api-addr A] [--reports N] [--uid-base U]",
		"Starts the api (with the built-in OAuth2 provider) and the hub (local spawner) on 127.0.0.1\n"+
			"with two seeded tenants, bunny and bon, prints the URL and the logins and writes them to\n"+
			"<data-dir>/demo.json. Started again on the same --data-dir it keeps users, tokens and notebooks.")
	dataDir := fs.String("data-dir", ".data/demo", "directory for databases, user directories and demo.json")
	hubAddr := fs.String("hub-addr", "127.0.0.1:8000", "address the hub listens on")
	apiAddr := fs.String("api-addr", "127.0.0.1:8001", "address the api listens on")
	reports := fs.Int("reports", 3000, "incident reports seeded per tenant on first start")
	uidBase := fs.Int64("uid-base", config.DefaultUIDBase, "as root, the uid of a user's server is this plus the user's number; demos side by side need ranges that do not overlap")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The demo's api and hub keep their data under api/ and hub/: lock those too, so that
	// neither an api nor a hub started on them by hand runs beside the demo.
	for _, dir := range []string{*dataDir, filepath.Join(*dataDir, "api"), filepath.Join(*dataDir, "hub")} {
		lock, err := datadir.Acquire(dir)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := demo.Start(ctx, demo.Options{DataDir: *dataDir, HubAddr: *hubAddr, APIAddr: *apiAddr, Reports: *reports, UIDBase: *uidBase, Logger: logger})
	if err != nil {
		return err
	}
	d.PrintWelcome(stdout)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return d.Close(shutdown)
}
