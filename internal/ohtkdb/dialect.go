package ohtkdb

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the SQL dialect of a database the store opened. Queries are written once, in
// the SQL both dialects share ($1 placeholders, WITH RECURSIVE, EXISTS, CAST), and the few
// expressions that differ come from here.
type Dialect int

// The dialects of the store's backends.
const (
	SQLite Dialect = iota
	PostgreSQL
)

// DialectOf returns the dialect of a database opened by the store.
func DialectOf(db *sql.DB) Dialect {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return PostgreSQL
	}
	return SQLite
}

func (d Dialect) String() string {
	if d == PostgreSQL {
		return "postgresql"
	}
	return "sqlite"
}

// GroupConcat aggregates expr as "1,2,3" (order unspecified).
func (d Dialect) GroupConcat(expr string) string {
	if d == PostgreSQL {
		return "string_agg(CAST(" + expr + " AS text), ',')"
	}
	return "group_concat(" + expr + ")"
}

// Timestamp reads a timestamp column as text in TimeFormat (UTC, microseconds), the way
// SQLite stores it, so both backends give the same strings and keyset cursors.
func (d Dialect) Timestamp(col string) string {
	if d == PostgreSQL {
		return `to_char(` + col + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
	}
	return col
}

// Date reads a date column as text in DateFormat.
func (d Dialect) Date(col string) string {
	if d == PostgreSQL {
		return `to_char(` + col + `, 'YYYY-MM-DD')`
	}
	return col
}

// Point reads a point column as text "POINT(<lng> <lat>)" (SQLite stores EWKT text,
// PostgreSQL a PostGIS geometry whose x is the longitude), or NULL.
func (d Dialect) Point(col string) string {
	if d == PostgreSQL {
		return `CASE WHEN ` + col + ` IS NULL THEN NULL ELSE 'POINT(' || ST_X(` + col + `) || ' ' || ST_Y(` + col + `) || ')' END`
	}
	return col
}

// Text reads a uuid or JSON column as text.
func (d Dialect) Text(col string) string {
	if d == PostgreSQL {
		return "CAST(" + col + " AS text)"
	}
	return col
}

// SnapshotTx is how to begin a read-only transaction in which every query sees one
// snapshot of the data, or nil for SQLite, the demo backend, where each statement reads
// one snapshot (WAL) and a transaction would take the write lock (_txlock=immediate).
func (d Dialect) SnapshotTx() *sql.TxOptions {
	if d == PostgreSQL {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return nil
}

// HasColumn reports whether table (in the tenant's schema, for PostgreSQL the first of the
// search_path) has column. It tells apart versions of OHTK's dependencies, such as Django
// OAuth Toolkit before 3.0, whose access tokens have no token_checksum.
func HasColumn(ctx context.Context, db *sql.DB, table, column string) (bool, error) {
	q := `SELECT count(*) FROM pragma_table_info($1) WHERE name = $2`
	if DialectOf(db) == PostgreSQL {
		q = `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`
	}
	var n int
	if err := db.QueryRowContext(ctx, q, table, column).Scan(&n); err != nil {
		return false, fmt.Errorf("ohtkdb: columns of %s: %w", table, err)
	}
	return n > 0, nil
}
