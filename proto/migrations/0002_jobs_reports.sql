-- Background jobs, the transactional outbox that feeds the Redis stream, and
-- immutable report snapshots.

CREATE TABLE jobs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text NOT NULL CHECK (kind IN ('build_report')),
    params      jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts    integer NOT NULL DEFAULT 0,
    error       text,
    result_id   uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);

CREATE INDEX jobs_status ON jobs (status, created_at);

-- Every write that must reach the job stream inserts a row here in the same
-- transaction. The API publishes it right after commit; the aggregator's relay
-- publishes whatever is left (Redis down, API crashed between commit and XADD).
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    job_id       uuid REFERENCES jobs (id),
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE reports (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id       uuid NOT NULL UNIQUE REFERENCES jobs (id),
    scope        text NOT NULL,
    period       text NOT NULL,
    params       jsonb NOT NULL,
    watermark    jsonb NOT NULL,
    generated_at timestamptz NOT NULL DEFAULT now(),
    content_hash text NOT NULL,
    tables       json NOT NULL  -- json, not jsonb: keeps the order tables were built in
);

CREATE INDEX reports_generated ON reports (generated_at, id);

-- Report snapshots are immutable: what was published stays as published.
CREATE FUNCTION reports_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'report snapshots are immutable' USING ERRCODE = 'KQ001';
END
$$;

CREATE TRIGGER reports_no_update BEFORE UPDATE OR DELETE ON reports
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

ALTER TABLE jobs ADD CONSTRAINT jobs_result_fk FOREIGN KEY (result_id) REFERENCES reports (id);
