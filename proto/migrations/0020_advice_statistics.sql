-- § 7 advice requests in the statistics (docs/advice.md, docs/rollups.md): counted like case
-- analyses and topics, through the rollups, releases and the cell-key method, never live.
--
--   1. A request counts in the year (Europe/Berlin) and the § 8 cycle its submission falls in,
--      whatever its status: by kind and by topic; its days to the first response and to the
--      answer once there were any (whole days after submission).
--   2. Each request has a record key (0015) and marks its office's rollups dirty on every
--      write, so a report catches up with it like with any other record.
--   3. A release counts a bucket's changed advice figures (new requests, first responses,
--      answers) as changes (kqe_release_make, otherwise as in 0016).

-- The § 8 cycle a moment falls in: five years from 1 July 2023, 1 July 2028, ... (and back).
CREATE FUNCTION kqe_cycle_of(p_at timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s || '-' || (s + 5)
    FROM (SELECT 2023 + 5 * floor((extract(year FROM d)
                 - CASE WHEN extract(month FROM d) < 7 THEN 1 ELSE 0 END - 2023) / 5.0)::int AS s
          FROM (SELECT (p_at AT TIME ZONE 'Europe/Berlin')::date AS d) AS x) AS y
$$;

ALTER TABLE advice_requests ADD COLUMN record_key bigint NOT NULL DEFAULT kqe_record_key()
    CHECK (record_key BETWEEN 0 AND 4294967295);
CREATE TRIGGER keep_record_key BEFORE UPDATE OF record_key ON advice_requests
    FOR EACH ROW EXECUTE FUNCTION kqe_keep_record_key();

-- What one request counts in (1).
CREATE FUNCTION kqe_advice_rollup(submitted timestamptz, first_response timestamptz,
                                  answered timestamptz, kind text, topic text)
    RETURNS TABLE (year integer, cycle text, dimension text, category text)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT extract(year FROM submitted AT TIME ZONE 'Europe/Berlin')::int,
           kqe_cycle_of(submitted), d.dimension, d.category
    FROM (VALUES ('advice_kind', kind), ('advice_topic', topic),
                 ('advice_days_to_first_response',
                  floor(extract(epoch FROM first_response - submitted) / 86400)::int::text),
                 ('advice_days_to_answer',
                  floor(extract(epoch FROM answered - submitted) / 86400)::int::text))
         AS d (dimension, category)
    WHERE d.category IS NOT NULL
$$;

-- As 0015's, with the advice requests.
CREATE OR REPLACE FUNCTION kqe_rollup_rows(p_office text)
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
        SELECT r.year, r.cycle, r.dimension, r.category, 1, a.record_key
        FROM advice_requests a
        CROSS JOIN LATERAL kqe_advice_rollup(a.submitted_at, a.first_response_at,
            a.answered_at, a.kind, a.topic) AS r
        WHERE a.office_id = p_office
        UNION ALL
        SELECT k.year, k.cycle, k.dimension, k.category, k.n, k.keysum
        FROM rollup_retained k WHERE k.office_id = p_office
    ) AS x
    GROUP BY 1, 2, 3, 4
$$;

-- (2) Every write marks the office dirty, as for case analyses and topics (0010).
CREATE TRIGGER rollup_dirty_insert AFTER INSERT ON advice_requests
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty();
CREATE TRIGGER rollup_dirty_update AFTER UPDATE ON advice_requests
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty();
CREATE TRIGGER rollup_dirty_delete AFTER DELETE ON advice_requests
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kqe_mark_rollup_dirty();

-- (3) As 0016's, with the advice figures among a bucket's changes.
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
               sum(r.n) FILTER (WHERE r.dimension = 'topic_theme') AS topics,
               sum(r.n) FILTER (WHERE r.dimension IN ('advice_kind',
                   'advice_days_to_first_response', 'advice_days_to_answer')) AS advice
        FROM rollups r JOIN offices o ON o.id = r.office_id GROUP BY 1, 2, 3, 4, 5
    ), prev AS (
        SELECT * FROM release_buckets WHERE release_id = v_prev
    ), then_n AS (
        SELECT r.year, r.cycle, p.region, p.kind, r.office_id,
               sum(r.n) FILTER (WHERE r.dimension = 'cases') AS cases,
               sum(r.n) FILTER (WHERE r.dimension = 'topic_theme') AS topics,
               sum(r.n) FILTER (WHERE r.dimension IN ('advice_kind',
                   'advice_days_to_first_response', 'advice_days_to_answer')) AS advice
        FROM prev p JOIN offices o ON o.region = p.region AND o.kind = p.kind
        JOIN release_rollups r ON r.release_id = p.state_release AND r.year = p.year
            AND r.cycle = p.cycle AND r.office_id = o.id
        GROUP BY 1, 2, 3, 4, 5
    ), diff AS (
        SELECT coalesce(a.year, b.year) AS year, coalesce(a.cycle, b.cycle) AS cycle,
               coalesce(a.region, b.region) AS region, coalesce(a.kind, b.kind) AS kind,
               sum(abs(coalesce(a.cases, 0) - coalesce(b.cases, 0))
                   + abs(coalesce(a.topics, 0) - coalesce(b.topics, 0))
                   + abs(coalesce(a.advice, 0) - coalesce(b.advice, 0))) AS changes
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

-- Requests written before this migration count from the next recompute.
INSERT INTO rollup_dirty (office_id) SELECT DISTINCT office_id FROM advice_requests
    ON CONFLICT (office_id) DO NOTHING;
