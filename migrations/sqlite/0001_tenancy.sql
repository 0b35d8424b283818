-- Tenancy: the org tree with raw configs, their history, locks, routing claims, tokens and audit.
-- Timestamps are Unix milliseconds; JSON is stored as TEXT.
CREATE TABLE nodes (
    org_id       TEXT    NOT NULL,
    node_id      TEXT    NOT NULL,
    parent_id    TEXT,
    node_type    TEXT    NOT NULL CHECK (node_type IN ('org', 'unit', 'team')),
    name         TEXT    NOT NULL,
    config       TEXT    NOT NULL DEFAULT '{}',
    locked_paths TEXT    NOT NULL DEFAULT '[]',
    version      BIGINT  NOT NULL DEFAULT 1,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (org_id, node_id),
    FOREIGN KEY (org_id, parent_id) REFERENCES nodes (org_id, node_id)
);
CREATE INDEX nodes_parent ON nodes (org_id, parent_id);

CREATE TABLE config_history (
    org_id   TEXT   NOT NULL,
    node_id  TEXT   NOT NULL,
    version  BIGINT NOT NULL,
    config   TEXT   NOT NULL,
    diff     TEXT   NOT NULL,
    actor    TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (org_id, node_id, version)
);

-- One owner per identifier per org: the database, not the application, decides concurrent writers.
CREATE TABLE routing_claims (
    org_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    team_id TEXT NOT NULL,
    PRIMARY KEY (org_id, kind, value)
);
CREATE INDEX routing_claims_team ON routing_claims (org_id, team_id);
CREATE INDEX routing_claims_identifier ON routing_claims (kind, value);

CREATE TABLE tokens (
    token_id     TEXT   PRIMARY KEY,
    token_hash   TEXT   NOT NULL UNIQUE,
    org_id       TEXT   NOT NULL,
    team_id      TEXT,
    name         TEXT   NOT NULL,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX tokens_org ON tokens (org_id, team_id);

CREATE TABLE audit_log (
    id      TEXT   PRIMARY KEY,
    org_id  TEXT,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    detail  TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, at);
