-- The § 8 procedure report (docs/procedure-reports.md, 0017_procedure_reports.sql):
-- corrections of what 0017 wrote.
--
--   1. The ministry sees only that a report exists and when it was finalised: its rows are
--      the finalised and accepted reports, never a draft (the service_read policy below; the
--      API's list shows it no more than the procedure, office, cycle and finalisation time).

ALTER POLICY service_read ON procedure_reports USING (
    kqe_report_reader(office_id, procedure_id)
    OR (kqe_ctx('role') = 'ministry' AND status <> 'draft'));
