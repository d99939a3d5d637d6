package ohtkdb

import (
	"context"
	"embed"

	"github.com/ohtkhub/ohtkhub/internal/migrate"
)

//go:embed migrations
var migrations embed.FS

// applyMigrations applies, in order, the migrations of one set ("public", "tenant" or
// "postgres") not yet applied.
func applyMigrations(ctx context.Context, db migrate.DB, set string) error {
	return migrate.Apply(ctx, db, migrations, "migrations/"+set, "ohtkhub_migrations")
}
