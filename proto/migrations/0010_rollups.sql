-- Rollups: per office × year × cycle × dimension × category counts of case
-- analyses and topics, so a state report sums ~186 offices' rows instead of
-- reading every case. See docs/rollups.md.
--
-- Correctness rests on three pieces:
--  * rollup_dirty: every insert, update or delete on case_analyses or topics
--    marks its offices dirty in the same transaction (statement triggers), so
--    no change can be missed — whether it came through the API, a batch or
--    an operator's SQL.
--  * kqe_rollup_office(office): under a per-office advisory lock, replaces the
--    office's rows in one transaction (readers see the old rows or the new,
--    never a mix), then clears the dirty mark only if no write marked the
--    office again meanwhile.
--  * the primary key: a row can exist once, so nothing is ever counted twice.

CREATE TABLE rollups (
    office_id text NOT NULL REFERENCES offices (id),
    year      integer NOT NULL,
    cycle     text NOT NULL,
    dimension text NOT NULL,
    category  text NOT NULL,
    n         bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (office_id, year, cycle, dimension, category)
);
CREATE INDEX rollups_year ON rollups (year);
CREATE INDEX rollups_cycle ON rollups (cycle);

CREATE TABLE rollup_dirty (
    office_id text PRIMARY KEY REFERENCES offices (id),
    changes   bigint NOT NULL DEFAULT 1,
    since     timestamptz NOT NULL DEFAULT now()
);

