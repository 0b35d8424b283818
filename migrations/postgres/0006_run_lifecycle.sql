-- The run lifecycle of the bridge: queued → delivering → running → completed | failed | timeout.
-- * One timestamp column per stage (the time it was first reached), the deadline (the run's timeout
--   counted from its first delivery; the sweeper moves runs past it to `timeout`), attempts, where
--   it was delivered, and a bounded result text and error.
-- * `run_transitions` keeps each status a run reached once (the first time), with a detail: at most
--   six rows a run, whatever a flood or a retrying agent does.
-- * `runs_active` serves the sweeper (runs not finished, by deadline); `runs_org_event` the lookup of
--   an event's runs (a run id needs the event time as well as its id, so it is not computable from
--   an event id alone).
ALTER TABLE runs ADD COLUMN delivering_at BIGINT;
ALTER TABLE runs ADD COLUMN running_at BIGINT;
ALTER TABLE runs ADD COLUMN finished_at BIGINT;
ALTER TABLE runs ADD COLUMN deadline_at BIGINT;
ALTER TABLE runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN delivered_to TEXT;
ALTER TABLE runs ADD COLUMN protocol TEXT;
ALTER TABLE runs ADD COLUMN result_text TEXT;
ALTER TABLE runs ADD COLUMN error TEXT;
CREATE TABLE run_transitions (
    run_id  TEXT   NOT NULL,
    status  TEXT   NOT NULL,
    at      BIGINT NOT NULL,
    detail  TEXT,
    PRIMARY KEY (run_id, status)
);
CREATE INDEX runs_active ON runs (status, deadline_at);
CREATE INDEX runs_org_event ON runs (org_id, event_id);
