package ohtkdb

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/config"
)

// ErrInvalidSchemaName is returned for a schema name ohtkhub does not create a tenant with.
var ErrInvalidSchemaName = errors.New("invalid schema name")

// newSchemaPattern is what a schema name of a tenant ohtkhub creates must match: an
// identifier django-tenants accepts (^[_a-zA-Z][_a-zA-Z0-9]{,62}$, not starting with pg_)
// that is also a hub tenant key (^[a-z0-9][a-z0-9_-]{0,39}$), so that the same name serves
// as schema, /t/{schema}/ path segment, hub tenant key and part of hub user names.
var newSchemaPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// reservedSchemas are PostgreSQL's own schemas; the hub's page names are reserved too
// (config.ReservedTenantKey).
var reservedSchemas = map[string]bool{"public": true, "information_schema": true}

// CheckNewSchemaName reports why name cannot be the schema name of a new tenant, or nil.
// Schema names of an existing OHTK database are read as they are, whatever they hold.
func CheckNewSchemaName(name string) error {
	if !newSchemaPattern.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-40 characters of a-z, 0-9 and _, starting with a letter", ErrInvalidSchemaName, name)
	}
	if strings.HasPrefix(name, "pg_") {
		return fmt.Errorf("%w %q: names starting with pg_ are PostgreSQL's", ErrInvalidSchemaName, name)
	}
	if reservedSchemas[name] || config.ReservedTenantKey(name) {
		return fmt.Errorf("%w %q: reserved", ErrInvalidSchemaName, name)
	}
	return nil
}
