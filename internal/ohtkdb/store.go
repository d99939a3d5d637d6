// Package ohtkdb opens OHTK's databases: the public schema (tenants and domains) and one
// database per tenant holding OHTK's own tables, under OHTK's table and column names.
//
// The SQLite backend keeps the public schema in public.db and each tenant in its own file
// under tenants/. Storage conventions are written at the top of migrations/tenant/0001_ohtk.sql.
// The PostgreSQL backend (OpenPostgres) reads a real OHTK database: django-tenants' public
// schema and one schema per tenant, which it never writes; ohtkhub's own tables live in a
// schema per tenant of their own (APISchema), created by migrations/postgres.
// SQL is written with $1, $2 placeholders so it runs on SQLite and PostgreSQL alike; the
// expressions that differ come from Dialect.
package ohtkdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a tenant, domain or row does not exist.
var ErrNotFound = errors.New("ohtkdb: not found")

// ErrAlreadyExists is returned when creating something that already exists.
var ErrAlreadyExists = errors.New("ohtkdb: already exists")

// TimeFormat is how timestamps are stored: UTC, microseconds, sortable as text.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// DateFormat is how dates are stored.
const DateFormat = "2006-01-02"

// FormatTime formats t in the storage format.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime parses a stored timestamp.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeFormat, s) }

// Tenant is one row of tenants_client.
type Tenant struct {
	ID         int64
	SchemaName string
	Name       string
	Domains    []string
}

// Store gives access to the public database and the tenants' databases.
type Store struct {
	dir    string     // SQLite
	pg     *pgBackend // PostgreSQL
	public *sql.DB

	mu      sync.Mutex
	tenants map[string]*sql.DB
}

// Open opens (creating if needed) the SQLite databases under dir and applies migrations.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), 0o700); err != nil {
		return nil, fmt.Errorf("ohtkdb: %w", err)
	}
	// The databases hold password hashes and tokens: only the api's user may enter.
	for _, d := range []string{dir, filepath.Join(dir, "tenants")} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("ohtkdb: %w", err)
		}
	}
	db, err := openSQLite(ctx, filepath.Join(dir, "public.db"), "public")
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, public: db, tenants: map[string]*sql.DB{}}, nil
}

func openSQLite(ctx context.Context, path, set string) (*sql.DB, error) {
	// SQLite gives the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ohtkdb: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("ohtkdb: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ohtkdb: open %s: %w", path, err)
	}
	if err := applyMigrations(ctx, db, set); err != nil {
		db.Close()
		return nil, fmt.Errorf("ohtkdb: migrate %s: %w", path, err)
	}
	return db, nil
}

// Close closes every database the store opened.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := []error{s.public.Close()}
	for _, db := range s.tenants {
		errs = append(errs, db.Close())
	}
	s.tenants = map[string]*sql.DB{}
	return errors.Join(errs...)
}

// Public returns the public schema's database (tenants_client, tenants_domain).
func (s *Store) Public() *sql.DB { return s.public }

// Dialect is the SQL dialect of the store's databases.
func (s *Store) Dialect() Dialect {
	if s.pg != nil {
		return PostgreSQL
	}
	return SQLite
}

// TenantDB returns the database holding the tables of the tenant with the given schema name.
// It does not check that the tenant exists or is active: resolve it with TenantByHost or
// TenantBySchema first.
func (s *Store) TenantDB(ctx context.Context, schema string) (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if db, ok := s.tenants[schema]; ok {
		return db, nil
	}
	if s.pg != nil {
		db, err := s.pg.tenantDB(ctx, schema)
		if err != nil {
			return nil, err
		}
		s.tenants[schema] = db
		return db, nil
	}
	db, err := openSQLite(ctx, filepath.Join(s.dir, "tenants", fileName(schema)+".db"), "tenant")
	if err != nil {
		return nil, err
	}
	s.tenants[schema] = db
	return db, nil
}

var unsafeFileChars = regexp.MustCompile(`[^a-z0-9_-]+`)

