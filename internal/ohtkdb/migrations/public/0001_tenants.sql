-- OHTK's public schema as django-tenants lays it out.
CREATE TABLE tenants_client (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_name TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);

CREATE TABLE tenants_domain (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    domain     TEXT NOT NULL UNIQUE,
    is_primary INTEGER NOT NULL DEFAULT 0,
    tenant_id  INTEGER NOT NULL REFERENCES tenants_client (id)
);

CREATE TABLE tenants_externaldomain (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name   TEXT NOT NULL,
    domain TEXT NOT NULL
);
