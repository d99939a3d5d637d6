// Package migrate applies SQL migrations embedded in the binary, in order, each once.
//
// A migration is a file named NNNN_description.sql; NNNN is its version. The versions applied
// are recorded in a table of the caller's choosing, so the hub and the api keep separate
// histories in one database. Each migration runs in its own transaction with its record, so a
// failed migration leaves nothing half applied. The SQL is portable between SQLite and
// PostgreSQL: both take $1 placeholders.
package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// DB is what migrations run on: a *sql.DB, or the *sql.Conn that holds WithAdvisoryLock's lock.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// IsPostgresURL reports whether a database setting names a PostgreSQL server (postgres:// or
// postgresql://) rather than SQLite files in a data directory.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// WithAdvisoryLock runs f on one connection of the PostgreSQL pool db while that connection
// holds the advisory lock named key, so that processes starting together (replicas) migrate
// one after the other and the later ones find nothing left to do.
func WithAdvisoryLock(ctx context.Context, db *sql.DB, key string, f func(*sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, key); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, key)
	return f(conn)
}

// tableName is what Apply accepts as the record table's name: it is put into SQL unquoted.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Apply applies the migrations in directory dir of fsys that table does not record yet,
// creating table first if needed.
func Apply(ctx context.Context, db DB, fsys fs.FS, dir, table string) error {
	if !tableName.MatchString(table) {
		return fmt.Errorf("migrate: bad table name %q", table)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		return err
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		body, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return err
		}
		if err := apply(ctx, db, table, version, name, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db DB, table string, version int, name, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE version = $1`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (version, name) VALUES ($1, $2)`, version, name); err != nil {
		return err
	}
	return tx.Commit()
}
