-- kqe-api records the outcome of an Idempotency-Key request after the fact,
-- and the aggregator removes keys older than a day.
GRANT UPDATE ON idempotency_keys TO kqe_service;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
