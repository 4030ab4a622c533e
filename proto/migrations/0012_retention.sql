-- Retention of case-level data (docs/retention.md): case analyses and topics
-- are deleted once they are older than KQE_RETENTION_YEARS, one transaction
-- per office, audited, while every rollup -- and so every report built later
-- -- keeps exactly the figures it had.
--
-- Invariants (numbered as in docs/retention.md):
--  1. What a record adds to the rollups is defined once: kqe_case_rollup()
--     for a case analysis, kqe_topic_rollup() for a topic, each the rows
--     (year, dimension, category) one record counts in; its cycle is its
--     procedure's. kqe_rollup_rows() builds an office's rollups from them and
--     from nothing else but rollup_retained.
--  2. For every office o and every (year, cycle, dimension, category):
--         kqe_rollup_rows(o) = contributions of o's live case analyses
--                            + contributions of o's live topics
--                            + rollup_retained of o.
--     rollup_retained holds the contributions of the records retention
--     deleted, computed with the same functions as in 1.
--  3. Retention deletes only through kqe_retention_office(), and there each
--     DELETE ... RETURNING feeds the rows it deleted into rollup_retained in
--     the same statement. So a record leaves the right side of 2 in one term
--     and enters it in another, in one transaction: kqe_rollup_rows(o) is the
--     same before and after, for every year and cycle, whichever records were
--     deleted and whichever remain. No snapshot sees one step without the
--     other.
--  4. kqe_rollup_office() and kqe_rollup_rebuild() compute from
--     kqe_rollup_rows(), so a recompute after retention (the DELETE marks the
--     office dirty through the triggers of 0010) writes back exactly the rows
--     it replaces. A recompute reads live rows and rollup_retained in one
--     statement, i.e. one snapshot, so it needs no lock against retention.
--  5. rollup_retained only grows: nothing but kqe_retention_office() writes
--     it (the service role has no privilege on it), and it only adds.
--     Counts are of deleted records, never of live ones, so nothing is
--     counted twice: a DELETE ... RETURNING returns only rows this
--     transaction deleted, even when two runs race for the same office.
--  6. A record is due when its date lies before the horizon, 1 January of
--     (this year in Europe/Berlin - years), and its procedure is completed
--     or its cycle ended before the horizon (kqe_retention_due()). Dates: a
--     case analysis its closing month, a topic the day of its last change.
--     Procedures, structure surveys, rollups, reports, jobs and the audit
--     log are never deleted.
--  7. One audit entry per office and run that deleted anything:
--     retention.delete with the horizon, the period in years and the count
--     per table; never an id or any content. A run that deletes nothing and
--     a dry run append nothing.
--  8. One runner per office at a time (pg_try_advisory_xact_lock): a second
--     aggregator, or `kqe retention run` at the same moment, skips an office
--     being worked on instead of waiting; 5 makes it correct anyway.
--  9. Only the aggregator ('system') and the kqe command (admin, connected as
--     the owning role) may run it; never the API, whatever role it sets.

-- The contributions of deleted records (2). Same key as rollups.
CREATE TABLE rollup_retained (
    office_id text NOT NULL REFERENCES offices (id),
    year      integer NOT NULL,
    cycle     text NOT NULL,
    dimension text NOT NULL,
    category  text NOT NULL,
    n         bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (office_id, year, cycle, dimension, category)
);
ALTER TABLE rollup_retained ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_retained FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON rollup_retained TO CURRENT_USER USING (true) WITH CHECK (true);

