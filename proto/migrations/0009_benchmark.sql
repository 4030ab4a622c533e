-- Benchmark of one office against its peer groups (same kind of office; same
-- region): the office's own value per indicator beside the peers' count,
-- mean, quartiles and median. Comparison values exist only where at least
-- p_min_offices peers contribute (disclosure control); otherwise they are
-- NULL. Runs as the owner because peers' data is behind RLS, and returns
-- aggregates only — never another office's own value.
CREATE FUNCTION kqe_benchmark(p_office text, p_min_offices int)
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
        SELECT o.id AS office_id, o.kind, o.region, v.indicator, v.unit, v.value::numeric AS value
        FROM offices o
        LEFT JOIN latest l ON l.office_id = o.id
        LEFT JOIN cases c ON c.office_id = o.id
        CROSS JOIN LATERAL (VALUES
            ('asd_staff_per_10k_under_18', 'FTE per 10,000 under 18',
             (l.body->>'asd_staff_fte')::numeric * 10000 / nullif(o.population_under_18, 0)),
            ('cases_per_fte', 'cases per FTE', (l.body->>'cases_per_fte')::numeric),
            ('vacancy_percent', '%', 100 * (l.body->>'vacancies_fte')::numeric
                / nullif((l.body->>'asd_staff_fte')::numeric
                         + coalesce((l.body->>'vacancies_fte')::numeric, 0), 0)),
            ('turnover_percent', '%', 100 * (l.body->>'staff_turnover_12m')::numeric
                / nullif((l.body->>'asd_staff_fte')::numeric, 0)),
            ('training_hours_per_fte', 'hours per FTE', (l.body->>'training_hours_per_fte')::numeric),
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
REVOKE ALL ON FUNCTION kqe_benchmark(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_benchmark(text, int) TO kqe_service;
