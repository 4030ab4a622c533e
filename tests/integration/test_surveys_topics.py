"""Structure surveys and quality-development topics: validation, If-Match, one survey per
procedure, the topic workflow, encryption at rest, isolation, and that bad input changes
nothing."""

import datetime
import subprocess
import unittest

from harness import StackTestCase

DESCRIPTION = "Übergaben zwischen ASD-Teams klären; Fall Familie Kowalski zeigte Lücken."
UNKNOWN = "00000000-0000-4000-8000-000000000000"
SURVEY_OPTIONAL = ["vacancies_fte", "staff_turnover_12m", "share_experience_under_2y_percent",
                   "cases_per_fte", "written_8a_last_revised", "on_call_24_7",
                   "agreements_8a4_count", "insofa_pool_size", "supervision",
                   "training_hours_per_fte", "standard_risk_instrument", "cooperation",
                   "child_complaint_procedure"]


def future(days=3):
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


def survey(procedure, **over):
    body = {
        "procedure_id": procedure, "reference_date": "2024-12-31",
        "asd_staff_fte": 42.5, "vacancies_fte": 3.5, "staff_turnover_12m": 6,
        "share_experience_under_2y_percent": 18.2, "cases_per_fte": 31,
        "written_8a_procedure": True, "written_8a_last_revised": "2023-06-01",
        "on_call_24_7": True, "agreements_8a4_count": 57, "insofa_pool_size": 9,
        "supervision": True, "training_hours_per_fte": 24.5, "standard_risk_instrument": False,
        "cooperation": {"police": True, "health": True, "schools": False, "family_court": True},
        "child_complaint_procedure": False,
    }
    body.update(over)
    return body


def without(body, *keys):
    return {k: v for k, v in body.items() if k not in keys}


def topic(procedure, **over):
    body = {"procedure_id": procedure, "theme": "information_sharing", "priority": "high",
            "description": DESCRIPTION, "follow_up_date": "2026-03-31"}
    body.update(over)
    return body


class SurveysTopicsTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        # An open demo procedure with an institute, and an open one of another office that
        # this institute does not co-run.
        cls.proc, cls.office, cls.institute = s.open_procedure()
        cls.other_proc, cls.other_office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
            f" AND office_id <> '{cls.office}' AND institute_id IS DISTINCT FROM"
            f" '{cls.institute}' AND NOT out_of_cycle ORDER BY id LIMIT 1")[0]
        cls.tok = {
            "office": s.token("office_staff", office=cls.office)[0],
            "lead": s.token("office_lead", office=cls.office)[0],
            "other_office": s.token("office_staff", office=cls.other_office)[0],
            "institute": s.token("institute", institute=cls.institute)[0],
            "advisor": s.token("advisor", region="LVR")[0],
            "ministry": s.token("ministry")[0],
            "admin": s.default_token,
        }

    # --- helpers ---------------------------------------------------------------------
    def new_procedure(self, office=None, institute="default", phase="structure_analysis"):
        """A fresh out-of-cycle procedure (surveys are one per procedure)."""
        office = office or self.office
        institute = self.institute if institute == "default" else institute
        inst = f"'{institute}'" if institute else "NULL"
        return self.stack.sql_value(
            "INSERT INTO procedures (office_id, cycle, out_of_cycle, institute_id, phase)"
            f" VALUES ('{office}', '2023-2028', true, {inst}, '{phase}') RETURNING id")

    def send(self, method, path, body=None, token="office", etag=None, headers=None):
        hdrs = dict(headers or {})
        if etag is not None:
            hdrs["If-Match"] = etag
        return self.stack.request(method, path, body=body, headers=hdrs, token=self.tok[token])

    def create_survey(self, body, token="office"):
        r = self.send("POST", "/v1/structure-surveys", body, token=token)
        self.assertEqual(r.status, 201, r)
        return r

    def create_topic(self, body, token="office"):
        r = self.send("POST", "/v1/topics", body, token=token)
        self.assertEqual(r.status, 201, r)
        return r

    def state(self):
        """Row counts (and version sums, so an UPDATE shows) of everything a write touches."""
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM structure_surveys),"
            " (SELECT coalesce(sum(version), 0) FROM structure_surveys),"
            " (SELECT count(*) FROM topics), (SELECT coalesce(sum(version), 0) FROM topics),"
            " (SELECT count(*) FROM audit_log), (SELECT count(*) FROM outbox)")[0]

    def audit(self, action, resource_id):
        return self.stack.sql(
            "SELECT role, office_id, details::text FROM audit_log"
            f" WHERE action = '{action}' AND resource_id = '{resource_id}' ORDER BY id")

    def office_events(self):
        return int(self.stack.sql_value(
            "SELECT count(*) FROM outbox WHERE kind = 'office_changed'"
            f" AND payload->>'office_id' = '{self.office}'"))

    # --- structure surveys ------------------------------------------------------------
    def test_survey_create_read_etag_and_put_with_if_match(self):
        proc = self.new_procedure()
        events = self.office_events()
        r = self.create_survey(without(survey(proc), "cases_per_fte", "cooperation"))
        s = r.json()
        self.assertEqual(r.header("Location"), f"/v1/structure-surveys/{s['id']}")
        self.assertEqual(r.header("ETag"), '"v1"')
        expected = {**without(survey(proc), "procedure_id"), "cases_per_fte": None,
                    "cooperation": None}
        self.assertEqual({k: s[k] for k in expected}, expected)
        self.assertEqual((s["procedure_id"], s["office_id"], s["version"]),
                         (proc, self.office, 1))
        self.assertEqual(list(s)[:3], ["id", "procedure_id", "office_id"])
        self.assertEqual(list(s)[-3:], ["version", "created_at", "updated_at"])
        self.assertEqual(self.office_events(), events + 1)
        self.assertEqual([a[:2] for a in self.audit("structure_survey.create", s["id"])],
                         [["office_staff", self.office]])

        path = r.header("Location")
        g = self.send("GET", path)
        self.assertEqual((g.status, g.header("ETag"), g.json()), (200, '"v1"', s))
        g = self.send("GET", path, headers={"If-None-Match": '"v1"'})
        self.assertEqual((g.status, g.body), (304, b""))
        # An office reading its own survey is not audited; the institute's read is.
        self.assertEqual(self.audit("structure_survey.read", s["id"]), [])
        self.assertEqual(self.send("GET", path, token="institute").json(), s)
        self.assertEqual([a[:2] for a in self.audit("structure_survey.read", s["id"])],
                         [["institute", self.office]])
        self.assertEqual(self.send("GET", path, token="admin").status, 200)

        # PUT replaces the whole survey and needs the current ETag.
        before = self.state()
        replacement = without(survey(proc, asd_staff_fte=44, written_8a_procedure=False),
                              "procedure_id", "written_8a_last_revised", "vacancies_fte")
        self.assertProblem(self.send("PUT", path, replacement), 428)
        stale = self.send("PUT", path, replacement, etag='"v7"')
        self.assertProblem(stale, 412)
        self.assertEqual(stale.header("ETag"), '"v1"')
        self.assertProblem(self.send("PUT", path, replacement, etag="v1"), 412)
        self.assertEqual(self.state(), before)
        u = self.send("PUT", path, replacement, token="lead", etag='W/"v1"')
        self.assertEqual(u.status, 200, u)
        self.assertEqual(u.header("ETag"), '"v2"')
        body = u.json()
        self.assertEqual((body["version"], body["asd_staff_fte"], body["vacancies_fte"],
                          body["written_8a_last_revised"], body["cooperation"]["police"]),
                         (2, 44, None, None, True))
        self.assertEqual(body["created_at"], s["created_at"])
        self.assertEqual(self.send("GET", path).json(), body)
        # The representation can be PUT back as it was read, procedure_id and nulls included.
        again = {k: v for k, v in body.items()
                 if k not in ("id", "office_id", "version", "created_at", "updated_at")}
        again["procedure_id"] = proc.upper()
        u = self.send("PUT", path, again, etag='"v2"')
        # It changes nothing, so nothing is written: the same version, no audit entry.
        self.assertEqual((u.status, u.json()["version"], u.header("ETag")), (200, 2, '"v2"'), u)
        updates = self.audit("structure_survey.update", s["id"])
        self.assertEqual(len(updates), 1)
        self.assertIn('"asd_staff_fte"', updates[0][2])
        self.assertEqual(self.office_events(), events + 2)

    def test_second_survey_for_a_procedure_is_409_naming_the_first(self):
        proc = self.new_procedure()
        first = self.create_survey(survey(proc)).json()
        before = self.state()
        r = self.send("POST", "/v1/structure-surveys", survey(proc, asd_staff_fte=1), token="lead")
        body = self.assertProblem(r, 409)
        self.assertEqual(body["existing_id"], first["id"])
        self.assertEqual(r.header("Location"), f"/v1/structure-surveys/{first['id']}")
        # The procedure's institute gets the same answer.
        r = self.send("POST", "/v1/structure-surveys", survey(proc), token="institute")
        self.assertEqual(self.assertProblem(r, 409)["existing_id"], first["id"])
        self.assertEqual(self.state(), before)

    def test_survey_dry_run_validates_and_stores_nothing(self):
        proc = self.new_procedure()
        before = self.state()
        r = self.send("POST", "/v1/structure-surveys?dry_run=true", survey(proc))
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["procedure_id"], r.json()["version"]), (proc, 1))
        self.assertIsNone(r.header("Location"))
        r = self.send("POST", "/v1/structure-surveys?dry_run=true", survey(proc, asd_staff_fte=-1))
        self.assertProblem(r, 422, errors=[{"pointer": "/asd_staff_fte", "code": "range"}])
        self.assertProblem(self.send("POST", "/v1/structure-surveys?dry_run=yes", survey(proc)),
                           400, errors=[{"parameter": "dry_run", "code": "enum"}])
        self.assertEqual(self.state(), before)
        self.create_survey(survey(proc))
        r = self.send("POST", "/v1/structure-surveys?dry_run=true", survey(proc))
        self.assertProblem(r, 409)

    def test_institute_writes_only_its_assigned_procedures(self):
        proc = self.new_procedure()
        r = self.create_survey(survey(proc), token="institute")
        self.assertEqual(r.json()["office_id"], self.office)
        t = self.create_topic(topic(proc), token="institute").json()
        self.assertEqual(t["description"], DESCRIPTION)
        self.assertEqual(self.audit("topic.create", t["id"])[0][:2], ["institute", self.office])
        unassigned = self.new_procedure(institute=None)
        before = self.state()
        for path, body in (("/v1/structure-surveys", survey(unassigned)),
                           ("/v1/topics", topic(unassigned))):
            with self.subTest(path=path):
                self.assertProblem(self.send("POST", path, body, token="institute"), 422,
                                   errors=[{"pointer": "/procedure_id", "code": "not_found"}])
        self.assertEqual(self.state(), before)

    def test_survey_list_filters_and_pages_by_update_time(self):
        procs = [self.new_procedure() for _ in range(3)]
        ids = [self.create_survey(survey(p)).json()["id"] for p in procs]
        other = self.new_procedure(office=self.other_office, institute=None)
        other_id = self.create_survey(survey(other), token="other_office").json()["id"]
        seen, cursor = [], None
        while True:
            q = f"/v1/structure-surveys?office_id={self.office}&limit=2"
            r = self.send("GET", q + (f"&cursor={cursor}" if cursor else ""))
            self.assertEqual(r.status, 200, r)
            seen += [s["id"] for s in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
            self.assertIn('rel="next"', r.header("Link"))
        self.assertTrue(set(ids) <= set(seen))
        self.assertNotIn(other_id, seen)
        self.assertEqual(len(seen), len(set(seen)))
        one = self.send("GET", f"/v1/structure-surveys?procedure_id={procs[1]}").json()["items"]
        self.assertEqual([s["id"] for s in one], [ids[1]])
        # Another office sees only its own, whatever it filters by.
        mine = self.send("GET", "/v1/structure-surveys?limit=500", token="other_office").json()
        self.assertEqual({s["office_id"] for s in mine["items"]}, {self.other_office})
        foreign = self.send("GET", f"/v1/structure-surveys?office_id={self.office}",
                            token="other_office").json()
        self.assertEqual(foreign["items"], [])
        self.assertEqual(self.send("GET", f"/v1/structure-surveys?updated_since={future()}")
                         .json()["items"], [])
        # Admin lists across offices; the list is audited.
        audited = self.stack.sql_value(
            "SELECT count(*) FROM audit_log WHERE action = 'structure_survey.list'")
        admin = self.send("GET", "/v1/structure-surveys?limit=500", token="admin").json()
        self.assertTrue({*ids, other_id} <= {s["id"] for s in admin["items"]})
        self.assertEqual(int(self.stack.sql_value(
            "SELECT count(*) FROM audit_log WHERE action = 'structure_survey.list'")),
            int(audited) + 1)

    # --- topics -------------------------------------------------------------------------
    def test_topic_create_read_etag_and_patch_with_if_match(self):
        r = self.create_topic(topic(self.proc))
        t = r.json()
        self.assertEqual(r.header("Location"), f"/v1/topics/{t['id']}")
        self.assertEqual(r.header("ETag"), '"v1"')
        self.assertEqual({k: t[k] for k in ("procedure_id", "office_id", "theme", "priority",
                                            "status", "description", "follow_up_date",
                                            "version")},
                         {"procedure_id": self.proc, "office_id": self.office,
                          "theme": "information_sharing", "priority": "high",
                          "status": "identified", "description": DESCRIPTION,
                          "follow_up_date": "2026-03-31", "version": 1})
        path = r.header("Location")
        self.assertEqual(self.send("GET", path).json(), t)
        self.assertEqual(self.send("GET", path, headers={"If-None-Match": '"v1"'}).status, 304)
        self.assertEqual(self.send("GET", path, token="institute").json()["description"],
                         DESCRIPTION)
        admin = self.send("GET", path, token="admin").json()
        self.assertIsNone(admin["description"])
        self.assertEqual(admin["theme"], "information_sharing")

        before = self.state()
        self.assertProblem(self.send("PATCH", path, {"priority": "low"}), 428)
        r = self.send("PATCH", path, {"priority": "low"}, etag='"v2"')
        self.assertProblem(r, 412)
        self.assertEqual(r.header("ETag"), '"v1"')
        self.assertEqual(self.state(), before)
        r = self.send("PATCH", path, {"priority": "low", "follow_up_date": None,
                                      "procedure_id": self.proc}, etag='"v1"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("ETag"), '"v2"')
        p = r.json()
        self.assertEqual((p["priority"], p["follow_up_date"], p["description"], p["theme"]),
                         ("low", None, DESCRIPTION, "information_sharing"))
        r = self.send("PATCH", path, {"description": "Neu: Fallübergaben"}, etag='"v2"',
                      token="institute")
        self.assertEqual(r.json()["description"], "Neu: Fallübergaben")
        r = self.send("PATCH", path, {"description": None}, etag='"v3"')
        self.assertIsNone(r.json()["description"])
        self.assertEqual(self.stack.sql_value(
            f"SELECT description_enc IS NULL FROM topics WHERE id = '{t['id']}'"), "t")
        updates = self.audit("topic.update", t["id"])
        self.assertEqual(len(updates), 3)
        self.assertIn('"fields": ["priority", "follow_up_date"]', updates[0][2])

    def test_topic_status_moves_along_its_workflow_and_each_move_is_audited(self):
        t = self.create_topic(topic(self.proc, theme="documentation")).json()
        path = f"/v1/topics/{t['id']}"
        r = self.send("PATCH", path, {"status": "in_progress"}, etag='"v1"')
        self.assertEqual((r.status, r.json()["status"]), (200, "in_progress"), r)
        r = self.send("PATCH", path, {"status": "implemented", "priority": "low"}, etag='"v2"',
                      token="lead")
        self.assertEqual((r.status, r.json()["status"]), (200, "implemented"), r)
        moves = self.stack.sql(
            "SELECT role, details->>'from', details->>'to' FROM audit_log"
            f" WHERE action = 'topic.status' AND resource_id = '{t['id']}' ORDER BY id")
        self.assertEqual(moves, [["office_staff", "identified", "in_progress"],
                                 ["office_lead", "in_progress", "implemented"]])
        before = self.state()
        # Implemented is final.
        body = self.assertProblem(self.send("PATCH", path, {"status": "dropped"}, etag='"v3"'),
                                  409)
        self.assertEqual(body["allowed_next"], [])
        self.assertIn("implemented", body["detail"])
        self.assertEqual(self.state(), before)
        # The same status again is no move.
        r = self.send("PATCH", path, {"status": "implemented"}, etag='"v3"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(moves), len(self.stack.sql(
            f"SELECT 1 FROM audit_log WHERE action = 'topic.status' AND resource_id = '{t['id']}'")))

        # identified → dropped is allowed; identified → implemented and back are not.
        u = self.create_topic(topic(self.proc, theme="childs_voice", priority="medium")).json()
        upath = f"/v1/topics/{u['id']}"
        before = self.state()
        body = self.assertProblem(self.send("PATCH", upath, {"status": "implemented"},
                                            etag='"v1"'), 409)
        self.assertEqual(body["allowed_next"], ["in_progress", "dropped"])
        self.assertEqual(body["detail"],
                         "A topic in status identified can only move to in_progress or dropped.")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.send("PATCH", upath, {"status": "dropped"}, etag='"v1"').status, 200)
        self.assertEqual(self.audit("topic.status", u["id"])[0][2],
                         '{"to": "dropped", "from": "identified", "fields": ["status"]}')
        v = self.create_topic(topic(self.proc, status="in_progress")).json()
        vpath = f"/v1/topics/{v['id']}"
        body = self.assertProblem(self.send("PATCH", vpath, {"status": "identified"},
                                            etag='"v1"'), 409)
        self.assertEqual(body["allowed_next"], ["implemented", "dropped"])
        self.assertEqual(self.send("PATCH", vpath, {"status": "dropped"}, etag='"v1"').status, 200)

    def test_topic_description_is_encrypted_at_rest(self):
        secret = "Einzigartige Beschreibung 7c3e91 mit Namen Nowak"
        t = self.create_topic(topic(self.proc, description=secret)).json()
        envelope = self.stack.sql_value(
            f"SELECT description_enc FROM topics WHERE id = '{t['id']}'")
        self.assertTrue(envelope.startswith("v1.k1."), envelope)
        dump = subprocess.run(["pg_dump", self.stack.db_url], capture_output=True, text=True,
                              check=True).stdout
        self.assertNotIn("7c3e91", dump)
        self.assertNotIn("Nowak", dump)
        with open(self.stack.logs + "/api.log") as f:
            self.assertNotIn("7c3e91", f.read())
        self.assertEqual(self.send("GET", f"/v1/topics/{t['id']}").json()["description"], secret)
        # The envelope is bound to its topic: moved to another row it does not decrypt.
        other = self.create_topic(topic(self.proc, description="anders")).json()
        self.stack.sql(f"UPDATE topics SET description_enc = '{envelope}'"
                       f" WHERE id = '{other['id']}'")
        self.assertIsNone(self.send("GET", f"/v1/topics/{other['id']}").json()["description"])

    def test_topic_list_filters(self):
        proc = self.new_procedure()
        a = self.create_topic(topic(proc)).json()
        b = self.create_topic(topic(proc, status="in_progress")).json()
        items = self.send("GET", f"/v1/topics?procedure_id={proc}").json()["items"]
        self.assertEqual([i["id"] for i in items], [a["id"], b["id"]])
        self.assertEqual(items[0]["description"], DESCRIPTION)
        items = self.send("GET", f"/v1/topics?procedure_id={proc}&status=in_progress").json()["items"]
        self.assertEqual([i["id"] for i in items], [b["id"]])
        admin = self.send("GET", f"/v1/topics?procedure_id={proc}", token="admin").json()["items"]
        self.assertEqual([i["description"] for i in admin], [None, None])
        self.assertEqual(self.send("GET", f"/v1/topics?procedure_id={proc}",
                                   token="other_office").json()["items"], [])
        page = self.send("GET", f"/v1/topics?procedure_id={proc}&limit=1").json()
        nxt = self.send("GET", f"/v1/topics?procedure_id={proc}&limit=1&cursor={page['next_cursor']}")
        self.assertEqual([i["id"] for i in nxt.json()["items"]], [b["id"]])
        self.assertEqual(self.send("GET", f"/v1/topics?updated_since={future()}").json()["items"],
                         [])

    # --- isolation and state ------------------------------------------------------------
    def test_foreign_office_gets_404_and_advisor_ministry_403(self):
        proc = self.new_procedure()
        s = self.create_survey(survey(proc)).json()
        t = self.create_topic(topic(proc)).json()
        spath, tpath = f"/v1/structure-surveys/{s['id']}", f"/v1/topics/{t['id']}"
        before = self.state()
        for path in (spath, tpath):
            with self.subTest(path=path):
                self.assertProblem(self.send("GET", path, token="other_office"), 404)
                for role in ("advisor", "ministry"):
                    self.assertProblem(self.send("GET", path, token=role), 403)
        self.assertProblem(self.send("PUT", spath, survey(proc), token="other_office",
                                     etag='"v1"'), 404)
        self.assertProblem(self.send("PATCH", tpath, {"priority": "low"}, token="other_office",
                                     etag='"v1"'), 404)
        for role in ("advisor", "ministry", "admin"):
            with self.subTest(role=role):
                self.assertProblem(self.send("POST", "/v1/structure-surveys",
                                             survey(self.new_procedure()), token=role), 403)
                self.assertProblem(self.send("POST", "/v1/topics", topic(proc), token=role), 403)
                self.assertProblem(self.send("PUT", spath, survey(proc), token=role,
                                             etag='"v1"'), 403)
                self.assertProblem(self.send("PATCH", tpath, {"priority": "low"}, token=role,
                                             etag='"v1"'), 403)
        for role in ("advisor", "ministry"):
            for path in ("/v1/structure-surveys", "/v1/topics"):
                with self.subTest(role=role, path=path):
                    self.assertProblem(self.send("GET", path, token=role), 403)
        self.assertProblem(self.send("GET", "/v1/topics/not-a-uuid"), 404)
        self.assertEqual(self.state(), before)

    def test_completed_procedure_takes_no_writes(self):
        proc = self.new_procedure()
        s = self.create_survey(survey(proc)).json()
        t = self.create_topic(topic(proc)).json()
        done = self.new_procedure(phase="completed")
        self.stack.sql(f"UPDATE procedures SET phase = 'completed' WHERE id = '{proc}'")
        before = self.state()
        cases = [("POST", "/v1/structure-surveys", survey(done), None),
                 ("POST", "/v1/topics", topic(done), None),
                 ("PUT", f"/v1/structure-surveys/{s['id']}", survey(proc, asd_staff_fte=1),
                  '"v1"'),
                 ("PATCH", f"/v1/topics/{t['id']}", {"priority": "low"}, '"v1"'),
                 ("PATCH", f"/v1/topics/{t['id']}", {"status": "in_progress",
                                                     "description": "neu"}, '"v1"')]
        for method, path, body, etag in cases:
            with self.subTest(method=method, path=path):
                self.assertProblem(self.send(method, path, body, etag=etag), 409)
        self.assertEqual(self.state(), before)
        # Reading stays possible, and the office keeps working on its topics:
        # status and follow-up date still move after the procedure completed.
        self.assertEqual(self.send("GET", f"/v1/topics/{t['id']}").status, 200)
        r = self.send("PATCH", f"/v1/topics/{t['id']}",
                      {"status": "in_progress", "follow_up_date": "2027-06-30"}, etag='"v1"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "in_progress")

    def test_unknown_query_parameters_are_400(self):
        cases = [("GET", "/v1/structure-surveys?status=x", "status", "unknown_parameter"),
                 ("GET", "/v1/structure-surveys?procedure_id=12", "procedure_id", "format"),
                 ("GET", "/v1/structure-surveys?updated_since=gestern", "updated_since",
                  "format"),
                 ("GET", "/v1/topics?status=done", "status", "enum"),
                 ("GET", "/v1/topics?office_id=Not_An_Id", "office_id", "format"),
                 ("GET", "/v1/topics?limit=501", "limit", "range"),
                 ("GET", "/v1/topics?cursor=abc", "cursor", "invalid_cursor"),
                 ("GET", f"/v1/topics/{UNKNOWN}?fields=all", "fields", "unknown_parameter"),
                 ("POST", "/v1/topics?force=true", "force", "unknown_parameter")]
        before = self.state()
        for method, path, parameter, code in cases:
            with self.subTest(path=path):
                r = self.send(method, path, topic(self.proc) if method == "POST" else None)
                self.assertProblem(r, 400, errors=[{"parameter": parameter, "code": code}])
        self.assertEqual(self.state(), before)

    def test_bad_inputs_answer_422_with_pointer_and_code_and_change_nothing(self):
        p = self.new_procedure()
        s = self.create_survey(survey(p)).json()
        t = self.create_topic(topic(p)).json()
        fresh = self.new_procedure()  # has no survey yet: a valid body would be created
        other = self.new_procedure()
        spath, tpath = f"/v1/structure-surveys/{s['id']}", f"/v1/topics/{t['id']}"
        post_s = ("POST", "/v1/structure-surveys")
        put_s = ("PUT", spath)
        post_t = ("POST", "/v1/topics")
        patch_t = ("PATCH", tpath)
        cases = [
            # structure surveys: create
            (post_s, without(survey(fresh), "procedure_id"), [("/procedure_id", "required")]),
            (post_s, survey("12345"), [("/procedure_id", "format")]),
            (post_s, survey(UNKNOWN), [("/procedure_id", "not_found")]),
            (post_s, survey(self.other_proc), [("/procedure_id", "not_found")]),
            (post_s, without(survey(fresh), "reference_date"), [("/reference_date", "required")]),
            (post_s, survey(fresh, reference_date="2024-02-30"), [("/reference_date", "format")]),
            (post_s, survey(fresh, reference_date=future(), written_8a_last_revised=None),
             [("/reference_date", "range")]),
            (post_s, survey(fresh, asd_staff_fte=-0.5), [("/asd_staff_fte", "range")]),
            (post_s, survey(fresh, asd_staff_fte=2000.5), [("/asd_staff_fte", "range")]),
            (post_s, survey(fresh, asd_staff_fte="42"), [("/asd_staff_fte", "type")]),
            (post_s, survey(fresh, asd_staff_fte=None), [("/asd_staff_fte", "type")]),
            (post_s, survey(fresh, vacancies_fte=501), [("/vacancies_fte", "range")]),
            (post_s, survey(fresh, staff_turnover_12m=2.5), [("/staff_turnover_12m", "type")]),
            (post_s, survey(fresh, share_experience_under_2y_percent=100.1),
             [("/share_experience_under_2y_percent", "range")]),
            (post_s, survey(fresh, cases_per_fte=1001), [("/cases_per_fte", "range")]),
            (post_s, without(survey(fresh), "written_8a_procedure"),
             [("/written_8a_procedure", "required")]),
            (post_s, survey(fresh, written_8a_procedure="ja"), [("/written_8a_procedure", "type")]),
            (post_s, survey(fresh, written_8a_procedure=False),
             [("/written_8a_last_revised", "forbidden")]),
            (post_s, survey(fresh, written_8a_last_revised="2025-01-01"),
             [("/written_8a_last_revised", "range")]),
            (post_s, survey(fresh, agreements_8a4_count=10001), [("/agreements_8a4_count", "range")]),
            (post_s, survey(fresh, insofa_pool_size=-1), [("/insofa_pool_size", "range")]),
            (post_s, survey(fresh, training_hours_per_fte=1000.01),
             [("/training_hours_per_fte", "range")]),
            (post_s, survey(fresh, cooperation={"police": True, "youth_club": True}),
             [("/cooperation/youth_club", "unknown_field")]),
            (post_s, survey(fresh, cooperation={"police": "yes"}), [("/cooperation/police", "type")]),
            (post_s, survey(fresh, cooperation=[]), [("/cooperation", "type")]),
            (post_s, survey(fresh, remarks="Frau K. fehlt oft"), [("/remarks", "unknown_field")]),
            # every bad field at once, cross-field rules after the fields
            (post_s, survey(UNKNOWN, asd_staff_fte=-1, on_call_24_7="x",
                            reference_date=future(), written_8a_last_revised=None),
             [("/procedure_id", "not_found"), ("/asd_staff_fte", "range"),
              ("/on_call_24_7", "type"), ("/reference_date", "range")]),
            # structure surveys: replacement
            (put_s, survey(other), [("/procedure_id", "immutable")]),
            (put_s, without(survey(p), "asd_staff_fte"), [("/asd_staff_fte", "required")]),
            (put_s, survey(p, written_8a_procedure=False, insofa_pool_size=1001),
             [("/insofa_pool_size", "range"), ("/written_8a_last_revised", "forbidden")]),
            # topics: create
            (post_t, without(topic(p), "theme", "priority"),
             [("/theme", "required"), ("/priority", "required")]),
            (post_t, without(topic(p), "procedure_id"), [("/procedure_id", "required")]),
            (post_t, topic(p, procedure_id=42), [("/procedure_id", "type")]),
            (post_t, topic(self.other_proc), [("/procedure_id", "not_found")]),
            (post_t, topic(p, theme="astrology"), [("/theme", "enum")]),
            (post_t, topic(p, priority="urgent"), [("/priority", "enum")]),
            (post_t, topic(p, description=""), [("/description", "length")]),
            (post_t, topic(p, description="x" * 5001), [("/description", "length")]),
            (post_t, topic(p, status="done"), [("/status", "enum")]),
            (post_t, topic(p, follow_up_date="2026-13-01"), [("/follow_up_date", "format")]),
            (post_t, topic(p, owner="Herr M."), [("/owner", "unknown_field")]),
            (post_t, topic(UNKNOWN, theme="x", priority=None),
             [("/procedure_id", "not_found"), ("/theme", "enum"), ("/priority", "type")]),
            # topics: merge patch
            (patch_t, {"theme": None}, [("/theme", "type")]),
            (patch_t, {"status": None}, [("/status", "type")]),
            (patch_t, {"procedure_id": other}, [("/procedure_id", "immutable")]),
            (patch_t, {"description": 17, "priority": "urgent"},
             [("/priority", "enum"), ("/description", "type")]),
            (patch_t, {"follow_up_date": "morgen", "owner": "x"},
             [("/follow_up_date", "format"), ("/owner", "unknown_field")]),
        ]
        self.assertGreaterEqual(len(cases), 25)
        before = self.state()
        for (method, path), body, expected in cases:
            with self.subTest(method=method, body={k: v for k, v in body.items()
                                                   if k != "description"}):
                etag = '"v1"' if method in ("PUT", "PATCH") else None
                r = self.send(method, path, body, etag=etag)
                self.assertProblem(r, 422, errors=[{"pointer": ptr, "code": code}
                                                   for ptr, code in expected])
                self.assertEqual(self.state(), before)
        self.assertEqual(self.send("GET", spath).json(), s)
        self.assertEqual(self.send("GET", tpath).json(), t)


if __name__ == "__main__":
    unittest.main()
