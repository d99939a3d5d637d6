package ohtkdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
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

// StandIns keeps one djangohash.StandIn per tenant database, checked for usernames that do
// not exist so that they cost what the tenant's stored hashes cost. The zero value is ready
// to use.
type StandIns struct {
	m sync.Map // *sql.DB → *djangohash.StandIn
}

// For returns the stand-in of db. A new one starts with the cost of the hash of the user who
// logged in last (RecentPasswordHash; on an error, logged, with the default cost) and follows
// the hashes checked since.
func (s *StandIns) For(ctx context.Context, db *sql.DB, log *slog.Logger) *djangohash.StandIn {
	if v, ok := s.m.Load(db); ok {
		return v.(*djangohash.StandIn)
	}
	si := new(djangohash.StandIn)
	if encoded, err := RecentPasswordHash(ctx, db); err != nil {
		log.WarnContext(ctx, "stand-in password hash", "err", err)
	} else {
		si.Observe(encoded)
	}
	v, _ := s.m.LoadOrStore(db, si)
	return v.(*djangohash.StandIn)
}
