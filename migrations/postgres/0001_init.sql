-- abgate schema, PostgreSQL dialect.

CREATE TABLE models (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    version     TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL CHECK (source IN ('local', 'remote')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE model_backends (
    id          BIGSERIAL PRIMARY KEY,
    model_id    BIGINT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (model_id, url)
);

CREATE TABLE layers (
    id          BIGSERIAL PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE experiments (
    id           BIGSERIAL PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    route        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'running', 'paused', 'stopped', 'archived')),
    hash_seed    TEXT NOT NULL,
    hash_version INTEGER NOT NULL,
    coverage     DOUBLE PRECISION NOT NULL,
    layer_id     BIGINT REFERENCES layers (id),
    layer_start  DOUBLE PRECISION NOT NULL DEFAULT 0,
    layer_end    DOUBLE PRECISION NOT NULL DEFAULT 1,
    targeting    TEXT NOT NULL DEFAULT '[]',
    allow_list   TEXT NOT NULL DEFAULT '{}',
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    stopped_at   TIMESTAMPTZ,
    archived_at  TIMESTAMPTZ
);
CREATE INDEX experiments_status_route ON experiments (status, route);
CREATE INDEX experiments_layer ON experiments (layer_id);

CREATE TABLE variants (
    id             BIGSERIAL PRIMARY KEY,
    experiment_id  BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    model          TEXT NOT NULL,
    weight         DOUBLE PRECISION NOT NULL,
    control        BOOLEAN NOT NULL DEFAULT false,
    shadow         BOOLEAN NOT NULL DEFAULT false,
    shadow_percent DOUBLE PRECISION NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL,
    UNIQUE (experiment_id, key)
);
CREATE INDEX variants_model ON variants (model);

CREATE TABLE metrics (
    id             BIGSERIAL PRIMARY KEY,
    experiment_id  BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    type           TEXT NOT NULL,
    role           TEXT NOT NULL,
    direction      TEXT NOT NULL,
    window_hours   DOUBLE PRECISION NOT NULL DEFAULT 0,
    lookback_hours DOUBLE PRECISION NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL,
    UNIQUE (experiment_id, key)
);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_key   TEXT NOT NULL,
    before       TEXT,
    after        TEXT,
    diff         TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_key, id);

-- Exposures are the one table that grows without bound (a row per routed
-- prediction; a billion rows is a few months of a busy route). Layout:
--   * range partitions by month on "at": writes go to the newest partition
--     only, retention is DROP TABLE of an old partition (no bulk DELETE, no
--     vacuum storm), and time-windowed queries prune partitions;
--   * no primary key: the log is append-only and a global key would have to
--     include "at" anyway; deduplication of imports lives in imported_events;
--   * (experiment_id, unit_id, at) INCLUDE (variant_id): per-experiment
--     aggregation ("first exposure and variant of every unit") is an
--     index-only scan of one experiment's key range in each partition;
--   * BRIN on "at" inside each partition: a few pages that let drift and
--     time-window queries skip blocks, since rows arrive in time order;
--   * a DEFAULT partition so an insert never fails for a month with no
--     partition yet; abgate_ensure_exposure_partitions() creates the months
--     ahead and moves any rows that landed in the default.
CREATE TABLE exposures (
    experiment_id   BIGINT NOT NULL,
    variant_id      BIGINT NOT NULL,
    unit_id         TEXT NOT NULL,
    request_id      TEXT NOT NULL DEFAULT '',
    at              TIMESTAMPTZ NOT NULL,
    latency_us      INTEGER NOT NULL DEFAULT 0,
    status          SMALLINT NOT NULL DEFAULT 0,
    fallback        BOOLEAN NOT NULL DEFAULT false,
    shadow          BOOLEAN NOT NULL DEFAULT false,
    predicted_label TEXT,
    confidence      REAL,
    event_id        TEXT
) PARTITION BY RANGE (at);
CREATE TABLE exposures_default PARTITION OF exposures DEFAULT;
CREATE INDEX exposures_experiment_unit ON exposures (experiment_id, unit_id, at) INCLUDE (variant_id);
CREATE INDEX exposures_request ON exposures (request_id) WHERE request_id <> '';
CREATE INDEX exposures_at_brin ON exposures USING brin (at);

-- abgate_ensure_exposure_partitions creates the monthly partitions of
-- exposures from the month of "start" for "months" months. Rows of such a
-- month that are already in the default partition are moved into the new
-- partition in the same transaction. Safe to call at any time and from any
-- number of processes (it takes a transaction-level advisory lock).
CREATE FUNCTION abgate_ensure_exposure_partitions(start TIMESTAMPTZ, months INTEGER)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    lo      TIMESTAMPTZ;
    hi      TIMESTAMPTZ;
    part    TEXT;
    created INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('abgate_exposure_partitions'));
    FOR i IN 0 .. months - 1 LOOP
        -- Month arithmetic on UTC wall-clock time: timestamptz + interval
        -- would count months in the session's time zone.
        lo := (date_trunc('month', start AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (date_trunc('month', start AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'exposures_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE exposures INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM exposures_default WHERE at >= %L AND at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE exposures ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
SELECT abgate_ensure_exposure_partitions(now() - interval '1 month', 4);

-- Outcomes: conversions, values and true labels, per unit and metric.
-- Fewer rows than exposures (only units that did something), read per
-- (experiment, metric) range; a BRIN index serves time windows.
CREATE TABLE outcomes (
    id            BIGSERIAL PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    metric_key    TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    request_id    TEXT NOT NULL DEFAULT '',
    value         DOUBLE PRECISION,
    label         TEXT,
    at            TIMESTAMPTZ NOT NULL,
    event_id      TEXT
);
CREATE INDEX outcomes_experiment_metric_unit ON outcomes (experiment_id, metric_key, unit_id, at) INCLUDE (value);
CREATE INDEX outcomes_request ON outcomes (request_id) WHERE request_id <> '';
CREATE INDEX outcomes_at_brin ON outcomes USING brin (at);

-- imported_events deduplicates NDJSON imports: an event id is stored once
-- per experiment, whatever its type, so a repeated import adds nothing.
CREATE TABLE imported_events (
    experiment_id BIGINT NOT NULL,
    event_id      TEXT NOT NULL,
    PRIMARY KEY (experiment_id, event_id)
);

-- config_version is bumped in the transaction of every change that routers
-- must see (experiments, variants, models); PostgreSQL routers also LISTEN
-- on the channel abgate_config.
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 1);
