-- Releases (docs/disclosure.md, "Releases"): everyone outside an office sees
-- cross-office counts only as releases taken at cut-offs, never live.
--
-- The unit is a bucket: the rollups of one (year, cycle) pair and one group of
-- offices, a region and a kind of office. Every published figure is a sum of
-- buckets: a report period of its (year, cycle) pairs, a table row of its
-- region's or kind's groups, a total of all. A release records, for every
-- bucket, which state of it is published from then on: the bucket's rollup
-- rows as they were at some release's cut-off (release_rollups holds them, once
-- per state). A release refreshes a bucket only when at least min_changes case
-- analyses or topics of its offices were added or removed in it since its
-- published state (per office, net), so two different published states of any
-- figure lie at least min_changes records of one group apart, and no record
-- can be singled out by subtracting them. A bucket whose period
-- is closed (a year from 1 July of the next year on, when its case analyses
-- are in; a cycle from its end, 30 June of its last year) gets a final state
-- in the next release and never changes again; changes fewer than min_changes
-- by then stay out of the published figures (p_final false: no bucket becomes
-- final; for development and tests, whose records lie in closed years). A bucket
-- never published before
-- needs min_changes records too: an empty table is a state like any other.
--
-- A bucket's state holds its structural indicators too (release_structure):
-- each office's latest structure survey of that year and cycle, as indicators.
-- A changed survey counts as a changed record, so quartiles over offices move
-- only with a refresh, as counts do.
--
-- Releases are immutable, like report snapshots.

CREATE TABLE releases (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cut_off     timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    min_changes integer NOT NULL CHECK (min_changes >= 1)
);

CREATE TABLE release_buckets (
    release_id    integer NOT NULL REFERENCES releases (id),
    year          integer NOT NULL,
    cycle         text NOT NULL,
    region        text NOT NULL,
    kind          text NOT NULL,
    state_release integer NOT NULL REFERENCES releases (id), -- whose rows are published
    final         boolean NOT NULL,
    changes       bigint NOT NULL, -- net records changed since the published state (refresh: applied)
    PRIMARY KEY (release_id, year, cycle, region, kind)
);

CREATE TABLE release_rollups (
    release_id integer NOT NULL REFERENCES releases (id),
    office_id  text NOT NULL REFERENCES offices (id),
    year       integer NOT NULL,
    cycle      text NOT NULL,
    dimension  text NOT NULL,
    category   text NOT NULL,
    n          bigint NOT NULL CHECK (n > 0),
    keysum     bigint NOT NULL CHECK (keysum BETWEEN 0 AND 4294967295),
    PRIMARY KEY (release_id, year, cycle, office_id, dimension, category)
);

