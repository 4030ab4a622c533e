-- Which aggregator process ran a job's current attempt (its consumer name,
-- made unique per process start). A job is started again by the process that
-- postponed it — its database was unreachable, full or timed out — without
-- counting another attempt: only a different runner starting a job still
-- 'running' means the previous one crashed or hung, which is what the
-- poison-job limit counts.
ALTER TABLE jobs ADD COLUMN runner text;
