-- Tables of the built-in OAuth2 provider that Django OAuth Toolkit keeps elsewhere
-- (Django's session table) or not at all (used authorization codes, for replay detection).

-- Browser sessions of /accounts/login/. Only a hash of the cookie value is stored.
CREATE TABLE ohtkhub_session (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash    TEXT NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES accounts_user (id),
    created     TEXT NOT NULL,
    expires     TEXT NOT NULL,
    remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ohtkhub_session_expires ON ohtkhub_session (expires);

-- Authorization codes already exchanged: a second exchange of one is a replay, and the
-- token family it produced is revoked (RFC 6749 section 4.1.2).
CREATE TABLE ohtkhub_used_grant (
    code_hash      TEXT PRIMARY KEY,
    application_id INTEGER NOT NULL,
    token_family   TEXT NOT NULL,
    used           TEXT NOT NULL
);
CREATE INDEX ohtkhub_used_grant_used ON ohtkhub_used_grant (used);
