-- abgate schema, SQLite dialect. Times are stored as UTC text written by
-- the driver (_time_format=sqlite), which sorts in time order.

CREATE TABLE models (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    version     TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL CHECK (source IN ('local', 'remote')),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE model_backends (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id    INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (model_id, url)
);

CREATE TABLE layers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE experiments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    route        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'running', 'paused', 'stopped', 'archived')),
    hash_seed    TEXT NOT NULL,
    hash_version INTEGER NOT NULL,
    coverage     REAL NOT NULL,
    layer_id     INTEGER REFERENCES layers (id),
    layer_start  REAL NOT NULL DEFAULT 0,
    layer_end    REAL NOT NULL DEFAULT 1,
    targeting    TEXT NOT NULL DEFAULT '[]',
    allow_list   TEXT NOT NULL DEFAULT '{}',
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    stopped_at   TIMESTAMP,
    archived_at  TIMESTAMP
);
-- The router loads the running experiments of every route.
CREATE INDEX experiments_status_route ON experiments (status, route);
CREATE INDEX experiments_layer ON experiments (layer_id);

CREATE TABLE variants (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id  INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    model          TEXT NOT NULL,
    weight         REAL NOT NULL,
    control        BOOLEAN NOT NULL DEFAULT 0,
    shadow         BOOLEAN NOT NULL DEFAULT 0,
    shadow_percent REAL NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL,
    UNIQUE (experiment_id, key)
);
-- "Which experiments use model m?" (model deletion, backend fallbacks).
CREATE INDEX variants_model ON variants (model);

CREATE TABLE metrics (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id  INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    type           TEXT NOT NULL,
    role           TEXT NOT NULL,
    direction      TEXT NOT NULL,
    window_hours   REAL NOT NULL DEFAULT 0,
    lookback_hours REAL NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL,
    UNIQUE (experiment_id, key)
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TIMESTAMP NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_key   TEXT NOT NULL,
    before       TEXT,
    after        TEXT,
    diff         TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_key, id);

-- Exposures: one row per routed prediction (or imported exposure).
CREATE TABLE exposures (
    id              INTEGER PRIMARY KEY,
    experiment_id   INTEGER NOT NULL,
    variant_id      INTEGER NOT NULL,
    unit_id         TEXT NOT NULL,
    request_id      TEXT NOT NULL DEFAULT '',
    at              TIMESTAMP NOT NULL,
    latency_us      INTEGER NOT NULL DEFAULT 0,
    status          INTEGER NOT NULL DEFAULT 0,
    fallback        BOOLEAN NOT NULL DEFAULT 0,
    shadow          BOOLEAN NOT NULL DEFAULT 0,
    predicted_label TEXT,
    confidence      REAL,
    event_id        TEXT
);
-- Per-experiment aggregation: first exposure and variant of every unit.
CREATE INDEX exposures_experiment_unit ON exposures (experiment_id, unit_id, at, variant_id);
-- Feedback joins by request id. Not partial (WHERE request_id <> '') as on
-- PostgreSQL: SQLite uses a partial index only for queries that repeat its
-- WHERE term, so "WHERE request_id = ?" would scan the table.
CREATE INDEX exposures_request ON exposures (request_id);
-- Time windows (drift, retention).
CREATE INDEX exposures_at ON exposures (at);

-- Outcomes: conversions, values and true labels, per unit and metric.
CREATE TABLE outcomes (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    metric_key    TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    request_id    TEXT NOT NULL DEFAULT '',
    value         REAL,
    label         TEXT,
    at            TIMESTAMP NOT NULL,
    event_id      TEXT
);
CREATE INDEX outcomes_experiment_metric_unit ON outcomes (experiment_id, metric_key, unit_id, at, value);
CREATE INDEX outcomes_request ON outcomes (request_id);

-- imported_events deduplicates NDJSON imports: an event id is stored once
-- per experiment, whatever its type, so a repeated import adds nothing.
CREATE TABLE imported_events (
    experiment_id INTEGER NOT NULL,
    event_id      TEXT NOT NULL,
    PRIMARY KEY (experiment_id, event_id)
);

-- config_version is bumped in the transaction of every change that routers
-- must see (experiments, variants, models); SQLite routers poll it.
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 1);
