-- One in-cycle § 8 procedure per office and cycle (out-of-cycle procedures on
-- request, § 8 (4), may be several).
CREATE UNIQUE INDEX procedures_one_per_cycle ON procedures (office_id, cycle)
    WHERE NOT out_of_cycle;

-- Procedure coverage of a cycle for advisors and the ministry: office ids and
-- a status only, never other procedure data. Runs as the owner (RLS would
-- otherwise hide every procedure from these roles) and applies the caller's
-- scope itself: an advisor sees its region, ministry and admin all offices.
--   completed   an in-cycle procedure of the cycle is completed
--   in_progress one exists and is not completed, not past its due date
--   overdue     not completed and past its due date or past the cycle's end
--   due         no procedure yet, cycle still running
CREATE FUNCTION kqe_procedure_status(p_cycle text, p_today date)
    RETURNS TABLE (office_id text, status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id,
           CASE WHEN bool_or(p.phase = 'completed') THEN 'completed'
                WHEN p_today > make_date(split_part(p_cycle, '-', 2)::int, 6, 30) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL AND p.due_date < p_today) THEN 'overdue'
                WHEN bool_or(p.id IS NOT NULL) THEN 'in_progress'
                ELSE 'due' END
    FROM offices o
    LEFT JOIN procedures p ON p.office_id = o.id AND p.cycle = p_cycle AND NOT p.out_of_cycle
    WHERE kqe_ctx('role') IN ('ministry', 'admin')
       OR (kqe_ctx('role') = 'advisor' AND o.region = kqe_ctx('region'))
    GROUP BY o.id
$$;
REVOKE ALL ON FUNCTION kqe_procedure_status(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kqe_procedure_status(text, date) TO kqe_service;
