-- Record keys and cell keys for the cell-key method (docs/disclosure.md).
--
-- Every record a published count is drawn from gets a random 32-bit record
-- key when it is inserted: case analyses, topics, structure surveys, and the
-- offices themselves (the coverage table counts offices). The key never
-- changes and never leaves the database except summed: the rollups carry,
-- beside each count n, keysum = the sum of the record keys of the records it
-- counts, modulo 2^32. A table cell's key is the sum of its rollups' keysums
-- modulo 2^32, so the same records give the same cell key in every table,
-- report and release, and so the same noise.
--
-- Keys come from gen_random_uuid() (pg_strong_random): the first 8 hex digits
-- of a version-4 UUID are random. They are not secret in the sense of a
-- cryptographic key, but no API answer, CSV or log shows them; an attacker
-- who knew a cell's key would know its noise.

CREATE FUNCTION kqe_record_key() RETURNS bigint LANGUAGE sql VOLATILE PARALLEL SAFE
    RETURN ('x' || left(gen_random_uuid()::text, 8))::bit(32)::bigint;

-- A record key is set once. A restore (COPY) keeps the keys it restores:
-- only an UPDATE is stopped from changing one.
CREATE FUNCTION kqe_keep_record_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.record_key := OLD.record_key;
    RETURN NEW;
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['case_analyses', 'topics', 'structure_surveys', 'offices'] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN record_key bigint NOT NULL'
                       ' DEFAULT kqe_record_key()'
                       ' CHECK (record_key BETWEEN 0 AND 4294967295)', t);
        EXECUTE format('CREATE TRIGGER keep_record_key BEFORE UPDATE OF record_key ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION kqe_keep_record_key()', t);
    END LOOP;
END
$$;

-- Sums of record keys, modulo 2^32, beside every count.
ALTER TABLE rollups ADD COLUMN keysum bigint NOT NULL DEFAULT 0
    CHECK (keysum BETWEEN 0 AND 4294967295);
ALTER TABLE rollup_retained ADD COLUMN keysum bigint NOT NULL DEFAULT 0
    CHECK (keysum BETWEEN 0 AND 4294967295);

CREATE FUNCTION kqe_keysum(numeric) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (coalesce($1, 0) % 4294967296)::bigint;

-- As 0012's, with each row's key sum. Records retention deleted bring theirs
-- from rollup_retained, so the cell keys, like the counts, stay as they were.
DROP FUNCTION kqe_rollup_rows(text);
CREATE FUNCTION kqe_rollup_rows(p_office text)
    RETURNS TABLE (year integer, cycle text, dimension text, category text, n bigint,
                   keysum bigint)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT x.year, x.cycle, x.dimension, x.category, sum(x.n)::bigint, kqe_keysum(sum(x.k))
    FROM (
        SELECT r.year, p.cycle, r.dimension, r.category, 1::bigint AS n, c.record_key AS k
        FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id
        CROSS JOIN LATERAL kqe_case_rollup(c.closed_month, c.child_birth_month, c.result,
            c.child_sex, c.reported_by, c.direct_impression, c.several_professionals,
            c.child_involved, c.days_to_first_contact, c.endangerment_forms,
            c.learning_themes, c.ratings) AS r
        WHERE c.office_id = p_office
        UNION ALL
        SELECT r.year, p.cycle, r.dimension, r.category, 1, t.record_key
        FROM topics t JOIN procedures p ON p.id = t.procedure_id
        CROSS JOIN LATERAL kqe_topic_rollup(t.created_at, t.theme, t.status) AS r
        WHERE t.office_id = p_office
        UNION ALL
        SELECT k.year, k.cycle, k.dimension, k.category, k.n, k.keysum
        FROM rollup_retained k WHERE k.office_id = p_office
    ) AS x
    GROUP BY 1, 2, 3, 4
$$;

CREATE OR REPLACE FUNCTION kqe_rollup_office(p_office text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    seen bigint;
    written bigint;
BEGIN
    IF kqe_ctx('role') IS DISTINCT FROM 'system' THEN
        RAISE EXCEPTION 'rollups are recomputed by the aggregator only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('kqe_rollup'), hashtext(p_office));
    SELECT changes INTO seen FROM rollup_dirty WHERE office_id = p_office;
    DELETE FROM rollups WHERE office_id = p_office;
    INSERT INTO rollups (office_id, year, cycle, dimension, category, n, keysum)
    SELECT p_office, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
    FROM kqe_rollup_rows(p_office) r;
    GET DIAGNOSTICS written = ROW_COUNT;
    DELETE FROM rollup_dirty WHERE office_id = p_office AND changes = seen;
    RETURN written;
END
$$;

CREATE OR REPLACE FUNCTION kqe_rollup_rebuild() RETURNS bigint
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    o text;
    total bigint := 0;
BEGIN
    LOCK TABLE rollups IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM rollups;
    FOR o IN SELECT id FROM offices ORDER BY id LOOP
        INSERT INTO rollups (office_id, year, cycle, dimension, category, n, keysum)
        SELECT o, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
        FROM kqe_rollup_rows(o) r;
    END LOOP;
    SELECT count(*) INTO total FROM rollups;
    DELETE FROM rollup_dirty;
    RETURN total;
END
$$;

-- The coverage table counts offices by the state of their procedure: each
-- office with its record key.
DROP FUNCTION kqe_procedure_status(text, date);
CREATE FUNCTION kqe_procedure_status(p_cycle text, p_today date)
    RETURNS TABLE (office_id text, status text, record_key bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id,
           CASE WHEN bool_or(p.phase = 'completed') THEN 'completed'
                WHEN p_today > make_date(split_part(p_cycle, '-', 2)::int, 6, 30) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL AND p.due_date < p_today) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL) THEN 'in_progress'
                ELSE 'due' END,
           o.record_key
    FROM offices o
    LEFT JOIN procedures p ON p.office_id = o.id AND p.cycle = p_cycle AND NOT p.out_of_cycle
    WHERE kqe_ctx('role') IN ('ministry', 'admin', 'system')
       OR (kqe_ctx('role') = 'advisor' AND o.region = kqe_ctx('region'))
    GROUP BY o.id
