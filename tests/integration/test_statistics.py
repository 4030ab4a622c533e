"""Case-analysis statistics in reports: counts are SQL on the case table perturbed by the
cell-key method (the same records, the same noise; never 1 to js), comparison values need
enough offices, and submissions made while Redis was down are counted once it returns."""

import unittest

from harness import StackTestCase, published
from test_case_analyses import valid

JS = 2  # no published count lies in 1 .. JS
CYCLE = "2023-2028"


class StatisticsTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    def report(self, body):
        r = self.stack.post("/v1/reports", body)
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        self.stack.wait_job(job, timeout=30)
        return self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()

    def table(self, report, table_id):
        return next(t for t in report["tables"] if t["id"] == table_id)

    def sql_counts(self, column, where=""):
        """(region, category) → its atoms: (count, sum of the record keys) per year and kind."""
        rows = self.stack.sql(
            f"SELECT o.region, {column}, count(*), sum(c.record_key) FROM case_analyses c"
            " JOIN offices o ON o.id = c.office_id JOIN procedures p ON p.id = c.procedure_id"
            f" WHERE p.cycle = '{CYCLE}' {where}"
            " GROUP BY 1, 2, o.kind, extract(year FROM c.closed_month)")
        atoms = {}
        for r, k, n, key in rows:
            atoms.setdefault((r, k), []).append((int(n), int(key)))
        return atoms

    def assert_disclosure_rules(self, table):
        if table["measure"] != "count":
            return self.assert_comparison_rules(table)
        if table.get("exact"):
            # Public records (a programme's events held): only those tables are exact.
            self.assertEqual(table["id"], "programme_events_by_programme")
            return
        for cell in table["cells"]:
            # Counts are perturbed, never hidden, and never 1 .. JS.
            self.assertFalse(cell["suppressed"], cell)
            self.assertIsInstance(cell["value"], int, cell)
            self.assertFalse(1 <= cell["value"] <= JS, cell)
            self.assertGreaterEqual(cell["value"], 0, cell)

    def assert_comparison_rules(self, table):
        for cell in table["cells"]:
            if cell["suppressed"]:
                self.assertIsNone(cell["value"], cell)
                self.assertIn(cell["reason"], ("min_count", "dominance", "secondary",
                                               "min_offices"), cell)

    def test_results_equal_sql_and_disclosure_holds(self):
        rep = self.report({"scope": "state", "period": CYCLE})
        self.assertEqual(rep["watermark"]["disclosure"],
                         {"method": "cell_key",
                          "atoms": ["year", "cycle", "region", "kind", "category"],
                          "max_deviation": 5, "variance": 3.0, "variance_large": 3.0, "js": JS,
                          "min_count": 3, "dominance": 0.85, "min_offices": 5})
        expected = self.sql_counts("c.result")
        table = self.table(rep, "case_results_by_region")
        self.assertEqual(table["dimensions"], ["region", "result"])
        for cell in table["cells"]:
            want = published(self.stack, [a for (r, k), atoms in expected.items()
                                          if cell["region"] in (None, r)
                                          and cell["result"] in (None, k) for a in atoms])
            self.assertEqual(cell["value"], want, cell)
        # The same records give the same figure in every table: the state's total of each
        # result in the by-region table is the same set of cases as in a second report.
        again = self.report({"scope": "state", "period": CYCLE})
        self.assertEqual(again["tables"], rep["tables"])
        for t in rep["tables"]:
            if t["id"].startswith(("case_", "topic_", "procedure_", "structure_", "programme_")):
                with self.subTest(table=t["id"]):
                    self.assert_disclosure_rules(t)

    def test_report_as_csv_uses_the_official_symbols(self):
        import csv, io
        rep = self.report({"scope": "region", "region": "LWL", "period": "2019"})
        r = self.stack.get(f"/v1/reports/{rep['id']}.csv?dialect=excel")
        self.assertEqual(r.status, 200, r)
        rows = list(csv.DictReader(io.StringIO(r.body[3:].decode()), delimiter=";"))
        cells = [c for t in rep["tables"] for c in t["cells"]]
        self.assertEqual(len(rows), len(cells))
        figures = {row["figure"] for row in rows}
        self.assertIn(".", figures)                       # suppressed
        for row, cell in zip(rows, cells):
            if cell["suppressed"]:
                self.assertEqual(row["figure"], ".")
            elif cell["value"] is None:
                self.assertEqual(row["figure"], "x")        # no figure makes sense
            elif cell["value"] == 0:
                self.assertEqual(row["figure"], "\u2013")
            else:                                            # Excel: decimal comma
                self.assertNotIn(".", row["figure"])
                self.assertEqual(float(row["figure"].replace(",", ".")), cell["value"])
        self.assertIn("insgesamt", {row["value_1"] for row in rows})

    def test_small_periods_are_perturbed_not_revealed(self):
        # One year has far fewer cases per cell: the small true counts must not show.
        rep = self.report({"scope": "region", "region": "LWL", "period": "2019"})
        table = self.table(rep, "case_reporters_by_region")
        self.assert_disclosure_rules(table)
        rows = self.stack.sql(
            "SELECT c.reported_by, count(*), sum(c.record_key) FROM case_analyses c"
            " JOIN offices o ON o.id = c.office_id JOIN procedures p ON p.id = c.procedure_id"
            " WHERE o.region = 'LWL' AND extract(year FROM c.closed_month) = 2019"
            " GROUP BY 1, o.kind, p.cycle")
        expected = {}
        for k, n, key in rows:
            expected.setdefault(k, []).append((int(n), int(key)))
        small = 0
        for cell in table["cells"]:
            if cell["region"] and cell["reported_by"]:
                atoms = expected.get(cell["reported_by"], [])
                self.assertEqual(cell["value"], published(self.stack, atoms), cell)
                small += 1 <= sum(n for n, _ in atoms) <= JS
        self.assertGreater(small, 0, "the period should hold true counts of 1 or 2")

    def test_submissions_while_redis_is_down_are_counted_after_it_returns(self):
        self.stack.stop_aggregator()
        proc, office = self.stack.sql(
            "SELECT id, office_id FROM procedures WHERE phase NOT IN ('completed')"
            f" AND cycle = '{CYCLE}' ORDER BY id DESC LIMIT 1")[0]
        token = self.stack.token("office_staff", office=office)[0]
        before = int(self.stack.sql_value(
            f"SELECT count(*) FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id"
            f" WHERE p.cycle = '{CYCLE}'"))
        self.stack.redis.stop()
        items = [valid(proc, reference=f"REDIS-DOWN-{i}", findings=None) for i in range(1000)]
        r = self.stack.post("/v1/case-analyses:batch", {"items": items}, token=token, timeout=120)
        self.assertEqual(r.status, 201, r)
        r = self.stack.post("/v1/reports", {"scope": "state", "period": CYCLE})
        self.assertEqual(r.status, 202, r)  # accepted although Redis is down
        job = r.json()["id"]
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL") != "0", True)
        self.stack.redis.start()
        self.stack.start_aggregator()
        self.stack.wait_job(job, timeout=30)
        rep = self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()
        grand = next(c for c in self.table(rep, "case_results_by_region")["cells"]
                     if c["region"] is None and c["result"] is None)
        atoms = [a for per_result in self.sql_counts("c.result").values() for a in per_result]
        self.assertEqual(sum(n for n, _ in atoms), before + 1000)
        self.assertEqual(grand["value"], published(self.stack, atoms))


