-- § 8 submissions: case analyses (Fallanalysen), structural-quality surveys,
-- quality-development topics, and what the submission API needs around them
-- (idempotency keys). Case-level rows carry office_id, so row-level security
-- applies to each (enabled and forced), as in 0003.

-- The office's own, and an institute's assigned, procedures: who may touch a
-- procedure's case-level data.
CREATE FUNCTION kqe_may_see_procedure(p_office text, p_procedure uuid) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'institute' AND EXISTS (
                SELECT 1 FROM procedures p WHERE p.id = p_procedure
                AND p.institute_id = kqe_ctx('institute_id')))
        OR kqe_ctx('role') IN ('admin', 'system');

CREATE FUNCTION kqe_may_write_procedure(p_office text, p_procedure uuid) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'institute' AND EXISTS (
                SELECT 1 FROM procedures p WHERE p.id = p_procedure
                AND p.institute_id = kqe_ctx('institute_id')));

-- Age group of the child at the closing month, in the groups of the official
-- § 8a statistics.
CREATE FUNCTION kqe_age_group(birth date, closed date) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN age(closed, birth) < interval '3 years' THEN 'unter_3'
        WHEN age(closed, birth) < interval '6 years' THEN '3_bis_unter_6'
        WHEN age(closed, birth) < interval '9 years' THEN '6_bis_unter_9'
        WHEN age(closed, birth) < interval '12 years' THEN '9_bis_unter_12'
        WHEN age(closed, birth) < interval '14 years' THEN '12_bis_unter_14'
        WHEN age(closed, birth) < interval '16 years' THEN '14_bis_unter_16'
        ELSE '16_bis_unter_18' END;

CREATE TABLE case_analyses (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    procedure_id          uuid NOT NULL REFERENCES procedures (id),
    office_id             text NOT NULL REFERENCES offices (id),
    -- HMAC-SHA256(server key, office id || 0x1f || the office's file number), hex.
    -- The file number itself is never stored.
    case_pseudonym        text NOT NULL CHECK (case_pseudonym ~ '^[0-9a-f]{64}$'),
    selection             text NOT NULL CHECK (selection IN ('random', 'added_by_office')),
    closed_month          date NOT NULL CHECK (extract(day FROM closed_month) = 1),
    child_sex             text NOT NULL,
    child_birth_month     date NOT NULL CHECK (extract(day FROM child_birth_month) = 1),
    parents_age_group     text NOT NULL,
    reported_by           text NOT NULL,
    result                text NOT NULL CHECK (result IN ('akute_gefaehrdung',
                              'latente_gefaehrdung', 'hilfebedarf_ohne_gefaehrdung',
                              'weder_gefaehrdung_noch_hilfebedarf')),
    endangerment_forms    text[] NOT NULL DEFAULT '{}',
    days_to_first_contact integer NOT NULL CHECK (days_to_first_contact >= 0),
    direct_impression     boolean NOT NULL,
    several_professionals boolean,
    child_involved        boolean,
    parents_involved      boolean,
    insofa_consulted      boolean,
    family_court_called   boolean,
    taken_into_care       boolean,
    services_before       boolean,
    services_after        boolean,
    ratings               jsonb NOT NULL DEFAULT '{}',
    learning_themes       text[] NOT NULL DEFAULT '{}',
    -- AES-256-GCM envelope "v1.<key id>.<nonce>.<ciphertext+tag>" (common/src/crypto.c)
    findings_enc          text,
    locked                boolean NOT NULL DEFAULT false,
    version               integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (office_id, case_pseudonym),
    CHECK ((result IN ('akute_gefaehrdung', 'latente_gefaehrdung'))
           = (cardinality(endangerment_forms) > 0))
);
CREATE INDEX case_analyses_procedure ON case_analyses (procedure_id, id);
CREATE INDEX case_analyses_office_updated ON case_analyses (office_id, updated_at, id);
CREATE INDEX case_analyses_updated ON case_analyses (updated_at, id);

CREATE TABLE structure_surveys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    procedure_id uuid NOT NULL UNIQUE REFERENCES procedures (id), -- one per procedure
    office_id    text NOT NULL REFERENCES offices (id),
    body         jsonb NOT NULL, -- validated by the API's field specs
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX structure_surveys_office ON structure_surveys (office_id, updated_at, id);

CREATE TABLE topics (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    procedure_id    uuid NOT NULL REFERENCES procedures (id),
    office_id       text NOT NULL REFERENCES offices (id),
    theme           text NOT NULL,
    priority        text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    status          text NOT NULL DEFAULT 'identified'
                    CHECK (status IN ('identified', 'in_progress', 'implemented', 'dropped')),
    description_enc text, -- AES-256-GCM envelope, like findings
    follow_up_date  date,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX topics_procedure ON topics (procedure_id, id);
CREATE INDEX topics_office ON topics (office_id, updated_at, id);

-- Idempotency-Key: the outcome of the first request with (caller, key). Only
-- status and location are kept — never a body, which could hold decrypted
-- free text; a replay answers with the resource as it is now.
CREATE TABLE idempotency_keys (
    actor        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    status       integer NOT NULL,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['case_analyses', 'structure_surveys', 'topics'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY owner_all ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY service_read ON %I FOR SELECT TO kqe_service'
                       ' USING (kqe_may_see_procedure(office_id, procedure_id))', t);
        EXECUTE format('CREATE POLICY service_insert ON %I FOR INSERT TO kqe_service'
                       ' WITH CHECK (kqe_may_write_procedure(office_id, procedure_id))', t);
        EXECUTE format('CREATE POLICY service_update ON %I FOR UPDATE TO kqe_service'
                       ' USING (kqe_may_write_procedure(office_id, procedure_id))'
                       ' WITH CHECK (kqe_may_write_procedure(office_id, procedure_id))', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO kqe_service', t);
    END LOOP;
END
$$;

-- Procedures become writable: offices create and move their own, admin any.
CREATE POLICY service_insert ON procedures FOR INSERT TO kqe_service WITH CHECK (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id'))
    OR kqe_ctx('role') = 'admin');
CREATE POLICY service_update ON procedures FOR UPDATE TO kqe_service USING (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id'))
    OR (kqe_ctx('role') = 'institute' AND institute_id = kqe_ctx('institute_id'))
    OR kqe_ctx('role') = 'admin');
GRANT INSERT, UPDATE ON procedures TO kqe_service;

GRANT SELECT, INSERT, DELETE ON idempotency_keys TO kqe_service;
