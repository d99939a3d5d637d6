-- OHTK's tables in one tenant, with OHTK's table and column names.
-- Storage conventions (SQLite): timestamps are TEXT in UTC, '2006-01-02T15:04:05.000000Z';
-- dates are TEXT '2006-01-02'; booleans INTEGER 0/1; uuid TEXT; jsonb TEXT (JSON);
-- geometry points TEXT 'SRID=4326;POINT(<lng> <lat>)'.

CREATE TABLE accounts_user (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    password     TEXT NOT NULL,
    last_login   TEXT,
    is_superuser INTEGER NOT NULL DEFAULT 0,
    username     TEXT NOT NULL UNIQUE,
    first_name   TEXT NOT NULL DEFAULT '',
    last_name    TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    is_staff     INTEGER NOT NULL DEFAULT 0,
    is_active    INTEGER NOT NULL DEFAULT 1,
    date_joined  TEXT NOT NULL,
    avatar       TEXT,
    fcm_token    TEXT
);

CREATE TABLE accounts_authority (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    area       TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE TABLE accounts_authority_inherits (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    from_authority_id INTEGER NOT NULL REFERENCES accounts_authority (id),
    to_authority_id   INTEGER NOT NULL REFERENCES accounts_authority (id),
    UNIQUE (from_authority_id, to_authority_id)
);
CREATE INDEX accounts_authority_inherits_to ON accounts_authority_inherits (to_authority_id);

CREATE TABLE accounts_authorityuser (
    user_ptr_id          INTEGER PRIMARY KEY REFERENCES accounts_user (id),
    authority_id         INTEGER NOT NULL REFERENCES accounts_authority (id),
    role                 TEXT NOT NULL DEFAULT 'REP',
    telephone            TEXT,
    address              TEXT,
    avatar_url           TEXT,
    thumbnail_avatar_url TEXT,
    consent              INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE reports_category (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    icon       TEXT,
    ordering   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE TABLE reports_reporttype (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    category_id            INTEGER REFERENCES reports_category (id),
    definition             TEXT NOT NULL,
    followup_definition    TEXT,
    renderer_data_template TEXT,
    ordering               INTEGER NOT NULL DEFAULT 0,
    state_definition_id    INTEGER,
    published              INTEGER NOT NULL DEFAULT 0,
    is_followable          INTEGER NOT NULL DEFAULT 0,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    deleted_at             TEXT
);

CREATE TABLE reports_reporttype_authorities (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    reporttype_id TEXT NOT NULL REFERENCES reports_reporttype (id),
    authority_id  INTEGER NOT NULL REFERENCES accounts_authority (id),
    UNIQUE (reporttype_id, authority_id)
);

CREATE TABLE reports_incidentreport (
    id                          TEXT PRIMARY KEY,
    platform                    TEXT,
    reported_by_id              INTEGER REFERENCES accounts_user (id),
    report_type_id              TEXT NOT NULL REFERENCES reports_reporttype (id),
    data                        TEXT NOT NULL,
    renderer_data               TEXT NOT NULL DEFAULT '',
    test_flag                   INTEGER NOT NULL DEFAULT 0,
    cover_image_id              TEXT,
    incident_date               TEXT NOT NULL,
    origin_data                 TEXT,
    origin_renderer_data        TEXT,
    gps_location                TEXT,
    relevant_authority_resolved INTEGER NOT NULL DEFAULT 0,
    case_id                     TEXT,
    thread_id                   INTEGER,
    definition                  TEXT,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    deleted_at                  TEXT
);
CREATE INDEX reports_incidentreport_created ON reports_incidentreport (created_at, id);
CREATE INDEX reports_incidentreport_incident_date ON reports_incidentreport (incident_date, id);
CREATE INDEX reports_incidentreport_updated ON reports_incidentreport (updated_at);

CREATE TABLE reports_incidentreport_relevant_authorities (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    incidentreport_id TEXT NOT NULL REFERENCES reports_incidentreport (id),
    authority_id      INTEGER NOT NULL REFERENCES accounts_authority (id),
    UNIQUE (incidentreport_id, authority_id)
);
CREATE INDEX reports_incidentreport_relevant_authorities_authority
    ON reports_incidentreport_relevant_authorities (authority_id);

CREATE TABLE reports_followupreport (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES reports_incidentreport (id),
    report_type_id TEXT NOT NULL REFERENCES reports_reporttype (id),
    reported_by_id INTEGER REFERENCES accounts_user (id),
    data           TEXT NOT NULL,
    renderer_data  TEXT NOT NULL DEFAULT '',
    test_flag      INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);

CREATE TABLE reports_zeroreport (
    id             TEXT PRIMARY KEY,
    platform       TEXT,
    reported_by_id INTEGER NOT NULL REFERENCES accounts_user (id),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);
CREATE INDEX reports_zeroreport_created ON reports_zeroreport (created_at, id);

-- Django OAuth Toolkit 3.x tables.
CREATE TABLE oauth2_provider_application (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id                 TEXT NOT NULL UNIQUE,
    user_id                   INTEGER REFERENCES accounts_user (id),
    redirect_uris             TEXT NOT NULL DEFAULT '',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '',
    client_type               TEXT NOT NULL,
    authorization_grant_type  TEXT NOT NULL,
    client_secret             TEXT NOT NULL DEFAULT '',
    hash_client_secret        INTEGER NOT NULL DEFAULT 1,
    name                      TEXT NOT NULL DEFAULT '',
    skip_authorization        INTEGER NOT NULL DEFAULT 0,
    created                   TEXT NOT NULL,
    updated                   TEXT NOT NULL,
    algorithm                 TEXT NOT NULL DEFAULT '',
    allowed_origins           TEXT NOT NULL DEFAULT ''
);

CREATE TABLE oauth2_provider_accesstoken (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                 INTEGER REFERENCES accounts_user (id),
    source_refresh_token_id INTEGER UNIQUE,
    token                   TEXT NOT NULL,
    token_checksum          TEXT NOT NULL UNIQUE,
    id_token_id             INTEGER,
    application_id          INTEGER REFERENCES oauth2_provider_application (id),
    expires                 TEXT NOT NULL,
    scope                   TEXT NOT NULL DEFAULT '',
    created                 TEXT NOT NULL,
    updated                 TEXT NOT NULL
);

CREATE TABLE oauth2_provider_refreshtoken (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES accounts_user (id),
    token           TEXT NOT NULL,
    application_id  INTEGER NOT NULL REFERENCES oauth2_provider_application (id),
    access_token_id INTEGER UNIQUE REFERENCES oauth2_provider_accesstoken (id),
    token_family    TEXT,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL,
    revoked         TEXT,
    UNIQUE (token, revoked)
);

CREATE TABLE oauth2_provider_grant (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id               INTEGER NOT NULL REFERENCES accounts_user (id),
    code                  TEXT NOT NULL UNIQUE,
    application_id        INTEGER NOT NULL REFERENCES oauth2_provider_application (id),
    expires               TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL DEFAULT '',
    created               TEXT NOT NULL,
    updated               TEXT NOT NULL,
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    claims                TEXT NOT NULL DEFAULT ''
);

-- ohtkhub's own tables: API keys and the export audit log.
CREATE TABLE ohtkhub_apikey (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES accounts_user (id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    expires    TEXT,
    last_used  TEXT,
    revoked    TEXT
);

CREATE TABLE ohtkhub_export_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER,
    username    TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    resource    TEXT NOT NULL,
    filters     TEXT NOT NULL,
    format      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    started     TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    remote_addr TEXT NOT NULL DEFAULT ''
);
