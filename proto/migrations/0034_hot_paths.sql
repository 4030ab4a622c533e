-- Two costs on every write and read of a submission, found by profiling (docs/performance.md,
-- "Issue 16: where the time went"):
--
-- 1. Dirty marks without a lock. Every write marked its office dirty with an upsert of one
--    row per office (0010: `changes = changes + 1`) and held that row's lock until commit, so
--    the writes of one office committed one after the other and never shared a WAL flush.
--    Now every write statement appends one row to rollup_marks (no row is ever updated, so no
--    write waits for another), and a recompute deletes exactly the marks it read before
--    computing: a mark that arrives meanwhile, committed or not yet, stays and makes the
--    office dirty again. rollup_dirty remains, as a view with the columns it had (changes is
--    now the number of marks), so readers and operators' queries are unchanged.
--
-- 2. Policies PostgreSQL can inline. case_analyses, structure_surveys and topics checked each
--    row with kqe_may_see_procedure() / kqe_may_write_procedure() (0004): SQL functions with a
--    subquery, which the planner cannot inline, so every execution of every statement on
--    these tables parsed and planned the function's body again (PostgreSQL keeps a SQL
--    function's plan only for one execution of the calling statement): 0.13 ms of a
--    0.24 ms primary-key read, and the largest item in the server's profile. The same
--    expressions, written into the policies themselves, are planned once with the
--    statement's cached plan. The functions stay for the other callers that use them.

-- (1) ------------------------------------------------------------------------------------------

CREATE TABLE rollup_marks (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: checking it would take a share lock on the office's row for every
    -- mark (offices are never deleted; a mark of an unknown office recomputes nothing).
    office_id text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollup_marks_office ON rollup_marks (office_id, id);

ALTER TABLE rollup_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_marks FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON rollup_marks TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON rollup_marks FOR SELECT TO kqe_service
    USING (kqe_ctx('role') IN ('system', 'admin'));
GRANT SELECT ON rollup_marks TO kqe_service;

INSERT INTO rollup_marks (office_id, at) SELECT office_id, since FROM rollup_dirty;
DROP TABLE rollup_dirty;

-- security_invoker: the caller's row security on rollup_marks applies, as it did on the table.
CREATE VIEW rollup_dirty WITH (security_invoker = true) AS
    SELECT office_id, count(*) AS changes, min(at) AS since
    FROM rollup_marks GROUP BY office_id;
GRANT SELECT ON rollup_dirty TO kqe_service;

CREATE OR REPLACE FUNCTION kqe_mark_rollup_dirty() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rollup_marks (office_id) SELECT DISTINCT office_id FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO rollup_marks (office_id)
        SELECT office_id FROM new_rows UNION SELECT office_id FROM old_rows;
    ELSE
        INSERT INTO rollup_marks (office_id) SELECT DISTINCT office_id FROM old_rows;
    END IF;
    RETURN NULL;
END
$$;

-- As in 0015, but the marks it deletes are the ones it read before computing. In READ
-- COMMITTED every statement of this function sees what was committed when it started, so
-- the computation sees the writes of every mark read before it.
CREATE OR REPLACE FUNCTION kqe_rollup_office(p_office text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    seen bigint[];
    written bigint;
BEGIN
    IF kqe_ctx('role') IS DISTINCT FROM 'system' THEN
        RAISE EXCEPTION 'rollups are recomputed by the aggregator only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('kqe_rollup'), hashtext(p_office));
    SELECT array_agg(id) INTO seen FROM rollup_marks WHERE office_id = p_office;
    DELETE FROM rollups WHERE office_id = p_office;
    INSERT INTO rollups (office_id, year, cycle, dimension, category, n, keysum)
    SELECT p_office, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
    FROM kqe_rollup_rows(p_office) r;
    GET DIAGNOSTICS written = ROW_COUNT;
    DELETE FROM rollup_marks WHERE id = ANY (seen);
    RETURN written;
END
$$;

CREATE OR REPLACE FUNCTION kqe_rollup_rebuild() RETURNS bigint
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    o text;
    seen bigint[];
    total bigint := 0;
BEGIN
    LOCK TABLE rollups IN SHARE ROW EXCLUSIVE MODE;
    SELECT array_agg(id) INTO seen FROM rollup_marks;
    DELETE FROM rollups;
    FOR o IN SELECT id FROM offices ORDER BY id LOOP
        INSERT INTO rollups (office_id, year, cycle, dimension, category, n, keysum)
        SELECT o, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
        FROM kqe_rollup_rows(o) r;
    END LOOP;
    SELECT count(*) INTO total FROM rollups;
    DELETE FROM rollup_marks WHERE id = ANY (seen);
    RETURN total;
END
$$;

-- (2) ------------------------------------------------------------------------------------------

DO $$
DECLARE
    t text;
    office_side constant text :=
        '(kqe_ctx(''role'') IN (''office_staff'', ''office_lead'') AND office_id = kqe_ctx(''office_id''))';
    institute_side text;
BEGIN
    FOREACH t IN ARRAY ARRAY['case_analyses', 'structure_surveys', 'topics'] LOOP
        institute_side := format('(kqe_ctx(''role'') = ''institute'' AND EXISTS ('
            'SELECT 1 FROM procedures p WHERE p.id = %I.procedure_id'
            ' AND p.institute_id = kqe_ctx(''institute_id'')))', t);
        EXECUTE format('DROP POLICY service_read ON %I', t);
        EXECUTE format('DROP POLICY service_insert ON %I', t);
        EXECUTE format('DROP POLICY service_update ON %I', t);
        EXECUTE format('CREATE POLICY service_read ON %I FOR SELECT TO kqe_service USING ('
            '%s OR %s OR kqe_ctx(''role'') IN (''admin'', ''system''))',
            t, office_side, institute_side);
        EXECUTE format('CREATE POLICY service_insert ON %I FOR INSERT TO kqe_service'
            ' WITH CHECK (%s OR %s)', t, office_side, institute_side);
        EXECUTE format('CREATE POLICY service_update ON %I FOR UPDATE TO kqe_service'
            ' USING (%s OR %s) WITH CHECK (%s OR %s)',
            t, office_side, institute_side, office_side, institute_side);
    END LOOP;
END
$$;

-- (3) kqe_ts() and kqe_age_group() were declared IMMUTABLE, but their bodies call to_char()
--     and age() on timestamptz, which are STABLE (they depend on the session's time zone
--     and locale), and PostgreSQL inlines a SQL function only if its body is no more
--     volatile than declared. So every row of every response ran them through the SQL
--     function executor, parsing their bodies again per statement (the rest of pg_strtok
--     in the profile). Declared as what they are, they are inlined into the statement.
ALTER FUNCTION kqe_ts(timestamptz) STABLE;
ALTER FUNCTION kqe_age_group(date, date) STABLE;

-- (4) kqe-api remembers verified API keys per thread (services/api/token_cache.h) and forgets
--     all of them whenever api_tokens changes, however it changes (the CLI, a registration,
--     retention, an operator's SQL): this trigger tells every listening kqe-api at commit.
CREATE FUNCTION kqe_notify_api_tokens() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kqe_api_tokens', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION kqe_notify_api_tokens();
