-- Data drift: reference profiles per model (optionally per variant) and the
-- mergeable histograms of what was seen since, per hour.

-- drift_references holds a model's reference profile (JSON: per feature
-- its type, frozen bin edges or categories, reference counts, nulls and
-- summary). variant '' is the model's; a variant key overrides it for that
-- variant.
CREATE TABLE drift_references (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model      TEXT NOT NULL,
    variant    TEXT NOT NULL DEFAULT '',
    rows       INTEGER NOT NULL,
    profile    TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (model, variant)
);

-- drift_counts: observations per reference, variant, feature, hour and bin
-- of the reference (bin -1: null; bin -2: a feature the reference does not
-- have). Counts add up, so any window is a sum.
CREATE TABLE drift_counts (
    reference_id INTEGER NOT NULL REFERENCES drift_references (id) ON DELETE CASCADE,
    variant      TEXT NOT NULL,
    feature      TEXT NOT NULL,
    hour         TIMESTAMP NOT NULL,
    bin          INTEGER NOT NULL,
    count        REAL NOT NULL,
    PRIMARY KEY (reference_id, variant, feature, hour, bin)
);
CREATE INDEX drift_counts_window ON drift_counts (reference_id, variant, hour);

-- drift_confusion: labelled observations per true label and prediction.
CREATE TABLE drift_confusion (
    model      TEXT NOT NULL,
    variant    TEXT NOT NULL,
    hour       TIMESTAMP NOT NULL,
    label      TEXT NOT NULL,
    prediction TEXT NOT NULL,
    count      REAL NOT NULL,
    PRIMARY KEY (model, variant, hour, label, prediction)
);

-- drift_snapshots keeps every computed drift report of an experiment (the
-- Drift JSON), for the summary over days and the gauges.
CREATE TABLE drift_snapshots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    computed_at   TIMESTAMP NOT NULL,
    report        TEXT NOT NULL
);
CREATE INDEX drift_snapshots_experiment ON drift_snapshots (experiment_id, computed_at);
