-- The § 8 procedure report (docs/procedure-reports.md): § 8 (5) LKSG NRW has the § 6 body
-- write a report on each procedure; the office presents its findings to its youth welfare
-- committee. One report per procedure, addressed as /v1/procedures/{id}/report.
--
-- Invariants, each with where it is kept:
--   1. A report is drafted by the procedure's institute or an advisor of the office's
--      region (admin reads its figures, not its text), while the procedure is in phase
--      evaluation or report
--      (API: handlers/procedure_reports.c).
--   2. The figures it shows (`generated`) are computed from the procedure's own data on every
--      read while it is a draft, and frozen into the row when it is finalised, so a final
--      report never changes when the data does (kqe_procedure_report_data below, API).
--   3. status moves draft → finalised → accepted, nothing else; finalising needs phase
--      report and moves the procedure to completed; accepting is the office lead's
--      (API; the trigger below refuses any other move and any change of a final report's
--      text or figures, whoever writes).
--   4. Every version of the text is kept (procedure_report_versions, by the trigger), and
--      every write is audited (the API's one write path).
--   5. The text the institute or advisor writes and the office's comments may name people:
--      stored encrypted like findings (AES-256-GCM, the API's key), never in SQL plain text.

CREATE TABLE procedure_reports (
    procedure_id          uuid PRIMARY KEY REFERENCES procedures (id),
    office_id             text NOT NULL REFERENCES offices (id),
    cycle                 text NOT NULL, -- the procedure's (advisors cannot read procedures)
    status                text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'finalised', 'accepted')),
    assessment_enc        text,
    strengths_enc         text,
    development_needs_enc text,
    recommendations_enc   text,
    generated             jsonb,
    finalised_at          timestamptz,
    accepted_at           timestamptz,
    version               integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'draft') = (finalised_at IS NULL) AND (status = 'draft') = (generated IS NULL)),
    CHECK ((status = 'accepted') = (accepted_at IS NOT NULL))
);
CREATE INDEX procedure_reports_updated ON procedure_reports (updated_at, procedure_id);

CREATE TABLE procedure_report_versions (
    procedure_id uuid NOT NULL REFERENCES procedure_reports (procedure_id),
    version      integer NOT NULL,
    status       text NOT NULL,
    sections     jsonb NOT NULL, -- the encrypted sections as they were
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (procedure_id, version)
);

