-- Mail (docs/programmes.md, Mail): what kqe tells people — a registration confirmed or on
-- the waiting list, a place that became free — is queued here in the transaction of the
-- write that causes it, and sent over SMTP by kqe-aggregator, never from a request.
--
-- Invariants, each with where it is kept:
--   1. A mail exists exactly when its write committed (same transaction: the API's write
--      path); it is sent at least once while the SMTP server takes it (the worker retries
--      with backoff, KQE_MAIL_ATTEMPTS times, then marks it failed).
--   2. Address and text may name people: stored encrypted (AES-256-GCM, associated data
--      "mail:<id>:recipient" and "mail:<id>:body"); the subject names no one.
--   3. Only the worker (role system) reads mails; any API caller whose write causes one
--      may queue it (RLS below).

CREATE TABLE mails (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    recipient_enc   text NOT NULL,
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body_enc        text NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text CHECK (length(last_error) <= 300), -- SMTP or transport, no address
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mails_due ON mails (next_attempt_at) WHERE status = 'queued';

ALTER TABLE mails ENABLE ROW LEVEL SECURITY;
ALTER TABLE mails FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON mails TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_insert ON mails FOR INSERT TO kqe_service
    WITH CHECK (kqe_ctx('role') IS NOT NULL AND status = 'queued' AND attempts = 0);
CREATE POLICY worker_read ON mails FOR SELECT TO kqe_service
    USING (kqe_ctx('role') = 'system');
CREATE POLICY worker_update ON mails FOR UPDATE TO kqe_service
    USING (kqe_ctx('role') = 'system') WITH CHECK (kqe_ctx('role') = 'system');
GRANT SELECT, INSERT, UPDATE ON mails TO kqe_service;
