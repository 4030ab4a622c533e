-- Which report periods have data, per kind of data (GET /v1/report-periods).
-- A year is placed by one date per kind:
--   case_analyses      closed_month    the month the § 8a risk assessment closed
--   topics             identified      the day the topic was recorded (Europe/Berlin)
--   structure_surveys  reference_date  the day the survey's figures describe
-- and a cycle ("2023-2028") holds the records of the procedures of that cycle.
-- Case analyses and topics come from the rollups the reports are built from
-- (they follow each write within the aggregator's catch-up interval), so a
-- period listed is one a report has figures for. Only periods are returned,
-- never a count: SECURITY DEFINER reads across offices for every caller.
CREATE FUNCTION kqe_report_periods()
    RETURNS TABLE (kind text, basis text, period text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT CASE dimension WHEN 'cases' THEN 'case_analyses' ELSE 'topics' END,
           CASE dimension WHEN 'cases' THEN 'closed_month' ELSE 'identified' END, p.period
    FROM rollups CROSS JOIN LATERAL (VALUES (year::text), (cycle)) AS p (period)
    WHERE dimension IN ('cases', 'topic_theme')
    UNION
    SELECT DISTINCT 'structure_surveys', 'reference_date', p.period
    FROM structure_surveys s JOIN procedures pr ON pr.id = s.procedure_id
    CROSS JOIN LATERAL (VALUES (extract(year FROM (s.body->>'reference_date')::date)::int::text),
                               (pr.cycle)) AS p (period)
$$;
REVOKE ALL ON FUNCTION kqe_report_periods() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_report_periods() TO kqe_service;
