-- Releases refresh per source, and the programme figures about persons are released too
-- (docs/disclosure.md, "Releases" and "Which figures are released").
--
-- Until now a release refreshed a bucket (year, cycle, region, kind: 0016) once
-- min_changes of its records had changed, counting case analyses, topics, advice requests,
-- their responses and answers, and changed surveys together. A refresh could then carry one
-- new case analysis beside 29 topics; since atoms whose records did not change keep exactly
-- their noise, the case tables of the two releases differed in that one case's atoms only,
-- and its sex, age group, result, ... could be read off (A0). The rule is now per source.
--
-- Invariants, each with where it is kept:
--   1. Every rollup dimension, the structure surveys and every released programme dimension
--      belong to exactly one source (kqe_release_source). A source is a set of dimensions
--      that every record of it enters together when it is written; a dimension that records
--      enter later (a first response, an answer, an attendance, a rating) is a source of its
--      own. A dimension not named here is a source of its own whose every count is a record,
--      so a dimension added later is never refreshed by another source's records.
--   2. A source's changes in a bucket are the records added to or removed from it since its
--      published state, net per owner (and programme), counted in its counting dimension
--      (kqe_release_counts: the one each record counts in exactly once); for the structure
--      surveys, the offices whose indicators changed (as 0016). A change of a record in
--      place (a correction, a topic's new status, a question answered) is not counted: it
--      rides along with the source's next refresh, among at least min_changes others.
--   3. A release refreshes a source of a bucket only when its own changes reach min_changes
--      (kqe_release_make). Every other source of the bucket keeps its published state: a
--      bucket's new state copies their rows from its previous state, so a bucket's state
--      (release_rollups, release_structure, release_figures of its state_release) is always
--      the published state of each of its sources, and readers need not know about sources.
--      Two different published states of any table therefore lie at least min_changes
--      records of that table's source apart.
--   4. When a bucket's period closes (0016) it becomes final; a source whose published state
--      is still empty is then published in full, whatever its changes: the difference
--      between nothing and the final state is the final state itself, which is published
--      for good anyway. (Until now such a bucket stayed unpublished for ever if fewer than
--      min_changes records came in, and small groups with it.) A source with a non-empty
--      published state and fewer than min_changes late changes keeps it, as before.
--   5. The programme figures about persons — registrations for events held, their
--      attendance and feedback, questions to the service desk and their answers — are
--      released like the rollups (release_figures, per bucket: the year and cycle of the
--      event's end or of the question, the owner's region and kind; a professional's kind is
--      'professional'). Reports read them from the release (kqe_report_programme_figures).
--      Participation (offices selected for a programme) and events held stay live: they are
--      about public institutions and a programme's own public events (docs/disclosure.md).
--      Releases taken before this migration hold no such figures, so reports show them from
--      the first release after it that refreshes their sources.
--   6. release_figures is immutable and read by the aggregator and admins only, like the
--      rollups it stands beside.

-- (1) The source of a dimension, and (2) whether each record counts in it exactly once.
CREATE FUNCTION kqe_release_source(p_dimension text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN p_dimension IN ('cases', 'result', 'age_group', 'child_sex', 'reported_by', 'form',
                             'learning_theme', 'direct_impression', 'several_professionals',
                             'child_involved', 'days_to_first_contact')
             OR p_dimension LIKE 'rating:%' THEN 'case_analyses'
        WHEN p_dimension IN ('topic_theme', 'topic_status') THEN 'topics'
        WHEN p_dimension IN ('advice_kind', 'advice_topic') THEN 'advice_requests'
        WHEN p_dimension = 'advice_days_to_first_response' THEN 'advice_first_responses'
        WHEN p_dimension = 'advice_days_to_answer' THEN 'advice_answers'
        WHEN p_dimension = 'registration_status' THEN 'event_registrations'
        WHEN p_dimension IN ('attended', 'attended_registrations') THEN 'attendance'
        WHEN p_dimension = 'feedback_rating' THEN 'feedback'
        WHEN p_dimension IN ('service_request_status', 'answered') THEN 'service_requests'
        WHEN p_dimension = 'response_hours' THEN 'service_answers'
        ELSE p_dimension END;

CREATE FUNCTION kqe_release_counts(p_dimension text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE kqe_release_source(p_dimension)
        WHEN 'case_analyses' THEN p_dimension = 'cases'
        WHEN 'topics' THEN p_dimension = 'topic_theme'
        WHEN 'advice_requests' THEN p_dimension = 'advice_kind'
        WHEN 'attendance' THEN p_dimension = 'attended_registrations'
        WHEN 'service_requests' THEN p_dimension = 'service_request_status'
        ELSE true END;

-- (5) The released programme figures: per bucket and owner, as kqe_programme_figures (0029)
-- counts them, with the programme.
CREATE TABLE release_figures (
    release_id   integer NOT NULL REFERENCES releases (id),
    year         integer NOT NULL,
    cycle        text NOT NULL,
    region       text NOT NULL,
    kind         text NOT NULL,
    owner        text NOT NULL, -- an office's id, or 'professional:<id>'
    programme_id uuid NOT NULL REFERENCES programmes (id),
    dimension    text NOT NULL,
    category     text NOT NULL,
    n            bigint NOT NULL CHECK (n > 0),
    keysum       bigint NOT NULL CHECK (keysum BETWEEN 0 AND 4294967295),
    PRIMARY KEY (release_id, year, cycle, region, kind, owner, programme_id, dimension, category)
);
CREATE TRIGGER release_figures_immutable BEFORE UPDATE OR DELETE ON release_figures
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();
ALTER TABLE release_figures ENABLE ROW LEVEL SECURITY;
ALTER TABLE release_figures FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON release_figures TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON release_figures TO kqe_service;
-- (6) Per owner and person-related: the aggregator and admins only.
CREATE POLICY service_read ON release_figures FOR SELECT TO kqe_service
    USING (kqe_ctx('role') IN ('system', 'admin'));

-- (5) Every record of the released programme figures as of p_at, in every period: the
-- dimensions of kqe_programme_figures (0029) about persons, counted as it counts them, and
-- attended_registrations (one per registration whose attendance was recorded), which
-- counts the attendance's records (2) and is never shown.
CREATE FUNCTION kqe_programme_release_rows(p_at timestamptz)
    RETURNS TABLE (year integer, cycle text, region text, kind text, owner text,
                   programme_id uuid, dimension text, category text, n bigint, keysum bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH owners AS (
        SELECT o.id AS owner, o.region, o.kind FROM offices o
        UNION ALL
        SELECT p.owner, p.region, p.kind FROM kqe_figure_professionals() p
    ), regs AS (
        SELECT r.*, e.ends_at AS at,
               coalesce(r.office_id, 'professional:' || r.professional_id) AS owner
        FROM event_registrations r JOIN events e ON e.id = r.event_id
        WHERE e.status = 'scheduled' AND e.ends_at <= p_at
    ), asked AS (
        SELECT s.*, s.created_at AS at,
               CASE WHEN s.office_id IS NOT NULL THEN s.office_id
                    ELSE 'professional:' || s.professional_id END AS owner
        FROM service_requests s
    ), records AS (
        SELECT r.owner, 'registration_status' AS dimension, r.status AS category,
               1::bigint AS n, r.record_key, r.at, r.programme_id
        FROM regs r
        UNION ALL
        SELECT r.owner, 'attended', CASE WHEN d.attended THEN 'yes' ELSE 'no' END, count(*),
               r.record_key, r.at, r.programme_id
        FROM regs r CROSS JOIN LATERAL unnest(r.attended) AS d (attended)
        WHERE r.status = 'registered'
        GROUP BY r.id, r.owner, d.attended, r.record_key, r.at, r.programme_id
        UNION ALL
        SELECT r.owner, 'attended_registrations', 'all', 1, r.record_key, r.at, r.programme_id
        FROM regs r WHERE r.status = 'registered' AND cardinality(r.attended) > 0
        UNION ALL
        SELECT r.owner, 'feedback_rating', r.feedback_rating::text, 1, r.record_key, r.at,
               r.programme_id
        FROM regs r WHERE r.feedback_rating IS NOT NULL
        UNION ALL
        SELECT s.owner, 'service_request_status', s.status, 1, s.record_key, s.at,
               s.programme_id
        FROM asked s
        UNION ALL
        SELECT s.owner, 'answered', CASE WHEN s.answered_at IS NOT NULL THEN 'yes' ELSE 'no' END,
               1, s.record_key, s.at, s.programme_id
        FROM asked s
        UNION ALL
        SELECT s.owner, 'response_hours',
               round(extract(epoch FROM s.answered_at - s.created_at) / 3600, 1)::text, 1,
               s.record_key, s.at, s.programme_id
        FROM asked s WHERE s.answered_at IS NOT NULL
    )
    SELECT extract(year FROM x.at AT TIME ZONE 'Europe/Berlin')::int, kqe_cycle_of(x.at),
           o.region, o.kind, x.owner, x.programme_id, x.dimension, x.category,
           sum(x.n)::bigint, kqe_keysum(sum(x.n::numeric * x.record_key))
    FROM records x JOIN owners o ON o.owner = x.owner
    WHERE kqe_figures_reader()
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
$$;
REVOKE ALL ON FUNCTION kqe_programme_release_rows(timestamptz) FROM PUBLIC;

-- (5) The programme figures of a report of the period (p_year or p_cycle) from the release
-- p_release, as kqe_programme_figures (0029) returns them: participation and events held
-- live, everything about persons as released.
CREATE FUNCTION kqe_report_programme_figures(p_release integer, p_year integer, p_cycle text)
    RETURNS TABLE (owner text, dimension text, category text, n bigint, keysum bigint,
                   part text, programme_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT f.owner, f.dimension, f.category, f.n, f.keysum, f.part, f.programme_id
    FROM kqe_programme_figures(p_year, p_cycle) f
    WHERE f.dimension IN ('programme_role', 'event_kind')
    UNION ALL
    SELECT f.owner, f.dimension, f.category, f.n, f.keysum, f.year || '/' || f.cycle,
           f.programme_id::text
    FROM release_buckets b
    JOIN release_figures f ON f.release_id = b.state_release AND f.year = b.year
        AND f.cycle = b.cycle AND f.region = b.region AND f.kind = b.kind
    WHERE b.release_id = p_release AND kqe_figures_reader()
      AND (p_year IS NULL OR b.year = p_year) AND (p_cycle IS NULL OR b.cycle = p_cycle)
      AND f.dimension <> 'attended_registrations'
$$;
REVOKE ALL ON FUNCTION kqe_report_programme_figures(integer, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_release_source(text), kqe_release_counts(text),
    kqe_report_programme_figures(integer, integer, text) TO kqe_service;

-- Takes a release: as 0016 and 0020, with (2) to (5).
CREATE OR REPLACE FUNCTION kqe_release_make(p_min_changes integer, p_final boolean, p_actor text)
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
    -- same rows. The live sources of the structure and of the programme figures are read
    -- once, into temporary tables, for the same reason.
    LOCK TABLE rollups IN SHARE MODE;
    LOCK TABLE structure_surveys IN SHARE MODE;
    SELECT max(id) INTO v_prev FROM releases;
    -- The cut-off is when the locks were had, not when the transaction began: a release
    -- that waited for another holds the records committed meanwhile.
    v_cut := clock_timestamp();

    CREATE TEMP TABLE release_structure_now ON COMMIT DROP AS
    SELECT * FROM kqe_structure_rows();
    CREATE TEMP TABLE release_figures_now ON COMMIT DROP AS
    SELECT * FROM kqe_programme_release_rows(v_cut);
    CREATE TEMP TABLE release_prev ON COMMIT DROP AS
    SELECT * FROM release_buckets WHERE release_id = v_prev;

    -- (2) Per bucket and source: the records changed since its published state, and whether
    -- that state holds anything.
    CREATE TEMP TABLE release_plan_sources ON COMMIT DROP AS
    WITH now_n AS (
        SELECT r.year, r.cycle, o.region, o.kind, r.office_id AS owner, '' AS programme,
               kqe_release_source(r.dimension) AS source,
               sum(r.n) FILTER (WHERE kqe_release_counts(r.dimension)) AS n
        FROM rollups r JOIN offices o ON o.id = r.office_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        UNION ALL
        SELECT f.year, f.cycle, f.region, f.kind, f.owner, f.programme_id::text,
               kqe_release_source(f.dimension),
               sum(f.n) FILTER (WHERE kqe_release_counts(f.dimension))
        FROM release_figures_now f
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ), then_n AS (
        SELECT r.year, r.cycle, p.region, p.kind, r.office_id AS owner, '' AS programme,
               kqe_release_source(r.dimension) AS source,
               sum(r.n) FILTER (WHERE kqe_release_counts(r.dimension)) AS n
        FROM release_prev p JOIN offices o ON o.region = p.region AND o.kind = p.kind
        JOIN release_rollups r ON r.release_id = p.state_release AND r.year = p.year
            AND r.cycle = p.cycle AND r.office_id = o.id
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        UNION ALL
        SELECT f.year, f.cycle, f.region, f.kind, f.owner, f.programme_id::text,
               kqe_release_source(f.dimension),
               sum(f.n) FILTER (WHERE kqe_release_counts(f.dimension))
        FROM release_prev p JOIN release_figures f ON f.release_id = p.state_release
            AND f.year = p.year AND f.cycle = p.cycle AND f.region = p.region
            AND f.kind = p.kind
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ), diff AS (
        SELECT coalesce(a.year, b.year) AS year, coalesce(a.cycle, b.cycle) AS cycle,
               coalesce(a.region, b.region) AS region, coalesce(a.kind, b.kind) AS kind,
               coalesce(a.source, b.source) AS source,
               sum(abs(coalesce(a.n, 0) - coalesce(b.n, 0))) AS changes,
               bool_or(b.source IS NOT NULL) AS published
        FROM now_n a FULL JOIN then_n b ON a.year = b.year AND a.cycle = b.cycle
            AND a.region = b.region AND a.kind = b.kind AND a.owner = b.owner
            AND a.programme = b.programme AND a.source = b.source
        GROUP BY 1, 2, 3, 4, 5
    ), then_s AS (
        SELECT s.*, p.region, p.kind
        FROM release_prev p JOIN offices o ON o.region = p.region AND o.kind = p.kind
        JOIN release_structure s ON s.release_id = p.state_release AND s.year = p.year
            AND s.cycle = p.cycle AND s.office_id = o.id
    ), sdiff AS (
        SELECT x.year, x.cycle, o.region, o.kind, 'structure_surveys' AS source,
               count(DISTINCT x.office_id) AS changes, false AS published
        FROM (SELECT office_id, year, cycle, reference_date, indicator, value
              FROM release_structure_now
              EXCEPT SELECT office_id, year, cycle, reference_date, indicator, value FROM then_s
              UNION ALL
              (SELECT office_id, year, cycle, reference_date, indicator, value FROM then_s
               EXCEPT SELECT office_id, year, cycle, reference_date, indicator, value
               FROM release_structure_now)) AS x
        JOIN offices o ON o.id = x.office_id
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT DISTINCT year, cycle, region, kind, 'structure_surveys', 0::bigint, true
        FROM then_s
    )
    SELECT year, cycle, region, kind, source, sum(changes)::bigint AS changes,
           bool_or(published) AS published
    FROM (SELECT * FROM diff UNION ALL SELECT * FROM sdiff) AS x
    GROUP BY 1, 2, 3, 4, 5;

    -- (3), (4) Per bucket: its published state, whether it is or becomes final, and per
    -- source whether it is refreshed.
    CREATE TEMP TABLE release_plan ON COMMIT DROP AS
    WITH buckets AS (
        SELECT year, cycle, region, kind FROM release_plan_sources
        UNION SELECT year, cycle, region, kind FROM release_prev
    )
    SELECT k.year, k.cycle, k.region, k.kind, p.state_release,
           coalesce(p.final, false) AS was_final,
           p_final AND kqe_bucket_closed(k.year, k.cycle, v_cut) AS closed
    FROM buckets k LEFT JOIN release_prev p USING (year, cycle, region, kind);
    ALTER TABLE release_plan_sources ADD COLUMN refresh boolean;
    UPDATE release_plan_sources s
    SET refresh = NOT x.was_final
        AND (s.changes >= p_min_changes OR (x.closed AND NOT s.published AND s.changes > 0))
    FROM release_plan x
    WHERE x.year = s.year AND x.cycle = s.cycle AND x.region = s.region AND x.kind = s.kind;
    ALTER TABLE release_plan ADD COLUMN refreshed boolean, ADD COLUMN changes bigint;
    UPDATE release_plan x
    SET refreshed = coalesce((SELECT bool_or(s.refresh) FROM release_plan_sources s
                              WHERE s.year = x.year AND s.cycle = x.cycle
                                AND s.region = x.region AND s.kind = x.kind), false),
        changes = coalesce((SELECT sum(s.changes) FROM release_plan_sources s
                            WHERE s.year = x.year AND s.cycle = x.cycle
                              AND s.region = x.region AND s.kind = x.kind), 0);

    -- A release that would publish exactly what the last one does is not made: the last
    -- one stays current (its cut-off says how old its figures may be).
    IF v_prev IS NOT NULL AND NOT EXISTS (
        SELECT FROM release_plan
        WHERE refreshed OR (NOT was_final AND closed AND state_release IS NOT NULL))
    THEN
        RETURN v_prev;
    END IF;
    INSERT INTO releases (cut_off, actor, min_changes) VALUES (v_cut, p_actor, p_min_changes)
        RETURNING id INTO v_id;

    -- (3) A bucket with a refreshed source gets a new state: the refreshed sources' rows as
    -- they are now, every other source's rows as its previous state published them.
    CREATE TEMP TABLE release_refresh ON COMMIT DROP AS
    SELECT x.year, x.cycle, x.region, x.kind, x.state_release, s.source, s.refresh
    FROM release_plan x
    CROSS JOIN LATERAL (
        SELECT k.source, coalesce(bool_or(k.refresh), false) AS refresh
        FROM (SELECT source, refresh FROM release_plan_sources s
              WHERE s.year = x.year AND s.cycle = x.cycle AND s.region = x.region
                AND s.kind = x.kind
              UNION ALL SELECT 'structure_surveys', false) AS k
        GROUP BY k.source) AS s
    WHERE x.refreshed;

    INSERT INTO release_rollups (release_id, office_id, year, cycle, dimension, category, n, keysum)
    SELECT v_id, r.office_id, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
    FROM (SELECT DISTINCT year, cycle, region, kind FROM release_refresh) AS x
    JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN rollups r ON r.year = x.year AND r.cycle = x.cycle AND r.office_id = o.id
    JOIN release_refresh f ON f.year = x.year AND f.cycle = x.cycle AND f.region = x.region
        AND f.kind = x.kind AND f.source = kqe_release_source(r.dimension) AND f.refresh
    UNION ALL
    SELECT v_id, r.office_id, r.year, r.cycle, r.dimension, r.category, r.n, r.keysum
    FROM (SELECT DISTINCT year, cycle, region, kind, state_release FROM release_refresh
          WHERE state_release IS NOT NULL) AS x
    JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN release_rollups r ON r.release_id = x.state_release AND r.year = x.year
        AND r.cycle = x.cycle AND r.office_id = o.id
    WHERE NOT EXISTS (SELECT FROM release_refresh f
                      WHERE f.year = x.year AND f.cycle = x.cycle AND f.region = x.region
                        AND f.kind = x.kind AND f.source = kqe_release_source(r.dimension)
                        AND f.refresh);

    INSERT INTO release_structure (release_id, office_id, year, cycle, reference_date, indicator,
                                   unit, value)
    SELECT v_id, s.office_id, s.year, s.cycle, s.reference_date, s.indicator, s.unit, s.value
    FROM release_refresh x JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN release_structure_now s ON s.year = x.year AND s.cycle = x.cycle AND s.office_id = o.id
    WHERE x.source = 'structure_surveys' AND x.refresh
    UNION ALL
    SELECT v_id, s.office_id, s.year, s.cycle, s.reference_date, s.indicator, s.unit, s.value
    FROM release_refresh x JOIN offices o ON o.region = x.region AND o.kind = x.kind
    JOIN release_structure s ON s.release_id = x.state_release AND s.year = x.year
        AND s.cycle = x.cycle AND s.office_id = o.id
    WHERE x.source = 'structure_surveys' AND NOT x.refresh;

    INSERT INTO release_figures (release_id, year, cycle, region, kind, owner, programme_id,
                                 dimension, category, n, keysum)
    SELECT v_id, f.year, f.cycle, f.region, f.kind, f.owner, f.programme_id, f.dimension,
           f.category, f.n, f.keysum
    FROM release_refresh x JOIN release_figures_now f ON f.year = x.year AND f.cycle = x.cycle
        AND f.region = x.region AND f.kind = x.kind
        AND kqe_release_source(f.dimension) = x.source
    WHERE x.refresh
    UNION ALL
    SELECT v_id, f.year, f.cycle, f.region, f.kind, f.owner, f.programme_id, f.dimension,
           f.category, f.n, f.keysum
    FROM (SELECT DISTINCT year, cycle, region, kind, state_release FROM release_refresh
          WHERE state_release IS NOT NULL) AS x
    JOIN release_figures f ON f.release_id = x.state_release AND f.year = x.year
        AND f.cycle = x.cycle AND f.region = x.region AND f.kind = x.kind
    WHERE NOT EXISTS (SELECT FROM release_refresh r
                      WHERE r.year = x.year AND r.cycle = x.cycle AND r.region = x.region
                        AND r.kind = x.kind AND r.source = kqe_release_source(f.dimension)
                        AND r.refresh);

    INSERT INTO release_buckets (release_id, year, cycle, region, kind, state_release, final,
                                 changes)
    SELECT v_id, x.year, x.cycle, x.region, x.kind,
           CASE WHEN x.refreshed THEN v_id ELSE x.state_release END,
           x.was_final OR x.closed,
           x.changes
    FROM release_plan x
    -- A bucket never published and not refreshed stays unpublished (no row).
    WHERE x.state_release IS NOT NULL OR x.refreshed;
    RETURN v_id;
END
$$;
