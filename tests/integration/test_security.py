"""Authentication, the permission table, tenant isolation (API and RLS), and the audit chain."""

import os
import re
import subprocess
import time
import unittest

from harness import BIN, StackTestCase, metric, psql, wait_until

OWN = "demo-lvr-001"
FOREIGN = "demo-lwl-001"
INSTITUTE = "demo-institut-1"
VALID_REPORT = {"scope": "state", "period": "2024"}
ROLES = ["office_staff", "office_lead", "institute", "advisor", "ministry", "admin",
         "provider_staff", "programme_team", "professional"]
PROVIDER = "sec-provider"
# What a foster-care provider's staff reaches: the directories, the published reports, its
# own protection concept; anything else is 403.
PROVIDER_ROUTES = {
    "healthz": 200, "readyz": 200, "metrics": 200, "openapi": 200, "docs": 200,
    "offices": 200, "office": 200, "report": 200, "reports": 200, "report_html": 200,
    "codelists": 200, "codelist": 200, "me": 200, "download_link": 422,
    "offices_csv": 200, "reports_csv": 200, "report_csv": 200, "report_periods": 200,
    "audit_head": 200,
    "assigned_procedure": None, "unassigned_procedure": None,
    "providers": 200, "providers_csv": 200, "provider": 404,
    "concepts": 200, "concepts_csv": 200, "concept": 404, "concept_create": 422,
    "concept_patch": 415, "concept_versions": 404,
    "programmes": 200, "programmes_csv": 200, "programme": 404, "calls": 200, "call": 404,
    "clusters": 200, "cluster": 404, "events": 200, "events_ics": 200, "event": 404,
    "signup": 422, "signup_confirm": 404, "faq": 200,
    "materials": 200, "material": 404, "material_file": 404,
}
# What an approved professional reaches: its programme's published part and itself.
PROFESSIONAL_ROUTES = {
    "healthz": 200, "readyz": 200, "metrics": 200, "openapi": 200, "docs": 200,
    "codelists": 200, "codelist": 200, "me": 200,
    "assigned_procedure": None, "unassigned_procedure": None,
    "programmes": 200, "programmes_csv": 200, "programme": 404, "calls": 200, "call": 404,
    "clusters": 200, "cluster": 404, "events": 200, "events_ics": 200, "event": 404,
    "signup": 422, "signup_confirm": 404, "professionals": 200, "professionals_csv": 200,
    "professional": 404, "faq": 200, "service_requests": 200, "service_requests_csv": 200,
    "service_request": 404, "service_request_create": 422, "service_request_patch": 415,
    "materials": 200, "material": 404, "material_file": 404,
    # It registers itself for its programme's events.
    "registrations": 200, "registrations_csv": 200, "registrations_ics": 200,
    "registration": 404, "registration_create": 422, "registration_patch": 415,
}
# What a programme's team reaches: the directories, the published reports, and its programme.
TEAM_ROUTES = {
    "healthz": 200, "readyz": 200, "metrics": 200, "openapi": 200, "docs": 200,
    "offices": 200, "office": 200, "report": 200, "reports": 200, "report_html": 200,
    "codelists": 200, "codelist": 200, "me": 200, "download_link": 422,
    "offices_csv": 200, "reports_csv": 200, "report_csv": 200, "report_periods": 200,
    "audit_head": 200,
    "assigned_procedure": None, "unassigned_procedure": None,
    "providers": 200, "providers_csv": 200, "provider": 404,
    "programmes": 200, "programmes_csv": 200, "programme": 404, "calls": 200, "call": 404,
    "call_create": 422, "call_patch": 415, "ranking": 404, "applications": 200,
    "applications_csv": 200, "application": 404, "application_create": 422,
    "application_patch": 415, "clusters": 200, "cluster": 404, "cluster_create": 422,
    "cluster_patch": 415, "events": 200, "events_ics": 200, "event": 404, "event_create": 422,
    "event_patch": 415, "registrations": 200, "registrations_csv": 200,
    "registrations_ics": 200, "registration": 404, "registration_create": 422,
    "registration_patch": 415, "signup": 422, "signup_confirm": 404, "professionals": 200,
    "professionals_csv": 200, "professional": 404, "professional_patch": 415, "faq": 200,
    "service_requests": 200, "service_requests_csv": 200, "service_request": 404,
    "service_request_patch": 415,
    "materials": 200, "material": 404, "material_file": 404,
    # The matrix sends no body: a PUT of a file without one is 400.
    "material_create": 422, "material_patch": 415, "material_upload": 400,
}


UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

class SecurityTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.tok = {
            "office_staff": s.token("office_staff", office=OWN)[0],
            "office_lead": s.token("office_lead", office=OWN)[0],
            "institute": s.token("institute", institute=INSTITUTE)[0],
            "advisor": s.token("advisor", region="LVR")[0],
            "ministry": s.token("ministry")[0],
            "admin": s.default_token,
        }
        s.sql(f"INSERT INTO providers (id, name, seat, region) VALUES ('{PROVIDER}',"
              " 'Pflegekinderdienst (Test)', 'Köln', 'LVR') ON CONFLICT DO NOTHING")
        cls.tok["provider_staff"] = s.token("provider_staff", provider=PROVIDER)[0]
        programme = s.sql_value(
            "INSERT INTO programmes (id, title, legal_basis, sponsor, run_by, starts_on, ends_on)"
            " VALUES (gen_random_uuid(), 'Sicherheitstest', 'Test', 'Test', 'Test',"
            " '2026-01-01', '2026-12-31') RETURNING id")
        cls.tok["programme_team"] = s.token("programme_team", programme=programme)[0]
        cls.tok["professional"] = s.professional_token(programme)[0]
        cls.own_proc = s.sql_value(f"SELECT id FROM procedures WHERE office_id = '{OWN}' LIMIT 1")
        cls.foreign_proc = s.sql_value(
            f"SELECT id FROM procedures WHERE office_id = '{FOREIGN}' LIMIT 1")
        cls.assigned_proc = s.sql_value(
            f"SELECT id FROM procedures WHERE institute_id = '{INSTITUTE}' LIMIT 1")
        cls.unassigned_proc = s.sql_value(
            f"SELECT id FROM procedures WHERE institute_id IS DISTINCT FROM '{INSTITUTE}' LIMIT 1")
        r = s.post("/v1/reports", VALID_REPORT)
        cls.job = r.json()["id"]
        s.wait_job(cls.job)
        cls.report = s.get(f"/v1/jobs/{cls.job}").json()["result"]

    # --- authentication ----------------------------------------------------------
    def test_missing_token_is_401_with_challenge(self):
        r = self.stack.get("/v1/offices", token=None)
        self.assertProblem(r, 401, detail="This resource needs a bearer token.")
        self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="kqe"')

    def test_bad_tokens_are_401(self):
        cases = {
            "Basic dXNlcjpwdw==": "invalid_request",
            "Bearer": "invalid_request",
            "Bearer kqe_" + "A" * 43: "invalid_token",      # well formed, unknown
            "Bearer kqe_short": "invalid_token",
            "Bearer " + self.tok["admin"] + "x": "invalid_token",
            "Bearer " + self.tok["admin"][:-1] + "!": "invalid_token",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.": "invalid_token",
        }
        for header, error in cases.items():
            with self.subTest(header=header):
                r = self.stack.get("/v1/offices", headers={"Authorization": header})
                self.assertProblem(r, 401)
                self.assertEqual(r.header("WWW-Authenticate"),
                                 f'Bearer realm="kqe", error="{error}"')

    def changed_and_told(self, change):
        """Runs change() on api_tokens and waits until kqe-api has forgotten its cached keys.

        The notification arrives at commit plus delivery (docs/security.md, "Revoking a
        key"); waiting for it keeps this test about what happens next, not about a race."""
        before = metric(self.stack, "kqe_token_cache_invalidations_total")
        change()
        wait_until(lambda: metric(self.stack, "kqe_token_cache_invalidations_total") > before,
                   what="kqe-api told of the change to api_tokens")

    def requests_per_thread(self):
        """One request more than there are pool threads: at least one thread serves two."""
        return int(metric(self.stack, "kqe_pool_threads")) + 1

    def assertCached(self, token):
        """Enough requests that some pool thread answered the key from its cache."""
        hits = metric(self.stack, "kqe_token_cache_hits_total")
        for _ in range(self.requests_per_thread()):
            self.assertEqual(self.stack.get("/v1/offices?limit=1", token=token).status, 200)
        self.assertGreater(metric(self.stack, "kqe_token_cache_hits_total"), hits)

    def test_revoked_token_is_401(self):
        token, token_id = self.stack.token("ministry", name="to-revoke")
        self.assertCached(token)
        self.changed_and_told(lambda: self.stack.kqe("token", "revoke", token_id, check=True))
        for _ in range(self.requests_per_thread()):  # also on threads that had it cached
            r = self.stack.get("/v1/offices", token=token)
            self.assertProblem(r, 401, detail="The token was revoked.")

    def test_expired_token_is_401(self):
        token, token_id = self.stack.token("ministry", name="to-expire", expires="2099-01-01")
        self.assertCached(token)
        self.changed_and_told(lambda: self.stack.sql(
            f"UPDATE api_tokens SET expires_at = now() - interval '1 second'"
            f" WHERE id = '{token_id}'"))
        for _ in range(self.requests_per_thread()):
            self.assertProblem(self.stack.get("/v1/offices", token=token), 401,
                               detail="The token has expired.")

    def test_tokens_are_stored_only_as_hashes_and_never_logged(self):
        hashes = [h for (h,) in self.stack.sql("SELECT token_hash FROM api_tokens")]
        self.assertTrue(all(len(h) == 64 for h in hashes))
        for token in self.tok.values():
            self.stack.get("/v1/offices?limit=1", token=token)
        self.stack.get("/v1/offices", headers={"Authorization": "Bearer kqe_" + "B" * 43})
        dump = subprocess.run(["pg_dump", "--data-only", self.stack.db_url],
                              capture_output=True, text=True).stdout
        with open(self.stack.logs + "/api.log") as f:
            log = f.read()
        for token in list(self.tok.values()) + ["kqe_" + "B" * 43]:
            self.assertNotIn(token, log)
            self.assertNotIn(token, dump)
            self.assertNotIn(token[4:], log)

    # --- the matrix ------------------------------------------------------------------
    def expected(self, role, route):
        if role == "provider_staff":
            return PROVIDER_ROUTES.get(route, 403)
        if role == "programme_team":
            return TEAM_ROUTES.get(route, 403)
        if role == "professional":
            return PROFESSIONAL_ROUTES.get(route, 403)
        office = role in ("office_staff", "office_lead")
        table = {
            "healthz": 200, "readyz": 200, "metrics": 200, "openapi": 200, "docs": 200,
            "offices": 200, "office": 200, "report": 200,
            "report_create": 202 if role in ("advisor", "ministry", "admin") else 403,
            "reports": 200, "report_html": 200,
            # The matrix posts a report request: the batch route reads it as a bad batch.
            "batch_create": 422 if role in ("ministry", "admin") else 403,
            # The job was queued by admin: an advisor reads only the jobs it asked for.
            "job": {"advisor": 404, "ministry": 200, "admin": 200}.get(role, 403),
            "procedures": 403 if role in ("advisor", "ministry") else 200,
            "own_procedure": {"admin": 200, "advisor": 403, "ministry": 403}.get(
                role, 200 if office else 404),
            "foreign_procedure": {"admin": 200, "advisor": 403, "ministry": 403}.get(role, 404),
            "assigned_procedure": {"admin": 200, "advisor": 403, "ministry": 403,
                                   "institute": 200}.get(role, None),
            "unassigned_procedure": {"admin": 200, "advisor": 403, "ministry": 403,
                                     "institute": 404}.get(role, None),
            "audit": 200 if role == "admin" else 403,
            "codelists": 200, "codelist": 200,
            "benchmark": 200 if role in ("office_staff", "office_lead", "admin") else 403,
            "cases": 403 if role in ("advisor", "ministry") else 200,
            "case": {"admin": 404, "advisor": 403, "ministry": 403}.get(role, 404),
            "case_create": 403 if role in ("advisor", "ministry", "admin") else 422,
            "case_batch": 403 if role in ("advisor", "ministry", "admin") else 422,
            "surveys": 403 if role in ("advisor", "ministry") else 200,
            "survey": {"advisor": 403, "ministry": 403}.get(role, 404),
            "survey_create": 403 if role in ("advisor", "ministry", "admin") else 422,
            # The matrix sends no body with PUT/PATCH: past the permission check, 415.
            "survey_put": 403 if role in ("advisor", "ministry", "admin") else 415,
            "topics": 403 if role in ("advisor", "ministry") else 200,
            "topic": {"advisor": 403, "ministry": 403}.get(role, 404),
            "topic_create": 403 if role in ("advisor", "ministry", "admin") else 422,
            "topic_patch": 403 if role in ("advisor", "ministry", "admin") else 415,
            "me": 200,
            # The matrix posts a report request: not a download link request.
            "download_link": 422,
            "offices_csv": 200, "reports_csv": 200, "report_csv": 200, "report_periods": 200,
            "audit_head": 200,
            "cycle": 200,
            "procedures_csv": 403 if role in ("advisor", "ministry") else 200,
            "procedure_create": 403 if role in ("institute", "advisor", "ministry") else 422,
            "procedure_patch": 403 if role in ("advisor", "ministry") else 415,
            "cases_csv": 403 if role in ("advisor", "ministry") else 200,
            "case_patch": 403 if role in ("advisor", "ministry", "admin") else 415,
            "surveys_csv": 403 if role in ("advisor", "ministry") else 200,
            "topics_csv": 403 if role in ("advisor", "ministry") else 200,
            "audit_csv": 200 if role == "admin" else 403,
            # § 8 procedure reports: everyone lists that they exist, the ministry no more.
            "preports": 200, "preports_csv": 200,
            "preport_create": 422 if role in ("institute", "advisor") else 403,
            "preport": 403 if role == "ministry" else 404,
            "preport_html": 403 if role == "ministry" else 404,
            "preport_patch": 415 if role in ("office_lead", "institute", "advisor") else 403,
            "rcomments": 403 if role == "ministry" else 200,
            "rcomment": 403 if role == "ministry" else 404,
            "rcomment_create": 403 if role in ("ministry", "admin") else 422,
            # § 7 advice: between an office and its region's advisors; admin reads.
            "advice": 403 if role in ("institute", "ministry") else 200,
            "advice_csv": 403 if role in ("institute", "ministry") else 200,
            "advice_create": 422 if role in ("office_staff", "office_lead") else 403,
            "advice_one": 403 if role in ("institute", "ministry") else 404,
            "advice_patch": 403 if role in ("institute", "ministry", "admin") else 415,
            "advice_messages": 403 if role in ("institute", "ministry") else 404,
            "advice_message": 403 if role in ("institute", "ministry") else 404,
            "advice_message_create": 403 if role in ("institute", "ministry", "admin") else 404,
            # § 10: the providers' directory is public; concepts are the owner's, read by
            # the region's advisors and admin; the coverage is the advisors' and ministry's.
            "providers": 200, "providers_csv": 200, "provider": 404,
            "provider_create": 422 if role == "admin" else 403,
            "provider_patch": 415 if role == "admin" else 403,
            "concepts": 403 if role in ("institute", "ministry") else 200,
            "concepts_csv": 403 if role in ("institute", "ministry") else 200,
            "concept": 403 if role in ("institute", "ministry") else 404,
            "concept_create": 422 if office else 403,
            "concept_patch": 415 if office else 403,
            "concept_coverage": 200 if role in ("advisor", "ministry", "admin") else 403,
            "concept_versions": 403 if role in ("institute", "ministry") else 404,
            # Programmes, calls and clusters are published; applications are the applying
            # office's and the programme team's (admin reads them without their answers).
            "programmes": 200, "programmes_csv": 200, "programme": 404,
            "programme_create": 422 if role == "admin" else 403,
            "programme_patch": 415 if role == "admin" else 403,
            "calls": 200, "call": 404, "call_create": 403, "call_patch": 403,
            "ranking": 404 if role == "admin" else 403,
            "applications": 200 if office or role == "admin" else 403,
            "applications_csv": 200 if office or role == "admin" else 403,
            "application": 404 if office or role == "admin" else 403,
            "application_create": 422 if role == "office_lead" else 403,
            "application_patch": 415 if role == "office_lead" else 403,
            "clusters": 200, "cluster": 404, "cluster_create": 403, "cluster_patch": 403,
            # Events are published; registrations are the registering office's and the
            # team's (admin reads them without names).
            "events": 200, "events_ics": 200, "event": 404, "event_create": 403,
            "event_patch": 403,
            "registrations": 200 if office or role == "admin" else 403,
            "registrations_csv": 200 if office or role == "admin" else 403,
            "registrations_ics": 200 if office or role == "admin" else 403,
            "registration": 404 if office or role == "admin" else 403,
            "registration_create": 422 if office else 403,
            "registration_patch": 415 if office else 403,
            # Professionals register without a token (a token sent along is ignored);
            # the registrations themselves are the programme team's (admin: no persons).
            "signup": 422, "signup_confirm": 404,
            "professionals": 200 if role == "admin" else 403,
            "professionals_csv": 200 if role == "admin" else 403,
            "professional": 404 if role == "admin" else 403,
            "professional_patch": 403,
            # The service desk: offices ask the programme's team; the FAQ is public.
            "faq": 200,
            "service_requests": 200 if office or role == "admin" else 403,
            "service_requests_csv": 200 if office or role == "admin" else 403,
            "service_request": 404 if office or role == "admin" else 403,
            "service_request_create": 422 if office else 403,
            "service_request_patch": 415 if office else 403,
            # Materials: everyone reads what is public (an unknown one is a 404 for all);
            # only the programme's team writes.
            "materials": 200, "material": 404, "material_file": 404,
            "material_create": 403, "material_patch": 403, "material_upload": 403,
        }
        return table[route]

    def routes(self):
        return {
            "healthz": ("GET", "/healthz"),
            "readyz": ("GET", "/readyz"),
            "metrics": ("GET", "/metrics"),
            "openapi": ("GET", "/openapi.json"),
            "docs": ("GET", "/docs"),
            "offices": ("GET", "/v1/offices?limit=5"),
            "office": ("GET", f"/v1/offices/{FOREIGN}"),
            "report": ("GET", self.report),
            "report_create": ("POST", "/v1/reports"),
            "reports": ("GET", "/v1/reports?limit=5"),
            "report_html": ("GET", self.report + ".html"),
            "batch_create": ("POST", "/v1/ministry-batches"),
            "job": ("GET", f"/v1/jobs/{self.job}"),
            "procedures": ("GET", "/v1/procedures?limit=500"),
            "own_procedure": ("GET", f"/v1/procedures/{self.own_proc}"),
            "foreign_procedure": ("GET", f"/v1/procedures/{self.foreign_proc}"),
            "assigned_procedure": ("GET", f"/v1/procedures/{self.assigned_proc}"),
            "unassigned_procedure": ("GET", f"/v1/procedures/{self.unassigned_proc}"),
            "audit": ("GET", "/v1/audit?limit=5"),
            "benchmark": ("GET", f"/v1/offices/{OWN}/benchmark"),
            "codelists": ("GET", "/v1/codelists"),
            "codelist": ("GET", "/v1/codelists/sex"),
            "cases": ("GET", "/v1/case-analyses?limit=5"),
            "case": ("GET", "/v1/case-analyses/00000000-0000-4000-8000-000000000000"),
            "case_create": ("POST", "/v1/case-analyses"),
            "case_batch": ("POST", "/v1/case-analyses:batch"),
            "surveys": ("GET", "/v1/structure-surveys?limit=5"),
            "survey": ("GET", "/v1/structure-surveys/00000000-0000-4000-8000-000000000000"),
            "survey_create": ("POST", "/v1/structure-surveys"),
            "survey_put": ("PUT", "/v1/structure-surveys/00000000-0000-4000-8000-000000000000"),
            "topics": ("GET", "/v1/topics?limit=5"),
            "topic": ("GET", "/v1/topics/00000000-0000-4000-8000-000000000000"),
            "topic_create": ("POST", "/v1/topics"),
            "topic_patch": ("PATCH", "/v1/topics/00000000-0000-4000-8000-000000000000"),
            "me": ("GET", "/v1/me"),
            "download_link": ("POST", "/v1/download-links"),
            "offices_csv": ("GET", "/v1/offices.csv?limit=5"),
            "reports_csv": ("GET", "/v1/reports.csv?limit=5"),
            "report_csv": ("GET", self.report + ".csv"),
            "report_periods": ("GET", "/v1/report-periods"),
            "audit_head": ("GET", "/v1/audit/head"),
            "cycle": ("GET", "/v1/cycles/2023/offices"),
            "procedures_csv": ("GET", "/v1/procedures.csv?limit=5"),
            "procedure_create": ("POST", "/v1/procedures"),
            "procedure_patch": ("PATCH", f"/v1/procedures/{self.own_proc}"),
            "cases_csv": ("GET", "/v1/case-analyses.csv?limit=5"),
            "case_patch": ("PATCH", "/v1/case-analyses/00000000-0000-4000-8000-000000000000"),
            "surveys_csv": ("GET", "/v1/structure-surveys.csv?limit=5"),
            "topics_csv": ("GET", "/v1/topics.csv?limit=5"),
            "audit_csv": ("GET", "/v1/audit.csv?limit=5"),
            "preports": ("GET", "/v1/procedure-reports?limit=5"),
            "preports_csv": ("GET", "/v1/procedure-reports.csv?limit=5"),
            "preport_create": ("POST", "/v1/procedure-reports"),
            "preport": ("GET", "/v1/procedures/00000000-0000-4000-8000-000000000000/report"),
            "preport_html": ("GET",
                             "/v1/procedures/00000000-0000-4000-8000-000000000000/report.html"),
            "preport_patch": ("PATCH",
                              "/v1/procedures/00000000-0000-4000-8000-000000000000/report"),
            "rcomments": ("GET", "/v1/report-comments?limit=5"),
            "rcomment": ("GET", "/v1/report-comments/00000000-0000-4000-8000-000000000000"),
            "rcomment_create": ("POST", "/v1/report-comments"),
            "advice": ("GET", "/v1/advice-requests?limit=5"),
            "advice_csv": ("GET", "/v1/advice-requests.csv?limit=5"),
            "advice_create": ("POST", "/v1/advice-requests"),
            "advice_one": ("GET", f"/v1/advice-requests/{UNKNOWN_ID}"),
            "advice_patch": ("PATCH", f"/v1/advice-requests/{UNKNOWN_ID}"),
            "advice_messages": ("GET", f"/v1/advice-requests/{UNKNOWN_ID}/messages"),
            "advice_message": ("GET",
                               f"/v1/advice-requests/{UNKNOWN_ID}/messages/{UNKNOWN_ID}"),
            "advice_message_create": ("POST", f"/v1/advice-requests/{UNKNOWN_ID}/messages"),
            "providers": ("GET", "/v1/providers?limit=5"),
            "providers_csv": ("GET", "/v1/providers.csv?limit=5"),
            "provider": ("GET", "/v1/providers/no-such-provider"),
            "provider_create": ("POST", "/v1/providers"),
            "provider_patch": ("PATCH", "/v1/providers/no-such-provider"),
            "concepts": ("GET", "/v1/protection-concepts?limit=5"),
            "concepts_csv": ("GET", "/v1/protection-concepts.csv?limit=5"),
            "concept": ("GET", f"/v1/protection-concepts/{UNKNOWN_ID}"),
            "concept_create": ("POST", "/v1/protection-concepts"),
            "concept_patch": ("PATCH", f"/v1/protection-concepts/{UNKNOWN_ID}"),
            "concept_coverage": ("GET", "/v1/protection-concept-coverage"),
            "concept_versions": ("GET", f"/v1/protection-concepts/{UNKNOWN_ID}/versions"),
            "programmes": ("GET", "/v1/programmes?limit=5"),
            "programmes_csv": ("GET", "/v1/programmes.csv?limit=5"),
            "programme": ("GET", f"/v1/programmes/{UNKNOWN_ID}"),
            "programme_create": ("POST", "/v1/programmes"),
            "programme_patch": ("PATCH", f"/v1/programmes/{UNKNOWN_ID}"),
            "calls": ("GET", "/v1/calls?limit=5"),
            "call": ("GET", f"/v1/calls/{UNKNOWN_ID}"),
            "call_create": ("POST", "/v1/calls"),
            "call_patch": ("PATCH", f"/v1/calls/{UNKNOWN_ID}"),
            "ranking": ("GET", f"/v1/calls/{UNKNOWN_ID}/ranking"),
            "applications": ("GET", "/v1/applications?limit=5"),
            "applications_csv": ("GET", "/v1/applications.csv?limit=5"),
            "application": ("GET", f"/v1/applications/{UNKNOWN_ID}"),
            "application_create": ("POST", "/v1/applications"),
            "application_patch": ("PATCH", f"/v1/applications/{UNKNOWN_ID}"),
            "clusters": ("GET", "/v1/clusters?limit=5"),
            "cluster": ("GET", f"/v1/clusters/{UNKNOWN_ID}"),
            "cluster_create": ("POST", "/v1/clusters"),
            "cluster_patch": ("PATCH", f"/v1/clusters/{UNKNOWN_ID}"),
            "events": ("GET", "/v1/events?limit=5"),
            "events_ics": ("GET", "/v1/events.ics"),
            "event": ("GET", f"/v1/events/{UNKNOWN_ID}"),
            "event_create": ("POST", "/v1/events"),
            "event_patch": ("PATCH", f"/v1/events/{UNKNOWN_ID}"),
            "registrations": ("GET", "/v1/event-registrations?limit=5"),
            "registrations_csv": ("GET", "/v1/event-registrations.csv?limit=5"),
            "registrations_ics": ("GET", "/v1/event-registrations.ics"),
            "registration": ("GET", f"/v1/event-registrations/{UNKNOWN_ID}"),
            "registration_create": ("POST", "/v1/event-registrations"),
            "registration_patch": ("PATCH", f"/v1/event-registrations/{UNKNOWN_ID}"),
            "signup": ("POST", "/v1/registrations"),
            "signup_confirm": ("GET", "/v1/registrations/confirm?token=kqe_unknown"),
            "professionals": ("GET", "/v1/registrations?limit=5"),
            "professionals_csv": ("GET", "/v1/registrations.csv?limit=5"),
            "professional": ("GET", f"/v1/registrations/{UNKNOWN_ID}"),
            "professional_patch": ("PATCH", f"/v1/registrations/{UNKNOWN_ID}"),
            "faq": ("GET", "/v1/faq"),
            "service_requests": ("GET", "/v1/service-requests?limit=5"),
            "service_requests_csv": ("GET", "/v1/service-requests.csv?limit=5"),
            "service_request": ("GET", f"/v1/service-requests/{UNKNOWN_ID}"),
            "service_request_create": ("POST", "/v1/service-requests"),
            "service_request_patch": ("PATCH", f"/v1/service-requests/{UNKNOWN_ID}"),
            "materials": ("GET", "/v1/materials?limit=5"),
            "material": ("GET", f"/v1/materials/{UNKNOWN_ID}"),
            "material_file": ("GET", f"/v1/materials/{UNKNOWN_ID}/file"),
            "material_create": ("POST", "/v1/materials"),
            "material_patch": ("PATCH", f"/v1/materials/{UNKNOWN_ID}"),
            "material_upload": ("PUT", f"/v1/materials/{UNKNOWN_ID}/file"),
        }

    def test_matrix_every_route_role_and_office(self):
        for role in ROLES:
            for name, (method, path) in self.routes().items():
                want = self.expected(role, name)
                if want is None:
                    continue
                with self.subTest(role=role, route=name):
                    body = VALID_REPORT if method == "POST" else None
                    r = self.stack.request(method, path, body=body, token=self.tok[role])
                    self.assertEqual(r.status, want, r)
                    if want >= 400 and name != "signup_confirm":  # that one is an HTML page
                        self.assertProblem(r, want)
                    elif "procedure" in name:
                        # The directory and reports are shared; case-level data is not.
                        self.assertNoForeignData(role, r.body.decode())

    def test_matrix_without_token(self):
        for name, (method, path) in self.routes().items():
            with self.subTest(route=name):
                body = VALID_REPORT if method == "POST" else None
                r = self.stack.request(method, path, body=body, token=None)
                if name in ("healthz", "readyz", "metrics", "openapi", "docs", "faq",
                            "materials"):
                    self.assertEqual(r.status, 200)
                elif name in ("material", "material_file"):
                    self.assertProblem(r, 404)  # a token is optional: public ones are read
                elif name == "signup":
                    self.assertProblem(r, 422)  # nobody may register; the body is no registration
                elif name == "signup_confirm":
                    self.assertEqual(r.status, 404)  # an HTML page: unknown link
                else:
                    self.assertProblem(r, 401)

    def test_matrix_covers_every_route(self):
        # A new route must be added to the matrix: compare with the permission table.
        table = subprocess.run([os.path.join(BIN, "kqe-api"), "--permissions"],
                               capture_output=True, text=True).stdout
        patterns = {line.split("`")[1].split(" ")[1] for line in table.splitlines()
                    if line.startswith("| `")}
        covered = {path.split("?")[0] for _, path in self.routes().values()}
        for pattern in patterns:
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(pattern)) + "$"
            with self.subTest(route=pattern):
                self.assertTrue(any(re.match(regex, c) for c in covered), pattern)

    def assertNoForeignData(self, role, body):
        if role in ("office_staff", "office_lead"):
            self.assertNotIn(FOREIGN, body)
            self.assertNotIn(str(self.foreign_proc), body)

    def test_office_sees_only_its_own_procedures(self):
        items = self.stack.get("/v1/procedures?limit=500", token=self.tok["office_staff"]).json()
        self.assertGreaterEqual(len(items["items"]), 1)
        self.assertEqual({p["office_id"] for p in items["items"]}, {OWN})
        # Asking for another office's procedures by filter yields nothing, not an error.
        items = self.stack.get(f"/v1/procedures?office_id={FOREIGN}",
                               token=self.tok["office_staff"]).json()
        self.assertEqual(items["items"], [])

    def test_advisor_requests_and_reads_only_its_own(self):
        lvr = self.tok["advisor"]
        lwl = self.stack.token("advisor", region="LWL", name="lwl-advisor")[0]
        colleague = self.stack.token("advisor", region="LVR", name="lvr-colleague")[0]
        jobs = self.stack.sql_value("SELECT count(*) FROM jobs")
        # Another region's report: 403 naming /region, and nothing queued.
        r = self.stack.post("/v1/reports", {"scope": "region", "region": "LWL", "period": "2024"},
                            token=lvr)
        body = self.assertProblem(
            r, 403, detail="An advisor requests reports of the state or of its own region only.")
        self.assertEqual([e["pointer"] for e in body["errors"]], ["/region"])
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM jobs"), jobs)
        # Its own region and the state are fine; the job records who asked.
        own = self.stack.post("/v1/reports", {"scope": "region", "region": "LVR",
                                              "period": "2024"}, token=lvr)
        state = self.stack.post("/v1/reports", VALID_REPORT, token=lvr)
        self.assertEqual((own.status, state.status), (202, 202), (own, state))
        for job in (own, state):
            path = job.header("Location")
            with self.subTest(job=path):
                self.assertEqual(self.stack.get(path, token=lvr).status, 200)
                # Another advisor, of either region, does not see it; the Ministry does.
                self.assertProblem(self.stack.get(path, token=lwl), 404)
                self.assertProblem(self.stack.get(path, token=colleague), 404)
                self.assertEqual(self.stack.get(path, token=self.tok["ministry"]).status, 200)
        self.assertEqual(self.stack.sql_value(
            f"SELECT requested_by LIKE 'token:%' FROM jobs WHERE id = '{own.json()['id']}'"), "t")

    def test_institute_sees_only_assigned_procedures(self):
        items = self.stack.get("/v1/procedures?limit=500", token=self.tok["institute"]).json()
        expected = int(self.stack.sql_value(
            f"SELECT count(*) FROM procedures WHERE institute_id = '{INSTITUTE}'"))
        self.assertEqual(len(items["items"]), min(expected, 500))
        self.assertEqual({p["institute_id"] for p in items["items"]}, {INSTITUTE})

    def test_admin_pages_through_all_procedures(self):
        seen, cursor = [], None
        while True:
            path = "/v1/procedures?limit=100" + (f"&cursor={cursor}" if cursor else "")
            body = self.stack.get(path).json()
            seen += [p["id"] for p in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), int(self.stack.sql_value("SELECT count(*) FROM procedures")))
        self.assertEqual(len(seen), len(set(seen)))

    # --- row-level security alone ---------------------------------------------------
    def service_sql(self, statements):
        return psql(self.stack.service_url, statements)

    def test_rls_alone_stops_a_cross_office_read(self):
        # The API's query with its tenant filter left out, as the service role with
        # office A's context: PostgreSQL itself returns none of office B's rows.
        ctx = (f"SELECT set_config('kqe.role', 'office_staff', true),"
               f" set_config('kqe.office_id', '{OWN}', true);")
        rows = self.service_sql(f"BEGIN; {ctx} SELECT count(*) FROM procedures"
                                f" WHERE id = '{self.foreign_proc}'; COMMIT;")
        self.assertEqual(rows[-1], ["0"])
        rows = self.service_sql(f"BEGIN; {ctx} SELECT count(*) FROM procedures"
                                f" WHERE office_id <> '{OWN}'; COMMIT;")
        self.assertEqual(rows[-1], ["0"])
        rows = self.service_sql(f"BEGIN; {ctx} SELECT count(*) > 0 FROM procedures; COMMIT;")
        self.assertEqual(rows[-1], ["t"])
        # No context at all: nothing.
        self.assertEqual(self.service_sql("SELECT count(*) FROM procedures"), [["0"]])

    def test_rls_alone_stops_advice_of_another_region_and_a_foreign_concept(self):
        # § 7 and § 10 with the API's filter left out: an LWL advisor's context reads no LVR
        # advice request or message; a provider's staff no concept but its own; an institute
        # and the ministry no request and no concept at all.
        def count(ctx, table, where="true"):
            sets = "".join(f", set_config('kqe.{k}', '{v}', true)" for k, v in ctx.items())
            return self.service_sql(f"BEGIN; SELECT 1{sets}; SELECT count(*) FROM {table}"
                                    f" WHERE {where}; COMMIT;")[-1][0]
        lwl = {"role": "advisor", "region": "LWL"}
        self.assertEqual(count(lwl, "advice_requests", "region = 'LVR'"), "0")
        self.assertEqual(count(lwl, "advice_messages", "region = 'LVR'"), "0")
        self.assertNotEqual(count(lwl, "advice_requests"), "0")  # the demo has LWL requests
        provider = {"role": "provider_staff", "provider_id": PROVIDER}
        self.assertEqual(count(provider, "protection_concepts",
                               f"provider_id IS DISTINCT FROM '{PROVIDER}'"), "0")
        for ctx in ({"role": "institute", "institute_id": INSTITUTE}, {"role": "ministry"}):
            self.assertEqual(count(ctx, "advice_requests"), "0")
            self.assertEqual(count(ctx, "protection_concepts"), "0")

    def test_service_role_cannot_bypass_or_rewrite(self):
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log",
                          "INSERT INTO audit_log SELECT id + 1000, at, actor, role, office_id,"
                          " action, resource, resource_id, request_id, details, prev_hash, hash"
                          " FROM audit_log LIMIT 1",
                          "UPDATE audit_head SET last_id = 0",
                          "SET row_security = off; SELECT count(*) FROM procedures",
                          "ALTER TABLE procedures DISABLE ROW LEVEL SECURITY",
                          "UPDATE api_tokens SET revoked_at = NULL",
                          "INSERT INTO procedures (office_id, cycle) VALUES ('x', '2023-2028')"):
            with self.subTest(statement=statement):
                with self.assertRaises(AssertionError):
                    self.service_sql(statement)

    def test_every_table_with_an_office_column_has_forced_rls(self):
        rows = self.stack.sql(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attname = 'office_id'"
            " AND NOT a.attisdropped ORDER BY 1")
        self.assertGreaterEqual(len(rows), 3)
        for name, enabled, forced in rows:
            with self.subTest(table=name):
                self.assertEqual((enabled, forced), ("t", "t"))

    # --- audit ---------------------------------------------------------------------------
    def test_writes_and_outside_reads_are_audited(self):
        self.stack.get(f"/v1/procedures/{self.assigned_proc}", token=self.tok["institute"])
        rows = self.stack.sql("SELECT DISTINCT action FROM audit_log ORDER BY 1")
        actions = {a for (a,) in rows}
        self.assertTrue({"token.create", "report.request", "procedure.read"} <= actions, actions)
        read = self.stack.sql(
            "SELECT role, office_id, resource_id FROM audit_log WHERE action = 'procedure.read'"
            f" AND resource_id = '{self.assigned_proc}' ORDER BY id DESC LIMIT 1")
        office = self.stack.sql_value(
            f"SELECT office_id FROM procedures WHERE id = '{self.assigned_proc}'")
        self.assertEqual(read, [["institute", office, self.assigned_proc]])
        # An office reading its own procedure is not an outside read.
        before = self.stack.sql_value("SELECT count(*) FROM audit_log")
        self.stack.get(f"/v1/procedures/{self.own_proc}", token=self.tok["office_staff"])
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM audit_log"), before)

    def test_audit_api_filters_and_pages(self):
        body = self.stack.get("/v1/audit?action=token.create&limit=2").json()
        self.assertEqual(len(body["items"]), 2)
        self.assertTrue(all(e["action"] == "token.create" for e in body["items"]))
        nxt = self.stack.get(f"/v1/audit?action=token.create&limit=2&cursor={body['next_cursor']}")
        self.assertGreater(nxt.json()["items"][0]["id"], body["items"][-1]["id"])
        self.assertProblem(self.stack.get("/v1/audit?since=yesterday"), 400,
                           errors=[{"parameter": "since", "code": "format"}])
        self.assertProblem(self.stack.get("/v1/audit?action=%FF"), 400,
                           errors=[{"parameter": "action", "code": "format"}])
        self.assertEqual(self.stack.get("/v1/audit?since=2020-01-01T00:00:00Z").status, 200)

    def test_audit_verify_passes_then_names_the_tampered_entry(self):
        # No aggregator here: seal what was appended so far (test_audit.py: the sealer).
        self.stack.kqe("audit", "seal", check=True)
        r = self.stack.kqe("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("chain intact", r.stdout)
        target = self.stack.sql_value(
            "SELECT id FROM audit_log WHERE seq = (SELECT max(seq) - 1 FROM audit_log)")
        original = self.stack.sql_value(f"SELECT action FROM audit_log WHERE id = {target}")
        self.stack.sql(f"UPDATE audit_log SET action = 'tampered' WHERE id = {target}")
        try:
            r = self.stack.kqe("audit", "verify")
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"audit: entry {target} is broken", r.stderr)
        finally:
            self.stack.sql(f"UPDATE audit_log SET action = '{original}' WHERE id = {target}")
        self.assertEqual(self.stack.kqe("audit", "verify").returncode, 0)


