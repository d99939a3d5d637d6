package ohtkdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RecentPasswordHash returns the stored password hash of the user of db who logged in
// last, or "" when no user has a PBKDF2 hash. Its cost stands for the cost of the hashes
// in use, which the check for an unknown username has to match.
func RecentPasswordHash(ctx context.Context, db *sql.DB) (string, error) {
	var encoded string
	err := db.QueryRowContext(ctx, `SELECT password FROM accounts_user WHERE password LIKE 'pbkdf2%'
		ORDER BY last_login IS NULL, last_login DESC, id DESC LIMIT 1`).Scan(&encoded)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ohtkdb: password hash: %w", err)
	}
	return encoded, nil
}