CREATE TABLE release_structure (
    release_id     integer NOT NULL REFERENCES releases (id),
    office_id      text NOT NULL REFERENCES offices (id),
    year           integer NOT NULL,
    cycle          text NOT NULL,
    reference_date date NOT NULL,
    indicator      text NOT NULL,
    unit           text NOT NULL,
    value          numeric NOT NULL,
    PRIMARY KEY (release_id, year, cycle, office_id, indicator)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['releases', 'release_buckets', 'release_rollups',
                             'release_structure'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION reports_immutable()', t || '_immutable', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY owner_all ON %I TO CURRENT_USER USING (true)'
                       ' WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %I TO kqe_service', t);
    END LOOP;
END
$$;
-- What a release is and which states it publishes is no secret; the rows are per office,
-- like the rollups: the aggregator and admins read them, an office its own.
CREATE POLICY service_read ON releases FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON release_buckets FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON release_rollups FOR SELECT TO kqe_service USING (
    kqe_ctx('role') IN ('system', 'admin')
    OR (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')));
CREATE POLICY service_read ON release_structure FOR SELECT TO kqe_service USING (
    kqe_ctx('role') IN ('system', 'admin')
    OR (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')));

-- The structural indicators as a release takes them: per office, year (of the reference
-- date) and cycle (of the procedure), those of the latest survey.
CREATE FUNCTION kqe_structure_rows()
    RETURNS TABLE (office_id text, year integer, cycle text, reference_date date,
                   indicator text, unit text, value numeric)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    WITH surveys AS (
        SELECT s.office_id, extract(year FROM (s.body->>'reference_date')::date)::int AS year,
               p.cycle, (s.body->>'reference_date')::date AS reference_date, s.updated_at,
               s.body
        FROM structure_surveys s JOIN procedures p ON p.id = s.procedure_id
    ), latest AS (
        SELECT DISTINCT ON (office_id, year, cycle) *
        FROM surveys ORDER BY office_id, year, cycle, reference_date DESC, updated_at DESC
    )
    SELECT l.office_id, l.year, l.cycle, l.reference_date, i.indicator, i.unit, i.value
    FROM latest l JOIN offices o ON o.id = l.office_id
    CROSS JOIN LATERAL kqe_survey_indicators(l.body, o.population_under_18) AS i
    WHERE i.value IS NOT NULL
$$;

-- Whether a bucket's records are all in: its year from 1 July of the next year on, or its
-- cycle ended (30 June of its last year).
CREATE FUNCTION kqe_bucket_closed(p_year integer, p_cycle text, p_at timestamptz)
    RETURNS boolean LANGUAGE sql STABLE
    RETURN (p_at AT TIME ZONE 'Europe/Berlin')::date >= make_date(p_year + 1, 7, 1)
        OR (p_at AT TIME ZONE 'Europe/Berlin')::date > make_date(split_part(p_cycle, '-', 2)::int, 6, 30);

-- Takes a release: see the head of this file. Returns its id, or the last release's if a new
-- one would publish nothing else. The rollups should be caught
-- up first (the aggregator and `kqe release make` recompute dirty offices before); a write
-- not yet in them simply waits for a later release. Run by the aggregator ('system') or the
-- kqe command (admin as the owning role), one at a time.
CREATE FUNCTION kqe_release_make(p_min_changes integer, p_final boolean, p_actor text)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id integer;
    v_prev integer;
    v_cut timestamptz;
BEGIN
    IF NOT coalesce(kqe_ctx('role') = 'system'
                    OR (kqe_ctx('role') = 'admin' AND session_user <> 'kqe_service'), false) THEN
        RAISE EXCEPTION 'releases are made by the aggregator or the kqe command only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_min_changes IS NULL OR p_min_changes < 1 THEN
        RAISE EXCEPTION 'min_changes must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('kqe_release'));
    -- The rollups hold still until the release is taken: every statement below sees the
    -- same rows.
    LOCK TABLE rollups IN SHARE MODE;
    LOCK TABLE structure_surveys IN SHARE MODE;
    SELECT max(id) INTO v_prev FROM releases;
    -- The cut-off is when the locks were had, not when the transaction began: a release
    -- that waited for another holds the records committed meanwhile.
    v_cut := clock_timestamp();

    CREATE TEMP TABLE release_structure_now ON COMMIT DROP AS
    SELECT * FROM kqe_structure_rows();
    -- Per bucket: its published state (if any), and how many records (net, per office)
    -- were added or removed since; a survey whose indicators changed is one record.
    CREATE TEMP TABLE release_plan ON COMMIT DROP AS
    WITH now_n AS (
        SELECT r.year, r.cycle, o.region, o.kind, r.office_id,
               sum(r.n) FILTER (WHERE r.dimension = 'cases') AS cases,
               sum(r.n) FILTER (WHERE r.dimension = 'topic_theme') AS topics
        FROM rollups r JOIN offices o ON o.id = r.office_id GROUP BY 1, 2, 3, 4, 5
    ), prev AS (
        SELECT * FROM release_buckets WHERE release_id = v_prev
    ), then_n AS (
        SELECT r.year, r.cycle, p.region, p.kind, r.office_id,
               sum(r.n) FILTER (WHERE r.dimension = 'cases') AS cases,
               sum(r.n) FILTER (WHERE r.dimension = 'topic_theme') AS topics
        FROM prev p JOIN offices o ON o.region = p.region AND o.kind = p.kind
        JOIN release_rollups r ON r.release_id = p.state_release AND r.year = p.year
            AND r.cycle = p.cycle AND r.office_id = o.id
        GROUP BY 1, 2, 3, 4, 5
    ), diff AS (
        SELECT coalesce(a.year, b.year) AS year, coalesce(a.cycle, b.cycle) AS cycle,
               coalesce(a.region, b.region) AS region, coalesce(a.kind, b.kind) AS kind,
               sum(abs(coalesce(a.cases, 0) - coalesce(b.cases, 0))
                   + abs(coalesce(a.topics, 0) - coalesce(b.topics, 0))) AS changes
        FROM now_n a FULL JOIN then_n b ON a.year = b.year AND a.cycle = b.cycle
            AND a.office_id = b.office_id
        GROUP BY 1, 2, 3, 4
    ), then_s AS (
        SELECT s.* FROM prev p JOIN offices o ON o.region = p.region AND o.kind = p.kind
        JOIN release_structure s ON s.release_id = p.state_release AND s.year = p.year
            AND s.cycle = p.cycle AND s.office_id = o.id
    ), sdiff AS (
        SELECT x.year, x.cycle, o.region, o.kind, count(DISTINCT x.office_id) AS changes
        FROM (SELECT office_id, year, cycle, reference_date, indicator, value
              FROM release_structure_now
              EXCEPT SELECT office_id, year, cycle, reference_date, indicator, value FROM then_s
              UNION ALL
              (SELECT office_id, year, cycle, reference_date, indicator, value FROM then_s
               EXCEPT SELECT office_id, year, cycle, reference_date, indicator, value
               FROM release_structure_now)) AS x
        JOIN offices o ON o.id = x.office_id
        GROUP BY 1, 2, 3, 4
    ), buckets AS (
        SELECT year, cycle, region, kind FROM diff
        UNION SELECT year, cycle, region, kind FROM sdiff
        UNION SELECT year, cycle, region, kind FROM prev
    )
    SELECT k.year, k.cycle, k.region, k.kind, p.state_release,
           coalesce(p.final, false) AS was_final,
           coalesce(d.changes, 0) + coalesce(sd.changes, 0) AS changes,
           p_final AND kqe_bucket_closed(k.year, k.cycle, v_cut) AS closed
    FROM buckets k LEFT JOIN prev p USING (year, cycle, region, kind)
    LEFT JOIN diff d USING (year, cycle, region, kind)
    LEFT JOIN sdiff sd USING (year, cycle, region, kind);

    -- A release that would publish exactly what the last one does is not made: the last
    -- one stays current (its cut-off says how old its figures may be).
    IF v_prev IS NOT NULL AND NOT EXISTS (
        SELECT FROM release_plan
        WHERE NOT was_final AND (changes >= p_min_changes OR (closed AND state_release IS NOT NULL)))
    THEN
        RETURN v_prev;
    END IF;
    INSERT INTO releases (cut_off, actor, min_changes) VALUES (v_cut, p_actor, p_min_changes)
        RETURNING id INTO v_id;

    -- Refreshed: a new state, final if the period is closed.
    INSERT INTO release_rollups (release_id, office_id, year, cycle, dimension, category, n, keysum)
    SELECT v_id, r.office_id, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
    FROM release_plan x JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN rollups r ON r.year = x.year AND r.cycle = x.cycle AND r.office_id = o.id
    WHERE NOT x.was_final AND x.changes >= p_min_changes;
    INSERT INTO release_structure (release_id, office_id, year, cycle, reference_date, indicator,
                                   unit, value)
    SELECT v_id, s.office_id, s.year, s.cycle, s.reference_date, s.indicator, s.unit, s.value
    FROM release_plan x JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN release_structure_now s ON s.year = x.year AND s.cycle = x.cycle AND s.office_id = o.id
    WHERE NOT x.was_final AND x.changes >= p_min_changes;
    INSERT INTO release_buckets (release_id, year, cycle, region, kind, state_release, final,
                                 changes)
    SELECT v_id, x.year, x.cycle, x.region, x.kind,
           CASE WHEN NOT x.was_final AND x.changes >= p_min_changes THEN v_id
                ELSE x.state_release END,
           x.was_final OR x.closed,
           x.changes
    FROM release_plan x
    -- A bucket never published and not refreshed stays unpublished (no row).
    WHERE x.state_release IS NOT NULL OR x.changes >= p_min_changes;
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION kqe_release_make(integer, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_release_make(integer, boolean, text) TO kqe_service;

-- Report periods: those the latest release publishes (docs/disclosure.md): a period appears
-- when its first state is released, not when its first record is written.
CREATE OR REPLACE FUNCTION kqe_report_periods()
    RETURNS TABLE (kind text, basis text, period text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT CASE r.dimension WHEN 'cases' THEN 'case_analyses' ELSE 'topics' END,
           CASE r.dimension WHEN 'cases' THEN 'closed_month' ELSE 'identified' END, p.period
    FROM release_buckets b
    JOIN offices o ON o.region = b.region AND o.kind = b.kind
    JOIN release_rollups r ON r.release_id = b.state_release AND r.year = b.year
        AND r.cycle = b.cycle AND r.office_id = o.id
    CROSS JOIN LATERAL (VALUES (b.year::text), (b.cycle)) AS p (period)
    WHERE b.release_id = (SELECT max(id) FROM releases)
      AND r.dimension IN ('cases', 'topic_theme')
    UNION
    SELECT DISTINCT 'structure_surveys', 'reference_date', p.period
    FROM release_buckets b
    JOIN offices o ON o.region = b.region AND o.kind = b.kind
    JOIN release_structure s ON s.release_id = b.state_release AND s.year = b.year
        AND s.cycle = b.cycle AND s.office_id = o.id
    CROSS JOIN LATERAL (VALUES (b.year::text), (b.cycle)) AS p (period)
    WHERE b.release_id = (SELECT max(id) FROM releases)
$$;

-- The benchmark (GET /v1/offices/{id}/benchmark): the office's own indicators as they are
-- now, its peers' only as the latest release publishes them (their latest released survey;
-- their case shares and median days from the released rollups), so a peer's single new
-- survey or case does not move the peers' quartiles between two looks.
CREATE OR REPLACE FUNCTION kqe_benchmark(p_office text, p_min_offices int)
    RETURNS TABLE (indicator text, unit text, own numeric, peer_group text, peers int,
                   mean numeric, q1 numeric, median numeric, q3 numeric)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        SELECT b.state_release, b.year, b.cycle, o.id AS office_id
        FROM release_buckets b JOIN offices o ON o.region = b.region AND o.kind = b.kind
        WHERE b.release_id = (SELECT max(id) FROM releases)
    ), peer_surveys AS (
        SELECT s.office_id, s.indicator, s.unit, s.value,
               rank() OVER (PARTITION BY s.office_id
                            ORDER BY s.reference_date DESC, s.cycle DESC) AS newest
        FROM released r JOIN release_structure s ON s.release_id = r.state_release
            AND s.year = r.year AND s.cycle = r.cycle AND s.office_id = r.office_id
    ), peer_rollups AS (
        SELECT x.office_id, x.dimension, x.category, x.n
        FROM released r JOIN release_rollups x ON x.release_id = r.state_release
            AND x.year = r.year AND x.cycle = r.cycle AND x.office_id = r.office_id
        WHERE x.dimension IN ('direct_impression', 'several_professionals', 'child_involved',
                              'days_to_first_contact')
    ), peer_cases AS (
        SELECT office_id,
               100.0 * sum(n) FILTER (WHERE dimension = 'direct_impression' AND category = 'yes')
                   / nullif(sum(n) FILTER (WHERE dimension = 'direct_impression'), 0) AS direct,
               100.0 * sum(n) FILTER (WHERE dimension = 'several_professionals'
                                      AND category = 'yes')
                   / nullif(sum(n) FILTER (WHERE dimension = 'several_professionals'), 0)
                   AS several,
               100.0 * sum(n) FILTER (WHERE dimension = 'child_involved' AND category = 'yes')
                   / nullif(sum(n) FILTER (WHERE dimension = 'child_involved'), 0) AS child
        FROM peer_rollups GROUP BY office_id
    ), peer_days AS (
        SELECT x.office_id,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY x.category::int) AS days
        FROM peer_rollups x CROSS JOIN LATERAL generate_series(1, x.n)
        WHERE x.dimension = 'days_to_first_contact' GROUP BY x.office_id
    ), own_survey AS (
        SELECT s.body FROM structure_surveys s WHERE s.office_id = p_office
        ORDER BY s.body->>'reference_date' DESC, s.updated_at DESC LIMIT 1
    ), own_cases AS (
        SELECT 100.0 * avg(direct_impression::int) AS direct,
               100.0 * avg(several_professionals::int) AS several,
               100.0 * avg(child_involved::int) AS child,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_first_contact) AS days
        FROM case_analyses WHERE office_id = p_office
    ), case_values AS (
        SELECT o.id AS office_id, v.indicator, v.unit, v.value::numeric AS value
        FROM offices o
        LEFT JOIN peer_cases c ON c.office_id = o.id
        LEFT JOIN peer_days d ON d.office_id = o.id
        CROSS JOIN LATERAL (VALUES
            ('direct_impression_percent', '% of case analyses', c.direct),
            ('several_professionals_percent', '% of case analyses', c.several),
            ('child_involved_percent', '% of case analyses', c.child),
            ('median_days_to_first_contact', 'days', d.days::numeric)
        ) AS v(indicator, unit, value)
        WHERE o.id <> p_office
    ), me AS (
        SELECT o.id AS office_id, o.kind, o.region, s.indicator, s.unit, s.value
        FROM offices o
        LEFT JOIN own_survey l ON true
        CROSS JOIN LATERAL kqe_survey_indicators(l.body, o.population_under_18) AS s
        WHERE o.id = p_office
        UNION ALL
        SELECT o.id, o.kind, o.region, v.indicator, v.unit, v.value::numeric
        FROM offices o CROSS JOIN own_cases c
        CROSS JOIN LATERAL (VALUES
            ('direct_impression_percent', '% of case analyses', c.direct),
            ('several_professionals_percent', '% of case analyses', c.several),
            ('child_involved_percent', '% of case analyses', c.child),
            ('median_days_to_first_contact', 'days', c.days::numeric)
        ) AS v(indicator, unit, value)
        WHERE o.id = p_office
    ), peers AS (
        SELECT o.id AS office_id, o.kind, o.region, s.indicator, s.value
        FROM peer_surveys s JOIN offices o ON o.id = s.office_id
        WHERE s.newest = 1 AND s.office_id <> p_office
        UNION ALL
        SELECT o.id, o.kind, o.region, v.indicator, v.value
        FROM case_values v JOIN offices o ON o.id = v.office_id
    ), groups AS (
        SELECT me.indicator, me.unit, me.value AS own, g.peer_group, p.value
        FROM me
        CROSS JOIN (VALUES ('kind'), ('region')) AS g(peer_group)
        LEFT JOIN peers p ON p.indicator = me.indicator AND p.value IS NOT NULL
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
