-- The protected area of a programme (docs/programmes.md, Materials and Professionals): the
-- materials library — instruments, methods, slides, links to recordings — and registered
-- professionals taking part in the programme's events themselves.
--
-- Invariants, each with where it is kept:
--   1. A material of visibility 'programme' is read by the programme's participants only:
--      its team, its approved professionals, the offices selected in one of its calls, and
--      operations; one of visibility 'public' by everyone, without a token (RLS below).
--   2. A material's file is read by exactly those who read the material (RLS on
--      material_files goes through the materials' policy), and written by its team only.
--   3. A file is stored whole, at most KQE_MATERIAL_MAX_BYTES, of a content type on the
--      list and matching what its bytes are (API); its size and SHA-256 are kept beside it
--      (CHECK), so a download can be checked and cached by its ETag.
--   4. A professional registers itself only, for an event of its own programme, under the
--      name and address of its registration (RLS below, API).
--   5. Every write is audited (the API's one write path).

CREATE TABLE materials (
    id              uuid PRIMARY KEY,
    programme_id    uuid NOT NULL REFERENCES programmes (id),
    kind            text NOT NULL CHECK (kind IN ('instrument', 'method', 'slides',
                        'recording', 'document', 'other')),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description     text CHECK (length(description) BETWEEN 1 AND 5000),
    link            text CHECK (link ~ '^https://[^[:space:]]+$' AND length(link) <= 2000),
    visibility      text NOT NULL CHECK (visibility IN ('programme', 'public')),
    file_name       text CHECK (length(file_name) BETWEEN 1 AND 200),
    file_type       text,
    file_size       bigint CHECK (file_size > 0),
    file_sha256     text CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    file_uploaded_at timestamptz,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((file_type IS NULL) = (file_size IS NULL) AND (file_size IS NULL) = (file_sha256 IS NULL)
           AND (file_sha256 IS NULL) = (file_uploaded_at IS NULL))
);
CREATE INDEX materials_updated ON materials (updated_at, id);
CREATE INDEX materials_programme ON materials (programme_id, updated_at);
CREATE TRIGGER materials_no_delete BEFORE DELETE ON materials
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Invariant 3: the bytes, apart from the row every list reads.
CREATE TABLE material_files (
    material_id uuid PRIMARY KEY REFERENCES materials (id),
    content     bytea NOT NULL CHECK (octet_length(content) > 0)
);
ALTER TABLE material_files ALTER COLUMN content SET STORAGE EXTERNAL; -- mostly compressed already

-- Invariant 1.
CREATE FUNCTION kqe_material_reader(p_programme uuid, p_visibility text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_visibility = 'public'
        OR kqe_programme_team(p_programme)
        OR (kqe_ctx('role') = 'professional' AND p_programme::text = kqe_ctx('programme_id'))
        OR (kqe_ctx('role') IN ('office_staff', 'office_lead') AND EXISTS (
            SELECT FROM applications a WHERE a.programme_id = p_programme
              AND a.office_id = kqe_ctx('office_id') AND a.status = 'selected'))
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

ALTER TABLE materials ENABLE ROW LEVEL SECURITY;
ALTER TABLE materials FORCE ROW LEVEL SECURITY;
ALTER TABLE material_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE material_files FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON materials TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON material_files TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON materials FOR SELECT TO kqe_service
    USING (kqe_material_reader(programme_id, visibility));
CREATE POLICY service_insert ON materials FOR INSERT TO kqe_service
    WITH CHECK (kqe_programme_team(programme_id));
CREATE POLICY service_update ON materials FOR UPDATE TO kqe_service
    USING (kqe_programme_team(programme_id)) WITH CHECK (kqe_programme_team(programme_id));
-- Invariant 2: the subqueries see materials through its own policies.
CREATE POLICY service_read ON material_files FOR SELECT TO kqe_service
    USING (EXISTS (SELECT FROM materials m WHERE m.id = material_id));
CREATE POLICY service_write ON material_files TO kqe_service
    USING (EXISTS (SELECT FROM materials m WHERE m.id = material_id
                   AND kqe_programme_team(m.programme_id)))
    WITH CHECK (EXISTS (SELECT FROM materials m WHERE m.id = material_id
                        AND kqe_programme_team(m.programme_id)));
GRANT SELECT, INSERT, UPDATE ON materials, material_files TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_material_reader(uuid, text) TO kqe_service;

-- Invariant 4: professionals in events.
ALTER TABLE event_registrations ADD COLUMN professional_id uuid REFERENCES professionals (id);
ALTER TABLE event_registrations DROP CONSTRAINT event_registrations_registered_by_check;
ALTER TABLE event_registrations ADD CONSTRAINT event_registrations_registered_by_check
    CHECK (registered_by IN ('office', 'programme_team', 'professional'));
ALTER TABLE event_registrations ADD CHECK ((registered_by = 'professional') = (professional_id IS NOT NULL));

CREATE FUNCTION kqe_event_registration_reader(p_office text, p_professional uuid,
    p_programme uuid) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(kqe_registration_reader(p_office, p_programme)
        OR (kqe_ctx('role') = 'professional' AND p_professional::text = kqe_ctx('professional_id')),
        false)
$$;
DROP POLICY service_read ON event_registrations;
DROP POLICY service_insert ON event_registrations;
DROP POLICY service_update ON event_registrations;
CREATE POLICY service_read ON event_registrations FOR SELECT TO kqe_service
    USING (kqe_event_registration_reader(office_id, professional_id, programme_id));
CREATE POLICY service_insert ON event_registrations FOR INSERT TO kqe_service WITH CHECK (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')
     AND registered_by = 'office')
    OR (kqe_programme_team(programme_id) AND registered_by = 'programme_team')
    OR (kqe_ctx('role') = 'professional' AND registered_by = 'professional'
        AND professional_id::text = kqe_ctx('professional_id')
        AND programme_id::text = kqe_ctx('programme_id') AND office_id IS NULL));
CREATE POLICY service_update ON event_registrations FOR UPDATE TO kqe_service
    USING (kqe_event_registration_reader(office_id, professional_id, programme_id)
           AND kqe_ctx('role') <> 'admin')
    WITH CHECK (kqe_event_registration_reader(office_id, professional_id, programme_id));
GRANT EXECUTE ON FUNCTION kqe_event_registration_reader(text, uuid, uuid) TO kqe_service;