$$;
REVOKE ALL ON FUNCTION kqe_procedure_status(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_procedure_status(text, date) TO kqe_service;

-- Retention keeps the key sums of what it deletes with their counts (0012's
-- invariant 2 now holds for keysum too).
CREATE OR REPLACE FUNCTION kqe_retention_office(p_office text, p_years integer, p_actor text,
                                     p_dry_run boolean)
    RETURNS TABLE (n_case_analyses bigint, n_topics bigint, horizon date, skipped boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_horizon date := kqe_retention_check(p_years);
    v_cases bigint := 0;
    v_topics bigint := 0;
BEGIN
    IF p_actor IS NULL OR p_actor = '' THEN
        RAISE EXCEPTION 'retention needs an actor for the audit log'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    horizon := v_horizon;
    IF NOT pg_try_advisory_xact_lock(hashtext('kqe_retention'), hashtext(p_office)) THEN
        n_case_analyses := 0;
        n_topics := 0;
        skipped := true;
        RETURN NEXT;
        RETURN;
    END IF;
    skipped := false;
    IF p_dry_run THEN
        SELECT count(*) INTO v_cases
        FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id
        WHERE c.office_id = p_office
          AND kqe_retention_due(c.closed_month, p.phase, p.cycle, v_horizon);
        SELECT count(*) INTO v_topics
        FROM topics t JOIN procedures p ON p.id = t.procedure_id
        WHERE t.office_id = p_office
          AND kqe_retention_due(kqe_topic_retention_date(t.updated_at), p.phase, p.cycle,
                                v_horizon);
    ELSE
        WITH gone AS (
            DELETE FROM case_analyses c USING procedures p
            WHERE p.id = c.procedure_id AND c.office_id = p_office
              AND kqe_retention_due(c.closed_month, p.phase, p.cycle, v_horizon)
            RETURNING p.cycle, c.closed_month, c.child_birth_month, c.result, c.child_sex,
                      c.reported_by, c.direct_impression, c.several_professionals,
                      c.child_involved, c.days_to_first_contact, c.endangerment_forms,
                      c.learning_themes, c.ratings, c.record_key
        ), kept AS (
            INSERT INTO rollup_retained AS k (office_id, year, cycle, dimension, category, n,
                                              keysum)
            SELECT p_office, r.year, g.cycle, r.dimension, r.category, count(*),
                   kqe_keysum(sum(g.record_key))
            FROM gone g
            CROSS JOIN LATERAL kqe_case_rollup(g.closed_month, g.child_birth_month, g.result,
                g.child_sex, g.reported_by, g.direct_impression, g.several_professionals,
                g.child_involved, g.days_to_first_contact, g.endangerment_forms,
                g.learning_themes, g.ratings) AS r
            GROUP BY r.year, g.cycle, r.dimension, r.category
            ON CONFLICT (office_id, year, cycle, dimension, category)
                DO UPDATE SET n = k.n + excluded.n,
                              keysum = kqe_keysum(k.keysum::numeric + excluded.keysum)
        )
        SELECT count(*) INTO v_cases FROM gone;

        WITH gone AS (
            DELETE FROM topics t USING procedures p
            WHERE p.id = t.procedure_id AND t.office_id = p_office
              AND kqe_retention_due(kqe_topic_retention_date(t.updated_at), p.phase, p.cycle,
                                    v_horizon)
            RETURNING p.cycle, t.created_at, t.theme, t.status, t.record_key
        ), kept AS (
            INSERT INTO rollup_retained AS k (office_id, year, cycle, dimension, category, n,
                                              keysum)
            SELECT p_office, r.year, g.cycle, r.dimension, r.category, count(*),
                   kqe_keysum(sum(g.record_key))
            FROM gone g CROSS JOIN LATERAL kqe_topic_rollup(g.created_at, g.theme, g.status) AS r
            GROUP BY r.year, g.cycle, r.dimension, r.category
            ON CONFLICT (office_id, year, cycle, dimension, category)
                DO UPDATE SET n = k.n + excluded.n,
                              keysum = kqe_keysum(k.keysum::numeric + excluded.keysum)
        )
        SELECT count(*) INTO v_topics FROM gone;

        IF v_cases + v_topics > 0 THEN
            PERFORM kqe_audit_append(p_actor, kqe_ctx('role'), p_office, 'retention.delete',
                'office', p_office, NULL,
                jsonb_build_object('retention_years', p_years, 'horizon', v_horizon,
                    'deleted', jsonb_build_object('case_analyses', v_cases,
                                                  'topics', v_topics)));
        END IF;
    END IF;
    n_case_analyses := v_cases;
    n_topics := v_topics;
    RETURN NEXT;
END
$$;

-- Every office is recomputed with its key sums before the next report.
INSERT INTO rollup_dirty AS d (office_id)
SELECT office_id FROM case_analyses UNION SELECT office_id FROM topics
UNION SELECT office_id FROM rollup_retained
ON CONFLICT (office_id) DO UPDATE SET changes = d.changes + 1;
