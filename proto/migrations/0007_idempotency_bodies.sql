-- Answers without a resource to re-read (the batch import summary) are kept
-- verbatim for replay. Only handlers whose answer holds no personal data
-- (counts, ids, error codes) ask for this; see services/api/idempotency.h.
ALTER TABLE idempotency_keys ADD COLUMN body text;
