"""GET /v1/codelists and /v1/codelists/{id}: every label served, filters, ETag, every role."""

import hashlib
import os
import re
import unittest

from harness import REPO, StackTestCase

LISTS = ["office_kind", "region", "state", "procedure_phase", "selection", "sex", "parents_age_group",
         "reporter", "assessment_result", "endangerment_form", "quality_dimension", "rating",
         "learning_theme", "topic_status", "topic_priority", "advice_kind", "advice_status",
         "advice_topic", "advice_urgency", "advice_decline_reason", "concept_element",
         "concept_participant", "concept_status", "programme_role", "criterion_answer",
         "application_status", "office_size", "event_kind", "registration_status",
         "professional_status", "service_request_status", "material_kind",
         "material_visibility", "role"]
COUNTS = {"assessment_result": 4, "endangerment_form": 4, "reporter": 13,
          "quality_dimension": 11, "learning_theme": 18, "procedure_phase": 7, "role": 9,
          "rating": 4, "sex": 4}
ROLES = ["office_staff", "office_lead", "institute", "advisor", "ministry", "admin",
         "provider_staff", "programme_team", "professional"]


class CodelistsTest(StackTestCase):
    seed_demo = True

    def get_ok(self, path, **kw):
        r = self.stack.get(path, **kw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
        return r

    def test_all_lists_served_in_stable_order_with_both_labels(self):
        r = self.get_ok("/v1/codelists")
        body = r.json()
        self.assertEqual(list(body), ["items"])
        self.assertEqual([l["id"] for l in body["items"]], LISTS)
        for l in body["items"]:
            with self.subTest(list=l["id"]):
                self.assertEqual(list(l), ["id", "title", "codes"])
                self.assertEqual(set(l["title"]), {"de", "en"})
                self.assertTrue(l["title"]["de"] and l["title"]["en"])
                self.assertTrue(l["codes"])
                codes = [c["code"] for c in l["codes"]]
                self.assertEqual(len(codes), len(set(codes)))
                for c in l["codes"]:
                    self.assertEqual(list(c), ["code", "label"])
                    self.assertEqual(set(c["label"]), {"de", "en"})
                    self.assertTrue(c["label"]["de"].strip() and c["label"]["en"].strip())
                if l["id"] in COUNTS:
                    self.assertEqual(len(codes), COUNTS[l["id"]])
        # The same bytes every time: a stable order, and a stable ETag.
        again = self.get_ok("/v1/codelists")
        self.assertEqual(again.body, r.body)
        self.assertEqual(again.header("ETag"), r.header("ETag"))

    def test_phases_in_procedure_order(self):
        body = self.get_ok("/v1/codelists/procedure_phase").json()
        self.assertEqual([c["code"] for c in body["codes"]],
                         ["planned", "case_selection", "case_analysis", "structure_analysis",
                          "evaluation", "report", "completed"])

    def test_german_labels_arrive_as_utf8_umlauts(self):
        r = self.get_ok("/v1/codelists?list=assessment_result")
        # Raw UTF-8 on the wire, not \\u escapes and not Latin-1.
        self.assertIn("akute Kindeswohlgefährdung".encode("utf-8"), r.body)
        self.assertNotIn(b"\\u00e4", r.body)
        labels = {c["code"]: c["label"]["de"] for c in r.json()["items"][0]["codes"]}
        self.assertEqual(labels, {
            "akute_gefaehrdung": "akute Kindeswohlgefährdung",
            "latente_gefaehrdung": "latente Kindeswohlgefährdung",
            "hilfebedarf_ohne_gefaehrdung": "Hilfebedarf ohne Kindeswohlgefährdung",
            "weder_gefaehrdung_noch_hilfebedarf": "weder Kindeswohlgefährdung noch Hilfebedarf",
        })
        sex = self.get_ok("/v1/codelists/sex").json()
        self.assertEqual(sex["codes"][0],
                         {"code": "maennlich", "label": {"de": "männlich", "en": "Male"}})
        reporter = self.get_ok("/v1/codelists/reporter").json()
        self.assertIn("Minderjährige(r) selbst", [c["label"]["de"] for c in reporter["codes"]])

    def test_list_parameter_selects_one_list(self):
        body = self.get_ok("/v1/codelists?list=assessment_result").json()
        self.assertEqual(len(body["items"]), 1)
        one = body["items"][0]
        self.assertEqual(one["id"], "assessment_result")
        self.assertEqual(len(one["codes"]), 4)
        # The filtered answer is the same object /v1/codelists/{id} serves.
        self.assertEqual(one, self.get_ok("/v1/codelists/assessment_result").json())

    def test_unknown_list_is_400_naming_the_parameter(self):
        for value in ("nope", "", "Sex", "sex%20", "assessment_result,sex"):
            with self.subTest(value=value):
                self.assertProblem(self.stack.get(f"/v1/codelists?list={value}"), 400,
                                   errors=[{"parameter": "list", "code": "enum"}],
                                   detail="The query has invalid parameters.")

    def test_unknown_or_repeated_parameter_is_400(self):
        cases = [
            ("limit=5", [{"parameter": "limit", "code": "unknown_parameter"}]),
            ("lists=sex", [{"parameter": "lists", "code": "unknown_parameter"}]),
            ("list=sex&list=role", [{"parameter": "list", "code": "duplicate_parameter"}]),
            ("foo=1&list=nope", [{"parameter": "foo", "code": "unknown_parameter"},
                                 {"parameter": "list", "code": "enum"}]),
        ]
        for query, errors in cases:
            with self.subTest(query=query):
                self.assertProblem(self.stack.get("/v1/codelists?" + query), 400, errors=errors)
        self.assertProblem(self.stack.get("/v1/codelists/sex?list=sex"), 400,
                           errors=[{"parameter": "list", "code": "unknown_parameter"}])

    def test_one_list_200_and_unknown_404(self):
        body = self.get_ok("/v1/codelists/sex").json()
        self.assertEqual(body["id"], "sex")
        self.assertEqual(body["title"], {"de": "Geschlecht", "en": "Sex"})
        self.assertEqual([c["code"] for c in body["codes"]],
                         ["maennlich", "weiblich", "divers", "ohne_angabe"])
        for lid in ("nope", "SEX", "se%00x", "%C3%28", "x" * 300):
            with self.subTest(id=lid):
                self.assertProblem(self.stack.get(f"/v1/codelists/{lid}"), 404)

    def test_etag_and_if_none_match(self):
        for path in ("/v1/codelists", "/v1/codelists?list=sex", "/v1/codelists/sex"):
            with self.subTest(path=path):
                r = self.get_ok(path)
                etag = r.header("ETag")
                self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
                self.assertEqual(etag, '"' + hashlib.sha256(r.body).hexdigest()[:16] + '"')
                for match in (etag, "W/" + etag, f'"0000000000000000", {etag}', "*"):
                    with self.subTest(if_none_match=match):
                        nm = self.stack.get(path, headers={"If-None-Match": match})
                        self.assertEqual(nm.status, 304, nm)
                        self.assertEqual(nm.body, b"")
                        self.assertEqual(nm.header("ETag"), etag)
                        self.assertIsNotNone(nm.header("X-Request-Id"))
                for stale in ('"0000000000000000"', etag[:-2] + '"', etag.strip('"')):
                    with self.subTest(if_none_match=stale):
                        r2 = self.stack.get(path, headers={"If-None-Match": stale})
                        self.assertEqual(r2.status, 200, r2)
                        self.assertEqual(r2.body, r.body)
        # Different content, different tag.
        self.assertNotEqual(self.get_ok("/v1/codelists/sex").header("ETag"),
                            self.get_ok("/v1/codelists/role").header("ETag"))

    def test_head_sends_headers_without_body(self):
        r = self.stack.request("HEAD", "/v1/codelists/sex")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), self.get_ok("/v1/codelists/sex").header("ETag"))

    def test_every_role_may_read(self):
        s = self.stack
        tokens = {
            "office_staff": s.token("office_staff", office="demo-lvr-001")[0],
            "office_lead": s.token("office_lead", office="demo-lvr-001")[0],
            "institute": s.token("institute", institute="demo-institut-1")[0],
            "advisor": s.token("advisor", region="LWL")[0],
            "ministry": s.token("ministry")[0],
            "admin": s.default_token,
            "provider_staff": s.token("provider_staff", provider="demo-traeger-lwl-01")[0],
            "programme_team": s.token("programme_team", programme=s.sql_value(
                "SELECT id FROM programmes ORDER BY id LIMIT 1"))[0],
            "professional": s.professional_token(s.sql_value(
                "SELECT id FROM programmes ORDER BY id LIMIT 1"))[0],
        }
        self.assertEqual(sorted(tokens), sorted(ROLES))
        full = self.get_ok("/v1/codelists").body
        for role, token in tokens.items():
            for path in ("/v1/codelists", "/v1/codelists?list=role", "/v1/codelists/role"):
                with self.subTest(role=role, path=path):
                    r = self.get_ok(path, token=token)
                    if path == "/v1/codelists":
                        self.assertEqual(r.body, full)  # nothing depends on who asks

    def test_no_or_bad_token_is_401(self):
        for path in ("/v1/codelists", "/v1/codelists/sex", "/v1/codelists/nope"):
            with self.subTest(path=path):
                r = self.stack.get(path, token=None)
                self.assertProblem(r, 401, detail="This resource needs a bearer token.")
                self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="kqe"')
                self.assertProblem(self.stack.get(path, token="kqe_" + "A" * 43), 401)

    def test_domain_doc_lists_every_served_code_in_order(self):
        served = {l["id"]: [c["code"] for c in l["codes"]]
                  for l in self.get_ok("/v1/codelists").json()["items"]}
        with open(os.path.join(REPO, "docs/domain.md"), encoding="utf-8") as f:
            section = f.read().split("\n## Code lists\n", 1)[1].split("\n## ", 1)[0]
        documented = {}
        for line in section.splitlines():
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                documented[cells[0].strip("`")] = re.findall(r"`([^`]+)`", cells[-1])
        self.assertEqual(list(documented), list(served))
        self.assertEqual(documented, served)

    def test_other_methods_are_405(self):
        r = self.stack.post("/v1/codelists", {"id": "x"})
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.assertProblem(self.stack.request("DELETE", "/v1/codelists/sex"), 405)


if __name__ == "__main__":
    unittest.main()
