-- Run records hold what is queried; the run document itself is the AGENT_RUNS message.
--
-- * `document` duplicated the AGENT_RUNS message and was two thirds of each row: writing it (and
--   rewriting it when the run is marked dispatched) was the largest part of the router's SQL cost.
--   Rows written before this migration lose it; the messages stay in AGENT_RUNS (7 days).
-- * `matched` keeps the routing claim that chose the team (`<kind>=<value>`), for audits.
-- * The table is clustered on the run id (WITHOUT ROWID): run ids are time-ordered, so inserts append
--   to one b-tree instead of a rowid table plus a unique index, and marking a run dispatched is one
--   lookup, not two.
-- * The index follows the queries that exist: runs of an org since a time (cost reports).
--   (org_id, team_id, created_at) put every insert at a random spot among thousands of team ranges;
--   (org_id, created_at) appends per org.
CREATE TABLE runs_v5 (
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
    matched         TEXT   NOT NULL DEFAULT '',
    dispatched_at   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO runs_v5 (run_id, event_id, org_id, team_id, source, event_type, deployment_mode, subject,
    config_version, status, replay_of, dispatched_at, created_at, updated_at)
SELECT run_id, event_id, org_id, team_id, source, event_type, deployment_mode, subject,
    config_version, status, replay_of, dispatched_at, created_at, updated_at FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v5 RENAME TO runs;
CREATE INDEX runs_org_created ON runs (org_id, created_at);