class CorsAndRateLimitTest(StackTestCase):
    api_env = {"KQE_CORS_ORIGINS": "https://app.example, https://other.example",
               "KQE_RATE_LIMIT_PER_MINUTE": 5}

    def test_preflight_from_allowed_origin(self):
        r = self.stack.request("OPTIONS", "/v1/reports", token=None, headers={
            "Origin": "https://other.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://other.example")
        self.assertEqual(r.header("Access-Control-Allow-Methods"), "GET, HEAD, POST")  # what the route allows
        self.assertIn("Authorization", r.header("Access-Control-Allow-Headers"))
        self.assertEqual(r.header("Vary"), "Origin")

    def test_preflight_from_unknown_origin_is_refused(self):
        r = self.stack.request("OPTIONS", "/v1/offices", token=None, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        self.assertProblem(r, 403)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_actual_request_carries_cors_headers_only_for_allowed_origins(self):
        r = self.stack.get("/healthz", headers={"Origin": "https://app.example"})
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "https://app.example")
        self.assertIn("X-Request-Id", r.header("Access-Control-Expose-Headers"))
        r = self.stack.get("/healthz", headers={"Origin": "https://app.example.evil"})
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_rate_limit_per_token_answers_429_with_retry_after(self):
        for attempt in range(3):
            # The window is a wall-clock minute: if it turned during the run, run again.
            window = int(time.time() // 60)
            token, _ = self.stack.token("ministry", name=f"rate-limited-{attempt}")
            other, _ = self.stack.token("ministry", name=f"not-limited-{attempt}")
            statuses = [self.stack.get("/v1/offices?limit=1", token=token).status
                        for _ in range(6)]
            r = self.stack.get("/v1/offices?limit=1", token=token)
            other_status = self.stack.get("/v1/offices?limit=1", token=other).status
            if int(time.time() // 60) == window:
                break
        self.assertEqual(statuses, [200] * 5 + [429])
        self.assertProblem(r, 429)
        self.assertTrue(1 <= int(r.header("Retry-After")) <= 60)
        self.assertEqual(other_status, 200)  # another principal is not affected

    def test_rate_limit_without_token_counts_per_address(self):
        # A route that takes a token or none (the public materials): nobody is counted per
        # client address, and a token of its own is not affected.
        for attempt in range(3):
            window = int(time.time() // 60)
            statuses = [self.stack.get("/v1/materials?limit=1", token=None).status
                        for _ in range(6)]
            token, _ = self.stack.token("ministry", name=f"with-token-{attempt}")
            with_token = self.stack.get("/v1/materials?limit=1", token=token).status
            if int(time.time() // 60) == window:
                break
        self.assertEqual(statuses, [200] * 5 + [429])
        self.assertEqual(with_token, 200)


if __name__ == "__main__":
    unittest.main()
