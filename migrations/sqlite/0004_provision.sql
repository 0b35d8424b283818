-- Provisioning: the desired runtime of each provisioned team, provisioning runs and their steps,
-- idempotency keys of the provisioning API, and deletions waiting for their grace period.
-- Timestamps are Unix milliseconds; JSON is stored as TEXT.

-- One row per provisioned team: what the provisioner must make true. `spec` is the validated
-- `dedicated_config` (JSON); `runtime_token` is the team token handed to the team's pods through
-- their Secret: kept as given because the pod needs the token itself (no API returns it).
-- `url_set` = 1 once the provisioner has pointed the team's `agent_service_url` at its service.
CREATE TABLE provision_deployments (
    org_id        TEXT    NOT NULL,
    team_id       TEXT    NOT NULL,
    mode          TEXT    NOT NULL CHECK (mode IN ('shared', 'dedicated')),
    spec          TEXT    NOT NULL,
    pipeline      TEXT,
    runtime_token TEXT,
    run_id        TEXT    NOT NULL,
    generation    BIGINT  NOT NULL,
    url_set       BIGINT  NOT NULL DEFAULT 0,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (org_id, team_id)
);

CREATE TABLE provision_runs (
    run_id      TEXT   PRIMARY KEY,
    org_id      TEXT   NOT NULL,
    team_id     TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    error       TEXT,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX provision_runs_team ON provision_runs (org_id, team_id, created_at);

CREATE TABLE provision_steps (
    run_id      TEXT   NOT NULL,
    step        TEXT   NOT NULL,
    position    BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    detail      TEXT,
    error       TEXT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, step)
);

-- The API's idempotency keys, per org: the same key with the same body hash is the same run.
CREATE TABLE provision_idempotency (
    org_id       TEXT   NOT NULL,
    idem_key     TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    run_id       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, idem_key)
);

-- Objects of a team that went back to shared: deleted once `delete_after` has passed, unless the
-- team is provisioned dedicated again before that (the row is then removed).
CREATE TABLE provision_deletions (
    org_id       TEXT   NOT NULL,
    team_id      TEXT   NOT NULL,
    run_id       TEXT   NOT NULL,
    delete_after BIGINT NOT NULL,
    PRIMARY KEY (org_id, team_id)
);
CREATE INDEX provision_deletions_due ON provision_deletions (delete_after);
