-- § 10 LKSG NRW protection concepts in foster care (Schutzkonzepte, docs/foster-care.md):
-- for the whole of every foster placement, the office — and every free provider of
-- foster-care services — applies a concept that secures the child's rights and protects
-- against violence, made with foster carers and young people.
--
-- Invariants, each with where it is kept:
--   1. A concept belongs to exactly one office or one provider, and each has at most one
--      (its current concept; earlier states are versions) (CHECK, unique indexes).
--   2. The owner writes it: the office's staff and lead, or the provider's staff (RLS below,
--      API). The advisors of the owner's region and admin read it; the ministry sees counts
--      only; nobody else (RLS, API).
--   3. Every version is kept (protection_concept_versions, by the trigger), every write is
--      audited (the API's one write path).
--   4. next_review_on is after adopted_on (CHECK); a concept past its review date is
--      review_overdue, an owner without one missing (kqe_concept_status).

CREATE TABLE protection_concepts (
    id             uuid PRIMARY KEY,
    office_id      text REFERENCES offices (id),
    provider_id    text REFERENCES providers (id),
    region         text NOT NULL CHECK (region IN ('LVR', 'LWL')), -- the owner's
    adopted_on     date NOT NULL,
    next_review_on date NOT NULL,
    elements       jsonb NOT NULL, -- element code → present (boolean)
    participants   text[] NOT NULL DEFAULT '{}', -- who took part in making it (codes)
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((office_id IS NULL) <> (provider_id IS NULL)),
    CHECK (next_review_on > adopted_on),
    CHECK (jsonb_typeof(elements) = 'object')
);
CREATE UNIQUE INDEX protection_concepts_office ON protection_concepts (office_id)
    WHERE office_id IS NOT NULL;
CREATE UNIQUE INDEX protection_concepts_provider ON protection_concepts (provider_id)
    WHERE provider_id IS NOT NULL;
CREATE INDEX protection_concepts_updated ON protection_concepts (updated_at, id);

CREATE TABLE protection_concept_versions (
    concept_id     uuid NOT NULL REFERENCES protection_concepts (id),
    version        integer NOT NULL,
    adopted_on     date NOT NULL,
    next_review_on date NOT NULL,
    elements       jsonb NOT NULL,
    participants   text[] NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (concept_id, version)
);

-- Invariant 3; the owner never changes.
CREATE FUNCTION protection_concepts_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.office_id, OLD.provider_id, OLD.region)
                            IS DISTINCT FROM (NEW.office_id, NEW.provider_id, NEW.region) THEN
        RAISE EXCEPTION 'the owner of a protection concept cannot change'
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO protection_concept_versions (concept_id, version, adopted_on, next_review_on,
                                             elements, participants)
    VALUES (NEW.id, NEW.version, NEW.adopted_on, NEW.next_review_on, NEW.elements,
            NEW.participants);
    RETURN NEW;
END
$$;
CREATE TRIGGER protection_concepts_versions AFTER INSERT OR UPDATE ON protection_concepts
    FOR EACH ROW EXECUTE FUNCTION protection_concepts_versions();
CREATE TRIGGER protection_concepts_no_delete BEFORE DELETE ON protection_concepts
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();
CREATE TRIGGER protection_concept_versions_immutable BEFORE UPDATE OR DELETE
    ON protection_concept_versions FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Invariant 2: who writes the concept of an owner, and who reads it (an owner in p_region).
CREATE FUNCTION kqe_concept_writer(p_office text, p_provider text)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'provider_staff' AND p_provider = kqe_ctx('provider_id')), false)
$$;
CREATE FUNCTION kqe_concept_reader(p_office text, p_provider text, p_region text)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(kqe_concept_writer(p_office, p_provider)
        OR (kqe_ctx('role') = 'advisor' AND p_region = kqe_ctx('region'))
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

-- Invariant 4: every office and every provider with the state of its concept on p_today —
-- current, review_overdue or missing — its region, its kind ('provider' for providers),
-- its record key (for the statistics) and the concept's next review date. For advisors
-- (their region), the ministry, admin and the aggregator; owners see their own row.
CREATE FUNCTION kqe_concept_status(p_today date)
    RETURNS TABLE (owner_kind text, owner_id text, region text, kind text, status text,
                   next_review_on date, record_key bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT x.owner_kind, x.owner_id, x.region, x.kind,
           CASE WHEN c.id IS NULL THEN 'missing'
                WHEN c.next_review_on < p_today THEN 'review_overdue'
                ELSE 'current' END,
           c.next_review_on, x.record_key
    FROM (SELECT 'office' AS owner_kind, o.id AS owner_id, o.region, o.kind, o.record_key
          FROM offices o
          UNION ALL
          SELECT 'provider', p.id, p.region, 'provider', p.record_key FROM providers p) AS x
    LEFT JOIN protection_concepts c
        ON (x.owner_kind = 'office' AND c.office_id = x.owner_id)
        OR (x.owner_kind = 'provider' AND c.provider_id = x.owner_id)
    WHERE kqe_ctx('role') IN ('ministry', 'admin', 'system')
       OR (kqe_ctx('role') = 'advisor' AND x.region = kqe_ctx('region'))
       OR kqe_concept_writer(CASE WHEN x.owner_kind = 'office' THEN x.owner_id END,
                             CASE WHEN x.owner_kind = 'provider' THEN x.owner_id END)
$$;

-- The region of the caller's own office or provider (NULL: not an owner's caller).
CREATE FUNCTION kqe_concept_owner_region() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE kqe_ctx('role')
        WHEN 'provider_staff' THEN (SELECT region FROM providers WHERE id = kqe_ctx('provider_id'))
        WHEN 'office_staff' THEN (SELECT region FROM offices WHERE id = kqe_ctx('office_id'))
        WHEN 'office_lead' THEN (SELECT region FROM offices WHERE id = kqe_ctx('office_id'))
    END
$$;

ALTER TABLE protection_concepts ENABLE ROW LEVEL SECURITY;
ALTER TABLE protection_concepts FORCE ROW LEVEL SECURITY;
ALTER TABLE protection_concept_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE protection_concept_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON protection_concepts TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON protection_concept_versions TO CURRENT_USER USING (true)
    WITH CHECK (true);
CREATE POLICY service_read ON protection_concepts FOR SELECT TO kqe_service
    USING (kqe_concept_reader(office_id, provider_id, region));
CREATE POLICY service_insert ON protection_concepts FOR INSERT TO kqe_service
    WITH CHECK (kqe_concept_writer(office_id, provider_id)
                AND region = kqe_concept_owner_region());
CREATE POLICY service_update ON protection_concepts FOR UPDATE TO kqe_service
    USING (kqe_concept_writer(office_id, provider_id))
    WITH CHECK (kqe_concept_writer(office_id, provider_id));
CREATE POLICY service_read ON protection_concept_versions FOR SELECT TO kqe_service
    USING (EXISTS (SELECT FROM protection_concepts c
                   WHERE c.id = protection_concept_versions.concept_id
                   AND kqe_concept_reader(c.office_id, c.provider_id, c.region)));
-- Written by the trigger only, as whoever wrote the concept.
CREATE POLICY service_insert ON protection_concept_versions FOR INSERT TO kqe_service
    WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON protection_concepts TO kqe_service;
GRANT SELECT, INSERT ON protection_concept_versions TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_concept_reader(text, text, text), kqe_concept_writer(text, text),
    kqe_concept_status(date), kqe_concept_owner_region() TO kqe_service;
