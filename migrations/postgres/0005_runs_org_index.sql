-- The run-record index follows the queries that exist: runs of an org since a time (cost reports).
-- (org_id, team_id, created_at) put every insert at a random spot among 10,000 team ranges, which
-- cost the router about a third of its SQL time per run; (org_id, created_at) appends per org.
DROP INDEX runs_team;
CREATE INDEX runs_org_created ON runs (org_id, created_at);
