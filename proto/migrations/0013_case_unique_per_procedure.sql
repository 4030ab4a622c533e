-- A case reference is unique within a procedure, no longer within an office.
--
-- Unique per office, a create in procedure A answered 409 when the office had
-- analysed the same case in procedure B, which the caller may not be able to
-- read (an institute is assigned to A only): a probe for file numbers. Per
-- procedure, whoever may write into a procedure may read all of its case
-- analyses, so the 409 names a record the caller can open. The pseudonym
-- stays per office, so the office can still relate the two analyses of one
-- case in different procedures.
ALTER TABLE case_analyses DROP CONSTRAINT case_analyses_office_id_case_pseudonym_key;
ALTER TABLE case_analyses
    ADD CONSTRAINT case_analyses_procedure_case_key UNIQUE (procedure_id, case_pseudonym);
