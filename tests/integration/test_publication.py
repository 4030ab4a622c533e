"""Publication: ministry batches, the report list with updated_since, who sees which figures,
and the HTML report rendered by headless Chromium."""

import time
import unittest

from harness import StackTestCase, render_in_chromium

MIN_COUNT = 3
YEAR = 2021  # a year the demo state has case analyses for


class PublicationTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.office = "demo-lvr-003"
        cls.tok = {
            "ministry": s.token("ministry")[0],
            "advisor_lvr": s.token("advisor", region="LVR")[0],
            "office": s.token("office_staff", office=cls.office)[0],
            "institute": s.token("institute", institute=s.sql_value(
                "SELECT id FROM institutes ORDER BY id LIMIT 1"))[0],
        }
        r = s.post("/v1/ministry-batches", {"period": str(YEAR)},
                   token=cls.tok["ministry"])
        assert r.status == 202, r
        cls.batch = r.json()["id"]
        s.wait_job(cls.batch, timeout=60)
        cls.reports = {(x["scope"], x["params"].get("region")): x for x in s.get(
            f"/v1/reports?job_id={cls.batch}", token=cls.tok["ministry"]).json()["items"]}

    def state(self):
        return (self.stack.sql("SELECT count(*) FROM jobs"),
                self.stack.sql("SELECT count(*) FROM outbox"),
                self.stack.sql("SELECT count(*) FROM reports"))

    def get(self, path, who="ministry", **kw):
        return self.stack.get(path, token=self.tok[who], **kw)

    # --- ministry batches ----------------------------------------------------------
    def test_a_batch_builds_every_report_of_the_year(self):
        job = self.get(f"/v1/jobs/{self.batch}").json()
        self.assertEqual((job["kind"], job["status"]), ("ministry_batch", "succeeded"))
        self.assertEqual(job["result"], f"/v1/reports?job_id={self.batch}")
        self.assertEqual(set(self.reports), {("state", None), ("region", "LVR"),
                                             ("region", "LWL")})
        for (scope, region), item in self.reports.items():
            # Defect g: a region report names its region at the top, as the request did.
            self.assertEqual(item["region"], region)
            self.assertEqual(self.get(item["href"]).json()["region"], region)
            self.assertEqual(item["period"], str(YEAR))
            self.assertEqual(item["href"], f"/v1/reports/{item['id']}")
            self.assertEqual(item["html"], f"/v1/reports/{item['id']}.html")
            self.assertNotIn("tables", item)  # the list is light; the report has the figures
        # One snapshot: the three reports agree with each other.
        state = self.get(self.reports[("state", None)]["href"]).json()
        lvr = self.get(self.reports[("region", "LVR")]["href"]).json()
        self.assertEqual(state["watermark"], lvr["watermark"])

    def test_b_bad_batch_requests_change_nothing(self):
        before = self.state()
        cases = [
            ({}, [{"pointer": "/period", "code": "required"}]),
            ({"period": 2024}, [{"pointer": "/period", "code": "type"}]),
            ({"period": "1999"}, [{"pointer": "/period", "code": "format"}]),
            ({"period": "2024-2029"}, [{"pointer": "/period", "code": "format"}]),
            ({"year": 2024}, [{"pointer": "/period", "code": "required"},
                              {"pointer": "/year", "code": "unknown_field"}]),
            ({"period": "2024", "scope": "state"},
             [{"pointer": "/scope", "code": "unknown_field"}]),
        ]
        for body, errors in cases:
            with self.subTest(body=body):
                self.assertProblem(self.stack.post("/v1/ministry-batches", body,
                                                   token=self.tok["ministry"]), 422,
                                   errors=errors)
        for who in ("advisor_lvr", "office"):
            self.assertEqual(self.stack.post("/v1/ministry-batches", {"period": "2024"},
                                             token=self.tok[who]).status, 403)
        self.assertEqual(self.state(), before)

    # --- the list --------------------------------------------------------------------
    def test_c_list_pages_and_filters_by_updated_since(self):
        first = min(x["generated_at"] for x in self.reports.values())
        time.sleep(0.01)
        r = self.stack.post("/v1/reports", {"scope": "state", "period": "2023-2028"})
        self.stack.wait_job(r.json()["id"], timeout=60)
        newest = self.get("/v1/reports?limit=500").json()["items"][-1]
        later = self.get(f"/v1/reports?updated_since={newest['generated_at']}").json()["items"]
        self.assertEqual([x["id"] for x in later], [newest["id"]])
        # Paging one by one gives every report once, in generated_at order.
        seen, cursor = [], None
        while True:
            page = self.get("/v1/reports?limit=1" + (f"&cursor={cursor}" if cursor else ""))
            self.assertEqual(page.status, 200, page)
            body = page.json()
            seen += [x["id"] for x in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(seen, [x["id"] for x in self.get("/v1/reports?limit=500").json()["items"]])
        self.assertGreaterEqual(len(seen), 4)
        self.assertLessEqual(first, newest["generated_at"])
        for query, param, code in (
                ("updated_since=yesterday", "updated_since", "format"),
                ("job_id=x", "job_id", "format"), ("scope=kind", "scope", "enum"),
                ("period=2024-2029", "period", "format"),
                ("cursor=abc", "cursor", "invalid_cursor"), ("limit=0", "limit", "range"),
                ("office=x", "office", "unknown_parameter")):
            with self.subTest(query=query):
                self.assertProblem(self.get(f"/v1/reports?{query}"), 400,
                                   errors=[{"parameter": param, "code": code}])

    # --- visibility --------------------------------------------------------------------
    def test_d_advisor_sees_the_state_and_its_region_only(self):
        lwl = self.reports[("region", "LWL")]["id"]
        lvr = self.reports[("region", "LVR")]["id"]
        state = self.reports[("state", None)]["id"]
        self.assertProblem(self.get(f"/v1/reports/{lwl}", "advisor_lvr"), 404)
        self.assertProblem(self.get(f"/v1/reports/{lwl}.html", "advisor_lvr"), 404)
        self.assertEqual(self.get(f"/v1/reports/{lvr}", "advisor_lvr").status, 200)
        self.assertEqual(self.get(f"/v1/reports/{state}.html", "advisor_lvr").status, 200)
        listed = {x["id"] for x in self.get(f"/v1/reports?job_id={self.batch}",
                                            "advisor_lvr").json()["items"]}
        self.assertEqual(listed, {lvr, state})

    def test_e_ministry_and_institutes_see_no_count_between_1_and_the_minimum(self):
        for who in ("ministry", "institute"):
            for item in self.reports.values():
                rep = self.get(item["href"], who).json()
                self.assertNotIn("own", rep)
                for table in rep["tables"]:
                    for cell in table["cells"]:
                        if table["measure"] == "count" and not cell["suppressed"]:
                            self.assertFalse(1 <= cell["value"] < MIN_COUNT,
                                             (who, table["id"], cell))
                        if cell["suppressed"]:
                            self.assertIsNone(cell["value"])

    def test_f_office_sees_its_own_figures_beside_the_suppressed_ones(self):
        item = self.reports[("region", "LVR")]
        rep = self.get(item["href"], "office").json()
        self.assertEqual(rep["own"]["office_id"], self.office)
        expected = {(d, c): int(n) for d, c, n in self.stack.sql(
            "SELECT dimension, category, sum(n) FROM rollups WHERE office_id ="
            f" '{self.office}' AND year = {YEAR} GROUP BY 1, 2")}
        got = {(f["dimension"], f["category"]): f["count"] for f in rep["own"]["figures"]}
        self.assertEqual(got, expected)
        cases = int(self.stack.sql_value(
            "SELECT count(*) FROM case_analyses WHERE office_id ="
            f" '{self.office}' AND extract(year FROM closed_month) = {YEAR}"))
        self.assertEqual(got.get(("cases", "all"), 0), cases)
        # Own figures are not disclosure-controlled: small counts are shown to the office.
        # The peers' figures are the same suppressed report everyone gets.
        ministry = self.get(item["href"]).json()
        self.assertEqual(rep["tables"], ministry["tables"])

    # --- the HTML report -------------------------------------------------------------------
    def test_g_html_report(self):
        item = self.reports[("state", None)]
        r = self.get(item["html"])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertIn("default-src 'none'", r.header("Content-Security-Policy"))
        html = r.body.decode()
        for needle in ('<html lang="de">', 'id="inhalt"', 'id="methodik"', "<svg",
                       "@page{size:A4", "Methodische Hinweise", "Nordrhein-Westfalen",
                       # which date places a record in a year, per kind of data
                       "Abschlussmonat", "der Tag, an dem das Thema erfasst wurde",
                       "der Stichtag der Erhebung"):
            self.assertIn(needle, html)
        self.assertNotIn("<script", html)
        rep = self.get(item["href"]).json()
        for table in rep["tables"]:
            self.assertIn(f'id="t-{table["id"]}"', html)
        self.assertProblem(self.get("/v1/reports/00000000-0000-0000-0000-000000000000.html"),
                           404)
        self.assertProblem(self.get(f"{item['html']}?x=1"), 400,
                           errors=[{"parameter": "x", "code": "unknown_parameter"}])

    def test_h_html_report_renders_in_headless_chromium(self):
        item = self.reports[("state", None)]
        dom = render_in_chromium(self, self.get(item["html"]).body, "report")
        for section in ('id="titel"', 'id="inhalt"', 'id="methodik"',
                        'id="t-case_results_by_region"', 'id="t-structure_indicators_by_region"'):
            self.assertIn(section, dom)

if __name__ == "__main__":
    unittest.main()
