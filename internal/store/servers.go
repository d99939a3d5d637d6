package store

import (
	"context"
	"time"
)

// ServerRecord is a user's running server as the hub last knew it.
type ServerRecord struct {
	User     string
	HandleID string
	URL      string
	Started  time.Time
}

// SaveServer records a user's running server, replacing an earlier record.
func (s *Store) SaveServer(ctx context.Context, r ServerRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_servers (user_name, handle_id, url, started_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_name) DO UPDATE SET handle_id = excluded.handle_id, url = excluded.url, started_at = excluded.started_at`,
		r.User, r.HandleID, r.URL, formatTime(r.Started))
	return err
}

// DeleteServer forgets a user's server.
func (s *Store) DeleteServer(ctx context.Context, user string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM hub_servers WHERE user_name = $1`, user)
	return err
}

// Servers returns every recorded running server.
func (s *Store) Servers(ctx context.Context) ([]ServerRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_name, handle_id, url, started_at FROM hub_servers ORDER BY user_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ServerRecord
	for rows.Next() {
		var r ServerRecord
		var started string
		if err := rows.Scan(&r.User, &r.HandleID, &r.URL, &started); err != nil {
			return nil, err
		}
		r.Started = parseTime(started)
		out = append(out, r)
	}
	return out, rows.Err()
}
