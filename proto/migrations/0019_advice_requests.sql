-- § 7 LKSG NRW quality advice (Qualitätsberatung, docs/advice.md): an office asks the
-- Landesjugendamt of its region for advice on one case (case_specific) or on a problem
-- constellation across cases (structural); the advisors of the region answer through a
-- message thread. Advice is advice: the office keeps its case and its data.
--
-- Invariants, each with where it is kept:
--   1. A request is opened by the office's staff or lead, for their own office, and goes to
--      the advisors of the office's region (region is the office's when it was opened). No
--      one else reads it or its messages: not another office, not the other region, not
--      institutes, not the ministry (it sees counts in the reports) (RLS below, API).
--   2. status moves submitted → accepted → in_progress → answered → closed; declined (with a
--      reason code) from submitted or accepted; withdrawn by the office from submitted only
--      (API: who may make which move; the trigger below: which moves exist, whoever writes).
--   3. An advisor changes nothing but the status (and the reason it declines with); only the
--      office edits the request, and only while it is submitted (API, trigger).
--   4. The question and the messages may name people: stored encrypted like findings; a case
--      is named only by the pseudonym of its file number (API).
--   5. first_response_at is the advisor's first reaction (accepting, declining or a message),
--      answered_at the move to answered; both set once (trigger), for the statistics.
--   6. Every write is audited (the API's one write path).

CREATE TABLE advice_requests (
    id                uuid PRIMARY KEY,
    office_id         text NOT NULL REFERENCES offices (id),
    region            text NOT NULL CHECK (region IN ('LVR', 'LWL')),
    kind              text NOT NULL CHECK (kind IN ('case_specific', 'structural')),
    topic             text NOT NULL,
    urgency           text NOT NULL,
    case_pseudonym    text CHECK (case_pseudonym ~ '^[0-9a-f]{64}$'),
    topic_id          uuid REFERENCES topics (id),
    question_enc      text NOT NULL,
    status            text NOT NULL DEFAULT 'submitted'
                      CHECK (status IN ('submitted', 'accepted', 'in_progress', 'answered',
                                        'closed', 'declined', 'withdrawn')),
    decline_reason    text,
    respond_by        timestamptz NOT NULL, -- the response target in force when submitted
    submitted_at      timestamptz NOT NULL DEFAULT now(),
    first_response_at timestamptz,
    accepted_at       timestamptz,
    answered_at       timestamptz,
    ended_at          timestamptz, -- closed, declined or withdrawn
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'case_specific') = (case_pseudonym IS NOT NULL)),
    CHECK ((status = 'declined') = (decline_reason IS NOT NULL)),
    CHECK ((status IN ('closed', 'declined', 'withdrawn')) = (ended_at IS NOT NULL))
);
CREATE INDEX advice_requests_updated ON advice_requests (updated_at, id);
CREATE INDEX advice_requests_queue ON advice_requests (region, status, respond_by);

CREATE TABLE advice_messages (
    id          uuid PRIMARY KEY,
    request_id  uuid NOT NULL REFERENCES advice_requests (id),
    office_id   text NOT NULL REFERENCES offices (id),
    region      text NOT NULL,
    author_role text NOT NULL CHECK (author_role IN ('office_staff', 'office_lead', 'advisor')),
    text_enc    text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX advice_messages_request ON advice_messages (request_id, created_at, id);
CREATE INDEX advice_messages_updated ON advice_messages (updated_at, id);

-- Invariants 2, 3 and 5 in the database.
CREATE FUNCTION advice_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> NEW.status AND NOT (
           (OLD.status = 'submitted' AND NEW.status IN ('accepted', 'declined', 'withdrawn'))
        OR (OLD.status = 'accepted' AND NEW.status IN ('in_progress', 'declined'))
        OR (OLD.status = 'in_progress' AND NEW.status = 'answered')
        OR (OLD.status = 'answered' AND NEW.status = 'closed')) THEN
        RAISE EXCEPTION 'an advice request cannot move from % to %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF (OLD.office_id, OLD.region, OLD.kind, OLD.case_pseudonym, OLD.submitted_at)
       IS DISTINCT FROM (NEW.office_id, NEW.region, NEW.kind, NEW.case_pseudonym,
                         NEW.submitted_at)
       OR (OLD.status <> 'submitted' AND (OLD.topic, OLD.urgency, OLD.topic_id, OLD.question_enc)
           IS DISTINCT FROM (NEW.topic, NEW.urgency, NEW.topic_id, NEW.question_enc))
       OR (OLD.first_response_at IS NOT NULL
           AND OLD.first_response_at IS DISTINCT FROM NEW.first_response_at)
       OR (OLD.answered_at IS NOT NULL AND OLD.answered_at IS DISTINCT FROM NEW.answered_at) THEN
        RAISE EXCEPTION 'this part of an advice request cannot change'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER advice_requests_guard BEFORE UPDATE ON advice_requests
    FOR EACH ROW EXECUTE FUNCTION advice_requests_guard();
CREATE TRIGGER advice_requests_no_delete BEFORE DELETE ON advice_requests
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();
CREATE TRIGGER advice_messages_immutable BEFORE UPDATE OR DELETE ON advice_messages
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Invariant 1: who reads a request of p_office, routed to p_region.
CREATE FUNCTION kqe_advice_reader(p_office text, p_region text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'advisor' AND p_region = kqe_ctx('region'))
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

-- The region a new request of the caller's office goes to (NULL: not an office's caller).
CREATE FUNCTION kqe_advice_region() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT region FROM offices
    WHERE id = kqe_ctx('office_id') AND kqe_ctx('role') IN ('office_staff', 'office_lead')
$$;

ALTER TABLE advice_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE advice_requests FORCE ROW LEVEL SECURITY;
ALTER TABLE advice_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE advice_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON advice_requests TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON advice_messages TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON advice_requests FOR SELECT TO kqe_service
    USING (kqe_advice_reader(office_id, region));
CREATE POLICY service_insert ON advice_requests FOR INSERT TO kqe_service WITH CHECK (
    kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')
    AND region = kqe_advice_region());
CREATE POLICY service_update ON advice_requests FOR UPDATE TO kqe_service
    USING (kqe_advice_reader(office_id, region) AND kqe_ctx('role') <> 'admin')
    WITH CHECK (kqe_advice_reader(office_id, region));
CREATE POLICY service_read ON advice_messages FOR SELECT TO kqe_service
    USING (kqe_advice_reader(office_id, region));
CREATE POLICY service_insert ON advice_messages FOR INSERT TO kqe_service WITH CHECK (
    kqe_advice_reader(office_id, region) AND kqe_ctx('role') IN ('office_staff', 'office_lead',
                                                                   'advisor'));
GRANT SELECT, INSERT, UPDATE ON advice_requests TO kqe_service;
GRANT SELECT, INSERT ON advice_messages TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_advice_reader(text, text), kqe_advice_region() TO kqe_service;
