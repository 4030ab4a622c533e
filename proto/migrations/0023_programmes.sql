-- Programmes (docs/programmes.md): pilot projects and quality programmes with calls for
-- applications, selection criteria, places per participant role, selected participants and
-- their clusters. The role programme_team is bound to one programme and runs it.
--
-- Invariants, each with where it is kept:
--   1. Offices outside NRW (a nationwide programme's participants) live in offices_elsewhere,
--      never in offices: everything that counts for NRW reads offices, so they cannot enter
--      NRW statistics. An id names an office in one of the two tables only (trigger).
--   2. One application per office and call (UNIQUE); none after the call's deadline, and an
--      office edits its application only until then (API, checked under the call's lock).
--   3. A call never selects more offices for a role than it has places (API, under the call's
--      lock, which every decision takes).
--   4. The answers to a call's criteria may hold free text: stored encrypted (answers_enc),
--      read by the applying office and the programme's team only (RLS below, API).
--   5. Members of a cluster are selected participants of its programme; an office is in at
--      most one cluster per programme (API, PRIMARY KEY of cluster_members).
--   6. Every write is audited (the API's one write path); programmes are written by admin,
--      calls, decisions and clusters by the programme's team (RLS below).

CREATE TABLE offices_elsewhere (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                text NOT NULL
                        CHECK (kind IN ('kreisfreie_stadt', 'kreis', 'kreisangehoerige_stadt')),
    -- The Land, as the two-letter code of ISO 3166-2:DE; never NW.
    state               text NOT NULL CHECK (state IN ('BW', 'BY', 'BE', 'BB', 'HB', 'HH', 'HE',
                                                       'MV', 'NI', 'RP', 'SL', 'SN', 'ST', 'SH',
                                                       'TH')),
    population_under_18 integer CHECK (population_under_18 >= 0),
    synthetic           boolean NOT NULL DEFAULT false,
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Invariant 1: an id is in one table only.
CREATE FUNCTION kqe_directory_one_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_TABLE_NAME = 'offices' AND EXISTS (SELECT FROM offices_elsewhere WHERE id = NEW.id))
       OR (TG_TABLE_NAME = 'offices_elsewhere' AND EXISTS (SELECT FROM offices WHERE id = NEW.id))
    THEN
        RAISE EXCEPTION 'office % is already in the directory', NEW.id
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER directory_one_table BEFORE INSERT OR UPDATE OF id ON offices
    FOR EACH ROW EXECUTE FUNCTION kqe_directory_one_table();
CREATE TRIGGER directory_one_table BEFORE INSERT OR UPDATE OF id ON offices_elsewhere
    FOR EACH ROW EXECUTE FUNCTION kqe_directory_one_table();

-- The whole directory: NRW's offices (state NW, with their region) and those elsewhere.
CREATE VIEW directory WITH (security_barrier) AS
    SELECT id, name, kind, 'NW'::text AS state, region, population_under_18, synthetic, version,
           created_at, updated_at FROM offices
    UNION ALL
    SELECT id, name, kind, state, NULL, population_under_18, synthetic, version, created_at,
           updated_at FROM offices_elsewhere;

CREATE TABLE programmes (
    id              uuid PRIMARY KEY,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    legal_basis     text NOT NULL CHECK (length(legal_basis) BETWEEN 1 AND 200),
    sponsor         text NOT NULL CHECK (length(sponsor) BETWEEN 1 AND 200), -- who funds it
    commissioned_by text CHECK (length(commissioned_by) BETWEEN 1 AND 200),
    run_by          text NOT NULL CHECK (length(run_by) BETWEEN 1 AND 200),
    starts_on       date NOT NULL,
    ends_on         date NOT NULL,
    nrw_only        boolean NOT NULL DEFAULT true, -- participants from NRW only
    synthetic       boolean NOT NULL DEFAULT false,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX programmes_updated ON programmes (updated_at, id);

ALTER TABLE api_tokens ADD COLUMN programme_id uuid REFERENCES programmes (id);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN (
    'office_staff', 'office_lead', 'institute', 'advisor', 'ministry', 'admin',
    'provider_staff', 'programme_team'));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_programme_binding
    CHECK ((role = 'programme_team') = (programme_id IS NOT NULL));

CREATE TABLE calls (
    id           uuid PRIMARY KEY,
    programme_id uuid NOT NULL REFERENCES programmes (id),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text CHECK (length(description) BETWEEN 1 AND 5000), -- published text
    deadline     timestamptz NOT NULL,
    -- [{id, text, answer: yes_no|text, weight}] in the order they are asked
    criteria     jsonb NOT NULL CHECK (jsonb_typeof(criteria) = 'array'),
    places       jsonb NOT NULL CHECK (jsonb_typeof(places) = 'object'), -- role → places
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_updated ON calls (updated_at, id);
CREATE INDEX calls_programme ON calls (programme_id);

CREATE TABLE applications (
    id             uuid PRIMARY KEY,
    call_id        uuid NOT NULL REFERENCES calls (id),
    programme_id   uuid NOT NULL REFERENCES programmes (id),
    office_id      text NOT NULL, -- in offices or offices_elsewhere (kqe_directory_has)
    preferred_role text NOT NULL,
    answers_enc    text NOT NULL, -- invariant 4
    points         integer NOT NULL CHECK (points >= 0), -- weights of the criteria met
    status         text NOT NULL DEFAULT 'submitted' CHECK (status IN (
                       'submitted', 'waitlisted', 'selected', 'rejected', 'withdrawn')),
    role           text, -- the role it was selected for
    score          smallint CHECK (score BETWEEN 0 AND 100), -- the programme team's
    entered_by     text NOT NULL CHECK (entered_by IN ('office', 'programme_team')),
    decided_at     timestamptz,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id, office_id),
    CHECK ((status = 'selected') = (role IS NOT NULL))
);
CREATE INDEX applications_updated ON applications (updated_at, id);
CREATE INDEX applications_office ON applications (office_id);
CREATE TRIGGER applications_no_delete BEFORE DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

CREATE FUNCTION kqe_directory_has(p_id text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT FROM offices WHERE id = p_id)
        OR EXISTS (SELECT FROM offices_elsewhere WHERE id = p_id)
$$;
CREATE FUNCTION applications_office_known() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT kqe_directory_has(NEW.office_id) THEN
        RAISE EXCEPTION 'office % is not in the directory', NEW.office_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER applications_office_known BEFORE INSERT OR UPDATE OF office_id ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_office_known();

CREATE TABLE clusters (
    id              uuid PRIMARY KEY,
    programme_id    uuid NOT NULL REFERENCES programmes (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    model_office_id text NOT NULL,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (programme_id, name)
);
CREATE INDEX clusters_updated ON clusters (updated_at, id);
CREATE TABLE cluster_members (
    programme_id uuid NOT NULL,
    office_id    text NOT NULL,
    cluster_id   uuid NOT NULL REFERENCES clusters (id),
    PRIMARY KEY (programme_id, office_id) -- invariant 5
);
CREATE INDEX cluster_members_cluster ON cluster_members (cluster_id);

-- How many offices a call has selected, per role: public, like the places.
CREATE FUNCTION kqe_call_selected(p_call uuid) RETURNS json
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(json_object_agg(role, n ORDER BY role), '{}')
    FROM (SELECT role, count(*) AS n FROM applications
          WHERE call_id = p_call AND status = 'selected' GROUP BY role) s
$$;

-- Invariant 5: an office no longer selected leaves its cluster.
CREATE FUNCTION applications_leave_cluster() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.status = 'selected' AND NEW.status <> 'selected' AND NOT EXISTS (
        SELECT FROM applications WHERE programme_id = NEW.programme_id
        AND office_id = NEW.office_id AND status = 'selected' AND id <> NEW.id) THEN
        DELETE FROM cluster_members WHERE programme_id = NEW.programme_id
            AND office_id = NEW.office_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER applications_leave_cluster AFTER UPDATE OF status ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_leave_cluster();

-- Invariant 4: who reads an application of p_office to p_programme.
CREATE FUNCTION kqe_application_reader(p_office text, p_programme uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR (kqe_ctx('role') = 'programme_team' AND p_programme::text = kqe_ctx('programme_id'))
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;
-- Who runs programme p_programme.
CREATE FUNCTION kqe_programme_team(p_programme uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(kqe_ctx('role') = 'programme_team'
                    AND p_programme::text = kqe_ctx('programme_id'), false)
$$;

ALTER TABLE offices_elsewhere ENABLE ROW LEVEL SECURITY;
ALTER TABLE offices_elsewhere FORCE ROW LEVEL SECURITY;
ALTER TABLE programmes ENABLE ROW LEVEL SECURITY;
ALTER TABLE programmes FORCE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls FORCE ROW LEVEL SECURITY;
ALTER TABLE applications ENABLE ROW LEVEL SECURITY;
ALTER TABLE applications FORCE ROW LEVEL SECURITY;
ALTER TABLE clusters ENABLE ROW LEVEL SECURITY;
ALTER TABLE clusters FORCE ROW LEVEL SECURITY;
ALTER TABLE cluster_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE cluster_members FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON offices_elsewhere TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON programmes TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON calls TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON applications TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON clusters TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON cluster_members TO CURRENT_USER USING (true) WITH CHECK (true);
-- The directory, programmes, calls and clusters are public to every caller.
CREATE POLICY service_read ON offices_elsewhere FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON programmes FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON calls FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON clusters FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON cluster_members FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_write ON programmes TO kqe_service
    USING (kqe_ctx('role') = 'admin') WITH CHECK (kqe_ctx('role') = 'admin');
CREATE POLICY service_write ON calls TO kqe_service
    USING (kqe_programme_team(programme_id)) WITH CHECK (kqe_programme_team(programme_id));
CREATE POLICY service_write ON clusters TO kqe_service
    USING (kqe_programme_team(programme_id)) WITH CHECK (kqe_programme_team(programme_id));
CREATE POLICY service_write ON cluster_members TO kqe_service
    USING (kqe_programme_team(programme_id)) WITH CHECK (kqe_programme_team(programme_id));
CREATE POLICY service_read ON applications FOR SELECT TO kqe_service
    USING (kqe_application_reader(office_id, programme_id));
CREATE POLICY service_insert ON applications FOR INSERT TO kqe_service WITH CHECK (
    (kqe_ctx('role') = 'office_lead' AND office_id = kqe_ctx('office_id')
     AND entered_by = 'office')
    OR (kqe_programme_team(programme_id) AND entered_by = 'programme_team'));
CREATE POLICY service_update ON applications FOR UPDATE TO kqe_service
    USING (kqe_application_reader(office_id, programme_id) AND kqe_ctx('role') <> 'admin')
    WITH CHECK (kqe_application_reader(office_id, programme_id));
GRANT SELECT ON offices_elsewhere, directory TO kqe_service;
GRANT SELECT, INSERT, UPDATE ON programmes, calls, applications, clusters TO kqe_service;
GRANT SELECT, INSERT, DELETE ON cluster_members TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_application_reader(text, uuid), kqe_programme_team(uuid),
    kqe_directory_has(text), kqe_call_selected(uuid) TO kqe_service;
