"""§ 8 procedures: opening, forward-only phases with If-Match, the cycle status view."""

import unittest

from harness import StackTestCase

CYCLE = "2023-2028"
PHASES = ["planned", "case_selection", "case_analysis", "structure_analysis", "evaluation",
          "report", "completed"]


class ProceduresTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.office = "demo-lvr-002"
        cls.other = "demo-lwl-002"
        cls.tok = {
            "office": s.token("office_lead", office=cls.office)[0],
            "other": s.token("office_staff", office=cls.other)[0],
            "institute": s.token("institute", institute="demo-institut-2")[0],
            "advisor": s.token("advisor", region="LWL")[0],
            "ministry": s.token("ministry")[0],
            "admin": s.default_token,
        }

    def new_procedure(self, token="office", **extra):
        body = {"cycle": CYCLE, "out_of_cycle": True}
        body.update(extra)
        r = self.stack.post("/v1/procedures", body, token=self.tok[token])
        self.assertEqual(r.status, 201, r)
        return r

    def patch(self, path, body, etag, token="office"):
        headers = {"If-Match": etag} if etag else {}
        return self.stack.request("PATCH", path, body=body, headers=headers, token=self.tok[token])

    def test_office_opens_an_out_of_cycle_procedure(self):
        r = self.new_procedure(due_date="2027-03-31")
        p = r.json()
        self.assertEqual((p["office_id"], p["phase"], p["version"], p["out_of_cycle"]),
                         (self.office, "planned", 1, True))
        self.assertEqual(r.header("ETag"), '"v1"')
        self.assertEqual(r.header("Location"), f"/v1/procedures/{p['id']}")

    def test_second_in_cycle_procedure_is_409_with_location(self):
        existing = self.stack.sql_value(f"SELECT id FROM procedures WHERE office_id = '{self.office}'"
                                        f" AND cycle = '{CYCLE}' AND NOT out_of_cycle")
        before = self.stack.sql_value("SELECT count(*) FROM procedures")
        r = self.stack.post("/v1/procedures", {"cycle": CYCLE}, token=self.tok["office"])
        self.assertEqual(self.assertProblem(r, 409)["existing_id"], existing)
        self.assertEqual(r.header("Location"), f"/v1/procedures/{existing}")
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM procedures"), before)

    def test_admin_opens_a_procedure_for_an_office_in_the_next_cycle(self):
        r = self.stack.post("/v1/procedures", {"office_id": self.other, "cycle": "2028-2033",
                                               "institute_id": "demo-institut-3"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["institute_id"], "demo-institut-3")

    def test_bad_procedure_requests_change_nothing(self):
        cases = [
            ("office", {"cycle": "2024-2029"}, 422, [{"pointer": "/cycle", "code": "format"}]),
            ("office", {}, 422, [{"pointer": "/cycle", "code": "required"}]),
            ("office", {"cycle": CYCLE, "office_id": self.other}, 422,
             [{"pointer": "/office_id", "code": "not_found"}]),
            ("office", {"cycle": CYCLE, "out_of_cycle": True, "institute_id": "nope"}, 422,
             [{"pointer": "/institute_id", "code": "not_found"}]),
            ("office", {"cycle": CYCLE, "due_date": "2027-02-30"}, 422,
             [{"pointer": "/due_date", "code": "format"}]),
            ("office", {"cycle": CYCLE, "phase": "completed"}, 422,
             [{"pointer": "/phase", "code": "forbidden"}]),
            ("admin", {"cycle": "2028-2033"}, 422, [{"pointer": "/office_id", "code": "required"}]),
            ("admin", {"cycle": "2028-2033", "office_id": "demo-xyz-999"}, 422,
             [{"pointer": "/office_id", "code": "not_found"}]),
            ("institute", {"cycle": CYCLE}, 403, None),
            ("advisor", {"cycle": CYCLE}, 403, None),
            ("ministry", {"cycle": CYCLE}, 403, None),
        ]
        before = self.stack.sql("SELECT count(*) FROM procedures UNION ALL"
                                " SELECT count(*) FROM audit_log")
        for token, body, status, errors in cases:
            with self.subTest(token=token, body=body):
                r = self.stack.post("/v1/procedures", body, token=self.tok[token])
                self.assertProblem(r, status, errors=errors)
        self.assertEqual(self.stack.sql("SELECT count(*) FROM procedures UNION ALL"
                                        " SELECT count(*) FROM audit_log"), before)

    def test_phases_move_forward_one_step_with_if_match(self):
        path = self.new_procedure().header("Location")
        etag = '"v1"'
        for phase in PHASES[1:]:
            r = self.patch(path, {"phase": phase}, etag)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["phase"], phase)
            etag = r.header("ETag")
        self.assertEqual(etag, f'"v{len(PHASES)}"')
        pid = path.rsplit("/", 1)[1]
        moves = self.stack.sql("SELECT details->'phase'->>'from', details->'phase'->>'to'"
                               f" FROM audit_log WHERE action = 'procedure.phase'"
                               f" AND resource_id = '{pid}' ORDER BY id")
        self.assertEqual(moves, [[a, b] for a, b in zip(PHASES, PHASES[1:])])
        # Completed is the end.
        self.assertProblem(self.patch(path, {"phase": "report"}, etag), 409)

    def test_illegal_moves_and_preconditions(self):
        path = self.new_procedure().header("Location")
        r = self.patch(path, {"phase": "case_selection"}, '"v1"')
        self.assertEqual(r.status, 200)
        version_row = f"SELECT version, phase FROM procedures WHERE id = '{path.rsplit('/', 1)[1]}'"
        before = self.stack.sql(version_row)
        cases = [
            ({"phase": "planned"}, '"v2"', 409),          # backwards
            ({"phase": "evaluation"}, '"v2"', 409),       # skipping
            ({"phase": "case_analysis"}, None, 428),      # no If-Match
            ({"phase": "case_analysis"}, '"v1"', 412),    # stale
            ({"phase": "case_analysis"}, 'garbage', 412),
            ({"phase": "done"}, '"v2"', 422),
            ({"phase": None}, '"v2"', 422),
            ({"cycle": "2028-2033"}, '"v2"', 422),
        ]
        for body, etag, status in cases:
            with self.subTest(body=body, etag=etag):
                self.assertProblem(self.patch(path, body, etag), status)
        self.assertEqual(self.stack.sql(version_row), before)
        r = self.patch(path, {"phase": "case_analysis"}, 'W/"v2"')
        self.assertEqual(r.status, 200)

    def test_foreign_office_and_institute_rules(self):
        path = self.new_procedure().header("Location")
        self.assertProblem(self.patch(path, {"phase": "case_selection"}, '"v1"', token="other"), 404)
        self.assertProblem(self.stack.get(path, token=self.tok["other"]), 404)
        r = self.patch(path, {"institute_id": "demo-institut-2"}, '"v1"')
        self.assertEqual(r.status, 200)
        # The assigned institute moves the phase but cannot reassign.
        r = self.patch(path, {"phase": "case_selection"}, '"v2"', token="institute")
        self.assertEqual(r.status, 200, r)
        # A role that may not do something gets 403, and nothing changes.
        r = self.patch(path, {"institute_id": None}, '"v3"', token="institute")
        self.assertProblem(r, 403, detail="An institute cannot reassign a procedure.")
        self.assertEqual(self.stack.get(path, token=self.tok["office"]).json()["version"], 3)

    def test_dry_run_and_updated_since(self):
        count = "SELECT count(*) FROM procedures"
        before = self.stack.sql_value(count)
        r = self.stack.post("/v1/procedures?dry_run=true", {"cycle": CYCLE, "out_of_cycle": True},
                            token=self.tok["office"])
        self.assertEqual(r.status, 200, r)
        would = r.json()  # the procedure as it would be: nothing is kept
        self.assertEqual((would["cycle"], would["phase"], would["out_of_cycle"]),
                         (CYCLE, "planned", True))
        self.assertIsNone(r.header("Location"))
        self.assertEqual(self.stack.sql_value(count), before)
        path = self.new_procedure().header("Location")
        r = self.stack.request("PATCH", path + "?dry_run=true", body={"phase": "case_selection"},
                               headers={"If-Match": '"v1"'}, token=self.tok["office"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["phase"], r.json()["version"]), ("case_selection", 1))
        self.assertEqual(r.header("ETag"), '"v1"')  # still the one to send for the real write
        self.assertEqual(self.stack.get(path, token=self.tok["office"]).json()["version"], 1)
        since = self.stack.get("/v1/procedures?updated_since=2099-01-01",
                               token=self.tok["office"]).json()["items"]
        self.assertEqual(since, [])
        mine = self.stack.get("/v1/procedures?updated_since=2020-01-01T00:00:00Z",
                              token=self.tok["office"]).json()["items"]
        self.assertIn(path.rsplit("/", 1)[1], [p["id"] for p in mine])
        self.assertProblem(self.stack.get("/v1/procedures?updated_since=soon",
                                          token=self.tok["office"]), 400,
                           errors=[{"parameter": "updated_since", "code": "format"}])

    def test_etag_and_if_none_match(self):
        path = self.new_procedure().header("Location")
        r = self.stack.get(path, token=self.tok["office"])
        self.assertEqual(r.header("ETag"), '"v1"')
        r = self.stack.get(path, token=self.tok["office"], headers={"If-None-Match": '"v1"'})
        self.assertEqual((r.status, r.body), (304, b""))
        r = self.stack.get(path, token=self.tok["office"], headers={"If-None-Match": '"v9"'})
        self.assertEqual(r.status, 200)

    def test_cycle_status_view_for_ministry_and_advisor(self):
        r = self.stack.get(f"/v1/cycles/{CYCLE}/offices", token=self.tok["ministry"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["cycle"], CYCLE)
        items = r.json()["items"]
        self.assertEqual(len(items), 186)
        self.assertTrue(all(set(i) == {"office_id", "status"} for i in items))
        expected = {o: s for o, s in self.stack.sql(
            "SELECT office_id, CASE WHEN phase = 'completed' THEN 'completed'"
            " WHEN due_date < current_date THEN 'overdue' ELSE 'in_progress' END"
            f" FROM procedures WHERE cycle = '{CYCLE}' AND NOT out_of_cycle")}
        self.assertEqual({i["office_id"]: i["status"] for i in items}, expected)
        # A cycle may be named by its start year.
        short = self.stack.get("/v1/cycles/2023/offices?status=due", token=self.tok["ministry"])
        self.assertEqual(short.status, 200, short)
        self.assertEqual(short.json()["cycle"], CYCLE)
        # Next cycle: nobody has a procedure yet except those opened by the tests.
        due = self.stack.get("/v1/cycles/2028-2033/offices?status=due",
                             token=self.tok["advisor"]).json()["items"]
        self.assertTrue(all(i["office_id"].startswith("demo-lwl-") for i in due))
        self.assertGreaterEqual(len(due), 90)
        self.assertTrue(all(i["status"] == "due" for i in due))
        for path, status, errors in [
                ("/v1/cycles/2024/offices", 404, None),
                ("/v1/cycles/2024-2029/offices", 404, None),
                (f"/v1/cycles/{CYCLE}/offices?status=late", 400,
                 [{"parameter": "status", "code": "enum"}]),
                (f"/v1/cycles/{CYCLE}/offices?limit=5", 400,
                 [{"parameter": "limit", "code": "unknown_parameter"}])]:
            with self.subTest(path=path):
                self.assertProblem(self.stack.get(path, token=self.tok["ministry"]), status,
                                   errors=errors)
        # The procedures themselves are not theirs to read.
        self.assertProblem(self.stack.get("/v1/procedures", token=self.tok["ministry"]), 403)
        self.assertProblem(self.stack.get("/v1/procedures", token=self.tok["advisor"]), 403)

if __name__ == "__main__":
    unittest.main()
