-- Run records hold what is queried; the run document itself is the AGENT_RUNS message.
--
-- * The index follows the queries that exist: runs of an org since a time (cost reports).
--   (org_id, team_id, created_at) put every insert at a random spot among thousands of team ranges;
--   (org_id, created_at) appends per org.
-- * `document` duplicated the AGENT_RUNS message and was two thirds of each row: writing it (and
--   rewriting it when the run is marked dispatched) was the largest part of the router's SQL cost.
--   Rows written before this migration lose it; the messages stay in AGENT_RUNS (7 days).
-- * `matched` keeps the routing claim that chose the team (`<kind>=<value>`), for audits.
DROP INDEX runs_team;
CREATE INDEX runs_org_created ON runs (org_id, created_at);
ALTER TABLE runs DROP COLUMN document;
ALTER TABLE runs ADD COLUMN matched TEXT NOT NULL DEFAULT '';
