"""Releases (docs/disclosure.md, "Releases"): reports outside the office come from releases;
a period's figures change only when at least KQE_RELEASE_MIN_CHANGES records of it changed,
so two reports around one new case analysis are identical (A0); a closed period is final and
never changes; releases are immutable and made only by the aggregator or the kqe command."""

import unittest

from harness import StackTestCase, published
from test_case_analyses import valid

CYCLE = "2023-2028"
MIN_CHANGES = 30


class ReleasesTest(StackTestCase):
    seed_demo = True
    start_aggregator = True
    # Production rules, but a release looked at before every report job (not monthly).
    aggregator_env = {"KQE_RELEASE_INTERVAL_S": 0, "KQE_RELEASE_MIN_CHANGES": MIN_CHANGES,
                      "KQE_RELEASE_FINAL": 1}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
            f" AND cycle = '{CYCLE}' AND NOT out_of_cycle ORDER BY id LIMIT 1")[0]
        cls.token = s.token("office_staff", office=cls.office)[0]

    def report(self, period):
        r = self.stack.post("/v1/reports", {"scope": "state", "period": period})
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        self.stack.wait_job(job, timeout=60)
        return self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()

    def submit(self, n, prefix, closed_month):
        items = [valid(self.proc, reference=f"{prefix}-{i}", findings=None,
                       closed_month=closed_month) for i in range(n)]
        r = self.stack.post("/v1/case-analyses:batch", {"items": items}, token=self.token,
                            timeout=60)
        self.assertEqual(r.status, 201, r)

    def test_a_period_changes_only_once_enough_of_its_records_did(self):
        # 2026 is open (its case analyses come in until 30 June 2027).
        before = self.report("2026")
        release = before["watermark"]["release"]
        self.assertIsNotNone(release)
        self.assertFalse(release["final"])
        self.submit(1, "A0-ONE", "2026-05")
        after_one = self.report("2026")
        # A0: one new case changes nothing anyone outside the office can see.
        self.assertEqual(after_one["tables"], before["tables"])
        self.assertEqual(after_one["watermark"]["release"]["id"], release["id"])
        self.submit(MIN_CHANGES - 1, "A0-MORE", "2026-05")
        after_all = self.report("2026")
        self.assertGreater(after_all["watermark"]["release"]["id"], release["id"])
        # Now the released figures are the true ones perturbed, new cases included.
        atoms = [(int(n), int(k)) for n, k in self.stack.sql(
            "SELECT count(*), sum(c.record_key) FROM case_analyses c"
            " JOIN offices o ON o.id = c.office_id JOIN procedures p ON p.id = c.procedure_id"
            " WHERE extract(year FROM c.closed_month) = 2026"
            " GROUP BY o.region, o.kind, p.cycle, c.result")]
        grand = next(c for t in after_all["tables"] if t["id"] == "case_results_by_region"
                     for c in t["cells"] if c["region"] is None and c["result"] is None)
        self.assertEqual(grand["value"], published(self.stack, atoms))
        # The release and its cut-off are in the CSV and the HTML.
        csv = self.stack.get(f"/v1/reports/{after_all['id']}.csv").body.decode()
        header, first = csv.splitlines()[:2]
        self.assertTrue(header.endswith("figure,release,release_cut_off"), header)
        self.assertTrue(first.endswith(f",{after_all['watermark']['release']['id']},"
                                       f"{after_all['watermark']['release']['cut_off']}"), first)
        html = self.stack.get(f"/v1/reports/{after_all['id']}.html").body.decode()
        self.assertIn(f"Veröffentlichung Nr. {after_all['watermark']['release']['id']}", html)
        self.assertIn("vorläufig", html)

    def test_a_closed_period_is_final_and_never_changes(self):
        before = self.report("2022")
        self.assertTrue(before["watermark"]["release"]["final"])
        self.submit(MIN_CHANGES + 5, "FINAL", "2022-03")
        after = self.report("2022")
        self.assertEqual(after["tables"], before["tables"])
        self.assertTrue(after["watermark"]["release"]["final"])
        html = self.stack.get(f"/v1/reports/{after['id']}.html").body.decode()
        self.assertIn("endgültig", html)
        # Asking twice gives byte-identical tables.
        again = self.report("2022")
        self.assertEqual(again["tables"], after["tables"])

    def test_releases_are_immutable(self):
        for sql in ("UPDATE releases SET actor = 'x'", "DELETE FROM release_buckets",
                    "UPDATE release_rollups SET n = n + 1"):
            with self.subTest(sql=sql):
                with self.assertRaises(AssertionError) as e:
                    self.stack.sql(sql)
                self.assertIn("immutable", str(e.exception))

    def test_only_the_aggregator_and_the_kqe_command_make_releases(self):
        r = self.stack.kqe("release", "make")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^release \d+ made\n$")
        self.assertEqual(self.stack.kqe("release", "make", "--min-changes", "0").returncode, 2)
        # The API's role, whatever principal it sets, may not.
        error = self.stack.sql_error_as_service(
            "SELECT set_config('kqe.role', 'office_staff', false);"
            " SELECT kqe_release_make(1, true, 'x')")
        self.assertIn("made by the aggregator or the kqe command only", error or "")


if __name__ == "__main__":
    unittest.main()
