-- Tenant-level claims (a Slack workspace, a GitHub owner) name the identity a provider signs: one org
-- at most may own each, so the database decides concurrent claimants across orgs (issue 13, finding 1).
CREATE UNIQUE INDEX routing_claims_tenant ON routing_claims (kind, value)
    WHERE kind IN ('slack_workspace_ids', 'github_owners');
