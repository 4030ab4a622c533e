"""The request pipeline: what every route gets from it, and the defects it closed.

Each test named after a defect (a–i of the pipeline issue) failed before the pipeline:
upper-case ids corrupting findings, HEAD with a body, 304 with a Content-Type, CORS hiding
headers, seeded ids that were not RFC 9562 UUIDs, and a PATCH with a wrong type crashing
the process. The rest covers what an integrator meets first: /v1/me, rate-limit headers,
signed download links and the report periods.
"""

import http.client
import json
import os
import re
import socket
import unittest

from harness import REPO, StackTestCase, wait_until
from test_contract import (SPEC, deref, operations, permission_table, request_schema,
                           schema_errors)
from test_case_analyses import valid as case_body

# Routes whose body is raw bytes, not a JSON document: a material's file.
UPLOADS = {("PUT", "/v1/materials/{id}/file")}
# Where a route's record is, when not in the table its collection is named after (and by id).
RECORD_TABLES = {"/v1/registrations/{id}": ("professionals", "id"),
                 "/v1/procedures/{id}/report": ("procedure_reports", "procedure_id")}
# Roles in the order a record's token is made: the column binding the token to the record,
# the token's argument, and the table the binding must name (None: no binding).
BINDINGS = [("admin", None, None, None),
            ("office_lead", "office_id", "office", "offices"),
            ("office_staff", "office_id", "office", "offices"),
            ("programme_team", "programme_id", "programme", "programmes"),
            ("provider_staff", "provider_id", "provider", "providers"),
            ("institute", "institute_id", "institute", "institutes"),
            ("advisor", "region", "region", "(VALUES ('LVR'), ('LWL')) AS r (id)")]
UUID_9562 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ORIGIN = "https://frontend.kqe.test"


def schema_members(schema):
    """The members a request schema names, through allOf and references."""
    schema = deref(SPEC, schema)
    members = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        members |= schema_members(sub)
    return members