def release(stack):
    """A release as the tests' aggregators take them: every change refreshes, nothing final
    (the demo's years are closed). Peers' benchmark figures come from the latest release."""
    stack.kqe("release", "make", "--min-changes", "1", check=True,
              env=stack.env(KQE_RELEASE_FINAL=0))


class BenchmarkTest(StackTestCase):
    seed_demo = True
    start_api = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        # An office with a structure survey, and its kind.
        cls.office, cls.kind = s.sql(
            "SELECT o.id, o.kind FROM offices o JOIN structure_surveys x ON x.office_id = o.id"
            " ORDER BY o.id LIMIT 1")[0]
        cls.own = s.token("office_lead", office=cls.office)[0]
        cls.other = s.token("office_staff", office="demo-lwl-091")[0]
        release(s)

    def test_own_figures_beside_peer_quartiles(self):
        r = self.stack.get(f"/v1/offices/{self.office}/benchmark", token=self.own)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        ind = {i["indicator"]: i for i in body["indicators"]}
        cases = ind["cases_per_fte"]
        own = float(self.stack.sql_value(
            f"SELECT (body->>'cases_per_fte')::numeric FROM structure_surveys"
            f" WHERE office_id = '{self.office}' ORDER BY body->>'reference_date' DESC LIMIT 1"))
        self.assertAlmostEqual(cases["own"], own, places=2)
        peers = cases["peers"]["kind"]
        median, n = self.stack.sql(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 2), count(*)"
            " FROM (SELECT DISTINCT ON (s.office_id) (s.body->>'cases_per_fte')::numeric AS v"
            " FROM structure_surveys s JOIN offices o ON o.id = s.office_id"
            f" WHERE o.kind = '{self.kind}' AND o.id <> '{self.office}'"
            " ORDER BY s.office_id, s.body->>'reference_date' DESC) x")[0]
        self.assertEqual(peers["offices"], int(n))
        self.assertGreaterEqual(peers["offices"], 5)
        self.assertAlmostEqual(peers["median"], float(median), places=2)
        self.assertFalse(peers["suppressed"])
        self.assertLessEqual(peers["q1"], peers["median"])
        self.assertLessEqual(peers["median"], peers["q3"])
        self.assertIn("direct_impression_percent", ind)
        # Peers' case figures come from the released rollups: the median of the offices'
        # shares of cases with a direct impression, as SQL on the case table gives it.
        direct = ind["direct_impression_percent"]["peers"]["kind"]
        median, n = self.stack.sql(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 2), count(*)"
            " FROM (SELECT 100.0 * avg(c.direct_impression::int) AS v FROM case_analyses c"
            f" JOIN offices o ON o.id = c.office_id WHERE o.kind = '{self.kind}'"
            f" AND o.id <> '{self.office}' AND c.direct_impression IS NOT NULL"
            " GROUP BY c.office_id) x")[0]
        self.assertEqual((direct["offices"], direct["median"]), (int(n), float(median)))

    def test_a_peers_new_survey_moves_nothing_until_a_release(self):
        # A0 on the benchmark: look, let one peer change its survey, look again. The peers'
        # quartiles are the released ones, so the second look shows the same; the next
        # release (refreshing on any change here) takes the change in.
        path = f"/v1/offices/{self.office}/benchmark"
        before = self.stack.get(path, token=self.own).json()
        peer = self.stack.sql_value(
            "SELECT s.office_id FROM structure_surveys s JOIN offices o ON o.id = s.office_id"
            f" WHERE o.kind = '{self.kind}' AND o.id <> '{self.office}' ORDER BY 1 LIMIT 1")
        self.stack.sql(
            "UPDATE structure_surveys SET body = jsonb_set(body, '{cases_per_fte}', '1000')"
            f" WHERE office_id = '{peer}'")
        self.assertEqual(self.stack.get(path, token=self.own).json(), before)
        release(self.stack)
        after = self.stack.get(path, token=self.own).json()
        q3 = {i["indicator"]: i["peers"]["kind"]["q3"] for i in after["indicators"]}
        q3_before = {i["indicator"]: i["peers"]["kind"]["q3"] for i in before["indicators"]}
        self.assertGreater(q3["cases_per_fte"], q3_before["cases_per_fte"])

    def test_only_the_office_itself_and_admin(self):
        path = f"/v1/offices/{self.office}/benchmark"
        self.assertProblem(self.stack.get(path, token=self.other), 404)
        self.assertEqual(self.stack.get(path).status, 200)  # admin
        for role, extra in (("advisor", {"region": "LVR"}), ("ministry", {}),
                            ("institute", {"institute": "demo-institut-1"})):
            with self.subTest(role=role):
                token = self.stack.token(role, **extra)[0]
                self.assertProblem(self.stack.get(path, token=token), 403)
        self.assertProblem(self.stack.get("/v1/offices/nope-nope/benchmark"), 404)


class BenchmarkSuppressionTest(StackTestCase):
    seed_demo = True
    api_env = {"KQE_SDC_MIN_OFFICES": 500}  # no peer group is that large

    def test_comparison_values_need_enough_peers(self):
        release(self.stack)
        office = self.stack.sql_value("SELECT office_id FROM structure_surveys LIMIT 1")
        body = self.stack.get(f"/v1/offices/{office}/benchmark").json()
        self.assertEqual(body["min_offices"], 500)
        for ind in body["indicators"]:
            for group in ind["peers"].values():
                self.assertTrue(group["suppressed"])
                self.assertEqual([group[k] for k in ("mean", "q1", "median", "q3")],
                                 [None] * 4)


if __name__ == "__main__":
    unittest.main()
