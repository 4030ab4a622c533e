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

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['releases', 'release_buckets', 'release_rollups'] LOOP
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
    SELECT max(id) INTO v_prev FROM releases;
    -- The cut-off is when the locks were had, not when the transaction began: a release
    -- that waited for another holds the records committed meanwhile.
    v_cut := clock_timestamp();

    -- Per bucket: its published state (if any), and how many records (net, per office)
    -- were added or removed since.
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
    ), buckets AS (
        SELECT year, cycle, region, kind FROM diff
        UNION SELECT year, cycle, region, kind FROM prev
    )
    SELECT k.year, k.cycle, k.region, k.kind, p.state_release,
           coalesce(p.final, false) AS was_final, coalesce(d.changes, 0) AS changes,
           p_final AND kqe_bucket_closed(k.year, k.cycle, v_cut) AS closed
    FROM buckets k LEFT JOIN prev p USING (year, cycle, region, kind)
    LEFT JOIN diff d USING (year, cycle, region, kind);

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
    FROM structure_surveys s JOIN procedures pr ON pr.id = s.procedure_id
    CROSS JOIN LATERAL (VALUES (extract(year FROM (s.body->>'reference_date')::date)::int::text),
                               (pr.cycle)) AS p (period)
$$;
