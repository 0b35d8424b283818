-- Webhook signing secrets per org and provider (`slack`, `github`, `pagerduty`, `incidentio`,
-- `generic/<source>`), written through the admin API and read only by the ingest to verify
-- signatures: no API returns them. `secrets` is a JSON array of strings (several during a rotation).
-- They are kept as given, because an HMAC can only be checked with the secret itself.
CREATE TABLE webhook_secrets (
    org_id     TEXT   NOT NULL,
    provider   TEXT   NOT NULL,
    secrets    TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);
