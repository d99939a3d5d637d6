// Command ohtk-fixture starts a throwaway PostgreSQL 15 + PostGIS server and builds an
// OHTK-shaped database in it: django-tenants' public schema, tenants "bunny" and "bon"
// with OHTK's tables and SQL functions, seeded by internal/seed (authorities, users, report
// types, reports) and, with -reports, scaled up by copying the seeded reports. It prints the
// connection settings as shell variables (to -env as well) and keeps the server running
// until interrupted, then removes it.
//
//	go run ./scripts/ohtk-fixture -reports 1000000 -bon-reports 100000 -env /tmp/ohtk.env
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/pgtest"
	"github.com/ohtkhub/ohtkhub/internal/seed"
)

func main() {
	var (
		dir        = flag.String("dir", "", "directory for the cluster (default: a new temporary directory)")
		reports    = flag.Int("reports", 3000, "incident reports of tenant bunny (3000 seeded, the rest copies)")
		bonReports = flag.Int("bon-reports", 3000, "incident reports of tenant bon")
		password   = flag.String("password", "ohtk-fixture", "password of every seeded user")
		envFile    = flag.String("env", "", "also write the settings to this file")
		exit       = flag.Bool("exit", false, "stop the server once the database is built (to check the fixture)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *reports, *bonReports, *password, *envFile, *exit); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir string, reports, bonReports int, password, envFile string, exit bool) error {
	start := time.Now()
	cluster, err := pgtest.Start(ctx, pgtest.Options{Dir: dir, Settings: map[string]string{
		"shared_buffers": "512MB", "work_mem": "32MB", "maintenance_work_mem": "256MB", "max_wal_size": "4GB",
	}})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	o, err := cluster.CreateOHTK(ctx, "ohtk")
	if err != nil {
		return err
	}
	defer o.Close()
	for i, tn := range []struct {
		schema, name, domain string
		reports              int
	}{
		{"bunny", "Bunny Province กระต่าย", "bunny.localhost", reports},
		{"bon", "Bon", "bon.localhost", bonReports},
	} {
		db, err := o.AddTenant(ctx, tn.schema, tn.name, []string{tn.domain})
		if err != nil {
			return err
		}
		seeded := min(tn.reports, 3000)
		if _, err := seed.Tenant(ctx, db, seed.Options{TenantName: tn.name, Reports: seeded, RandSeed: int64(i),
			Password: password, Iterations: 1000}); err != nil {
			return fmt.Errorf("seed %s: %w", tn.schema, err)
		}
		if err := o.ScaleReports(ctx, tn.schema, tn.reports); err != nil {
			return err
		}
		log.Printf("tenant %s: %d incident reports", tn.schema, tn.reports)
	}
	// Open the store once as the api would, so the api's schemas exist.
	st, err := ohtkdb.OpenPostgres(ctx, o.URL(pgtest.Reader))
	if err != nil {
		return err
	}
	for _, s := range []string{"bunny", "bon"} {
		if _, err := st.TenantDB(ctx, s); err != nil {
			return err
		}
	}
	st.Close()
	env := fmt.Sprintf("OHTK_DIR=%q\nOHTK_ADMIN_URL=%q\nOHTK_READER_URL=%q\nOHTK_SUPERUSER=admin\nOHTK_PASSWORD=%q\n",
		cluster.Dir(), o.URL(pgtest.Superuser), o.URL(pgtest.Reader), password)
	out := io.Writer(os.Stdout)
	if envFile != "" {
		f, err := os.Create(envFile)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprint(out, env)
	if envFile != "" {
		// Written last, so a waiting script sees a complete file once this line is there.
		fmt.Fprintln(out, "OHTK_READY=1")
	}
	log.Printf("built in %s", time.Since(start).Round(time.Second))
	if exit {
		return nil
	}
	log.Printf("serving; interrupt to stop and remove the cluster")
	<-ctx.Done()
	return nil
}
