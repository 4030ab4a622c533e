"""POST /v1/reports → job → aggregator → report snapshot; bad input changes nothing."""

import json
import unittest

from harness import StackTestCase

VALID = {"scope": "state", "period": "2024"}


class ReportsTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    def state(self):
        """Everything a rejected request must leave unchanged."""
        return (self.stack.sql("SELECT count(*) FROM jobs"),
                self.stack.sql("SELECT count(*) FROM outbox"),
                self.stack.sql("SELECT count(*) FROM reports"),
                self.entries_added())

    def entries_added(self):
        """Entries ever added to kqe:jobs, not XLEN: the aggregator trims what it has done.
        0 while there is no stream: the aggregator makes it when it starts consuming, which
        a slow start (valgrind) may not have reached when the first test runs."""
        info = self.stack.redis.cli("--json", "XINFO", "STREAM", "kqe:jobs")
        if "ERR no such key" in info:
            return 0
        return json.loads(info)["entries-added"]

    def create(self, body):
        r = self.stack.post("/v1/reports", body)
        self.assertEqual(r.status, 202, r)
        job = r.json()
        self.assertEqual(r.header("Location"), f"/v1/jobs/{job['id']}")
        self.assertEqual(job["status"], "queued")
        return job["id"]

    def report_for(self, job_id):
        self.stack.wait_job(job_id)
        job = self.stack.get(f"/v1/jobs/{job_id}").json()
        self.assertEqual(job["status"], "succeeded")
        self.assertEqual(job["attempts"], 1)
        self.assertIsNone(job["error"])
        r = self.stack.get(job["result"])
        self.assertEqual(r.status, 200)
        return r.json()

    def cells(self, report, table_id):
        table = next(t for t in report["tables"] if t["id"] == table_id)
        return {tuple(c[d] for d in table["dimensions"]): c["value"] for c in table["cells"]}

    def test_state_report_counts_95_lvr_and_91_lwl(self):
        report = self.report_for(self.create(VALID))
        self.assertEqual(report["scope"], "state")
        self.assertEqual(report["period"], "2024")
        self.assertEqual(self.cells(report, "offices_by_region"), {("LVR",): 95, ("LWL",): 91})
        by_kind = self.cells(report, "offices_by_region_kind")
        self.assertEqual(by_kind[("LVR", "kreis")], 12)
        self.assertEqual(by_kind[("LWL", "kreisangehoerige_stadt")], 64)
        self.assertEqual(sum(by_kind.values()), 186)
        # Population totals agree with SQL straight from the directory.
        expected = {tuple(r[:2]): int(r[2]) for r in self.stack.sql(
            "SELECT region, kind, sum(population_under_18) FROM offices GROUP BY 1, 2")}
        self.assertEqual(self.cells(report, "population_under_18_by_region_kind"), expected)
        self.assertEqual(report["watermark"]["offices"], 186)
        self.assertRegex(report["content_hash"], r"^sha256:[0-9a-f]{64}$")
        # Directory facts are public: nothing in them is suppressed.
        self.assertTrue(all(not c["suppressed"] for t in report["tables"]
                            if t["id"].startswith(("offices_", "population_")) for c in t["cells"]))

    def test_region_report_and_cycle_period(self):
        report = self.report_for(self.create({"scope": "region", "region": "LWL",
                                               "period": "2023-2028"}))
        self.assertEqual(self.cells(report, "offices_by_region"), {("LWL",): 91})
        self.assertEqual(report["params"], {"scope": "region", "region": "LWL",
                                            "period": "2023-2028"})

    def test_same_inputs_give_same_content_hash(self):
        a = self.report_for(self.create(VALID))
        b = self.report_for(self.create(VALID))
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(a["content_hash"], b["content_hash"])

    def test_reports_are_immutable_in_the_database(self):
        report = self.report_for(self.create(VALID))
        with self.assertRaises(AssertionError):
            self.stack.sql(f"UPDATE reports SET period = '1999' WHERE id = '{report['id']}'")
        with self.assertRaises(AssertionError):
            self.stack.sql(f"DELETE FROM reports WHERE id = '{report['id']}'")

    def test_bad_report_requests_change_nothing(self):
        json_ct = {"Content-Type": "application/json"}
        cases = [
            # (body or raw bytes, headers, status, errors)
            ({"scope": "kreis", "period": "2024"}, None, 422,
             [{"pointer": "/scope", "code": "enum"}]),
            ({"scope": "state", "period": "24"}, None, 422,
             [{"pointer": "/period", "code": "length"}]),
            ({"scope": "state", "period": "2024-25"}, None, 422,
             [{"pointer": "/period", "code": "format"}]),
            ({"scope": "state", "period": "2024-2029"}, None, 422,
             [{"pointer": "/period", "code": "format"}]),
            ({"scope": "state", "period": "1999"}, None, 422,
             [{"pointer": "/period", "code": "format"}]),
            ({"scope": "state", "period": 2024}, None, 422,
             [{"pointer": "/period", "code": "type"}]),
            ({"scope": "state"}, None, 422, [{"pointer": "/period", "code": "required"}]),
            ({}, None, 422, [{"pointer": "/scope", "code": "required"},
                             {"pointer": "/period", "code": "required"}]),
            ({"scope": None, "period": "2024"}, None, 422, [{"pointer": "/scope", "code": "type"}]),
            ({"scope": "state", "period": "2024", "extra": 1}, None, 422,
             [{"pointer": "/extra", "code": "unknown_field"}]),
            ({"scope": "state", "period": "2024", "a/b~": 1}, None, 422,
             [{"pointer": "/a~1b~0", "code": "unknown_field"}]),
            ({"scope": "region", "period": "2024"}, None, 422,
             [{"pointer": "/region", "code": "required"}]),
            ({"scope": "region", "region": "NRW", "period": "2024"}, None, 422,
             [{"pointer": "/region", "code": "enum"}]),
            ({"scope": "state", "region": "LVR", "period": "2024"}, None, 422,
             [{"pointer": "/region", "code": "forbidden"}]),
            ([1, 2], None, 422, [{"pointer": "", "code": "type"}]),
            (b'{"scope": "state", "period": ', json_ct, 400, [{"code": "syntax"}]),
            (b'', json_ct, 400, [{"code": "syntax"}]),
            (b'{"scope": "st\xffte", "period": "2024"}', json_ct, 400, [{"code": "invalid_utf8"}]),
            (b'{"scope": "state", "scope": "state", "period": "2024"}', json_ct, 400,
             [{"code": "duplicate_key"}]),
            (b'{"a":' * 20 + b'1' + b'}' * 20, json_ct, 400, None),
            (b'{"scope": "state", "period": "2024"}', {"Content-Type": "text/plain"}, 415, None),
            (b'{"scope": "state", "period": "2024"}', {}, 415, None),
            (b'{"scope": "state", "period": "2024"}',
             {"Content-Type": "application/json; charset=latin-1"}, 415, None),
        ]
        before = self.state()
        for body, headers, status, errors in cases:
            with self.subTest(body=body, headers=headers):
                if isinstance(body, bytes):
                    r = self.stack.post("/v1/reports", raw=body, headers=headers)
                else:
                    r = self.stack.post("/v1/reports", body)
                self.assertProblem(r, status, errors=errors)
                self.assertEqual(self.state(), before)

    def test_unknown_query_parameter_on_post_changes_nothing(self):
        before = self.state()
        r = self.stack.post("/v1/reports?dry=1", VALID)
        self.assertProblem(r, 400, errors=[{"parameter": "dry", "code": "unknown_parameter"}])
        self.assertEqual(self.state(), before)

    def test_unknown_job_and_report_are_404(self):
        for path in ("/v1/jobs/00000000-0000-4000-8000-000000000000", "/v1/jobs/not-a-uuid",
                     "/v1/reports/00000000-0000-4000-8000-000000000000", "/v1/reports/1"):
            with self.subTest(path=path):
                self.assertProblem(self.stack.get(path), 404)


if __name__ == "__main__":
    unittest.main()
