-- The audit log without a global lock (docs/security.md, "Audit"; docs/design.md,
-- "Audit: appended freely, sealed in order, heads signed").
--
-- Until now every append took the row lock of audit_head until its transaction ended, so
-- every write of every office waited for the one before it to commit: one commit flush at a
-- time. Now:
--   1. An append only inserts its row: an id from a sequence, the time, the content, and the
--      id of the transaction that appends it (xid). No hash yet, no lock.
--   2. A sealer (kqe_audit_seal, run by kqe-aggregator, or `kqe audit seal`) takes the rows
--      whose transactions have all ended — xid older than the oldest transaction still
--      running, pg_snapshot_xmin — in id order, and links them into the hash chain: each gets
--      its chain position seq (1, 2, 3, … without gaps), the hash of the entry before
--      (prev_hash) and its hash, SHA-256 over prev_hash and its canonical text (as before).
--      A row whose transaction was still running waits for a later seal and so may get a
--      later position than rows with higher ids; the chain's order is the order of sealing,
--      and it never changes: no row can be sealed before a position already taken.
--   3. kqe-aggregator signs the chain's head (seq and hash) with its Ed25519 key and keeps the
--      signed heads here (audit_heads); GET /v1/audit/head and every report carry the newest.
--      A head that has left the system pins the whole chain up to it: rewriting an entry, even
--      by the database's owner who can recompute every later hash, gives another hash at that
--      position, and a head for it cannot be signed without the key, which the database never
--      holds (`kqe audit verify --head FILE`).
-- Entries written before this migration were sealed when written: their position is their id.

ALTER TABLE audit_log ADD COLUMN seq bigint UNIQUE, ADD COLUMN xid xid8,
    ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL;
UPDATE audit_log SET seq = id;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_sealed
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;

CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id;
SELECT setval('audit_log_id_seq', coalesce((SELECT max(id) FROM audit_log), 0) + 1, false);

-- audit_head.last_id is the last sealed position (seq) from now on.
COMMENT ON COLUMN audit_head.last_id IS 'the last sealed chain position (audit_log.seq)';

CREATE OR REPLACE FUNCTION kqe_audit_append(p_actor text, p_role text, p_office_id text,
                                            p_action text, p_resource text, p_resource_id text,
                                            p_request_id text, p_details jsonb) RETURNS bigint
    -- Runs as the owner: the service role may append only through this function, never
    -- insert rows of its own making. No lock: appends of concurrent transactions do not
    -- wait for each other; kqe_audit_seal links them into the chain once they are done.
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    new_id bigint := nextval('audit_log_id_seq');
BEGIN
    INSERT INTO audit_log (id, at, actor, role, office_id, action, resource, resource_id,
                           request_id, details, xid)
    VALUES (new_id, date_trunc('microseconds', clock_timestamp()), p_actor, p_role,
            p_office_id, p_action, p_resource, p_resource_id, p_request_id,
            coalesce(p_details, '{}'), pg_current_xact_id());
    RETURN new_id;
END
$$;

-- Seals up to p_limit entries whose transactions have ended, in id order; returns how many,
-- and the head after it. One sealer at a time (the head's row lock; appends never take it).
CREATE FUNCTION kqe_audit_seal(p_limit integer)
    RETURNS TABLE (sealed integer, last_seq bigint, last_hash text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_head;
    horizon xid8;
    e audit_log;
    n integer := 0;
BEGIN
    SELECT * INTO head FROM audit_head FOR UPDATE;
    -- Every transaction older than this one has ended, committed or not. The next
    -- statement's snapshot is newer, so it sees every row those committed.
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    FOR e IN SELECT * FROM audit_log WHERE seq IS NULL AND xid < horizon
             ORDER BY id LIMIT p_limit LOOP
        e.seq := head.last_id + 1;
        e.prev_hash := head.last_hash;
        e.hash := encode(sha256(convert_to(e.prev_hash || kqe_audit_canonical(e), 'UTF8')),
                         'hex');
        UPDATE audit_log SET seq = e.seq, prev_hash = e.prev_hash, hash = e.hash
            WHERE id = e.id;
        head.last_id := e.seq;
        head.last_hash := e.hash;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        UPDATE audit_head SET last_id = head.last_id, last_hash = head.last_hash;
    END IF;
    RETURN QUERY SELECT n, head.last_id, head.last_hash;
END
$$;

-- Heads signed by kqe-aggregator: the message is the lines "kqe audit head v1", seq, hash and
-- kqe_ts(signed_at) joined by newlines (common/src/audit_seal.c), the signature Ed25519
-- (standard base64), key_id the first 16 hex digits of SHA-256 over the raw public key. A
-- head names a position already sealed and its hash (kqe_audit_publish_head checks).
CREATE TABLE audit_heads (
    seq       bigint PRIMARY KEY,
    hash      text NOT NULL,
    signed_at timestamptz NOT NULL,
    key_id    text NOT NULL,
    signature text NOT NULL
);

CREATE FUNCTION kqe_audit_publish_head(p_seq bigint, p_hash text, p_signed_at timestamptz,
                                       p_key_id text, p_signature text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM audit_log WHERE seq = p_seq AND hash = p_hash) THEN
        RAISE EXCEPTION 'audit head % does not name a sealed entry and its hash', p_seq;
    END IF;
    INSERT INTO audit_heads VALUES (p_seq, p_hash, p_signed_at, p_key_id, p_signature)
        ON CONFLICT (seq) DO NOTHING;
END
$$;

-- The newest signed head as the API shows it (GET /v1/audit/head, and every report, which
-- carries the one newest when it was built, not in its content hash); NULL while none is.
CREATE FUNCTION kqe_audit_head_newest() RETURNS json
    LANGUAGE sql STABLE
    RETURN (SELECT json_build_object('seq', seq, 'hash', hash, 'signed_at', kqe_ts(signed_at),
                                     'key_id', key_id, 'signature', signature)
            FROM audit_heads ORDER BY seq DESC LIMIT 1);
ALTER TABLE reports ADD COLUMN audit_head jsonb;

REVOKE ALL ON FUNCTION kqe_audit_seal(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_audit_seal(integer) TO kqe_service;
REVOKE ALL ON FUNCTION kqe_audit_publish_head(bigint, text, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_audit_publish_head(bigint, text, timestamptz, text, text)
    TO kqe_service;
GRANT SELECT ON audit_heads TO kqe_service;
