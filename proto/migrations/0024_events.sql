-- Events of programmes (docs/programmes.md, Events): workshops, online seminars, network
-- meetings, participation workshops, working-group meetings, expert workshops, transfer
-- conferences — one date or a series of dates (five two-day meetings, one every two
-- months) — with registrations, a waiting list, cancellation, attendance and feedback.
--
-- Invariants, each with where it is kept:
--   1. An event never has more registered people than places, nor more from one office than
--      its per-office limit; who does not fit waits, in the order they registered, and moves
--      up when a place frees (API, under the event's advisory lock, which every registration
--      write of the event takes).
--   2. One active registration per person (e-mail address), event and registering office
--      (partial UNIQUE on a keyed hash of office and address; the address itself is stored
--      encrypted). Keyed by the office so that a 409 names only a registration the caller
--      can read.
--   3. A person's name and address, and the feedback comment, are read by the registering
--      office and the programme's team only (RLS below, API), stored encrypted.
--   4. Attendance is recorded per date of the event by the programme's team; feedback is
--      given after the event has ended (API).
--   5. Every write is audited (the API's one write path).

CREATE TABLE events (
    id                uuid PRIMARY KEY,
    programme_id      uuid NOT NULL REFERENCES programmes (id),
    kind              text NOT NULL CHECK (kind IN ('workshop', 'online_seminar',
                          'network_meeting', 'participation_workshop', 'working_group_meeting',
                          'expert_workshop', 'transfer_conference')),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description       text CHECK (length(description) BETWEEN 1 AND 5000),
    online            boolean NOT NULL,
    place             text CHECK (length(place) BETWEEN 1 AND 200),
    capacity          integer NOT NULL CHECK (capacity BETWEEN 1 AND 10000),
    per_office_limit  integer CHECK (per_office_limit BETWEEN 1 AND 10000),
    participants_only boolean NOT NULL, -- only offices selected in the programme
    dates             jsonb NOT NULL CHECK (jsonb_typeof(dates) = 'array'), -- [{starts_at, ends_at}]
    starts_at         timestamptz NOT NULL, -- of the first date
    ends_at           timestamptz NOT NULL, -- of the last date
    status            text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (online OR place IS NOT NULL),
    CHECK (ends_at > starts_at)
);
CREATE INDEX events_updated ON events (updated_at, id);
CREATE INDEX events_programme ON events (programme_id, starts_at);

CREATE TABLE event_registrations (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES events (id),
    programme_id     uuid NOT NULL REFERENCES programmes (id),
    office_id        text, -- the office the person comes from (per-office limit), if any
    person_enc       text NOT NULL, -- {first_name, last_name, email}, invariant 3
    email_key        text NOT NULL CHECK (email_key ~ '^[0-9a-f]{64}$'), -- invariant 2
    status           text NOT NULL CHECK (status IN ('registered', 'waitlisted', 'cancelled')),
    attended         boolean[] NOT NULL DEFAULT '{}', -- per date of the event, invariant 4
    feedback_rating  smallint CHECK (feedback_rating BETWEEN 1 AND 5),
    feedback_enc     text,
    registered_by    text NOT NULL CHECK (registered_by IN ('office', 'programme_team')),
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX event_registrations_person ON event_registrations (event_id, email_key)
    WHERE status <> 'cancelled';
CREATE INDEX event_registrations_updated ON event_registrations (updated_at, id);
CREATE INDEX event_registrations_event ON event_registrations (event_id, status, created_at);
CREATE TRIGGER event_registrations_no_delete BEFORE DELETE ON event_registrations
    FOR EACH ROW EXECUTE FUNCTION reports_immutable();

-- Invariant 3: who reads a registration from p_office to an event of p_programme.
CREATE FUNCTION kqe_registration_reader(p_office text, p_programme uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (kqe_ctx('role') IN ('office_staff', 'office_lead') AND p_office = kqe_ctx('office_id'))
        OR kqe_programme_team(p_programme)
        OR kqe_ctx('role') IN ('admin', 'system'), false)
$$;

-- How many are registered and waiting, in all and from p_office: public counts, like the
-- places of a call, and what invariant 1 is checked against.
CREATE FUNCTION kqe_event_counts(p_event uuid, p_office text) RETURNS TABLE (
    registered bigint, waitlisted bigint, from_office bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE status = 'registered'),
           count(*) FILTER (WHERE status = 'waitlisted'),
           count(*) FILTER (WHERE status = 'registered' AND office_id = p_office)
    FROM event_registrations WHERE event_id = p_event
$$;

-- Invariant 1: the first of the waiting list that fits once a place is free, or none.
CREATE FUNCTION kqe_event_next_waiting(p_event uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id FROM event_registrations r JOIN events e ON e.id = r.event_id
    WHERE r.event_id = p_event AND r.status = 'waitlisted'
      AND (SELECT count(*) FROM event_registrations x
           WHERE x.event_id = p_event AND x.status = 'registered') < e.capacity
      AND (e.per_office_limit IS NULL OR r.office_id IS NULL
           OR (SELECT count(*) FROM event_registrations x WHERE x.event_id = p_event
               AND x.status = 'registered' AND x.office_id = r.office_id) < e.per_office_limit)
    ORDER BY r.created_at, r.id LIMIT 1
$$;

-- The first who waits and fits moves up (its id, or NULL). It runs with the rights of the
-- owner because the writer of the change that freed the place may not otherwise update
-- another office's registration; it can do nothing but what invariant 1 asks.
-- Also the moved registration's encrypted person, so that the API can tell them by mail
-- (the caller itself never sees it).
CREATE FUNCTION kqe_event_move_up(p_event uuid) RETURNS TABLE (id uuid, person_enc text)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE event_registrations r SET status = 'registered', version = r.version + 1,
        updated_at = now() WHERE r.id = kqe_event_next_waiting(p_event)
    RETURNING r.id, r.person_enc
$$;

-- Where a waiting registration stands in its event's waiting list (1 = next), else NULL.
CREATE FUNCTION kqe_waitlist_position(p_registration uuid) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FROM event_registrations w JOIN event_registrations r
        ON r.id = p_registration AND w.event_id = r.event_id
    WHERE r.status = 'waitlisted' AND w.status = 'waitlisted'
      AND (w.created_at, w.id) <= (r.created_at, r.id)
    HAVING count(*) > 0
$$;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
ALTER TABLE event_registrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_registrations FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON events TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON event_registrations TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY service_read ON events FOR SELECT TO kqe_service USING (true);
CREATE POLICY service_write ON events TO kqe_service
    USING (kqe_programme_team(programme_id)) WITH CHECK (kqe_programme_team(programme_id));
CREATE POLICY service_read ON event_registrations FOR SELECT TO kqe_service
    USING (kqe_registration_reader(office_id, programme_id));
CREATE POLICY service_insert ON event_registrations FOR INSERT TO kqe_service WITH CHECK (
    (kqe_ctx('role') IN ('office_staff', 'office_lead') AND office_id = kqe_ctx('office_id')
     AND registered_by = 'office')
    OR (kqe_programme_team(programme_id) AND registered_by = 'programme_team'));
CREATE POLICY service_update ON event_registrations FOR UPDATE TO kqe_service
    USING (kqe_registration_reader(office_id, programme_id) AND kqe_ctx('role') <> 'admin')
    WITH CHECK (kqe_registration_reader(office_id, programme_id));
GRANT SELECT, INSERT, UPDATE ON events, event_registrations TO kqe_service;
GRANT EXECUTE ON FUNCTION kqe_registration_reader(text, uuid), kqe_event_counts(uuid, text),
    kqe_event_next_waiting(uuid), kqe_event_move_up(uuid), kqe_waitlist_position(uuid)
    TO kqe_service;