// fileName maps any schema name to a safe, distinct file name.
func fileName(schema string) string {
	safe := unsafeFileChars.ReplaceAllString(strings.ToLower(schema), "-")
	if len(safe) > 40 {
		safe = safe[:40]
	}
	if safe == schema {
		return safe
	}
	sum := sha256.Sum256([]byte(schema))
	return safe + "-" + hex.EncodeToString(sum[:])[:10]
}

// CreateTenant adds a tenant and its domains to the public schema and creates its database.
// A PostgreSQL database's tenants are OHTK's: there it returns ErrReadOnly.
func (s *Store) CreateTenant(ctx context.Context, schema, name string, domains []string) (Tenant, error) {
	if s.pg != nil {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", schema, ErrReadOnly)
	}
	if schema == "" || schema == "public" {
		return Tenant{}, fmt.Errorf("ohtkdb: invalid schema name %q", schema)
	}
	now := FormatTime(time.Now())
	tx, err := s.public.BeginTx(ctx, nil)
	if err != nil {
		return Tenant{}, err
	}
	defer tx.Rollback()
	// Names differing only in case would be one hub tenant key and one file name.
	var existing string
	err = tx.QueryRowContext(ctx, `SELECT schema_name FROM tenants_client WHERE lower(schema_name) = lower($1) LIMIT 1`, schema).Scan(&existing)
	switch {
	case err == nil && existing == schema:
		return Tenant{}, fmt.Errorf("tenant %q: %w", schema, ErrAlreadyExists)
	case err == nil:
		return Tenant{}, fmt.Errorf("tenant %q: %w: tenant %q differs only in case", schema, ErrAlreadyExists, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return Tenant{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO tenants_client (schema_name, name, created_at, updated_at) VALUES ($1, $2, $3, $4)`, schema, name, now, now)
	if err != nil {
		return Tenant{}, err
	}
	id, _ := res.LastInsertId()
	for i, d := range domains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants_domain (domain, is_primary, tenant_id) VALUES ($1, $2, $3)`, d, i == 0, id); err != nil {
			return Tenant{}, fmt.Errorf("domain %q: %w", d, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Tenant{}, err
	}
	if _, err := s.TenantDB(ctx, schema); err != nil {
		return Tenant{}, err
	}
	return Tenant{ID: id, SchemaName: schema, Name: name, Domains: domains}, nil
}

// TenantBySchema returns the active (not soft-deleted) tenant with that schema name.
func (s *Store) TenantBySchema(ctx context.Context, schema string) (Tenant, error) {
	return s.tenant(ctx, `SELECT id, schema_name, name FROM tenants_client WHERE schema_name = $1 AND deleted_at IS NULL`, schema)
}

// TenantByHost resolves a request's Host as django-tenants does: port and a leading "www."
// removed, then an exact match on tenants_domain.domain. Soft-deleted tenants are not found.
func (s *Store) TenantByHost(ctx context.Context, host string) (Tenant, error) {
	return s.tenant(ctx, `SELECT c.id, c.schema_name, c.name FROM tenants_domain d JOIN tenants_client c ON c.id = d.tenant_id
		WHERE d.domain = $1 AND c.deleted_at IS NULL`, NormalizeHost(host))
}

// NormalizeHost strips the port and a leading "www." and lower-cases the host.
func NormalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.TrimPrefix(host, "www.")
}

func (s *Store) tenant(ctx context.Context, query, arg string) (Tenant, error) {
	var t Tenant
	err := s.public.QueryRowContext(ctx, query, arg).Scan(&t.ID, &t.SchemaName, &t.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, ErrNotFound
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("ohtkdb: tenant: %w", err)
	}
	rows, err := s.public.QueryContext(ctx, `SELECT domain FROM tenants_domain WHERE tenant_id = $1 ORDER BY is_primary DESC, id`, t.ID)
	if err != nil {
		return Tenant{}, fmt.Errorf("ohtkdb: domains: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return Tenant{}, err
		}
		t.Domains = append(t.Domains, d)
	}
	return t, rows.Err()
}

// Tenants lists the active tenants.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.public.QueryContext(ctx, `SELECT schema_name FROM tenants_client WHERE deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var schemas []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		schemas = append(schemas, s)
	}
	rows.Close()
	out := make([]Tenant, 0, len(schemas))
	for _, sc := range schemas {
		t, err := s.TenantBySchema(ctx, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
