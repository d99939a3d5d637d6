-- Users' running servers, so a restarted hub can adopt the ones that outlived it.
CREATE TABLE hub_servers (
    user_name  TEXT PRIMARY KEY REFERENCES hub_users (name) ON DELETE CASCADE,
    handle_id  TEXT NOT NULL,
    url        TEXT NOT NULL,
    started_at TEXT NOT NULL
);
