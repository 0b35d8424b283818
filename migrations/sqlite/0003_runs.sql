-- Agent runs, one row per run the router dispatched. The run id derives from the event id, so the
-- primary key is the router's idempotency rule: a redelivered or replayed event cannot make a second run.
-- (No index on event_id: the run id of an event is computable from its id, UUIDv5.)
CREATE TABLE runs (
    run_id          TEXT   PRIMARY KEY,
    event_id        TEXT   NOT NULL,
    org_id          TEXT   NOT NULL,
    team_id         TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    event_type      TEXT   NOT NULL,
    deployment_mode TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    config_version  TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    replay_of       TEXT,
    document        TEXT   NOT NULL,
    dispatched_at   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX runs_team ON runs (org_id, team_id, created_at);
