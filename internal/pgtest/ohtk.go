package pgtest

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Reader is the login role the api's data path uses in tests: it may read OHTK's tables
// and create its own schemas, and nothing else.
const Reader = "ohtkhub_reader"

//go:embed sql/public.sql
var publicSQL string

//go:embed sql/tenant.sql
var tenantSQL string

// templateDB holds PostGIS and the public schema; CreateOHTK copies it.
const templateDB = "ohtk_template"

// OHTK is an OHTK-shaped database in a cluster.
type OHTK struct {
	c    *Cluster
	name string
	// Admin is a superuser connection to the database (search_path public).
	Admin *sql.DB

	mu  sync.Mutex
	dbs []*sql.DB
}

var templates sync.Map // *Cluster → *sync.Once-guarded error

type templateState struct {
	once sync.Once
	err  error
}

// CreateOHTK creates database name with PostGIS, django-tenants' public tables and the
// Reader role's grants, and no tenants yet.
func (c *Cluster) CreateOHTK(ctx context.Context, name string) (*OHTK, error) {
	v, _ := templates.LoadOrStore(c, &templateState{})
	ts := v.(*templateState)
	ts.once.Do(func() { ts.err = c.createTemplate(ctx) })
	if ts.err != nil {
		return nil, ts.err
	}
	if err := c.exec(ctx, "postgres", `CREATE DATABASE `+ident(name)+` TEMPLATE `+templateDB); err != nil {
		return nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	if err := c.exec(ctx, "postgres", `GRANT CONNECT, CREATE ON DATABASE `+ident(name)+` TO `+Reader); err != nil {
		return nil, err
	}
	admin, err := c.Open(name, Superuser)
	if err != nil {
		return nil, err
	}
	return &OHTK{c: c, name: name, Admin: admin}, nil
}

func (c *Cluster) createTemplate(ctx context.Context) error {
	if err := c.exec(ctx, "postgres", `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+Reader+`') THEN CREATE ROLE `+Reader+` LOGIN; END IF;
	END $$`); err != nil {
		return fmt.Errorf("pgtest: role: %w", err)
	}
	if err := c.exec(ctx, "postgres", `CREATE DATABASE `+templateDB); err != nil {
		return fmt.Errorf("pgtest: template: %w", err)
	}
	if err := c.exec(ctx, templateDB, publicSQL+`;
		GRANT USAGE ON SCHEMA public TO `+Reader+`;
		GRANT SELECT ON tenants_client, tenants_domain, tenants_externaldomain TO `+Reader); err != nil {
		return fmt.Errorf("pgtest: public schema: %w", err)
	}
	return nil
}

func (c *Cluster) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL(db, Superuser))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Name is the database's name.
func (o *OHTK) Name() string { return o.name }

// URL is a connection URL of the database for user (Superuser or Reader).
func (o *OHTK) URL(user string) string { return o.c.URL(o.name, user) }

// AddTenant creates a tenant as django-tenants does: a row in tenants_client with its
// domains (the first one primary) and the schema with OHTK's tables and functions, readable
// by Reader. It returns a superuser connection whose search_path is the tenant's schema
// followed by extraSchemas (e.g. the api's own schema, to seed its tables too).
func (o *OHTK) AddTenant(ctx context.Context, schema, name string, domains []string, extraSchemas ...string) (*sql.DB, error) {
	tx, err := o.Admin.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO tenants_client (schema_name, name) VALUES ($1, $2) RETURNING id`, schema, name).Scan(&id); err != nil {
		return nil, fmt.Errorf("pgtest: tenant %q: %w", schema, err)
	}
	for i, d := range domains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants_domain (domain, is_primary, tenant_id) VALUES ($1, $2, $3)`, d, i == 0, id); err != nil {
			return nil, fmt.Errorf("pgtest: domain %q: %w", d, err)
		}
	}
	q := ident(schema)
	for _, stmt := range []string{
		`CREATE SCHEMA ` + q,
		`SET LOCAL search_path TO ` + q + `, public`,
		tenantSQL,
		`GRANT USAGE ON SCHEMA ` + q + ` TO ` + Reader,
		`GRANT SELECT ON ALL TABLES IN SCHEMA ` + q + ` TO ` + Reader,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA ` + q + ` GRANT SELECT ON TABLES TO ` + Reader,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("pgtest: tenant schema %q: %w", schema, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return o.SchemaDB(append([]string{schema}, extraSchemas...)...)
}

// SchemaDB opens a superuser connection whose search_path is schemas, then public.
func (o *OHTK) SchemaDB(schemas ...string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(o.URL(Superuser))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = ohtkdb.SearchPath(append(schemas, "public")...)
	db := stdlib.OpenDB(*cfg)
	o.mu.Lock()
	o.dbs = append(o.dbs, db)
	o.mu.Unlock()
	return db, nil
}

// Close closes the connections the OHTK handed out. The database stays.
func (o *OHTK) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, db := range o.dbs {
		db.Close()
	}
	o.dbs = nil
	return o.Admin.Close()
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// Drop closes the OHTK's connections and drops its database.
func (o *OHTK) Drop(ctx context.Context) error {
	o.Close()
	return o.c.exec(ctx, "postgres", `DROP DATABASE IF EXISTS `+ident(o.name)+` WITH (FORCE)`)
}

// SyncSequences moves every identity sequence of the first schema of db's search_path past
// the largest id in its table, as after rows were inserted with explicit ids (Django's
// loaddata does the same with sqlsequencereset).
func SyncSequences(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT table_schema, table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND is_identity = 'YES' LOOP
			EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), coalesce((SELECT max(%I) FROM %I.%I), 0) + 1, false)',
				quote_ident(r.table_schema) || '.' || quote_ident(r.table_name), r.column_name, r.column_name, r.table_schema, r.table_name);
		END LOOP;
	END $$`)
	return err
}

// ScaleReports copies the incident reports of a tenant, with their relevant authorities,
// until it holds total reports: each copy gets a new id and lies a whole number of days
// earlier than its original. It is how a seeded tenant reaches a million reports in
// seconds, with the seed's realistic answers.
func (o *OHTK) ScaleReports(ctx context.Context, schema string, total int) error {
	db, err := o.SchemaDB(schema)
	if err != nil {
		return err
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM reports_incidentreport`).Scan(&have); err != nil {
		return err
	}
	if have == 0 || have >= total {
		return nil
	}
	copies := (total - have + have - 1) / have
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`CREATE TEMP TABLE scale_map ON COMMIT DROP AS
			SELECT gen_random_uuid() AS id, r.id AS src, g.k
			FROM generate_series(1, $1::int) g(k) CROSS JOIN reports_incidentreport r
			ORDER BY g.k, r.created_at, r.id LIMIT $2`,
		`INSERT INTO reports_incidentreport (id, platform, reported_by_id, report_type_id, data, renderer_data, test_flag,
			cover_image_id, incident_date, origin_data, origin_renderer_data, gps_location, relevant_authority_resolved, case_id,
			thread_id, definition, created_at, updated_at, deleted_at)
		SELECT m.id, r.platform, r.reported_by_id, r.report_type_id, r.data, r.renderer_data, r.test_flag,
			r.cover_image_id, r.incident_date - m.k, r.origin_data, r.origin_renderer_data, r.gps_location, r.relevant_authority_resolved, NULL,
			NULL, r.definition, r.created_at - make_interval(days => m.k), r.updated_at - make_interval(days => m.k), r.deleted_at
		FROM scale_map m JOIN reports_incidentreport r ON r.id = m.src`,
		`INSERT INTO reports_incidentreport_relevant_authorities (incidentreport_id, authority_id)
		SELECT m.id, ra.authority_id FROM scale_map m JOIN reports_incidentreport_relevant_authorities ra ON ra.incidentreport_id = m.src`,
	} {
		var err error
		if strings.Contains(q, "$1") {
			_, err = tx.ExecContext(ctx, q, copies, total-have)
		} else {
			_, err = tx.ExecContext(ctx, q)
		}
		if err != nil {
			return fmt.Errorf("pgtest: scale %s: %w", schema, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}
