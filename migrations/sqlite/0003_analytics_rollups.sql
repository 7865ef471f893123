-- Incremental analytics: per-unit state and per-variant sums of every
-- experiment, folded from the exposures and outcomes written since the
-- last refresh (rows are folded by id: SQLite has one writer at a time, so
-- ids commit in order).

-- analytics_state is how far the rollups of an experiment have folded and
-- for which metric definitions (fingerprint); a change of definitions
-- rebuilds them.
CREATE TABLE analytics_state (
    experiment_id     INTEGER PRIMARY KEY REFERENCES experiments (id) ON DELETE CASCADE,
    fingerprint       TEXT NOT NULL,
    exposures_through INTEGER NOT NULL,
    outcomes_through  INTEGER NOT NULL,
    folds             INTEGER NOT NULL DEFAULT 0,
    snapshot          TEXT NOT NULL DEFAULT '', -- PostgreSQL only
    folded_at         TIMESTAMP NOT NULL
);

-- analytics_units: every exposed unit, its variant and first exposure;
-- multi marks units exposed to more than one variant (left out).
CREATE TABLE analytics_units (
    experiment_id INTEGER NOT NULL,
    unit_id       TEXT NOT NULL,
    variant_id    INTEGER NOT NULL,
    first_at      TIMESTAMP NOT NULL,
    multi         BOOLEAN NOT NULL DEFAULT 0,
    -- folded_in is the fold that last recomputed the unit's values.
    folded_in     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, unit_id)
);

-- analytics_unit_values: a unit's attributed outcomes per metric: the sum
-- and "any value > 0" after first exposure (y) and in the lookback (x).
CREATE TABLE analytics_unit_values (
    experiment_id INTEGER NOT NULL,
    metric_key    TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    y_sum         REAL NOT NULL,
    y_any         INTEGER NOT NULL,
    x_sum         REAL NOT NULL,
    x_any         INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, unit_id, metric_key)
);

-- analytics_sums: sufficient statistics per metric and variant. metric_key
-- '' holds the analysed units per variant, and in variant 0 the units with
-- multiple exposures.
CREATE TABLE analytics_sums (
    experiment_id INTEGER NOT NULL,
    metric_key    TEXT NOT NULL,
    variant_id    INTEGER NOT NULL,
    n             REAL NOT NULL,
    sum_y         REAL NOT NULL,
    sum_y2        REAL NOT NULL,
    sum_x         REAL NOT NULL,
    sum_x2        REAL NOT NULL,
    sum_xy        REAL NOT NULL,
    PRIMARY KEY (experiment_id, metric_key, variant_id)
);
