-- The service desk of a programme (docs/programmes.md, Service desk): offices and registered
-- professionals ask the programme's team questions that are not about a case; the team
-- answers; an answered question can be published as an entry of the programme's FAQ, in
-- words the team writes for everyone (never the asker's own).
--
-- Invariants, each with where it is kept:
--   1. A question and its answer may name people: stored encrypted, read by the asker (its
--      office, or the professional itself) and the programme's team (RLS below, API).
--   2. status moves open -> answered -> closed, or open -> closed; an answer goes with
--      answered (CHECK, API).
--   3. The FAQ holds only what the team wrote for it (faq_question, faq_answer), published
--      by the team; it is public, without a token.
--   4. Every write is audited (the API's one write path).

CREATE TABLE service_requests (
    id              uuid PRIMARY KEY,
    programme_id    uuid NOT NULL REFERENCES programmes (id),
    office_id       text, -- the asking office, if an office asked
    professional_id uuid REFERENCES professionals (id), -- the asking professional, if one
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    question_enc    text NOT NULL,
    answer_enc      text,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed')),
    answered_at     timestamptz,
    faq_question    text CHECK (length(faq_question) BETWEEN 1 AND 500),
    faq_answer      text CHECK (length(faq_answer) BETWEEN 1 AND 5000),
    faq_published_at timestamptz,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((office_id IS NULL) <> (professional_id IS NULL)),
    CHECK (status = 'open' OR answered_at IS NOT NULL OR status = 'closed'),
    CHECK ((faq_published_at IS NULL) OR (faq_question IS NOT NULL AND faq_answer IS NOT NULL))
);
CREATE INDEX service_requests_updated ON service_requests (updated_at, id);
CREATE INDEX service_requests_faq ON service_requests (programme_id, faq_published_at)
    WHERE faq_published_at IS NOT NULL;
CREATE TRIGGER service_requests_no_delete BEFORE DELETE ON service_requests
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Invariant 1: who reads a request asked by p_office or p_professional in p_programme.
CREATE FUNCTION kqe_service_request_reader(p_office text, p_professional uuid,
    p_programme uuid) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'professional' AND p_professional::text = kqe_ctx('professional_id'))
        OR kqe_programme_team(p_programme)
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

-- Invariant 3: the FAQ, for everyone (the asker and the question stay hidden).
CREATE FUNCTION kqe_faq(p_programme uuid) RETURNS TABLE (id uuid, programme_id uuid,
    question text, answer text, published_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.id, s.programme_id, s.faq_question, s.faq_answer, s.faq_published_at
    FROM service_requests s
    WHERE s.faq_published_at IS NOT NULL AND (p_programme IS NULL OR s.programme_id = p_programme)
    ORDER BY s.programme_id, s.faq_published_at, s.id
$$;

ALTER TABLE service_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON service_requests TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON service_requests FOR SELECT TO kqe_service
    USING (kqe_service_request_reader(office_id, professional_id, programme_id));
CREATE POLICY service_insert ON service_requests FOR INSERT TO kqe_service WITH CHECK (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id'))
    OR (kqe_ctx('role') = 'professional' AND professional_id::text = kqe_ctx('professional_id')
        AND programme_id::text = kqe_ctx('programme_id')));
CREATE POLICY service_update ON service_requests FOR UPDATE TO kqe_service
    USING (kqe_service_request_reader(office_id, professional_id, programme_id)
           AND kqe_ctx('role') <> 'admin')
    WITH CHECK (kqe_service_request_reader(office_id, professional_id, programme_id));
GRANT SELECT, INSERT, UPDATE ON service_requests TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_service_request_reader(text, uuid, uuid), kqe_faq(uuid)
    TO kqe_service;
