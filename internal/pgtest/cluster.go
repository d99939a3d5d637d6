// Package pgtest runs throwaway PostgreSQL servers for tests, benchmarks and fixtures, and
// builds OHTK-shaped databases in them: the public schema of django-tenants, tenant schemas
// with OHTK's tables and SQL functions, and a read-only role for the api's data path.
//
// A cluster is a fresh initdb in a temporary directory, served by the postgres binary of
// Debian's postgresql-15 package on a unix socket in that directory. As root, the server
// runs as the postgres user. Missing binaries are an error, never a reason to skip.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// BinDir is where the server binaries are looked for, unless PGTEST_BINDIR names another.
const BinDir = "/usr/lib/postgresql/15/bin"

// Superuser is the cluster's bootstrap superuser.
const Superuser = "postgres"

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir       string // holds the data directory and the unix socket
	removeDir bool
	port      int
	cmd       *exec.Cmd
	done      chan error
}

// Options tune a cluster.
type Options struct {
	// Dir is the directory to create the cluster in; empty means a new temporary directory,
	// removed by Stop.
	Dir string
	// Settings are extra server settings (name → value), e.g. shared_buffers.
	Settings map[string]string
}

func binDir() string {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		return d
	}
	return BinDir
}

// Start creates and starts a cluster. Durability is off: the data is thrown away.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin := binDir()
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("pgtest: %s not found in %s (install Debian's postgresql-15 and postgresql-15-postgis-3): %w", b, bin, err)
		}
	}
	dir := opts.Dir
	removeDir := false
	if dir == "" {
		d, err := os.MkdirTemp("", "ohtkhub-pg-")
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		dir, removeDir = d, true
	}
	cred, err := serverCredential(dir)
	if err != nil {
		if removeDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	c := &Cluster{dir: dir, port: 5432, done: make(chan error, 1)}
	fail := func(err error) (*Cluster, error) {
		if removeDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}
	args := []string{"-D", data, "-k", dir, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "log_min_messages=warning"}
	for k, v := range opts.Settings {
		args = append(args, "-c", k+"="+v)
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	// SIGQUIT on our death is PostgreSQL's immediate shutdown: no server outlives its test.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return fail(fmt.Errorf("pgtest: %w", err))
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("pgtest: postgres: %w", err))
	}
	go func() { c.done <- c.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres", Superuser))
		if err == nil {
			conn.Close(ctx)
			break
		}
		select {
		case werr := <-c.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return fail(fmt.Errorf("pgtest: postgres exited: %v\n%s", werr, log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.cmd.Process.Signal(syscall.SIGQUIT)
			<-c.done
			return fail(fmt.Errorf("pgtest: postgres did not accept connections: %w", err))
		}
	}
	c.removeDir = removeDir
	return c, nil
}

// serverCredential returns the user the server runs as: postgres when we are root (initdb
// refuses root), else nil for ourselves. The directory is handed to that user.
func serverCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	// The server must reach its directory: every parent needs search permission.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("pgtest: %s is not searchable by the postgres user", p)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Dir is the cluster's directory; its unix socket lives there.
func (c *Cluster) Dir() string { return c.dir }

// URL is a connection URL for database db as user.
func (c *Cluster) URL(db, user string) string {
	q := url.Values{"host": {c.dir}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(user), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Open opens database db as user through database/sql.
func (c *Cluster) Open(db, user string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(c.URL(db, user))
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg), nil
}

// Stop shuts the server down at once and removes a temporary directory.
func (c *Cluster) Stop() error {
	if c.cmd == nil {
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGQUIT)
	err := <-c.done
	c.cmd = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // the expected end of an immediate shutdown
	}
	if c.removeDir {
		if rerr := os.RemoveAll(c.dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// Shared returns the test binary's cluster, started on first use. Call StopShared from
// TestMain after the tests; a server left behind still exits with its test process.
func Shared(ctx context.Context) (*Cluster, error) {
	sharedOnce.Do(func() { shared, sharedErr = Start(context.WithoutCancel(ctx), Options{}) })
	return shared, sharedErr
}

// StopShared stops the cluster Shared started, if any.
func StopShared() error {
	if shared == nil {
		return nil
	}
	return shared.Stop()
}

// CreateDatabase creates the empty database name, owned by Superuser, and returns its URL.
// drop removes it again, closing whatever connections are still open to it.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (url string, drop func() error, err error) {
	if err := c.exec(ctx, "postgres", `CREATE DATABASE `+ident(name)); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	drop = func() error {
		return c.exec(context.Background(), "postgres", `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`)
	}
	return c.URL(name, Superuser), drop, nil
}

// Backends are the databases RunBackends runs a package's tests on.
var Backends = []string{"sqlite", "postgresql"}

// RunBackends is a TestMain body for packages whose every test runs once per backend: it sets
// *backend to each of Backends in turn (or of OHTKHUB_TEST_BACKENDS, comma-separated, to run
// some only), runs the tests, stops the shared PostgreSQL cluster and exits with the first
// failure's code. Missing PostgreSQL binaries fail the PostgreSQL run, never skip it.
func RunBackends(m *testing.M, backend *string) {
	run := Backends
	if only := os.Getenv("OHTKHUB_TEST_BACKENDS"); only != "" {
		run = strings.Split(only, ",")
	}
	code := 0
	for _, b := range run {
		*backend = b
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "FAIL with backend %s\n", b)
			if code == 0 {
				code = c
			}
		}
	}
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
	}
	os.Exit(code)
}
