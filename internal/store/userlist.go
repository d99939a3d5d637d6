package store

import (
	"context"
	"math"
)

// ListUsers returns the users of one tenant (every tenant when tenantKey is empty), ordered by
// name, from offset, at most limit of them (all when limit is 0), and how many there are in all.
func (s *Store) ListUsers(ctx context.Context, tenantKey string, offset, limit int) ([]User, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM hub_users WHERE $1 = '' OR tenant_key = $1`, tenantKey).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 {
		limit = math.MaxInt32
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM hub_users WHERE $1 = '' OR tenant_key = $1 ORDER BY name LIMIT $2 OFFSET $3`,
		tenantKey, limit, max(offset, 0))
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, u)
	}
	return out, total, rows.Err()
}
