-- Module 1: the office directory (Jugendämter). The id is the official key
-- where known; imported rows without one get a stable slug of the name.
CREATE TABLE offices (
    id                  text PRIMARY KEY
                        CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                text NOT NULL
                        CHECK (kind IN ('kreisfreie_stadt', 'kreis', 'kreisangehoerige_stadt')),
    region              text NOT NULL CHECK (region IN ('LVR', 'LWL')),
    population_under_18 integer CHECK (population_under_18 >= 0),
    synthetic           boolean NOT NULL DEFAULT false,
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX offices_region_id ON offices (region, id);

-- RFC 3339 UTC text for timestamps in API answers (docs/api-conventions.md, Dates).
CREATE FUNCTION kqe_ts(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
