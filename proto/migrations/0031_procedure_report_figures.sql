-- The § 8 procedure report (docs/procedure-reports.md, 0017_procedure_reports.sql): two
-- corrections of what 0017 wrote.
--
--   1. The report's structure section shows the office's indicators beside its peer groups.
--      Four of them come from case analyses (the shares of direct impression, of several
--      professionals, of the child involved; the median days to first contact); kqe_benchmark
--      computes the office's own values of those over all its case analyses, every procedure
--      together, so the report printed figures that were not the procedure's and did not
--      agree with its own counts. They are now computed from the procedure's case analyses,
--      like every other figure of the report (kqe_procedure_report_data below); the peers'
--      quartiles stay the latest release's (kqe_benchmark). Reports finalised before keep
--      their frozen figures (0017's invariant 2; the trigger refuses to change them).
--   2. The ministry sees only that a report exists and when it was finalised: its rows are
--      the finalised and accepted reports, never a draft (the service_read policy below; the
--      API's list shows it no more than the procedure, office, cycle and finalisation time).

CREATE OR REPLACE FUNCTION kqe_procedure_report_data(p_procedure uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_office text;
    v_out jsonb;
BEGIN
    SELECT office_id INTO v_office FROM procedures WHERE id = p_procedure;
    IF v_office IS NULL OR NOT kqe_report_reader(v_office, p_procedure) THEN
        RETURN NULL;
    END IF;
    WITH case_rows AS (
        SELECT r.dimension, r.category
        FROM case_analyses c
        CROSS JOIN LATERAL kqe_case_rollup(c.closed_month, c.child_birth_month, c.result,
            c.child_sex, c.reported_by, c.direct_impression, c.several_professionals,
            c.child_involved, c.days_to_first_contact, c.endangerment_forms,
            c.learning_themes, c.ratings) AS r
        WHERE c.procedure_id = p_procedure
    ), counts AS (
        SELECT dimension, jsonb_object_agg(category, n) AS categories FROM (
            SELECT dimension, category, count(*) AS n FROM case_rows
            WHERE dimension <> 'days_to_first_contact' GROUP BY 1, 2) AS x
        GROUP BY dimension
    ), medians AS (
        SELECT dimension,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY category::numeric) AS median
        FROM case_rows WHERE dimension = 'days_to_first_contact' OR dimension LIKE 'rating:%'
        GROUP BY dimension
    ), own_cases AS (
        -- The case indicators as kqe_benchmark computes them, over this procedure only.
        SELECT v.indicator, round(v.value, 2) AS value
        FROM (SELECT 100.0 * avg(direct_impression::int) AS direct,
                     100.0 * avg(several_professionals::int) AS several,
                     100.0 * avg(child_involved::int) AS child,
                     percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_first_contact)
                         AS days
              FROM case_analyses WHERE procedure_id = p_procedure) AS c
        CROSS JOIN LATERAL (VALUES
            ('direct_impression_percent', c.direct),
            ('several_professionals_percent', c.several),
            ('child_involved_percent', c.child),
            ('median_days_to_first_contact', c.days::numeric)
        ) AS v (indicator, value)
    )
    SELECT jsonb_build_object(
        'case_analyses', (SELECT count(*) FROM case_analyses WHERE procedure_id = p_procedure),
        'counts', coalesce((SELECT jsonb_object_agg(dimension, categories) FROM counts), '{}'),
        'medians', coalesce((SELECT jsonb_object_agg(dimension, round(median::numeric, 1))
                             FROM medians), '{}'),
        'structure', coalesce((
            SELECT jsonb_agg(jsonb_build_object('indicator', b.indicator, 'unit', b.unit,
                       'own', CASE WHEN o.indicator IS NOT NULL THEN o.value ELSE b.own END,
                       'peer_group', b.peer_group, 'peers', b.peers,
                       'q1', b.q1, 'median', b.median, 'q3', b.q3)
                   ORDER BY b.indicator, b.peer_group)
            FROM kqe_benchmark(v_office, 1) b
            LEFT JOIN own_cases o ON o.indicator = b.indicator), '[]'),
        'topics', coalesce((
            SELECT jsonb_agg(jsonb_build_object('theme', t.theme, 'priority', t.priority,
                       'status', t.status, 'follow_up_date', t.follow_up_date)
                   ORDER BY t.created_at, t.id)
            FROM topics t WHERE t.procedure_id = p_procedure), '[]'),
        'as_of', kqe_ts(now()))
    INTO v_out;
    RETURN v_out;
END
$$;

ALTER POLICY service_read ON procedure_reports USING (
    kqe_report_reader(office_id, procedure_id)
    OR (kqe_ctx('role') = 'ministry' AND status <> 'draft'));
