package ohtkdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ohtkhub/ohtkhub/internal/migrate"
)

// ErrReadOnly is returned for writes to OHTK's own tables in a PostgreSQL database: they
// belong to OHTK, and the api only reads them.
var ErrReadOnly = errors.New("ohtkdb: OHTK's tables are read-only")

// pgBackend is a PostgreSQL database of OHTK: public holds django-tenants' tables, each
// tenant a schema of OHTK's tables, and each tenant's ohtkhub tables a schema of their own.
type pgBackend struct {
	cfg *pgx.ConnConfig
}

// OpenPostgres connects to an OHTK database at url (postgres://…). Nothing is written until
// a tenant's database is first opened, which creates the api's schema of that tenant.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("ohtkdb: database url: %w", err)
	}
	pg := &pgBackend{cfg: cfg}
	public := pg.open("public")
	if err := public.PingContext(ctx); err != nil {
		public.Close()
		return nil, fmt.Errorf("ohtkdb: postgres: %w", err)
	}
	var n int
	if err := public.QueryRowContext(ctx, `SELECT count(*) FROM tenants_client`).Scan(&n); err != nil {
		public.Close()
		return nil, fmt.Errorf("ohtkdb: postgres: not an OHTK database: %w", err)
	}
	return &Store{pg: pg, public: public, tenants: map[string]*sql.DB{}}, nil
}

// APISchema names the schema holding ohtkhub's own tables of a tenant: "ohtkhub_" and a
// safe, distinct form of the tenant's schema name, short enough for PostgreSQL (63 bytes).
func APISchema(tenantSchema string) string { return "ohtkhub_" + fileName(tenantSchema) }

// SearchPath is the search_path of a tenant's connections: its OHTK schema, its ohtkhub
// schema, then public (PostGIS). Each name is quoted: schema names may hold any character.
func SearchPath(schemas ...string) string {
	q := make([]string, len(schemas))
	for i, s := range schemas {
		q[i] = pgx.Identifier{s}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// open returns a pool whose connections start with search_path set to schemas. Setting it
// at connection start, not per query, means no statement can run in another tenant's schema.
func (pg *pgBackend) open(schemas ...string) *sql.DB {
	cfg := pg.cfg.Copy()
	cfg.RuntimeParams["search_path"] = SearchPath(schemas...)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(4)
	return db
}

// tenantDB opens a tenant's pool, creating and migrating its ohtkhub schema first.
func (pg *pgBackend) tenantDB(ctx context.Context, schema string) (*sql.DB, error) {
	api := APISchema(schema)
	if err := pg.migrate(ctx, api); err != nil {
		return nil, fmt.Errorf("ohtkdb: migrate %s: %w", api, err)
	}
	return pg.open(schema, api, "public"), nil
}

// migrate applies the api's migrations to its schema of one tenant, holding an advisory
// lock so that replicas starting together do not race.
func (pg *pgBackend) migrate(ctx context.Context, api string) error {
	db := pg.open(api, "public")
	defer db.Close()
	return migrate.WithAdvisoryLock(ctx, db, api, func(conn *sql.Conn) error {
		if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{api}.Sanitize()); err != nil {
			return err
		}
		return applyMigrations(ctx, conn, "postgres")
	})
}
