-- Incremental analytics: per-unit state and per-variant sums of every
-- experiment, folded from the exposures and outcomes written since the
-- last refresh.
--
-- Rows are folded by the transaction that wrote them: ingest_xid is that
-- transaction's id. A refresh folds, in one REPEATABLE READ snapshot, the
-- rows visible to it that the previous refresh's snapshot (stored in
-- analytics_state) did not see: a row committed during a refresh is folded
-- by the next, and none twice. Rows written before this migration have no
-- ingest_xid and are folded by the first refresh.
ALTER TABLE exposures ADD COLUMN ingest_xid BIGINT;
ALTER TABLE exposures ALTER COLUMN ingest_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX exposures_ingest_brin ON exposures USING brin (ingest_xid);
ALTER TABLE outcomes ADD COLUMN ingest_xid BIGINT;
ALTER TABLE outcomes ALTER COLUMN ingest_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX outcomes_ingest_brin ON outcomes USING brin (ingest_xid);

-- analytics_state is how far the rollups of an experiment have folded and
-- for which metric definitions (fingerprint); a change of definitions
-- rebuilds them. snapshot is the last fold's pg_snapshot;
-- exposures_through and outcomes_through are unused (0) on PostgreSQL.
CREATE TABLE analytics_state (
    experiment_id     BIGINT PRIMARY KEY REFERENCES experiments (id) ON DELETE CASCADE,
    fingerprint       TEXT NOT NULL,
    exposures_through BIGINT NOT NULL,
    outcomes_through  BIGINT NOT NULL,
    folds             BIGINT NOT NULL DEFAULT 0,
    snapshot          TEXT NOT NULL DEFAULT '',
    folded_at         TIMESTAMPTZ NOT NULL
);

-- analytics_units: every exposed unit, its variant and first exposure;
-- multi marks units exposed to more than one variant (left out).
CREATE TABLE analytics_units (
    experiment_id BIGINT NOT NULL,
    unit_id       TEXT NOT NULL,
    variant_id    BIGINT NOT NULL,
    first_at      TIMESTAMPTZ NOT NULL,
    multi         BOOLEAN NOT NULL DEFAULT false,
    -- folded_in is the fold that last recomputed the unit's values.
    folded_in     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, unit_id)
);

-- analytics_unit_values: a unit's attributed outcomes per metric: the sum
-- and "any value > 0" after first exposure (y) and in the lookback (x).
CREATE TABLE analytics_unit_values (
    experiment_id BIGINT NOT NULL,
    metric_key    TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    y_sum         DOUBLE PRECISION NOT NULL,
    y_any         INTEGER NOT NULL,
    x_sum         DOUBLE PRECISION NOT NULL,
    x_any         INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, unit_id, metric_key)
);

-- analytics_sums: sufficient statistics per metric and variant. metric_key
-- '' holds the analysed units per variant, and in variant 0 the units with
-- multiple exposures.
CREATE TABLE analytics_sums (
    experiment_id BIGINT NOT NULL,
    metric_key    TEXT NOT NULL,
    variant_id    BIGINT NOT NULL,
    n             DOUBLE PRECISION NOT NULL,
    sum_y         DOUBLE PRECISION NOT NULL,
    sum_y2        DOUBLE PRECISION NOT NULL,
    sum_x         DOUBLE PRECISION NOT NULL,
    sum_x2        DOUBLE PRECISION NOT NULL,
    sum_xy        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (experiment_id, metric_key, variant_id)
);