-- What one case analysis counts in (1): the dimensions of docs/rollups.md, in
-- the year of its closing month. Scalar arguments, not the row: PostgreSQL 15
-- cannot plan an inlined set-returning SQL function over a whole-row value
-- of an RLS table ("variable not found in subplan target list").
CREATE FUNCTION kqe_case_rollup(closed_month date, child_birth_month date, result text,
                                child_sex text, reported_by text, direct_impression boolean,
                                several_professionals boolean, child_involved boolean,
                                days_to_first_contact integer, endangerment_forms text[],
                                learning_themes text[], ratings jsonb)
    RETURNS TABLE (year integer, dimension text, category text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT extract(year FROM closed_month)::int, d.dimension, d.category
    FROM (
        VALUES ('cases', 'all'), ('result', result),
               ('age_group', kqe_age_group(child_birth_month, closed_month)),
               ('child_sex', child_sex), ('reported_by', reported_by),
               ('direct_impression', kqe_yes_no(direct_impression)),
               ('several_professionals', kqe_yes_no(several_professionals)),
               ('child_involved', kqe_yes_no(child_involved)),
               ('days_to_first_contact', days_to_first_contact::text)
        UNION ALL SELECT 'form', f FROM unnest(endangerment_forms) AS f
        UNION ALL SELECT 'learning_theme', l FROM unnest(learning_themes) AS l
        UNION ALL SELECT 'rating:' || r.key, r.value FROM jsonb_each_text(ratings) AS r
    ) AS d (dimension, category)
$$;

-- What one topic counts in (1): in the year it was identified (Europe/Berlin).
CREATE FUNCTION kqe_topic_rollup(identified timestamptz, theme text, status text)
    RETURNS TABLE (year integer, dimension text, category text)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT extract(year FROM identified AT TIME ZONE 'Europe/Berlin')::int, d.dimension,
           d.category
    FROM (VALUES ('topic_theme', theme), ('topic_status', status)) AS d (dimension, category)
$$;

-- An office's rollups (2): live records plus the retained counts of deleted
-- ones. Same rows as 0010's version as long as nothing was deleted.
CREATE OR REPLACE FUNCTION kqe_rollup_rows(p_office text)
    RETURNS TABLE (year integer, cycle text, dimension text, category text, n bigint)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT x.year, x.cycle, x.dimension, x.category, sum(x.n)::bigint
    FROM (
        SELECT r.year, p.cycle, r.dimension, r.category, 1::bigint AS n
        FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id
        CROSS JOIN LATERAL kqe_case_rollup(c.closed_month, c.child_birth_month, c.result,
            c.child_sex, c.reported_by, c.direct_impression, c.several_professionals,
            c.child_involved, c.days_to_first_contact, c.endangerment_forms,
            c.learning_themes, c.ratings) AS r
        WHERE c.office_id = p_office
        UNION ALL
        SELECT r.year, p.cycle, r.dimension, r.category, 1
        FROM topics t JOIN procedures p ON p.id = t.procedure_id
        CROSS JOIN LATERAL kqe_topic_rollup(t.created_at, t.theme, t.status) AS r
        WHERE t.office_id = p_office
        UNION ALL
        SELECT k.year, k.cycle, k.dimension, k.category, k.n
        FROM rollup_retained k WHERE k.office_id = p_office
    ) AS x
    GROUP BY 1, 2, 3, 4
$$;

-- The horizon (6): records dated before it are old enough. Whole calendar
-- years, as retention periods of files run: a record of 2015 is kept through
-- 2025 with 10 years and deleted from 1 January 2026 on.
CREATE FUNCTION kqe_retention_horizon(p_years integer) RETURNS date
    LANGUAGE sql STABLE
    RETURN make_date(extract(year FROM now() AT TIME ZONE 'Europe/Berlin')::int - p_years, 1, 1);

-- Whether a record dated p_date of a procedure in p_phase of p_cycle is due (6).
-- A cycle "2023-2028" ends on 30 June 2028.
CREATE FUNCTION kqe_retention_due(p_date date, p_phase text, p_cycle text, p_horizon date)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p_date < p_horizon
       AND (p_phase = 'completed'
            OR make_date(split_part(p_cycle, '-', 2)::int, 6, 30) < p_horizon);

-- The date a topic is measured on: the day of its last change (Europe/Berlin).
CREATE FUNCTION kqe_topic_retention_date(p_updated_at timestamptz) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (p_updated_at AT TIME ZONE 'Europe/Berlin')::date;

-- Who may run retention (9), and with which period.
CREATE FUNCTION kqe_retention_check(p_years integer) RETURNS date
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- coalesce: without a role kqe_ctx() is NULL, and NOT NULL would let it pass.
    IF NOT coalesce(kqe_ctx('role') = 'system'
                    OR (kqe_ctx('role') = 'admin' AND session_user <> 'kqe_service'), false) THEN
        RAISE EXCEPTION 'retention is run by the aggregator or the kqe command only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_years IS NULL OR p_years NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'retention period must be 1 to 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN kqe_retention_horizon(p_years);
END
$$;

-- The offices that have anything due: ids only. Runs as the owner (reads
-- across offices).
CREATE FUNCTION kqe_retention_offices(p_years integer) RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_horizon date := kqe_retention_check(p_years);
BEGIN
    RETURN QUERY
    SELECT c.office_id FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id
    WHERE kqe_retention_due(c.closed_month, p.phase, p.cycle, v_horizon)
    UNION
    SELECT t.office_id FROM topics t JOIN procedures p ON p.id = t.procedure_id
    WHERE kqe_retention_due(kqe_topic_retention_date(t.updated_at), p.phase, p.cycle, v_horizon)
    ORDER BY 1;
END
$$;

-- Deletes one office's due records (6), keeping their counts (3), and
-- audits it (7). With p_dry_run it only counts what it would delete.
-- skipped: another run holds the office (8); nothing was done.
CREATE FUNCTION kqe_retention_office(p_office text, p_years integer, p_actor text,
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
                      c.learning_themes, c.ratings
        ), kept AS (
            INSERT INTO rollup_retained AS k (office_id, year, cycle, dimension, category, n)
            SELECT p_office, r.year, g.cycle, r.dimension, r.category, count(*)
            FROM gone g
            CROSS JOIN LATERAL kqe_case_rollup(g.closed_month, g.child_birth_month, g.result,
                g.child_sex, g.reported_by, g.direct_impression, g.several_professionals,
                g.child_involved, g.days_to_first_contact, g.endangerment_forms,
                g.learning_themes, g.ratings) AS r
            GROUP BY r.year, g.cycle, r.dimension, r.category
            ON CONFLICT (office_id, year, cycle, dimension, category)
                DO UPDATE SET n = k.n + excluded.n
        )
        SELECT count(*) INTO v_cases FROM gone;

        WITH gone AS (
            DELETE FROM topics t USING procedures p
            WHERE p.id = t.procedure_id AND t.office_id = p_office
              AND kqe_retention_due(kqe_topic_retention_date(t.updated_at), p.phase, p.cycle,
                                    v_horizon)
            RETURNING p.cycle, t.created_at, t.theme, t.status
        ), kept AS (
            INSERT INTO rollup_retained AS k (office_id, year, cycle, dimension, category, n)
            SELECT p_office, r.year, g.cycle, r.dimension, r.category, count(*)
            FROM gone g CROSS JOIN LATERAL kqe_topic_rollup(g.created_at, g.theme, g.status) AS r
            GROUP BY r.year, g.cycle, r.dimension, r.category
            ON CONFLICT (office_id, year, cycle, dimension, category)
                DO UPDATE SET n = k.n + excluded.n
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

REVOKE ALL ON FUNCTION kqe_retention_offices(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION kqe_retention_office(text, integer, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_retention_offices(integer) TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_retention_office(text, integer, text, boolean) TO kqe_service;
