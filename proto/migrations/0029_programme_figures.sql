-- Figures for the Ministry's accountability on programmes (docs/programmes.md, "Figures for
-- the Ministry"; docs/disclosure.md): participation, events held, registrations, attendance,
-- feedback and the service desk, in every report, under the cell-key method like every other
-- count.
--
-- Invariants, each with where it is kept:
--   1. Every record a programme figure counts carries a record key (0015): applications
--      (participation), events (events held), event registrations (registrations,
--      attendance, feedback) and service-desk questions. Set once, kept on UPDATE (the
--      trigger of 0015), never shown by the API; existing rows get theirs here.
--   2. Only NRW counts: a figure's owner is an office of offices (never offices_elsewhere),
--      or a professional whose seat is one of NRW's municipalities (its region from the
--      municipality's key: Regierungsbezirke Düsseldorf and Köln are the LVR's, Münster,
--      Detmold and Arnsberg the LWL's) — for its questions and the event registrations it
--      made itself (0028). A registration of a person of no office (the team's), an office
--      elsewhere, and a professional seated outside NRW count nowhere. Events held belong to
--      their programme, not to a region: they are counted in the state's report only.
--   3. Figures are read live when a report is built, like the § 10 concepts: a state of the
--      programmes, not case data, and not held still by releases (docs/disclosure.md, "Not
--      yet defended").
--   4. Read by the aggregator ('system'), the ministry and admin only: the functions run as
--      their owner because the rows they count are otherwise readable by their office or the
--      programme's team alone.

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['applications', 'events', 'event_registrations',
                             'service_requests'] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN record_key bigint NOT NULL'
                       ' DEFAULT kqe_record_key()'
                       ' CHECK (record_key BETWEEN 0 AND 4294967295)', t);
        EXECUTE format('CREATE TRIGGER keep_record_key BEFORE UPDATE OF record_key ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION kqe_keep_record_key()', t);
    END LOOP;
END
$$;

-- Whether a moment lies in a report's period: the calendar year p_year (Europe/Berlin), or
-- the § 8 cycle p_cycle (kqe_cycle_of, 0020).
CREATE FUNCTION kqe_in_period(p_at timestamptz, p_year integer, p_cycle text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_year IS NOT NULL
                THEN extract(year FROM p_at AT TIME ZONE 'Europe/Berlin')::int = p_year
                ELSE kqe_cycle_of(p_at) = p_cycle END
$$;

-- The part of a period a dated record counts in: its year and cycle, as the rollups' atoms.
CREATE FUNCTION kqe_period_part(p_at timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT extract(year FROM p_at AT TIME ZONE 'Europe/Berlin')::int || '/' || kqe_cycle_of(p_at)
$$;

-- Whether a programme runs in the period: its runtime overlaps the year, or the cycle (1 July
-- of its first year to 30 June of its last).
CREATE FUNCTION kqe_programme_runs(p_starts date, p_ends date, p_year integer, p_cycle text)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_year IS NOT NULL
                THEN p_starts <= make_date(p_year, 12, 31) AND p_ends >= make_date(p_year, 1, 1)
                ELSE p_starts <= make_date(split_part(p_cycle, '-', 2)::int, 6, 30)
                     AND p_ends >= make_date(split_part(p_cycle, '-', 1)::int, 7, 1) END
$$;

CREATE FUNCTION kqe_figures_reader() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(kqe_ctx('role') IN ('ministry', 'admin', 'system'), false)
$$;

-- Invariant 2: the professionals who own figures, as the statistics name owners
-- ("professional:<id>", its region, kind 'professional').
CREATE FUNCTION kqe_figure_professionals()
    RETURNS TABLE (owner text, region text, kind text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT 'professional:' || p.id,
           CASE WHEN substr(p.seat_ags, 3, 1) IN ('1', '3') THEN 'LVR' ELSE 'LWL' END,
           'professional'
    FROM professionals p
    WHERE p.seat_ags IS NOT NULL AND kqe_figures_reader()
$$;

-- The programmes a report of the period lists: those running in it, and any other whose
-- records count in it. In the order of their start.
CREATE FUNCTION kqe_report_programmes(p_year integer, p_cycle text)
    RETURNS TABLE (id text, title text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT p.id::text, p.title FROM programmes p
    WHERE kqe_figures_reader()
      AND (kqe_programme_runs(p.starts_on, p.ends_on, p_year, p_cycle)
           OR EXISTS (SELECT FROM events e WHERE e.programme_id = p.id
                      AND e.status = 'scheduled' AND e.ends_at <= now()
                      AND kqe_in_period(e.ends_at, p_year, p_cycle))
           OR EXISTS (SELECT FROM service_requests s WHERE s.programme_id = p.id
                      AND kqe_in_period(s.created_at, p_year, p_cycle)))
    ORDER BY p.starts_on, p.title, p.id
$$;

-- Every record of the programme figures of a period, as the statistics read records: owner,
-- dimension, category, n, the sum of the record keys counted (n times a record's key where
-- one record counts n times: attended dates), the part of the period, the programme.
--   programme_role         selected participants by their role, in programmes running in the
--                          period (part 'now': a state as of the report, like § 10 concepts)
--   event_kind             events held: not cancelled, ended in the period and by now
--                          (owner '': a programme's, in no region)
--   registration_status    registrations to events held, by status at the event's end
--   attended               of registered people's dates of events held, attended yes / no
--                          (dates whose attendance was recorded)
--   feedback_rating        ratings 1 to 5 given after events held
--   service_request_status questions to the service desk asked in the period, by status
--   answered               of those, answered yes / no
--   response_hours         hours from the question to its answer, one decimal
CREATE FUNCTION kqe_programme_figures(p_year integer, p_cycle text)
    RETURNS TABLE (owner text, dimension text, category text, n bigint, keysum bigint,
                   part text, programme_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH held AS (
        SELECT e.* FROM events e
        WHERE e.status = 'scheduled' AND e.ends_at <= now()
          AND kqe_in_period(e.ends_at, p_year, p_cycle)
    ), regs AS (
        SELECT r.*, h.ends_at AS held_at,
               coalesce(r.office_id, 'professional:' || r.professional_id) AS owner
        FROM event_registrations r
        JOIN held h ON h.id = r.event_id
        LEFT JOIN offices o ON o.id = r.office_id
        LEFT JOIN professionals p ON p.id = r.professional_id
        WHERE o.id IS NOT NULL OR p.seat_ags IS NOT NULL
    ), asked AS (
        SELECT s.*, CASE WHEN s.office_id IS NOT NULL THEN s.office_id
                         ELSE 'professional:' || s.professional_id END AS owner
        FROM service_requests s
        LEFT JOIN offices o ON o.id = s.office_id
        LEFT JOIN professionals p ON p.id = s.professional_id
        WHERE kqe_in_period(s.created_at, p_year, p_cycle)
          AND (o.id IS NOT NULL OR p.seat_ags IS NOT NULL)
    )
    SELECT x.owner, x.dimension, x.category, x.n,
           kqe_keysum(x.n::numeric * x.record_key), x.part, x.programme_id::text
    FROM (
        SELECT a.office_id AS owner, 'programme_role' AS dimension, a.role AS category,
               1::bigint AS n, a.record_key, 'now' AS part, a.programme_id
        FROM applications a JOIN offices o ON o.id = a.office_id
        JOIN programmes p ON p.id = a.programme_id
        WHERE a.status = 'selected'
          AND kqe_programme_runs(p.starts_on, p.ends_on, p_year, p_cycle)
        UNION ALL
        SELECT '', 'event_kind', h.kind, 1, h.record_key, kqe_period_part(h.ends_at),
               h.programme_id
        FROM held h
        UNION ALL
        SELECT r.owner, 'registration_status', r.status, 1, r.record_key,
               kqe_period_part(r.held_at), r.programme_id
        FROM regs r
        UNION ALL
        SELECT r.owner, 'attended', CASE WHEN d.attended THEN 'yes' ELSE 'no' END,
               count(*), r.record_key, kqe_period_part(r.held_at), r.programme_id
        FROM regs r CROSS JOIN LATERAL unnest(r.attended) AS d (attended)
        WHERE r.status = 'registered'
        GROUP BY r.id, r.owner, d.attended, r.record_key, r.held_at, r.programme_id
        UNION ALL
        SELECT r.owner, 'feedback_rating', r.feedback_rating::text, 1, r.record_key,
               kqe_period_part(r.held_at), r.programme_id
        FROM regs r WHERE r.feedback_rating IS NOT NULL
        UNION ALL
        SELECT s.owner, 'service_request_status', s.status, 1, s.record_key,
               kqe_period_part(s.created_at), s.programme_id
        FROM asked s
        UNION ALL
        SELECT s.owner, 'answered', CASE WHEN s.answered_at IS NOT NULL THEN 'yes' ELSE 'no' END,
               1, s.record_key, kqe_period_part(s.created_at), s.programme_id
        FROM asked s
        UNION ALL
        SELECT s.owner, 'response_hours',
               round(extract(epoch FROM s.answered_at - s.created_at) / 3600, 1)::text, 1,
               s.record_key, kqe_period_part(s.created_at), s.programme_id
        FROM asked s WHERE s.answered_at IS NOT NULL
    ) AS x
    WHERE kqe_figures_reader()
$$;

REVOKE ALL ON FUNCTION kqe_figure_professionals(), kqe_report_programmes(integer, text),
    kqe_programme_figures(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_in_period(timestamptz, integer, text),
    kqe_period_part(timestamptz), kqe_programme_runs(date, date, integer, text),
    kqe_figures_reader(), kqe_figure_professionals(), kqe_report_programmes(integer, text),
    kqe_programme_figures(integer, text) TO kqe_service;
