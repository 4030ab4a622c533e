-- Retries of failed jobs: when the next attempt is due. The aggregator
-- re-enqueues due jobs through the outbox; after the maximum attempts a job
-- is 'dead' and copied to the dead-letter stream kqe:jobs:dead.
ALTER TABLE jobs ADD COLUMN next_attempt_at timestamptz;
CREATE INDEX jobs_retry_due ON jobs (next_attempt_at) WHERE status = 'failed';
