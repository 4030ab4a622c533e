-- Free providers of foster-care services (freie Träger der Pflegekinderhilfe, docs/foster-care.md):
-- § 10 LKSG NRW binds them to a protection concept as much as the offices. The directory
-- holds each with its seat and the offices it works for; the role provider_staff is bound to
-- one provider, as office roles are bound to one office.
--
-- Invariants, each with where it is kept:
--   1. The directory is public to every caller of the API, like the offices'; only admin
--      writes it (RLS below, the API's permission table).
--   2. A provider_staff token names exactly one existing provider (CHECKs below).
--   3. Every write is audited (the API's one write path).

CREATE TABLE providers (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    seat       text NOT NULL CHECK (length(seat) BETWEEN 1 AND 100), -- Sitz: the municipality
    region     text NOT NULL CHECK (region IN ('LVR', 'LWL')), -- the Landesjugendamt of its seat
    synthetic  boolean NOT NULL DEFAULT false,
    record_key bigint NOT NULL DEFAULT kqe_record_key()
               CHECK (record_key BETWEEN 0 AND 4294967295),
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX providers_updated ON providers (updated_at, id);
CREATE TRIGGER keep_record_key BEFORE UPDATE OF record_key ON providers
    FOR EACH ROW EXECUTE FUNCTION kqe_keep_record_key();

-- The offices a provider works for (its placements are theirs).
CREATE TABLE provider_offices (
    provider_id text NOT NULL REFERENCES providers (id),
    office_id   text NOT NULL REFERENCES offices (id),
    PRIMARY KEY (provider_id, office_id)
);
CREATE INDEX provider_offices_office ON provider_offices (office_id);

ALTER TABLE api_tokens ADD COLUMN provider_id text REFERENCES providers (id);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN (
    'office_staff', 'office_lead', 'institute', 'advisor', 'ministry', 'admin',
    'provider_staff'));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_provider_binding
    CHECK ((role = 'provider_staff') = (provider_id IS NOT NULL));

ALTER TABLE providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE providers FORCE ROW LEVEL SECURITY;
ALTER TABLE provider_offices ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_offices FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON providers TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON provider_offices TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON providers FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_read ON provider_offices FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_write ON providers TO kqe_service
    USING (kqe_ctx('role') = 'admin') WITH CHECK (kqe_ctx('role') = 'admin');
CREATE POLICY service_write ON provider_offices TO kqe_service
    USING (kqe_ctx('role') = 'admin') WITH CHECK (kqe_ctx('role') = 'admin');
GRANT SELECT, INSERT, UPDATE ON providers TO kqe_service;
GRANT SELECT, INSERT, DELETE ON provider_offices TO kqe_service;
