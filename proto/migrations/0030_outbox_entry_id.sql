-- The stream entry each published event became (the id XADD answered), so the aggregator can
-- tell a job whose entry Redis lost from one still waiting in the stream, and publish it again
-- (services/aggregator/consumer.c, docs/operations.md "Redis with Sentinel"). Redis loses
-- entries when a failover promotes a replica that had not received them yet, when an
-- append-only file is cut short, or when an older snapshot is restored.
--
-- Expand only (docs/operations.md, "Start order and upgrades"): an api of the previous release
-- publishes without it (NULL), and the check passes such events over.
ALTER TABLE outbox ADD COLUMN entry_id text;

-- A job's events, for the check above: it looks at the last event of each job still to run.
CREATE INDEX outbox_job ON outbox (job_id, id) WHERE job_id IS NOT NULL;