class PipelineTest(StackTestCase):
    seed_demo = True
    start_aggregator = True
    api_env = {"KQE_CORS_ORIGINS": ORIGIN}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office, cls.institute = s.open_procedure()
        cls.tok = {
            "staff": s.token("office_staff", office=cls.office)[0],
            "lead": s.token("office_lead", office=cls.office)[0],
            "institute": s.token("institute", institute=cls.institute)[0],
            "ministry": s.token("ministry")[0],
            "advisor": s.token("advisor", region="LWL")[0],
        }
        r = s.post("/v1/reports", {"scope": "region", "region": "LWL", "period": "2021"})
        cls.job = r.json()["id"]

    def case(self, reference, **over):
        r = self.stack.post("/v1/case-analyses", case_body(self.proc, reference=reference, **over),
                            token=self.tok["staff"])
        self.assertEqual(r.status, 201, r)
        return r.json()

    def report(self):
        self.stack.wait_job(self.job, timeout=60)
        return self.stack.get(f"/v1/jobs/{self.job}").json()["result"]

    # --- a: path ids are canonical before any handler sees them ---------------------
    def test_a_upper_case_ids_are_the_same_record_and_findings_stay_readable(self):
        c = self.case("PIPE-upper")
        upper = f"/v1/case-analyses/{c['id'].upper()}"
        r = self.stack.request("PATCH", upper, body={"findings": "Neuer Befund."},
                               headers={"If-Match": '"v1"'}, token=self.tok["staff"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["id"], r.json()["findings"]), (c["id"], "Neuer Befund."))
        for path in (f"/v1/case-analyses/{c['id']}", upper):
            got = self.stack.get(path, token=self.tok["staff"]).json()
            self.assertEqual(got["findings"], "Neuer Befund.")
        self.assertNotIn("cannot be decrypted", open(self.stack.logs + "/api.log").read())
        ids = self.stack.sql("SELECT DISTINCT resource_id FROM audit_log"
                             f" WHERE lower(resource_id) = '{c['id']}'")
        self.assertEqual(ids, [[c["id"]]])
        # Procedures: the audit entry names the canonical id too.
        p = self.stack.post("/v1/procedures", {"cycle": "2023-2028", "out_of_cycle": True},
                            token=self.tok["staff"]).json()
        r = self.stack.request("PATCH", f"/v1/procedures/{p['id'].upper()}",
                               body={"due_date": "2027-01-31"}, headers={"If-Match": '"v1"'},
                               token=self.tok["staff"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stack.sql("SELECT DISTINCT resource_id FROM audit_log"
                                        f" WHERE lower(resource_id) = '{p['id']}'"), [[p["id"]]])

    # --- b, c: HEAD and 304 --------------------------------------------------------------
    def test_b_head_sends_the_gets_headers_and_length_but_no_body(self):
        c = self.case("PIPE-head")
        paths = ["/healthz", "/v1/offices?limit=3", f"/v1/case-analyses/{c['id']}",
                 "/v1/offices.csv?limit=2", "/openapi.json", "/v1/codelists/sex",
                 self.report() + ".html"]
        for path in paths:
            with self.subTest(path=path):
                g = self.stack.get(path, token=self.tok["staff"])
                h = self.stack.request("HEAD", path, token=self.tok["staff"])
                self.assertEqual((h.status, h.body), (200, b""), h)
                self.assertEqual(h.header("Content-Length"), str(len(g.body)))
                self.assertEqual(h.header("Content-Type"), g.header("Content-Type"))
                self.assertEqual(h.header("ETag"), g.header("ETag"))
        # On one connection: were a body sent after HEAD, the GET's answer would be garbled.
        with socket.create_connection(("127.0.0.1", self.stack.api_port), timeout=5) as sock:
            request = (f"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                       f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode()
            sock.sendall(request)
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200"), data)
        self.assertTrue(rest.endswith(b'\r\n\r\n{"status":"ok"}'), data)

    def test_c_not_modified_carries_no_content_type(self):
        c = self.case("PIPE-304")
        for path in (f"/v1/case-analyses/{c['id']}", "/v1/codelists/sex", "/openapi.json",
                     self.report()):
            with self.subTest(path=path):
                etag = self.stack.get(path, token=self.tok["staff"]).header("ETag")
                self.assertIsNotNone(etag)
                r = self.stack.get(path, token=self.tok["staff"], headers={"If-None-Match": etag})
                self.assertEqual((r.status, r.body), (304, b""))
                self.assertEqual(r.header("ETag"), etag)
                self.assertIsNone(r.header("Content-Type"))
                self.assertIsNone(r.header("Content-Security-Policy"))
                self.assertEqual(r.header("Cache-Control"), "no-store")
                self.assertIsNotNone(r.header("X-Request-Id"))

    # --- e: CORS exposes what a browser client reads ------------------------------------
    def test_e_cors_exposes_replay_download_and_rate_limit_headers(self):
        r = self.stack.get("/v1/offices.csv?limit=1", headers={"Origin": ORIGIN})
        self.assertEqual(r.header("Access-Control-Allow-Origin"), ORIGIN)
        exposed = {h.strip() for h in r.header("Access-Control-Expose-Headers").split(",")}
        self.assertLessEqual({"Idempotency-Replayed", "Content-Disposition", "Location", "ETag",
                              "Link", "RateLimit-Limit", "RateLimit-Remaining",
                              "RateLimit-Reset", "Retry-After", "X-Request-Id"}, exposed)

    # --- h: the demo's ids are RFC 9562 UUIDs ------------------------------------------
    def test_h_seeded_ids_are_rfc_9562_uuids(self):
        for table in ("procedures", "case_analyses", "structure_surveys", "topics"):
            with self.subTest(table=table):
                ids = [i for (i,) in self.stack.sql(f"SELECT id FROM {table}")]
                self.assertGreater(len(ids), 0)
                bad = [i for i in ids if not UUID_9562.match(i)]
                self.assertEqual(bad, [])

    # --- i: a wrong type on any update path is a 422, never a crash ---------------------
    def test_i_wrong_types_on_every_update_path_are_422_and_change_nothing(self):
        """Every PATCH and PUT of the route table (`kqe-api --permissions`), so a new one is
        covered as soon as it exists: on a record of the route's own, as a role the route
        allows, each member of its request schema (the contract proto/examples are checked
        against) gets [1.5], {"zz": 1} and null wherever the schema refuses them. Each is a
        422 problem naming the member, the record keeps its version, the process lives."""
        # An office asks a programme's team: the one kind of record the demo does not hold.
        office = self.stack.sql_value("SELECT id FROM offices ORDER BY id LIMIT 1")
        programme = self.stack.sql_value("SELECT id FROM programmes ORDER BY id LIMIT 1")
        with open(os.path.join(REPO, "proto/examples/service-request.json"),
                  encoding="utf-8") as f:
            ask = dict(json.load(f), programme_id=programme)
        r = self.stack.post("/v1/service-requests", ask,
                            token=self.stack.token("office_lead", office=office)[0])
        self.assertEqual(r.status, 201, r)
        spec = {(m.upper(), p): op for p, m, op in operations(SPEC)}
        routes = [key for key in permission_table() if key[0] in ("PATCH", "PUT")]
        self.assertGreaterEqual(len(routes), 17)
        for method, pattern in routes:
            schema = request_schema(spec[(method, pattern)])
            if (method, pattern) in UPLOADS:
                self.assertIsNone(schema)  # raw bytes: test_programmes sends it bad files
                continue
            self.assertIsNotNone(schema, f"{method} {pattern} takes no JSON: add it to UPLOADS")
            with self.subTest(route=f"{method} {pattern}"):
                self.wrong_types_change_nothing(method, pattern, schema)
        self.assertTrue(self.stack.api.alive())
        self.assertEqual(self.stack.get("/healthz").status, 200)

    def wrong_types_change_nothing(self, method, pattern, schema):
        path, token = self.record_of(method, pattern)
        current = self.stack.get(path, token=token)
        self.assertEqual(current.status, 200, current)
        members = schema_members(schema)
        # A PUT replaces the whole document: the record as it is, the one member made wrong.
        doc = {k: v for k, v in current.json().items() if k in members}
        if method == "PUT":
            self.assertEqual(schema_errors(schema, doc), [])
        sent = 0
        for field in sorted(members):
            for bad in ([1.5], {"zz": 1}, None):
                body = dict(doc, **{field: bad}) if method == "PUT" else {field: bad}
                if schema_errors(schema, body) == []:
                    continue  # a value the contract accepts (null where a member may be null)
                with self.subTest(field=field, value=bad):
                    r = self.stack.request(method, path, body=body,
                                           headers={"If-Match": current.header("ETag")},
                                           token=token)
                    problem = self.assertProblem(r, 422)
                    self.assertTrue(any(e["pointer"].startswith("/" + field)
                                        for e in problem["errors"]), r)
                    sent += 1
        self.assertGreaterEqual(sent, len(members), "every member gets a wrong type")
        after = self.stack.get(path, token=token)
        self.assertEqual((after.header("ETag"), after.json()), (current.header("ETag"),
                                                                 current.json()))
        self.assertTrue(self.stack.api.alive(), f"{method} {pattern}")

    def record_of(self, method, pattern):
        """(path, token): a record of the route's table and a token of a role the route
        allows that is bound to it (its office, programme, provider, …)."""
        table, key = RECORD_TABLES.get(pattern, (pattern.split("/")[2].replace("-", "_"), "id"))
        roles = permission_table()[(method, pattern)][1]
        columns = {c for (c,) in self.stack.sql("SELECT column_name FROM"
                                                f" information_schema.columns"
                                                f" WHERE table_name = '{table}'")}
        for role, column, binding, among in BINDINGS:
            if role not in roles or (column is not None and column not in columns):
                continue
            where = "" if column is None else f" WHERE {column} IN (SELECT id FROM {among})"
            rows = self.stack.sql(f"SELECT {key}, {column or 'NULL'} FROM {table}{where}"
                                  f" ORDER BY {key} LIMIT 1")
            if rows:
                bound = {binding: rows[0][1]} if binding else {}
                return pattern.replace("{id}", rows[0][0]), self.stack.token(role, **bound)[0]
        self.fail(f"no record of {table} a role of {pattern} may change: seed or create one")

    # --- an integrator's first day --------------------------------------------------
    def test_me_names_role_binding_and_permissions(self):
        me = self.stack.get("/v1/me", token=self.tok["staff"]).json()
        self.assertEqual((me["role"], me["office_id"], me["region"], me["institute_id"]),
                         ("office_staff", self.office, None, None))
        self.assertIn("cases.write", me["permissions"])
        self.assertNotIn("audit.read", me["permissions"])
        self.assertTrue(me["actor"].startswith("token:"))
        advisor = self.stack.get("/v1/me", token=self.tok["advisor"]).json()
        self.assertEqual((advisor["role"], advisor["region"]), ("advisor", "LWL"))
        self.assertNotIn("cases.read", advisor["permissions"])
        self.assertIn("audit.read", self.stack.get("/v1/me").json()["permissions"])
        self.assertProblem(self.stack.get("/v1/me", token=None), 401)

    def test_rate_limit_headers_on_every_authenticated_answer(self):
        first = self.stack.get("/v1/offices?limit=1", token=self.tok["ministry"])
        second = self.stack.get("/v1/jobs/00000000-0000-4000-8000-000000000000",
                                token=self.tok["ministry"])
        self.assertEqual(second.status, 404)
        for r in (first, second):
            self.assertEqual(r.header("RateLimit-Limit"), "1200")
            self.assertTrue(1 <= int(r.header("RateLimit-Reset")) <= 60)
        a, b = (int(r.header("RateLimit-Remaining")) for r in
                (self.stack.get("/v1/me", token=self.tok["ministry"]),
                 self.stack.get("/v1/me", token=self.tok["ministry"])))
        self.assertTrue(b == a - 1 or b > a, (a, b))  # one less, or a new minute began
        self.assertIsNone(self.stack.get("/healthz").header("RateLimit-Limit"))

    def test_download_links_work_without_the_token_for_that_download_only(self):
        report = self.report()
        r = self.stack.post("/v1/download-links", {"href": report + ".html"},
                            token=self.tok["ministry"])
        self.assertEqual(r.status, 200, r)
        link = r.json()["href"]
        self.assertRegex(r.json()["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertTrue(link.startswith(report + ".html?link="))
        page = self.stack.get(link, token=None)
        self.assertEqual((page.status, page.header("Content-Type")),
                         (200, "text/html; charset=utf-8"), page)
        # The link signs exactly its URI: another report, another format, an added or
        # changed parameter or a changed token is refused.
        token = link.split("link=")[1]
        other = self.stack.sql_value(f"SELECT id FROM reports WHERE id <> '{report[12:]}'"
                                     " LIMIT 1") or "00000000-0000-4000-8000-000000000000"
        for bad in (f"/v1/reports/{other}.html?link={token}", f"{report}.csv?link={token}",
                    f"{report}.html?dialect=excel&link={token}", link[:-2] + "AA",
                    f"{report}.html?link=x.y"):
            with self.subTest(link=bad):
                self.assertProblem(self.stack.get(bad, token=None), 401)
        # A CSV export as the caller who asked: an office's link shows its own rows.
        href = f"/v1/case-analyses.csv?procedure_id={self.proc}&limit=5"
        r = self.stack.post("/v1/download-links", {"href": href}, token=self.tok["staff"])
        csv = self.stack.get(r.json()["href"], token=None)
        self.assertEqual(csv.status, 200, csv)
        self.assertTrue(csv.body.decode().startswith("id,procedure_id,office_id"))
        # Only downloads the caller may make itself.
        for href, who in [(f"/v1/case-analyses/{self.case('PIPE-link')['id']}", "staff"),
                          ("/v1/audit.csv", "staff"), ("/v1/nothing.csv", "staff"),
                          ("/v1/case-analyses.csv", "ministry"), ("https://x/v1/offices.csv",
                                                                   "staff"),
                          ("/v1/offices.csv?x=1 2", "staff")]:
            with self.subTest(href=href, who=who):
                r = self.stack.post("/v1/download-links", {"href": href}, token=self.tok[who])
                self.assertProblem(r, 422, errors=[{"pointer": "/href", "code": "not_found"}])
        # A link is no token for anything else, and elsewhere "link" is an unknown parameter.
        signed = self.stack.post("/v1/download-links", {"href": "/v1/offices.csv"},
                                 token=self.tok["staff"]).json()["href"]
        self.assertProblem(self.stack.get(signed.replace("/v1/offices.csv", "/v1/offices"),
                                          token=None), 401)
        for path in (signed.replace("/v1/offices.csv", "/v1/offices"), signed):
            with self.subTest(path=path, with_token=True):
                self.assertProblem(self.stack.get(path, token=self.tok["staff"]), 400,
                                   errors=[{"parameter": "link", "code": "unknown_parameter"}])

    def test_report_periods_list_what_has_data_per_kind(self):
        def periods():
            r = self.stack.get("/v1/report-periods", token=self.tok["ministry"])
            self.assertEqual(r.status, 200, r)
            return {i["kind"]: i for i in r.json()["items"]}
        got = wait_until(lambda: (p := periods()) and len(p) == 3 and p, timeout=30,
                         what="rollups of the demo state")
        self.assertEqual({k: v["date_basis"] for k, v in got.items()},
                         {"case_analyses": "closed_month", "topics": "identified",
                          "structure_surveys": "reference_date"})
        years = {y for (y,) in self.stack.sql(
            "SELECT DISTINCT extract(year FROM closed_month)::int::text FROM case_analyses")}
        self.assertEqual(set(got["case_analyses"]["years"]), years)
        self.assertIn("2023-2028", got["case_analyses"]["cycles"])
        self.assertTrue(all(re.match(r"^\d{4}$", y) for v in got.values() for y in v["years"]))


class RateLimitTest(StackTestCase):
    api_env = {"KQE_RATE_LIMIT_PER_MINUTE": 3}

    def test_the_limit_counts_down_and_429_says_when(self):
        token = self.stack.token("ministry")[0]
        seen = [self.stack.get("/v1/me", token=token) for _ in range(4)]
        statuses = [r.status for r in seen]
        if statuses != [200, 200, 200, 429]:  # a new minute began in between: once more
            seen = [self.stack.get("/v1/me", token=token) for _ in range(4)]
            statuses = [r.status for r in seen]
        self.assertEqual(statuses[-1], 429)
        last = seen[-1]
        self.assertProblem(last, 429)
        self.assertEqual((last.header("RateLimit-Limit"), last.header("RateLimit-Remaining")),
                         ("3", "0"))
        self.assertEqual(last.header("Retry-After"), last.header("RateLimit-Reset"))


if __name__ == "__main__":
    unittest.main()
