-- Security: the service role, API tokens, the hash-chained audit log,
-- institutes, a minimal § 8 procedures table, and row-level security.
--
-- Roles: migrations and `kqe` run as the owning role (the one running this
-- file). kqe-api and kqe-aggregator connect as kqe_service, which owns
-- nothing, cannot bypass RLS and has only the privileges granted below. The
-- caller is set per transaction with set_config('kqe.role', ..., true) etc.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kqe_service') THEN
        CREATE ROLE kqe_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION
    -- Roles are cluster-wide: another database's migration may create it concurrently.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The caller of the current transaction ('' → NULL).
CREATE FUNCTION kqe_ctx(name text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN nullif(current_setting('kqe.' || name, true), '');

CREATE TABLE institutes (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'), -- SHA-256 of the token
    role         text NOT NULL CHECK (role IN ('office_staff', 'office_lead', 'institute',
                                               'advisor', 'ministry', 'admin')),
    office_id    text REFERENCES offices (id),
    region       text CHECK (region IN ('LVR', 'LWL')),
    institute_id text REFERENCES institutes (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    -- Each role is bound to exactly what it needs.
    CHECK ((role IN ('office_staff', 'office_lead')) = (office_id IS NOT NULL)),
    CHECK ((role = 'advisor') = (region IS NOT NULL)),
    CHECK ((role = 'institute') = (institute_id IS NOT NULL))
);

-- Append-only, hash-chained. Each entry's hash is SHA-256 over the previous
-- entry's hash and its own canonical content (kqe_audit_canonical).
CREATE TABLE audit_log (
    id          bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,   -- token id or JWT subject, never a token
    role        text NOT NULL,
    office_id   text,            -- office whose data was touched, if any
    action      text NOT NULL,   -- e.g. report.create, token.create, procedure.read
    resource    text NOT NULL,
    resource_id text,
    request_id  text,
    details     jsonb NOT NULL DEFAULT '{}',
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_office ON audit_log (office_id, id);
CREATE INDEX audit_log_at ON audit_log (at, id);

-- The chain's head; its row lock serialises appends.
CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint NOT NULL,
    last_hash text NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION kqe_audit_canonical(a audit_log) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN concat_ws(E'\x1f', a.id, kqe_ts(a.at), a.actor, a.role, coalesce(a.office_id, ''),
                     a.action, a.resource, coalesce(a.resource_id, ''),
                     coalesce(a.request_id, ''), a.details::text);

CREATE FUNCTION kqe_audit_append(p_actor text, p_role text, p_office_id text, p_action text,
                                 p_resource text, p_resource_id text, p_request_id text,
                                 p_details jsonb) RETURNS bigint
    -- Runs as the owner: the service role may append only through this function,
    -- never insert rows (and so hashes) of its own making.
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_head;
    e audit_log;
BEGIN
    SELECT * INTO head FROM audit_head FOR UPDATE;
    e.id := head.last_id + 1;
    e.at := date_trunc('microseconds', clock_timestamp());
    e.actor := p_actor;
    e.role := p_role;
    e.office_id := p_office_id;
    e.action := p_action;
    e.resource := p_resource;
    e.resource_id := p_resource_id;
    e.request_id := p_request_id;
    e.details := coalesce(p_details, '{}');
    e.prev_hash := head.last_hash;
    e.hash := encode(sha256(convert_to(e.prev_hash || kqe_audit_canonical(e), 'UTF8')), 'hex');
    INSERT INTO audit_log VALUES (e.*);
    UPDATE audit_head SET last_id = e.id, last_hash = e.hash;
    RETURN e.id;
END
$$;

-- § 8 procedures, minimal for now (filled out with the submission API).
CREATE TABLE procedures (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    office_id    text NOT NULL REFERENCES offices (id),
    cycle        text NOT NULL CHECK (cycle ~ '^[0-9]{4}-[0-9]{4}$'),
    out_of_cycle boolean NOT NULL DEFAULT false,
    institute_id text REFERENCES institutes (id),
    phase        text NOT NULL DEFAULT 'planned'
                 CHECK (phase IN ('planned', 'case_selection', 'case_analysis',
                                  'structure_analysis', 'evaluation', 'report', 'completed')),
    due_date     date,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX procedures_office ON procedures (office_id, id);

-- Row-level security on every table with an office column, forced so the
-- owner is subject to it too. The owner (whoever runs migrations) gets an
-- explicit policy; kqe_service gets exactly what the API and aggregator need.
ALTER TABLE procedures ENABLE ROW LEVEL SECURITY;
ALTER TABLE procedures FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON procedures TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON procedures FOR SELECT TO kqe_service USING (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id'))
    OR (kqe_ctx('role') = 'institute' AND institute_id = kqe_ctx('institute_id'))
    OR kqe_ctx('role') IN ('admin', 'system'));

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON api_tokens TO CURRENT_USER USING (true) WITH CHECK (true);
-- Looking a token up by its hash is how a caller is identified: only the
-- holder of a token knows the value that hashes to it.
CREATE POLICY service_lookup ON api_tokens FOR SELECT TO kqe_service USING (true);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON audit_log TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON audit_log FOR SELECT TO kqe_service
    USING (kqe_ctx('role') = 'admin');

-- Privileges of the service role: nothing it does not use. The audit log is
-- read-only to it; entries are added only by kqe_audit_append().
GRANT USAGE ON SCHEMA public TO kqe_service;
GRANT SELECT ON schema_migrations, offices, institutes, api_tokens TO kqe_service;
GRANT SELECT, INSERT, UPDATE ON jobs TO kqe_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO kqe_service;
GRANT USAGE ON SEQUENCE outbox_id_seq TO kqe_service;
GRANT SELECT, INSERT ON reports TO kqe_service;
GRANT SELECT ON audit_log TO kqe_service;
REVOKE ALL ON FUNCTION kqe_audit_append(text, text, text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_audit_append(text, text, text, text, text, text, text, jsonb)
    TO kqe_service;
GRANT SELECT ON procedures TO kqe_service;
