"""§ 10 foster care: the providers' directory, the provider_staff role, protection concepts of
offices and providers (versions, who sees what, bad input changes nothing) and the coverage
lists advisors and the ministry read."""

import math
import unittest

from harness import StackTestCase, published

UNKNOWN = "00000000-0000-4000-8000-000000000000"
ELEMENTS = ["childrens_rights", "foster_carer_participation", "young_people_participation",
            "complaint_internal", "complaint_external", "risk_analysis", "suspicion_procedure",
            "contact_persons", "training", "review"]


def concept(**over):
    body = {"adopted_on": "2025-03-01", "next_review_on": "2027-03-01",
            "elements": {e: e not in ("complaint_external", "training") for e in ELEMENTS},
            "participants": ["foster_carers", "young_people"]}
    body.update(over)
    return body


class FosterCareTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.office, cls.other_office = [r[0] for r in s.sql(
            "SELECT id FROM offices WHERE region = 'LWL' AND id NOT IN"
            " (SELECT office_id FROM protection_concepts WHERE office_id IS NOT NULL)"
            " ORDER BY id LIMIT 2")]
        r = s.post("/v1/providers", {"id": "traeger-test", "name": "Pflegekinderdienst Test e. V.",
                                     "seat": "Münster", "region": "LWL",
                                     "office_ids": [cls.office]})
        assert r.status == 201, r
        cls.tok = {
            "staff": s.token("office_staff", office=cls.office)[0],
            "other": s.token("office_staff", office=cls.other_office)[0],
            "provider": s.token("provider_staff", provider="traeger-test")[0],
            "lwl": s.token("advisor", region="LWL")[0],
            "lvr": s.token("advisor", region="LVR")[0],
            "ministry": s.token("ministry")[0],
            "institute": s.token("institute", institute=s.sql_value(
                "SELECT id FROM institutes ORDER BY id LIMIT 1"))[0],
            "admin": s.default_token,
        }

    def send(self, method, path, body=None, token="staff", etag=None):
        headers = {"If-Match": etag} if etag is not None else {}
        return self.stack.request(method, path, body=body, headers=headers,
                                  token=self.tok[token])

    def state(self):
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM providers), (SELECT count(*) FROM provider_offices),"
            " (SELECT count(*) FROM protection_concepts),"
            " (SELECT count(*) FROM protection_concept_versions),"
            " (SELECT count(*) FROM audit_log)")[0]

    def coverage(self, token, query=""):
        r = self.send("GET", f"/v1/protection-concept-coverage{query}", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_1_the_providers_directory(self):
        r = self.send("GET", "/v1/providers/traeger-test", token="provider")
        self.assertEqual(r.status, 200, r)
        p = r.json()
        self.assertEqual((p["seat"], p["region"], p["office_ids"]),
                         ("Münster", "LWL", [self.office]))
        # Public to every role, written by admin only; every bad field in one 422.
        for token in ("staff", "lvr", "ministry", "institute"):
            self.assertIn("traeger-test", [p["id"] for p in self.send(
                "GET", f"/v1/providers?office_id={self.office}", token=token).json()["items"]])
        before = self.state()
        for token in ("staff", "provider", "lwl", "ministry"):
            self.assertProblem(self.send("POST", "/v1/providers", {"id": "x"}, token=token), 403)
        r = self.send("POST", "/v1/providers", {"id": "Not An Id", "name": "", "region": "NRW",
                                                "office_ids": ["nope", "ALSO BAD"]},
                      token="admin")
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/id", "/name", "/office_ids/1", "/region", "/seat"])
        r = self.send("POST", "/v1/providers", {"id": "traeger-zwei", "name": "Zwei",
                                                "seat": "Hamm", "region": "LWL",
                                                "office_ids": [self.office, "no-such-office"]},
                      token="admin")
        self.assertProblem(r, 422, errors=[{"pointer": "/office_ids/1", "code": "not_found"}])
        r = self.send("POST", "/v1/providers", {"id": "traeger-test", "name": "Doppelt",
                                                "seat": "Hamm", "region": "LWL"}, token="admin")
        self.assertProblem(r, 409)
        self.assertEqual(r.header("Location"), "/v1/providers/traeger-test")
        self.assertEqual(self.state(), before)
        # A change of the offices it works for, audited without an office.
        r = self.send("PATCH", "/v1/providers/traeger-test",
                      {"office_ids": [self.office, self.other_office]}, token="admin",
                      etag='"v1"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["office_ids"], sorted([self.office, self.other_office]))
        self.assertEqual(self.stack.sql(
            "SELECT action, coalesce(office_id, '-') FROM audit_log WHERE resource = 'provider'"
            " AND resource_id = 'traeger-test' ORDER BY id"),
            [["provider.create", "-"], ["provider.update", "-"]])

    def test_2_an_office_and_a_provider_record_their_concepts(self):
        s = self.stack
        before_cov = self.coverage("lwl")
        mine = {(i["owner_kind"], i["owner_id"]): i["status"] for i in before_cov["items"]}
        self.assertEqual(mine[("office", self.office)], "missing")
        self.assertEqual(mine[("provider", "traeger-test")], "missing")

        r = self.send("POST", "/v1/protection-concepts", concept())
        self.assertEqual(r.status, 201, r)
        c = r.json()
        self.assertEqual((c["owner_kind"], c["office_id"], c["provider_id"], c["region"],
                          c["status"], c["version"]),
                         ("office", self.office, None, "LWL", "current", 1))
        self.assertEqual(sorted(c["elements"]), sorted(ELEMENTS))
        # One per owner: a second is a conflict naming the first.
        r = self.send("POST", "/v1/protection-concepts", concept())
        self.assertProblem(r, 409)
        self.assertEqual(r.header("Location"), f"/v1/protection-concepts/{c['id']}")
        # The provider records its own; the body names no owner.
        r = self.send("POST", "/v1/protection-concepts",
                      concept(adopted_on="2020-01-15", next_review_on="2023-01-15"),
                      token="provider")
        self.assertEqual(r.status, 201, r)
        p = r.json()
        self.assertEqual((p["owner_kind"], p["provider_id"], p["status"]),
                         ("provider", "traeger-test", "review_overdue"))

        # Coverage moves accordingly: advisors by owner, the ministry as counts only.
        after = {(i["owner_kind"], i["owner_id"]): i for i in self.coverage("lwl")["items"]}
        self.assertEqual(after[("office", self.office)]["status"], "current")
        self.assertEqual(after[("office", self.office)]["next_review_on"], "2027-03-01")
        self.assertEqual(after[("provider", "traeger-test")]["status"], "review_overdue")
        self.assertEqual({i["region"] for i in after.values()}, {"LWL"})
        overdue = self.coverage("lwl", "?status=review_overdue&owner_kind=provider")["items"]
        self.assertIn("traeger-test", [i["owner_id"] for i in overdue])
        self.assertEqual(self.coverage("lwl", "?status=missing")["counts"]["missing"],
                         before_cov["counts"]["missing"] - 2)
        ministry = self.coverage("ministry", "?region=LWL")
        self.assertIsNone(ministry["items"])
        self.assertEqual(ministry["counts"], self.coverage("admin", "?region=LWL")["counts"])
        self.assertNotIn(("office", self.office), {(i["owner_kind"], i["owner_id"]) for i in
                                                   self.coverage("lvr")["items"]})
        for token in ("staff", "provider", "institute"):
            self.assertProblem(self.send("GET", "/v1/protection-concept-coverage",
                                         token=token), 403)

        # Who reads a concept: the owner, its region's advisors, admin — others get 404/403.
        for token, status in (("staff", 200), ("lwl", 200), ("admin", 200), ("lvr", 404),
                              ("other", 404), ("provider", 404), ("ministry", 403),
                              ("institute", 403)):
            self.assertEqual(self.send("GET", f"/v1/protection-concepts/{c['id']}",
                                       token=token).status, status, token)
        self.assertEqual(self.send("GET", f"/v1/protection-concepts/{p['id']}",
                                   token="staff").status, 404)

        # A new version: reviewed, the review date moves; the old version is kept.
        r = self.send("PATCH", f"/v1/protection-concepts/{p['id']}",
                      {"adopted_on": "2025-06-01", "next_review_on": "2028-06-01",
                       "elements": {"complaint_external": True}}, token="provider",
                      etag='"v1"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["status"], r.json()["version"],
                          r.json()["elements"]["complaint_external"]), ("current", 2, True))
        self.assertEqual(s.sql(
            f"SELECT version, next_review_on FROM protection_concept_versions"
            f" WHERE concept_id = '{p['id']}' ORDER BY version"),
            [["1", "2023-01-15"], ["2", "2028-06-01"]])
        r = self.send("GET", f"/v1/protection-concepts/{p['id']}/versions?limit=1",
                      token="provider")
        self.assertEqual(r.status, 200, r)
        first = r.json()
        self.assertEqual([(v["version"], v["next_review_on"], v["elements"]["complaint_external"])
                          for v in first["items"]], [(1, "2023-01-15", False)])
        r = self.send("GET", f"/v1/protection-concepts/{p['id']}/versions"
                      f"?cursor={first['next_cursor']}", token="lwl")
        self.assertEqual([v["version"] for v in r.json()["items"]], [2])
        for token in ("staff", "lvr"):
            self.assertEqual(self.send("GET", f"/v1/protection-concepts/{p['id']}/versions",
                                       token=token).status, 404)
        # Only the owner writes: another office's staff gets 404, an advisor 403.
        self.assertEqual(self.send("PATCH", f"/v1/protection-concepts/{c['id']}",
                                   {"next_review_on": "2030-01-01"}, token="other",
                                   etag='"v1"').status, 404)
        self.assertProblem(self.send("PATCH", f"/v1/protection-concepts/{c['id']}",
                                     {"next_review_on": "2030-01-01"}, token="lwl",
                                     etag='"v1"'), 403)

    def test_3_bad_concepts_are_422_naming_every_field_and_store_nothing(self):
        before = self.state()
        r = self.send("POST", "/v1/protection-concepts",
                      {"adopted_on": "2025-02-30", "next_review_on": "soon",
                       "elements": {"childrens_rights": "yes", "colour": True},
                       "participants": ["aliens", "young_people", "young_people"],
                       "office_id": self.other_office}, token="other")
        self.assertProblem(r, 422)
        pointers = sorted(e["pointer"] for e in r.json()["errors"])
        self.assertIn("/adopted_on", pointers)
        self.assertIn("/next_review_on", pointers)
        self.assertIn("/elements/childrens_rights", pointers)
        self.assertIn("/elements/colour", pointers)
        self.assertIn("/elements/review", pointers)  # missing
        self.assertIn("/participants/0", pointers)
        self.assertIn("/participants/2", pointers)
        self.assertIn("/office_id", pointers)  # the owner is the caller, never named
        r = self.send("POST", "/v1/protection-concepts",
                      concept(adopted_on="2025-03-01", next_review_on="2025-03-01"),
                      token="other")
        self.assertProblem(r, 422, errors=[{"pointer": "/next_review_on", "code": "range"}])
        for token in ("lwl", "ministry", "admin", "institute"):
            self.assertProblem(self.send("POST", "/v1/protection-concepts", concept(),
                                         token=token), 403)
        self.assertEqual(self.state(), before)

    def test_4_the_code_list_names_every_element(self):
        listed = [c["code"] for c in
                  self.send("GET", "/v1/codelists/concept_element").json()["codes"]]
        self.assertEqual(listed, ELEMENTS)


class ConceptStatisticsTest(StackTestCase):
    """The reports count protection concepts as of today, per owner (its record key), under
    the cell-key method like every count; shares come from the perturbed counts."""
    seed_demo = True
    start_aggregator = True

    def report(self):
        r = self.stack.post("/v1/reports", {"scope": "state", "period": "2026"})
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        self.stack.wait_job(job, timeout=60)
        rep = self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()
        return {t["id"]: t for t in rep["tables"]}

    def atoms(self):
        """(region, kind, status) → [(owners, sum of their record keys)]: the atoms of the
        coverage table, straight from SQL."""
        rows = self.stack.sql(
            "SELECT set_config('kqe.role', 'admin', false);"
            " SELECT region, kind, status, count(*), sum(record_key)"
            " FROM kqe_concept_status(current_date) GROUP BY 1, 2, 3")
        return {(r, k, st): [(int(n), int(key))] for r, k, st, n, key in rows[1:]}

    def test_coverage_and_shares_equal_sql_and_move_with_a_new_concept(self):
        s = self.stack
        office = s.sql_value("SELECT id FROM offices WHERE region = 'LVR' AND id NOT IN"
                             " (SELECT office_id FROM protection_concepts"
                             "  WHERE office_id IS NOT NULL) ORDER BY id LIMIT 1")
        provider = s.sql_value("SELECT id FROM providers WHERE region = 'LVR' AND id NOT IN"
                               " (SELECT provider_id FROM protection_concepts"
                               "  WHERE provider_id IS NOT NULL) ORDER BY id LIMIT 1")
        missing = sum(n for (_, _, st), v in self.atoms().items() if st == "missing"
                      for n, _ in v)
        for token in (s.token("office_staff", office=office)[0],
                      s.token("provider_staff", provider=provider)[0]):
            r = s.post("/v1/protection-concepts", concept(next_review_on="2030-01-01"),
                       token=token)
            self.assertEqual(r.status, 201, r)
        tables = self.report()
        atoms = self.atoms()
        self.assertEqual(sum(n for (_, _, st), v in atoms.items() if st == "missing"
                             for n, _ in v), missing - 2)
        compared = 0
        for cell in tables["concept_coverage_by_kind"]["cells"]:
            if cell["suppressed"] or cell["kind"] is None:
                continue
            want = published(s, [a for (r, k, st), v in atoms.items() for a in v
                                 if k == cell["kind"] and (cell["concept_status"] is None
                                                           or st == cell["concept_status"])])
            self.assertEqual(cell["value"], want, cell)
            compared += 1
        for cell in tables["concept_coverage_by_region"]["cells"]:
            if cell["suppressed"]:
                continue
            want = published(s, [a for (r, k, st), v in atoms.items() for a in v
                                 if (cell["region"] is None or r == cell["region"])
                                 and (cell["concept_status"] is None
                                      or st == cell["concept_status"])])
            self.assertEqual(cell["value"], want, cell)
            compared += 1
        self.assertGreater(compared, 20)
        # The provider row of the by-kind table counts providers only.
        kinds = {c["kind"] for c in tables["concept_coverage_by_kind"]["cells"]}
        self.assertIn("provider", kinds)
        # Shares of an element: % yes among concepts, from the perturbed yes and no counts.
        answers = {}
        for region, element, yes, n, key in s.sql(
                "SELECT c.region, e.key, e.value, count(*), sum(o.record_key)"
                " FROM protection_concepts c CROSS JOIN jsonb_each_text(c.elements) AS e"
                " JOIN (SELECT id, kind, record_key, false AS provider FROM offices UNION ALL"
                "  SELECT id, 'provider', record_key, true FROM providers) AS o"
                "  ON o.id = coalesce(c.office_id, c.provider_id)"
                "  AND o.provider = (c.provider_id IS NOT NULL)"
                " GROUP BY c.region, e.key, e.value, o.kind"):
            answers.setdefault((region, element, yes), []).append((int(n), int(key)))
        for cell in tables["concept_elements_by_region"]["cells"]:
            if cell["region"] is None:
                continue
            y = published(s, answers.get((cell["region"], cell["concept_element"], "true"), []))
            n = published(s, answers.get((cell["region"], cell["concept_element"], "false"), []))
            # As C's round(): half away from zero (Python's round() goes to even).
            want = math.floor(100.0 * y / (y + n) * 10 + 0.5) / 10 if y + n else None
            self.assertEqual(cell["value"], want, cell)
        self.assertIn("concept_young_people_by_region", tables)


if __name__ == "__main__":
    unittest.main()
