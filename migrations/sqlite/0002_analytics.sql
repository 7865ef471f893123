-- Analytics snapshots: every computation of an experiment's results is
-- kept, so that the report shows lift and p-values over time. report is the
-- Results JSON of the API.
CREATE TABLE analytics_snapshots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    computed_at   TIMESTAMP NOT NULL,
    duration_ms   REAL NOT NULL DEFAULT 0,
    report        TEXT NOT NULL
);
CREATE INDEX analytics_snapshots_experiment ON analytics_snapshots (experiment_id, computed_at);

-- Accuracy joins labels to predictions by request id.
CREATE INDEX outcomes_experiment_request ON outcomes (experiment_id, request_id) WHERE label IS NOT NULL;