CREATE TABLE procedure_report_comments (
    id           uuid PRIMARY KEY,
    procedure_id uuid NOT NULL REFERENCES procedure_reports (procedure_id),
    office_id    text NOT NULL REFERENCES offices (id),
    author_role  text NOT NULL,
    text_enc     text NOT NULL,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX procedure_report_comments_report ON procedure_report_comments (procedure_id, created_at);

-- Invariant 3 and 4 in the database.
CREATE FUNCTION procedure_reports_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NOT ((OLD.status = NEW.status)
                OR (OLD.status = 'draft' AND NEW.status = 'finalised')
                OR (OLD.status = 'finalised' AND NEW.status = 'accepted')) THEN
            RAISE EXCEPTION 'a procedure report moves draft → finalised → accepted only'
                USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.status <> 'draft' AND (
               (OLD.assessment_enc, OLD.strengths_enc, OLD.development_needs_enc,
                OLD.recommendations_enc, OLD.generated, OLD.finalised_at)
               IS DISTINCT FROM
               (NEW.assessment_enc, NEW.strengths_enc, NEW.development_needs_enc,
                NEW.recommendations_enc, NEW.generated, NEW.finalised_at)) THEN
            RAISE EXCEPTION 'a finalised procedure report cannot change'
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    INSERT INTO procedure_report_versions (procedure_id, version, status, sections)
    VALUES (NEW.procedure_id, NEW.version, NEW.status,
            jsonb_build_object('assessment', NEW.assessment_enc, 'strengths', NEW.strengths_enc,
                               'development_needs', NEW.development_needs_enc,
                               'recommendations', NEW.recommendations_enc));
    RETURN NEW;
END
$$;
CREATE TRIGGER procedure_reports_guard AFTER INSERT OR UPDATE ON procedure_reports
    FOR EACH ROW EXECUTE FUNCTION procedure_reports_guard();
CREATE TRIGGER procedure_reports_no_delete BEFORE DELETE ON procedure_reports
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();
CREATE TRIGGER procedure_report_versions_immutable BEFORE UPDATE OR DELETE
    ON procedure_report_versions FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Who may read a procedure's report: the office's staff and lead, the procedure's
-- institute, the advisors of the office's region, admin and the aggregator. (The ministry
-- sees only that a report exists and when it was finalised: the API's list.)
CREATE FUNCTION kqe_report_reader(p_office text, p_procedure uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'institute' AND EXISTS (
                SELECT FROM procedures WHERE id = p_procedure
                AND institute_id = kqe_ctx('institute_id')))
        OR (kqe_ctx('role') = 'advisor' AND EXISTS (
                SELECT FROM offices WHERE id = p_office AND region = kqe_ctx('region')))
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

-- Who may draft it (invariant 1): the institute, the region's advisors.
CREATE FUNCTION kqe_report_author(p_office text, p_procedure uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT kqe_report_reader(p_office, p_procedure)
        AND kqe_ctx('role') IN ('institute', 'advisor')
$$;

-- The procedure a report is written on, for those who may draft it: its office, cycle and
-- phase, locked against a concurrent phase move. Advisors cannot read procedures
-- otherwise (row-level security), so this runs as the owner and applies the scope itself.
CREATE FUNCTION kqe_report_procedure(p_procedure uuid)
    RETURNS TABLE (office_id text, cycle text, phase text)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT p.office_id, p.cycle, p.phase FROM procedures p
    WHERE p.id = p_procedure AND kqe_report_author(p.office_id, p.id)
    FOR SHARE
$$;

-- Finalising moves the procedure out of its phase report (invariant 3).
CREATE FUNCTION kqe_report_complete_procedure(p_procedure uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE procedures SET phase = 'completed', version = version + 1, updated_at = now()
    WHERE id = p_procedure AND phase = 'report'
      AND kqe_report_author(office_id, id)
$$;

-- What kqe writes into the report from the procedure's own data (invariant 2): counts per
-- rollup dimension and category of its case analyses, median days to first contact and
-- median rating per quality dimension, the office's structural indicators beside its peer
-- groups' figures as the latest release publishes them (kqe_benchmark; every peer group
-- with its size, the API hides quartiles of too few peers), and its quality topics. No free
-- text, no single case. NULL for a caller who may not read the report.
CREATE FUNCTION kqe_procedure_report_data(p_procedure uuid) RETURNS jsonb
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
    )
    SELECT jsonb_build_object(
        'case_analyses', (SELECT count(*) FROM case_analyses WHERE procedure_id = p_procedure),
        'counts', coalesce((SELECT jsonb_object_agg(dimension, categories) FROM counts), '{}'),
        'medians', coalesce((SELECT jsonb_object_agg(dimension, round(median::numeric, 1))
                             FROM medians), '{}'),
        'structure', coalesce((
            SELECT jsonb_agg(jsonb_build_object('indicator', b.indicator, 'unit', b.unit,
                       'own', b.own, 'peer_group', b.peer_group, 'peers', b.peers,
                       'q1', b.q1, 'median', b.median, 'q3', b.q3)
                   ORDER BY b.indicator, b.peer_group)
            FROM kqe_benchmark(v_office, 1) b), '[]'),
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

ALTER TABLE procedure_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE procedure_reports FORCE ROW LEVEL SECURITY;
ALTER TABLE procedure_report_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE procedure_report_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE procedure_report_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE procedure_report_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON procedure_reports TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON procedure_report_versions TO CURRENT_USER USING (true)
    WITH CHECK (true);
CREATE POLICY owner_all ON procedure_report_comments TO CURRENT_USER USING (true)
    WITH CHECK (true);
-- The ministry's rows are read for the list only, which selects no text (the API).
CREATE POLICY service_read ON procedure_reports FOR SELECT TO kqe_service USING (
    kqe_report_reader(office_id, procedure_id) OR kqe_ctx('role') = 'ministry');
CREATE POLICY service_insert ON procedure_reports FOR INSERT TO kqe_service WITH CHECK (
    kqe_report_author(office_id, procedure_id));
CREATE POLICY service_update ON procedure_reports FOR UPDATE TO kqe_service USING (
    kqe_report_author(office_id, procedure_id)
    OR (kqe_ctx('role') = 'office_lead' AND office_id = kqe_ctx('office_id')));
CREATE POLICY service_read ON procedure_report_versions FOR SELECT TO kqe_service
    USING (EXISTS (SELECT FROM procedure_reports r
                   WHERE r.procedure_id = procedure_report_versions.procedure_id
                   AND kqe_report_reader(r.office_id, r.procedure_id)));
-- Written by the trigger only, as whoever wrote the report.
CREATE POLICY service_insert ON procedure_report_versions FOR INSERT TO kqe_service
    WITH CHECK (true);
CREATE POLICY service_read ON procedure_report_comments FOR SELECT TO kqe_service USING (
    kqe_report_reader(office_id, procedure_id));
CREATE POLICY service_insert ON procedure_report_comments FOR INSERT TO kqe_service
    WITH CHECK (kqe_report_reader(office_id, procedure_id));
GRANT SELECT, INSERT, UPDATE ON procedure_reports TO kqe_service;
GRANT SELECT, INSERT ON procedure_report_versions TO kqe_service;
GRANT SELECT, INSERT ON procedure_report_comments TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_report_reader(text, uuid), kqe_report_author(text, uuid),
    kqe_report_procedure(uuid), kqe_report_complete_procedure(uuid),
    kqe_procedure_report_data(uuid) TO kqe_service;