-- Each row below is a figure about one office: the office itself may read its
-- own; peers only ever see them aggregated and disclosure-controlled.
ALTER TABLE rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON rollups TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON rollups FOR SELECT TO kqe_service USING (
    kqe_ctx('role') IN ('system', 'admin')
    OR (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')));
GRANT SELECT ON rollups TO kqe_service;
ALTER TABLE rollup_dirty ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_dirty FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON rollup_dirty TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON rollup_dirty FOR SELECT TO kqe_service
    USING (kqe_ctx('role') IN ('system', 'admin'));
GRANT SELECT ON rollup_dirty TO kqe_service;

CREATE FUNCTION kqe_mark_rollup_dirty() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    -- Offices in id order, so concurrent multi-office batches cannot deadlock.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rollup_dirty AS d (office_id)
        SELECT DISTINCT office_id FROM new_rows ORDER BY 1
        ON CONFLICT (office_id) DO UPDATE SET changes = d.changes + 1;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO rollup_dirty AS d (office_id)
        SELECT office_id FROM new_rows UNION SELECT office_id FROM old_rows ORDER BY 1
        ON CONFLICT (office_id) DO UPDATE SET changes = d.changes + 1;
    ELSE
        INSERT INTO rollup_dirty AS d (office_id)
        SELECT DISTINCT office_id FROM old_rows ORDER BY 1
        ON CONFLICT (office_id) DO UPDATE SET changes = d.changes + 1;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['case_analyses', 'topics'] LOOP
        EXECUTE format('CREATE TRIGGER rollup_dirty_insert AFTER INSERT ON %I'
                       ' REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty()', t);
        EXECUTE format('CREATE TRIGGER rollup_dirty_update AFTER UPDATE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty()', t);
        EXECUTE format('CREATE TRIGGER rollup_dirty_delete AFTER DELETE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty()', t);
    END LOOP;
END
$$;

-- yes / no / unknown for the optional facts of a case analysis.
CREATE FUNCTION kqe_yes_no(b boolean) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN b THEN 'yes' WHEN NOT b THEN 'no' ELSE 'unknown' END;

-- The rollup rows of one office, computed from its case analyses and topics.
--   cases                 all           one per case analysis
--   result, age_group, child_sex, reported_by            one per case analysis
--   form, learning_theme  one per form / theme named (a case may name several)
--   direct_impression, several_professionals, child_involved    yes | no | unknown
--   days_to_first_contact the number of days (a histogram: medians stay exact)
--   rating:<dimension>    the rating 1..4
--   topic_theme, topic_status    one per topic; a topic's year is when it was identified
CREATE FUNCTION kqe_rollup_rows(p_office text)
    RETURNS TABLE (year integer, cycle text, dimension text, category text, n bigint)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT x.year, x.cycle, x.dimension, x.category, count(*)
    FROM (
        SELECT extract(year FROM c.closed_month)::int AS year, p.cycle, d.dimension, d.category
        FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id
        CROSS JOIN LATERAL (
            VALUES ('cases', 'all'), ('result', c.result),
                   ('age_group', kqe_age_group(c.child_birth_month, c.closed_month)),
                   ('child_sex', c.child_sex), ('reported_by', c.reported_by),
                   ('direct_impression', kqe_yes_no(c.direct_impression)),
                   ('several_professionals', kqe_yes_no(c.several_professionals)),
                   ('child_involved', kqe_yes_no(c.child_involved)),
                   ('days_to_first_contact', c.days_to_first_contact::text)
            UNION ALL SELECT 'form', f FROM unnest(c.endangerment_forms) AS f
            UNION ALL SELECT 'learning_theme', l FROM unnest(c.learning_themes) AS l
            UNION ALL SELECT 'rating:' || r.key, r.value FROM jsonb_each_text(c.ratings) AS r
        ) AS d (dimension, category)
        WHERE c.office_id = p_office
        UNION ALL
        SELECT extract(year FROM t.created_at AT TIME ZONE 'Europe/Berlin')::int, p.cycle,
               d.dimension, d.category
        FROM topics t JOIN procedures p ON p.id = t.procedure_id
        CROSS JOIN LATERAL (VALUES ('topic_theme', t.theme), ('topic_status', t.status))
            AS d (dimension, category)
        WHERE t.office_id = p_office
    ) AS x
    GROUP BY 1, 2, 3, 4
$$;

-- Recomputes one office's rollups. The aggregator calls it as the 'system'
-- principal; returns the number of rows written.
CREATE FUNCTION kqe_rollup_office(p_office text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    seen bigint;
    written bigint;
BEGIN
    IF kqe_ctx('role') IS DISTINCT FROM 'system' THEN
        RAISE EXCEPTION 'rollups are recomputed by the aggregator only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- One recompute of an office at a time: a second one waits, then reads
    -- (with a fresh snapshot) what the first committed, and replaces it.
    PERFORM pg_advisory_xact_lock(hashtext('kqe_rollup'), hashtext(p_office));
    SELECT changes INTO seen FROM rollup_dirty WHERE office_id = p_office;
    DELETE FROM rollups WHERE office_id = p_office;
    INSERT INTO rollups (office_id, year, cycle, dimension, category, n)
    SELECT p_office, r.year, r.cycle, r.dimension, r.category, r.n FROM kqe_rollup_rows(p_office) r;
    GET DIAGNOSTICS written = ROW_COUNT;
    -- A write that committed after `seen` was read has bumped changes: the
    -- office stays dirty and is recomputed again.
    DELETE FROM rollup_dirty WHERE office_id = p_office AND changes = seen;
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION kqe_rollup_office(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_rollup_office(text) TO kqe_service;

-- A full rebuild in one transaction: every office's rows are replaced before
-- anyone sees any of them (readers keep the old rows until the commit).
CREATE FUNCTION kqe_rollup_rebuild() RETURNS bigint
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    o text;
    total bigint := 0;
BEGIN
    LOCK TABLE rollups IN SHARE ROW EXCLUSIVE MODE; -- no recompute writes meanwhile
    DELETE FROM rollups;
    FOR o IN SELECT id FROM offices ORDER BY id LOOP
        INSERT INTO rollups (office_id, year, cycle, dimension, category, n)
        SELECT o, r.year, r.cycle, r.dimension, r.category, r.n FROM kqe_rollup_rows(o) r;
    END LOOP;
    SELECT count(*) INTO total FROM rollups;
    DELETE FROM rollup_dirty;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION kqe_rollup_rebuild() FROM PUBLIC;

-- Everything that exists is dirty until first computed.
INSERT INTO rollup_dirty (office_id)
SELECT office_id FROM case_analyses UNION SELECT office_id FROM topics;

-- Structural indicators of one survey (used by the benchmark and the reports).
CREATE FUNCTION kqe_survey_indicators(body jsonb, population_under_18 integer)
    RETURNS TABLE (indicator text, unit text, value numeric)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES
        ('asd_staff_per_10k_under_18', 'FTE per 10,000 under 18',
         (body->>'asd_staff_fte')::numeric * 10000 / nullif(population_under_18, 0)),
        ('cases_per_fte', 'cases per FTE', (body->>'cases_per_fte')::numeric),
        ('vacancy_percent', '%', 100 * (body->>'vacancies_fte')::numeric
            / nullif((body->>'asd_staff_fte')::numeric
                     + coalesce((body->>'vacancies_fte')::numeric, 0), 0)),
        ('turnover_percent', '%', 100 * (body->>'staff_turnover_12m')::numeric
            / nullif((body->>'asd_staff_fte')::numeric, 0)),
        ('training_hours_per_fte', 'hours per FTE', (body->>'training_hours_per_fte')::numeric)
$$;

-- Each office's latest survey in a period (a year: reference date in it; a
-- cycle: surveys of the cycle's procedures), as indicators. Reads through
-- RLS: the aggregator calls it as 'system'.
CREATE FUNCTION kqe_structure_indicators(p_year integer, p_cycle text)
    RETURNS TABLE (office_id text, indicator text, value numeric)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    WITH latest AS (
        SELECT DISTINCT ON (s.office_id) s.office_id, s.body
        FROM structure_surveys s JOIN procedures p ON p.id = s.procedure_id
        WHERE (p_year IS NULL OR extract(year FROM (s.body->>'reference_date')::date) = p_year)
          AND (p_cycle IS NULL OR p.cycle = p_cycle)
        ORDER BY s.office_id, s.body->>'reference_date' DESC, s.updated_at DESC
    )
    SELECT l.office_id, i.indicator, i.value
    FROM latest l JOIN offices o ON o.id = l.office_id
    CROSS JOIN LATERAL kqe_survey_indicators(l.body, o.population_under_18) AS i
    WHERE i.value IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION kqe_benchmark(p_office text, p_min_offices int)
    RETURNS TABLE (indicator text, unit text, own numeric, peer_group text, peers int,
                   mean numeric, q1 numeric, median numeric, q3 numeric)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH latest AS (
        SELECT DISTINCT ON (s.office_id) s.office_id, s.body
        FROM structure_surveys s
        ORDER BY s.office_id, s.body->>'reference_date' DESC, s.updated_at DESC
    ), cases AS (
        SELECT office_id,
               100.0 * avg(direct_impression::int) AS direct,
               100.0 * avg(several_professionals::int) AS several,
               100.0 * avg(child_involved::int) AS child,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_first_contact) AS days
        FROM case_analyses GROUP BY office_id
    ), vals AS (
        SELECT o.id AS office_id, o.kind, o.region, s.indicator, s.unit, s.value
        FROM offices o
        LEFT JOIN latest l ON l.office_id = o.id
        CROSS JOIN LATERAL kqe_survey_indicators(l.body, o.population_under_18) AS s
        UNION ALL
        SELECT o.id, o.kind, o.region, v.indicator, v.unit, v.value::numeric
        FROM offices o
        LEFT JOIN cases c ON c.office_id = o.id
        CROSS JOIN LATERAL (VALUES
            ('direct_impression_percent', '% of case analyses', c.direct),
            ('several_professionals_percent', '% of case analyses', c.several),
            ('child_involved_percent', '% of case analyses', c.child),
            ('median_days_to_first_contact', 'days', c.days::numeric)
        ) AS v(indicator, unit, value)
    ), me AS (
        SELECT * FROM vals WHERE office_id = p_office
    ), groups AS (
        SELECT me.indicator, me.unit, me.value AS own, g.peer_group, p.value
        FROM me
        CROSS JOIN (VALUES ('kind'), ('region')) AS g(peer_group)
        LEFT JOIN vals p ON p.indicator = me.indicator AND p.office_id <> me.office_id
            AND p.value IS NOT NULL
            AND CASE g.peer_group WHEN 'kind' THEN p.kind = me.kind ELSE p.region = me.region END
    )
    SELECT indicator, unit, round(own, 2), peer_group, count(value)::int,
           CASE WHEN count(value) >= p_min_offices THEN round(avg(value), 2) END,
           CASE WHEN count(value) >= p_min_offices
                THEN round(percentile_cont(0.25) WITHIN GROUP (ORDER BY value)::numeric, 2) END,
           CASE WHEN count(value) >= p_min_offices
                THEN round(percentile_cont(0.5) WITHIN GROUP (ORDER BY value)::numeric, 2) END,
           CASE WHEN count(value) >= p_min_offices
                THEN round(percentile_cont(0.75) WITHIN GROUP (ORDER BY value)::numeric, 2) END
    FROM groups GROUP BY indicator, unit, own, peer_group ORDER BY indicator, peer_group
$$;

-- Procedure coverage for reports: the aggregator ('system') sees every office.
CREATE OR REPLACE FUNCTION kqe_procedure_status(p_cycle text, p_today date)
    RETURNS TABLE (office_id text, status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id,
           CASE WHEN bool_or(p.phase = 'completed') THEN 'completed'
                WHEN p_today > make_date(split_part(p_cycle, '-', 2)::int, 6, 30) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL AND p.due_date < p_today) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL) THEN 'in_progress'
                ELSE 'due' END
    FROM offices o
    LEFT JOIN procedures p ON p.office_id = o.id AND p.cycle = p_cycle AND NOT p.out_of_cycle
    WHERE kqe_ctx('role') IN ('ministry', 'admin', 'system')
       OR (kqe_ctx('role') = 'advisor' AND o.region = kqe_ctx('region'))
    GROUP BY o.id
$$;

-- Ministry batches: one job builds every report of a year, so a job may have
-- several reports; each (job, parameters) once.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('build_report', 'ministry_batch'));
ALTER TABLE reports DROP CONSTRAINT reports_job_id_key;
ALTER TABLE reports ADD CONSTRAINT reports_job_params UNIQUE (job_id, params);
CREATE INDEX reports_job ON reports (job_id);
