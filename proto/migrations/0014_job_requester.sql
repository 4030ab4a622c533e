-- Who asked for a job (the principal's actor: "token:<id>", "jwt:<iss>|<sub>"),
-- so a regional advisor reads the jobs it queued and no one else's: a job
-- carries its parameters and the link to its result. NULL for jobs queued
-- before this migration; those stay readable by the Ministry and admins only.
ALTER TABLE jobs ADD COLUMN requested_by text;
