-- Run records are the bridge's projection of AGENT_RUNS (the router no longer writes them): each
-- record keeps the AGENT_RUNS stream sequence of the message that created it. A later message with
-- the same run id (a replay after the stream's duplicate window) is a second publication of a run
-- that exists: the bridge acknowledges it without a second delivery. A redelivery of the same
-- message (a crash before its ack) has the same sequence and is delivered. NULL for records written
-- by an older router: any message of theirs is delivered as before.
ALTER TABLE runs ADD COLUMN agent_runs_seq BIGINT;
