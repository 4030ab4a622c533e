"""Programmes: programmes and calls, applications by the deadline, the selection within the
places (every move of an application tested), the ranking with its diversity view, clusters,
and offices outside NRW that take part without entering NRW's statistics."""

import hashlib
import json
import unittest

from harness import StackTestCase, psql

UNKNOWN = "00000000-0000-4000-8000-000000000000"
STATUSES = ["submitted", "waitlisted", "selected", "rejected", "withdrawn"]
# The moves that exist, and who may make each (migration 0023, handlers/applications.c).
MOVES = {
    ("submitted", "waitlisted"): {"team"}, ("submitted", "selected"): {"team"},
    ("submitted", "rejected"): {"team"}, ("waitlisted", "selected"): {"team"},
    ("waitlisted", "rejected"): {"team"}, ("submitted", "withdrawn"): {"lead", "team"},
    ("waitlisted", "withdrawn"): {"lead", "team"}, ("selected", "withdrawn"): {"lead", "team"},
    ("withdrawn", "submitted"): {"lead"},
}


def programme(**over):
    body = {"title": "Aus Fehlern lernen (Test)", "legal_basis": "Bundesprogramm",
            "sponsor": "Bundesministerium (Test)", "commissioned_by": None,
            "run_by": "Nationales Zentrum Frühe Hilfen (Test)", "starts_on": "2026-01-01",
            "ends_on": "2027-12-31", "nrw_only": True}
    body.update(over)
    return body


def call(programme_id, **over):
    body = {"programme_id": programme_id, "title": "Interessenbekundung",
            "deadline": "2099-01-01T12:00:00Z",
            "criteria": [
                {"id": "interest", "text": "Ausdrückliches Interesse an Qualitätsentwicklung",
                 "answer": "yes_no", "weight": 3},
                {"id": "problematic-cases", "text": "Problematische Fallverläufe erlebt",
                 "answer": "yes_no", "weight": 2},
                {"id": "motivation", "text": "Was möchten Sie lernen?", "answer": "text"}],
            "places": {"model": 2, "partner": 3}}
    body.update(over)
    return body


def answers(interest=True, cases=False, text="Fehler als Lernchance"):
    return {"interest": interest, "problematic-cases": cases, "motivation": text}


class ProgrammesTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id LIMIT 8")]
        s.sql("INSERT INTO offices_elsewhere (id, name, kind, state, population_under_18)"
              " VALUES ('test-by-1', 'Jugendamt Teststadt (Bayern)', 'kreisfreie_stadt', 'BY',"
              " 30000) ON CONFLICT DO NOTHING")
        r = s.post("/v1/programmes", programme())
        assert r.status == 201, r
        cls.prog = r.json()["id"]
        r = s.post("/v1/programmes", programme(title="Bundesweit (Test)", nrw_only=False))
        assert r.status == 201, r
        cls.nationwide = r.json()["id"]
        cls.tok = {"admin": s.default_token,
                   "team": s.token("programme_team", programme=cls.prog)[0],
                   "team2": s.token("programme_team", programme=cls.nationwide)[0],
                   "ministry": s.token("ministry")[0],
                   "advisor": s.token("advisor", region="LVR")[0]}
        for i, office in enumerate(cls.offices):
            cls.tok[f"lead{i}"] = s.token("office_lead", office=office)[0]
            cls.tok[f"staff{i}"] = s.token("office_staff", office=office)[0]

    def send(self, method, path, body=None, token="admin", etag=None):
        headers = {"If-Match": etag} if etag is not None else {}
        return self.stack.request(method, path, body=body, headers=headers,
                                  token=self.tok[token])

    def state(self):
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM programmes), (SELECT count(*) FROM calls),"
            " (SELECT count(*) FROM applications), (SELECT count(*) FROM clusters),"
            " (SELECT count(*) FROM cluster_members),"
            " (SELECT coalesce(sum(version), 0) FROM applications),"
            " (SELECT count(*) FROM materials), (SELECT count(*) FROM material_files),"
            " (SELECT count(*) FROM audit_log)")[0]

    def new_call(self, **over):
        r = self.send("POST", "/v1/calls", call(self.prog, **over), token="team")
        self.assertEqual(r.status, 201, r)
        return r.json()

    def apply(self, call_id, i, **over):
        body = {"call_id": call_id, "preferred_role": "model", "answers": answers()}
        body.update(over)
        r = self.send("POST", "/v1/applications", body, token=f"lead{i}")
        self.assertEqual(r.status, 201, r)
        return r.json()

    def close(self, call_id, team="team"):
        """The team closes the call (a deadline in the past)."""
        c = self.send("GET", f"/v1/calls/{call_id}", token=team).json()
        r = self.send("PATCH", f"/v1/calls/{call_id}", {"deadline": "2020-01-01T00:00:00Z"},
                      token=team, etag=f'"v{c["version"]}"')
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["open"])

    def patch(self, application, body, token):
        a = self.stack.sql(f"SELECT version FROM applications WHERE id = '{application}'")[0][0]
        return self.send("PATCH", f"/v1/applications/{application}", body, token=token,
                         etag=f'"v{a}"')

    def test_1_programmes_are_kept_by_admin_and_read_by_everyone(self):
        r = self.send("GET", f"/v1/programmes/{self.prog}", token="ministry")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["nrw_only"], r.json()["run_by"]),
                         (True, "Nationales Zentrum Frühe Hilfen (Test)"))
        before = self.state()
        for token in ("team", "lead0", "ministry", "advisor"):
            self.assertProblem(self.send("POST", "/v1/programmes", programme(), token=token), 403)
        r = self.send("POST", "/v1/programmes",
                      programme(title="", starts_on="2027-01-01", ends_on="2026-01-01",
                                nrw_only="yes", sponsor=None, extra=1))
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/ends_on", "/extra", "/nrw_only", "/sponsor", "/title"])
        self.assertEqual(self.state(), before)
        p = self.send("GET", f"/v1/programmes/{self.prog}").json()
        r = self.send("PATCH", f"/v1/programmes/{self.prog}", {"ends_on": "2028-06-30"},
                      etag=f'"v{p["version"]}"')
        self.assertEqual((r.status, r.json()["ends_on"]), (200, "2028-06-30"), r)
        me = self.send("GET", "/v1/me", token="team").json()
        self.assertEqual((me["role"], me["programme_id"]), ("programme_team", self.prog))

    def test_2_a_call_with_criteria_and_places(self):
        c = self.new_call()
        self.assertEqual((c["open"], c["places"], c["selected"], len(c["criteria"])),
                         (True, {"model": 2, "partner": 3}, {}, 3))
        before = self.state()
        bad = call(self.prog, deadline="2099-01-01", places={},
                   criteria=[{"id": "a", "text": "x", "answer": "yes_no"},
                             {"id": "a", "text": "y", "answer": "text", "weight": 2},
                             {"id": "B C", "text": "", "answer": "maybe"}])
        r = self.send("POST", "/v1/calls", bad, token="team")
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/criteria/1/id", "/criteria/1/weight", "/criteria/2/answer",
                          "/criteria/2/id", "/criteria/2/text", "/deadline", "/places"])
        # Only its own programme's team writes a call; nobody else at all.
        self.assertProblem(self.send("POST", "/v1/calls", call(self.prog), token="team2"), 422,
                           errors=[{"pointer": "/programme_id", "code": "not_found"}])
        for token in ("admin", "lead0", "ministry"):
            self.assertProblem(self.send("POST", "/v1/calls", call(self.prog), token=token), 403)
        self.assertEqual(self.state(), before)
        for token in ("lead0", "staff1", "ministry", "advisor", "team2"):
            self.assertIn(c["id"], [x["id"] for x in self.send(
                "GET", f"/v1/calls?programme_id={self.prog}&open=true",
                token=token).json()["items"]])

    def test_3_an_office_applies_once_by_the_deadline(self):
        c = self.new_call()
        before = self.state()
        body = {"call_id": c["id"], "preferred_role": "model",
                "answers": {"interest": "ja", "motivation": "", "other": True}}
        r = self.send("POST", "/v1/applications", body, token="lead0")
        self.assertProblem(r, 422)
        self.assertEqual(sorted((e["pointer"], e["code"]) for e in r.json()["errors"]),
                         [("/answers/interest", "type"), ("/answers/motivation", "length"),
                          ("/answers/other", "unknown_field"),
                          ("/answers/problematic-cases", "required")])
        self.assertProblem(self.send("POST", "/v1/applications",
                                     dict(body, answers=answers()), token="staff0"), 403)
        self.assertProblem(self.send("POST", "/v1/applications",
                                     dict(body, answers=answers(), office_id=self.offices[1]),
                                     token="lead0"), 422,
                           errors=[{"pointer": "/office_id", "code": "forbidden"}])
        self.assertEqual(self.state(), before)
        a = self.apply(c["id"], 0, answers=answers(cases=True))
        self.assertEqual((a["office_id"], a["status"], a["points"], a["answers"]["motivation"],
                          a["entered_by"], a["score"]),
                         (self.offices[0], "submitted", 5, "Fehler als Lernchance", "office",
                          None))
        # The answers are stored encrypted.
        self.assertNotIn("Lernchance", self.stack.sql_value(
            f"SELECT answers_enc FROM applications WHERE id = '{a['id']}'"))
        before = self.state()
        r = self.send("POST", "/v1/applications", dict(body, answers=answers()), token="lead0")
        self.assertProblem(r, 409)
        self.assertEqual(r.header("Location"), f"/v1/applications/{a['id']}")
        self.assertEqual(self.state(), before)
        # Another office, an advisor, the ministry and another programme's team see nothing.
        for token in ("lead1", "staff1", "team2"):
            self.assertProblem(self.send("GET", f"/v1/applications/{a['id']}", token=token), 404)
            self.assertEqual(self.send("GET", f"/v1/applications?call_id={c['id']}",
                                       token=token).json()["items"], [])
        for token in ("advisor", "ministry"):
            self.assertProblem(self.send("GET", f"/v1/applications/{a['id']}", token=token), 403)
        self.assertEqual(self.send("GET", f"/v1/applications/{a['id']}",
                                   token="team").json()["answers"], a["answers"])
        self.assertIsNone(self.send("GET", f"/v1/applications/{a['id']}",
                                    token="admin").json()["answers"])
        # The office edits its answers while the call is open; after the deadline nothing.
        r = self.patch(a["id"], {"answers": answers(cases=False, text="Neu")}, "lead0")
        self.assertEqual((r.status, r.json()["points"]), (200, 3), r)
        self.close(c["id"])
        before = self.state()
        r = self.patch(a["id"], {"preferred_role": "partner"}, "lead0")
        self.assertProblem(r, 409, errors=[{"pointer": "/call_id", "code": "closed"}])
        r = self.send("POST", "/v1/applications", dict(body, answers=answers()), token="lead1")
        self.assertProblem(r, 409, errors=[{"pointer": "/call_id", "code": "closed"}])
        self.assertEqual(self.state(), before)

    def test_4_every_move_of_an_application(self):
        c = self.new_call(places={"model": 8})
        apps = [self.apply(c["id"], i)["id"] for i in range(2)]
        self.close(c["id"])
        a = apps[0]
        for (src, dst) in [(s, d) for s in STATUSES for d in STATUSES if s != d]:
            for who in ("lead", "team"):
                with self.subTest(src=src, dst=dst, who=who):
                    role = "'model'" if src == "selected" else "NULL"
                    self.stack.sql(f"UPDATE applications SET status = '{src}', role = {role}"
                                   f" WHERE id = '{a}'")
                    before = self.state()
                    body = {"status": dst}
                    if dst == "selected":
                        body["role"] = "model"
                    r = self.patch(a, body, "lead0" if who == "lead" else "team")
                    allowed = MOVES.get((src, dst), set())
                    if who in allowed and (src, dst) != ("withdrawn", "submitted"):
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.json()["status"], dst)
                        self.assertEqual(r.json()["role"],
                                         "model" if dst == "selected" else None)
                        continue
                    if (src, dst) == ("withdrawn", "submitted") and who == "lead":
                        # The move exists, but the call has closed.
                        self.assertProblem(r, 409, errors=[{"pointer": "/call_id",
                                                            "code": "closed"}])
                    elif not allowed:
                        body = self.assertProblem(r, 409)
                        self.assertEqual(body["errors"][0]["code"], "transition")
                    else:
                        self.assertProblem(r, 403)
                    self.assertEqual(self.state(), before)
        # Each decision is audited as a move.
        self.assertIn(["application.status", "submitted", "selected"], self.stack.sql(
            "SELECT action, details->>'from', details->>'to' FROM audit_log"
            f" WHERE resource = 'application' AND resource_id = '{a}'"))

    def test_5_the_selection_respects_places_and_waits_for_the_deadline(self):
        c = self.new_call(places={"model": 1, "partner": 1})
        apps = [self.apply(c["id"], i, answers=answers(cases=i % 2 == 0))["id"]
                for i in range(4)]
        before = self.state()
        r = self.patch(apps[0], {"status": "selected", "role": "model"}, "team")
        self.assertProblem(r, 409, errors=[{"pointer": "/status", "code": "open"}])
        self.assertEqual(self.state(), before)
        self.close(c["id"])
        # The team's scores order the ranking before the points.
        self.assertEqual(self.patch(apps[3], {"score": 90}, "team").status, 200)
        self.assertProblem(self.patch(apps[3], {"score": 95}, "lead3"), 403)
        ranking = self.send("GET", f"/v1/calls/{c['id']}/ranking", token="team").json()
        self.assertEqual([i["application_id"] for i in ranking["items"]],
                         [apps[3], apps[0], apps[2], apps[1]])
        self.assertEqual([i["points"] for i in ranking["items"]], [3, 5, 5, 3])
        self.assertEqual(ranking["items"][0]["adds"], ["state", "region", "kind", "size"])
        self.assertEqual(self.patch(apps[3], {"status": "selected", "role": "model"},
                                    "team").status, 200)
        before = self.state()
        r = self.patch(apps[0], {"status": "selected", "role": "model"}, "team")
        self.assertProblem(r, 409, errors=[{"pointer": "/role", "code": "full"}])
        r = self.patch(apps[0], {"status": "selected", "role": "pilot"}, "team")
        self.assertProblem(r, 422, errors=[{"pointer": "/role", "code": "enum"}])
        r = self.patch(apps[0], {"status": "rejected", "role": "model"}, "team")
        self.assertProblem(r, 422, errors=[{"pointer": "/role", "code": "forbidden"}])
        self.assertEqual(self.state(), before)
        self.assertEqual(self.patch(apps[0], {"status": "waitlisted"}, "team").status, 200)
        self.assertEqual(self.patch(apps[2], {"status": "selected", "role": "partner"},
                                    "team").status, 200)
        ranking = self.send("GET", f"/v1/calls/{c['id']}/ranking", token="team").json()
        self.assertEqual(ranking["places"], [
            {"role": "model", "places": 1, "selected": 1, "remaining": 0},
            {"role": "partner", "places": 1, "selected": 1, "remaining": 0}])
        self.assertEqual(sum(ranking["selected"]["state"].values()), 2)
        # The places cannot drop below the selected; the criteria, answered, cannot change.
        cur = self.send("GET", f"/v1/calls/{c['id']}", token="team").json()
        self.assertEqual(cur["selected"], {"model": 1, "partner": 1})
        r = self.send("PATCH", f"/v1/calls/{c['id']}", {"places": {"model": 0}}, token="team",
                      etag=f'"v{cur["version"]}"')
        self.assertEqual(r.status, 422, r)
        r = self.send("PATCH", f"/v1/calls/{c['id']}", {"places": {"model": None}},
                      token="team", etag=f'"v{cur["version"]}"')
        self.assertProblem(r, 409, errors=[{"pointer": "/places", "code": "selected"}])
        r = self.send("PATCH", f"/v1/calls/{c['id']}", {"criteria": [
            {"id": "x", "text": "Neu", "answer": "text"}]}, token="team",
            etag=f'"v{cur["version"]}"')
        self.assertProblem(r, 409, errors=[{"pointer": "/criteria", "code": "answered"}])
        # The selected model drops out: its place frees, the waiting list moves up.
        self.assertEqual(self.patch(apps[3], {"status": "withdrawn"}, "lead3").status, 200)
        self.assertEqual(self.patch(apps[0], {"status": "selected", "role": "model"},
                                    "team").status, 200)
        # The office reads the decision on its application, without the team's score.
        a = self.send("GET", f"/v1/applications/{apps[0]}", token="lead0").json()
        self.assertEqual((a["status"], a["role"], a["score"]), ("selected", "model", None))
        self.assertIsNotNone(a["decided_at"])
        for token in ("lead0", "ministry", "team2"):
            self.assertEqual(self.send("GET", f"/v1/calls/{c['id']}/ranking",
                                       token=token).status,
                             403 if token != "team2" else 404)

    def test_6_clusters_of_selected_participants(self):
        # The nationwide programme, whose offices 4 to 7 have applied nowhere else in it.
        r = self.send("POST", "/v1/calls", call(self.nationwide, places={"model": 1,
                                                                         "partner": 3}),
                      token="team2")
        self.assertEqual(r.status, 201, r)
        c = r.json()
        o = self.offices[4:8]
        apps = [self.apply(c["id"], 4 + i)["id"] for i in range(4)]
        self.close(c["id"], team="team2")
        self.patch(apps[0], {"status": "selected", "role": "model"}, "team2")
        self.patch(apps[1], {"status": "selected", "role": "partner"}, "team2")
        self.patch(apps[2], {"status": "selected", "role": "partner"}, "team2")
        before = self.state()
        cluster = {"programme_id": self.nationwide, "name": "Cluster Nord"}
        r = self.send("POST", "/v1/clusters", dict(cluster, model_office_id=o[1],
                                                   partner_office_ids=[o[1]]), token="team2")
        self.assertProblem(r, 422, errors=[{"pointer": "/partner_office_ids/0",
                                            "code": "duplicate"}])
        r = self.send("POST", "/v1/clusters", dict(cluster, model_office_id=o[1],
                                                   partner_office_ids=[o[2], o[3]]),
                      token="team2")
        self.assertProblem(r, 422)
        self.assertEqual(sorted((e["pointer"], e["code"]) for e in r.json()["errors"]),
                         [("/model_office_id", "not_selected"),
                          ("/partner_office_ids/1", "not_selected")])
        self.assertProblem(self.send("POST", "/v1/clusters", dict(cluster, model_office_id=o[0]),
                                     token="team"), 422,
                           errors=[{"pointer": "/programme_id", "code": "not_found"}])
        for token in ("admin", "lead4", "ministry"):
            self.assertProblem(self.send("POST", "/v1/clusters",
                                         dict(cluster, model_office_id=o[0]), token=token), 403)
        self.assertEqual(self.state(), before)
        r = self.send("POST", "/v1/clusters", dict(cluster, model_office_id=o[0],
                                                   partner_office_ids=[o[2], o[1]]),
                      token="team2")
        self.assertEqual(r.status, 201, r)
        k = r.json()
        self.assertEqual((k["model_office_id"], k["partner_office_ids"]),
                         (o[0], sorted([o[1], o[2]])))
        r = self.send("POST", "/v1/clusters", dict(cluster, name="Cluster Süd",
                                                   model_office_id=o[0]), token="team2")
        self.assertProblem(r, 422, errors=[{"pointer": "/model_office_id", "code": "taken"}])
        r = self.send("PATCH", f"/v1/clusters/{k['id']}", {"name": "Cluster Nord-West"},
                      token="team2", etag=f'"v{k["version"]}"')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "Cluster Nord-West")
        # A partner that drops out leaves its cluster; everyone reads the clusters.
        self.assertEqual(self.patch(apps[2], {"status": "withdrawn"}, "lead6").status, 200)
        k = self.send("GET", f"/v1/clusters/{k['id']}", token="ministry").json()
        self.assertEqual(k["partner_office_ids"], [o[1]])
        self.assertEqual([x["id"] for x in self.send(
            "GET", f"/v1/clusters?programme_id={self.nationwide}", token="lead0").json()["items"]],
            [k["id"]])

    def test_7_offices_outside_nrw(self):
        r = self.send("GET", "/v1/offices/test-by-1", token="lead0")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["state"], r.json()["region"]), ("BY", None))
        by = self.send("GET", "/v1/offices?state=BY&limit=100", token="lead0").json()["items"]
        self.assertIn("test-by-1", [o["id"] for o in by])
        self.assertEqual({(o["state"], o["region"]) for o in by}, {("BY", None)})
        self.assertEqual(self.send("GET", f"/v1/offices/{self.offices[0]}",
                                   token="lead0").json()["state"], "NW")
        # An NRW-only programme takes none; a nationwide one does, entered by its team.
        r = self.send("POST", "/v1/calls", call(self.nationwide), token="team2")
        self.assertEqual(r.status, 201, r)
        nationwide_call = r.json()["id"]
        nrw_call = self.new_call()["id"]
        body = {"preferred_role": "partner", "answers": answers(), "office_id": "test-by-1"}
        before = self.state()
        r = self.send("POST", "/v1/applications", dict(body, call_id=nrw_call), token="team")
        self.assertProblem(r, 422, errors=[{"pointer": "/office_id", "code": "forbidden"}])
        r = self.send("POST", "/v1/applications", dict(body, call_id=nrw_call, office_id="nope"),
                      token="team")
        self.assertProblem(r, 422, errors=[{"pointer": "/office_id", "code": "not_found"}])
        self.assertProblem(self.send("POST", "/v1/applications",
                                     dict(body, call_id=nationwide_call), token="team"), 422,
                           errors=[{"pointer": "/call_id", "code": "not_found"}])
        self.assertEqual(self.state(), before)
        r = self.send("POST", "/v1/applications", dict(body, call_id=nationwide_call),
                      token="team2")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["entered_by"], "programme_team")
        # The nationwide programme cannot become NRW-only while it has them.
        p = self.send("GET", f"/v1/programmes/{self.nationwide}").json()
        r = self.send("PATCH", f"/v1/programmes/{self.nationwide}", {"nrw_only": True},
                      etag=f'"v{p["version"]}"')
        self.assertProblem(r, 409, errors=[{"pointer": "/nrw_only",
                                            "code": "participants_elsewhere"}])
        # They never enter NRW's figures: the cycle status lists NRW's offices only.
        listed = [o["office_id"] for o in self.send(
            "GET", "/v1/cycles/2023-2028/offices").json()["items"]]
        self.assertEqual(len(listed), int(self.stack.sql_value("SELECT count(*) FROM offices")))
        self.assertNotIn("test-by-1", listed)
        # One id names one office: NRW's table refuses an id the other holds.
        with self.assertRaisesRegex(AssertionError, "already in the directory"):
            self.stack.sql("INSERT INTO offices (id, name, kind, region) VALUES"
                           " ('test-by-1', 'x', 'kreis', 'LVR')")

    def test_8_the_demo_programmes(self):
        s = self.stack
        demo = {p["title"]: p for p in self.send("GET", "/v1/programmes?limit=100",
                                                token="ministry").json()["items"]
                if p["synthetic"]}
        self.assertEqual(len(demo), 3)
        pilot = next(p for t, p in demo.items() if "§ 7" in t)
        nationwide = next(p for t, p in demo.items() if not p["nrw_only"])
        team = s.token("programme_team", programme=pilot["id"])[0]
        calls = s.get(f"/v1/calls?programme_id={pilot['id']}", token=team).json()["items"]
        self.assertEqual([(c["places"], c["selected"]) for c in calls],
                         [({"pilot": 8}, {"pilot": 8})])
        apps = s.get(f"/v1/applications?call_id={calls[0]['id']}&limit=100",
                     token=team).json()["items"]
        self.assertEqual(len(apps), 14)
        self.assertEqual(sorted(a["status"] for a in apps), ["rejected"] * 6 + ["selected"] * 8)
        self.assertTrue(all(set(a["answers"]) == {"interest", "capacity", "motivation"}
                            for a in apps))
        # The pilot's working group: six meetings, 24 places taken, two waiting, attendance
        # recorded; the team reads who took part.
        groups = [e for e in s.get(f"/v1/events?programme_id={pilot['id']}&kind="
                                   "working_group_meeting", token=team).json()["items"]]
        self.assertEqual([(len(e["dates"]), e["registered"], e["waitlisted"]) for e in groups],
                         [(6, 24, 2)])
        regs = s.get(f"/v1/event-registrations?event_id={groups[0]['id']}&status=registered"
                     "&limit=100", token=team).json()["items"]
        self.assertEqual(len(regs), 24)
        self.assertTrue(all(r["person"]["email"].endswith("@example.invalid") for r in regs))
        self.assertGreater(sum(r["attended"].count(True) for r in regs), 24 * 5)
        self.assertEqual(s.get(f"/v1/events.ics?programme_id={pilot['id']}",
                               token=team).body.decode().count("BEGIN:VEVENT"), 8)
        # The quality offensive's registered professionals, their persons read by its team.
        offensive = next(p for t, p in demo.items() if "Qualitätsoffensive" in t)
        team = s.token("programme_team", programme=offensive["id"])[0]
        pros = s.get(f"/v1/registrations?programme_id={offensive['id']}",
                     token=team).json()["items"]
        self.assertEqual(sorted(p["status"] for p in pros),
                         ["approved"] * 6 + ["confirmed"] * 2 + ["rejected", "unconfirmed"])
        self.assertTrue(all(p["person"]["email"].endswith(".invalid") and p["seat_ags"]
                            for p in pros))
        # Its materials: a link to a recording and a method for participants only; the
        # public ones of the other programmes are read without a token, files and all.
        mats = s.get(f"/v1/materials?programme_id={offensive['id']}", token=team).json()["items"]
        self.assertEqual(sorted((m["kind"], m["visibility"], m["file"] is None) for m in mats),
                         [("method", "programme", False), ("recording", "programme", True)])
        public = s.get("/v1/materials?visibility=public", token=None).json()["items"]
        self.assertEqual(len([m for m in public if m["title"].endswith("(synthetisch)")]), 2)
        for m in public:
            f = s.get(m["file"]["href"], token=None)
            self.assertEqual((f.status, hashlib.sha256(f.body).hexdigest(), len(f.body)),
                             (200, m["file"]["sha256"], m["file"]["size"]))
        team = s.token("programme_team", programme=nationwide["id"])[0]
        call_id = s.get(f"/v1/calls?programme_id={nationwide['id']}",
                        token=team).json()["items"][0]["id"]
        ranking = s.get(f"/v1/calls/{call_id}/ranking", token=team).json()
        self.assertEqual(ranking["places"], [
            {"role": "model", "places": 12, "selected": 12, "remaining": 0},
            {"role": "partner", "places": 36, "selected": 36, "remaining": 0}])
        self.assertEqual(len(ranking["items"]), 60)
        self.assertEqual(ranking["selected"]["state"], {k: int(v) for k, v in s.sql(
            "SELECT d.state, count(*) FROM applications a JOIN directory d"
            f" ON d.id = a.office_id WHERE a.call_id = '{call_id}' AND a.status = 'selected'"
            " GROUP BY 1")})
        self.assertGreater(len(ranking["selected"]["state"]), 10)
        clusters = s.get(f"/v1/clusters?programme_id={nationwide['id']}").json()["items"]
        self.assertEqual([len(k["partner_office_ids"]) for k in clusters], [3] * 12)
        # Thirty offices outside NRW take part; NRW's directory keeps its 186.
        self.assertEqual(s.sql_value("SELECT count(*) FROM offices"), "186")
        self.assertEqual(s.sql_value(
            "SELECT count(*) FROM applications WHERE office_id IN"
            " (SELECT id FROM offices_elsewhere WHERE synthetic)"), "30")
        # A second seed changes nothing.
        before = self.state()
        s.kqe("seed", "--demo", check=True)
        self.assertEqual(self.state(), before)

    def test_9_row_level_security_alone_keeps_applications_apart(self):
        def count(ctx, where="true"):
            sets = "".join(f", set_config('kqe.{k}', '{v}', true)" for k, v in ctx.items())
            out = psql(self.stack.service_url, f"BEGIN; SELECT 1{sets}; SELECT count(*)"
                       f" FROM applications WHERE {where}; COMMIT;")
            return int(out[-1][0])
        office = self.offices[0]
        self.assertEqual(count({"role": "office_lead", "office_id": office},
                               f"office_id <> '{office}'"), 0)
        self.assertGreater(count({"role": "office_lead", "office_id": office}), 0)
        self.assertEqual(count({"role": "programme_team", "programme_id": self.nationwide},
                               f"programme_id <> '{self.nationwide}'"), 0)
        for ctx in ({"role": "ministry"}, {"role": "advisor", "region": "LVR"}, {}):
            self.assertEqual(count(ctx), 0)

    def test_91_concurrent_selections_never_exceed_the_places(self):
        import threading
        c = self.new_call(places={"pilot": 2})
        apps = [self.apply(c["id"], i, preferred_role="pilot")["id"] for i in range(6)]
        self.close(c["id"])
        barrier, results = threading.Barrier(6), []

        def one(a):
            barrier.wait()
            results.append(self.patch(a, {"status": "selected", "role": "pilot"}, "team").status)
        threads = [threading.Thread(target=one, args=(a,)) for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [200, 200, 409, 409, 409, 409])
        self.assertEqual(self.send("GET", f"/v1/calls/{c['id']}", token="team").json()["selected"],
                         {"pilot": 2})


def event(programme_id, **over):
    body = {"programme_id": programme_id, "kind": "workshop",
            "title": "Qualitätswerkstatt", "description": "Fünf zweitägige Treffen",
            "online": False, "place": "Köln", "capacity": 2, "per_office_limit": 1,
            "participants_only": False,
            "dates": [{"starts_at": f"2099-0{m}-01T09:00:00+01:00",
                       "ends_at": f"2099-0{m}-02T16:00:00+01:00"} for m in (1, 3, 5, 7, 9)]}
    body.update(over)
    return body


def person(name, email=None):
    return {"first_name": name, "last_name": "Muster",
            "email": email or f"{name.lower()}@jugendamt.example"}


class EventsTest(StackTestCase):
    """Events of a programme: a series of dates, places and a per-office limit, the waiting
    list, cancellation, attendance per date, feedback, and the calendar export."""
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id LIMIT 3")]
        r = s.post("/v1/programmes", programme(title="Qualitätsoffensive (Test)"))
        assert r.status == 201, r
        cls.prog = r.json()["id"]
        cls.tok = {"admin": s.default_token,
                   "team": s.token("programme_team", programme=cls.prog)[0],
                   "other_team": s.token("programme_team", programme=s.sql_value(
                       f"SELECT id FROM programmes WHERE id <> '{cls.prog}' LIMIT 1"))[0],
                   "ministry": s.token("ministry")[0]}
        for i, office in enumerate(cls.offices):
            cls.tok[f"staff{i}"] = s.token("office_staff", office=office)[0]

    def send(self, method, path, body=None, token="team", etag=None):
        headers = {"If-Match": etag} if etag is not None else {}
        return self.stack.request(method, path, body=body, headers=headers,
                                  token=self.tok[token])

    def state(self):
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_registrations),"
            " (SELECT coalesce(sum(version), 0) FROM event_registrations),"
            " (SELECT count(*) FROM audit_log)")[0]

    def register(self, event_id, i, who, status):
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": event_id, "person": person(who)}, token=f"staff{i}")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["status"], status)
        return r.json()

    def patch(self, path, body, token):
        table = "events" if path.startswith("/v1/events/") else "event_registrations"
        version = self.stack.sql_value(
            f"SELECT version FROM {table} WHERE id = '{path.rsplit('/', 1)[1]}'")
        return self.send("PATCH", path, body, token=token, etag=f'"v{version}"')

    def test_1_a_series_of_dates_and_bad_events(self):
        r = self.send("POST", "/v1/events", event(self.prog))
        self.assertEqual(r.status, 201, r)
        e = r.json()
        self.assertEqual((len(e["dates"]), e["dates"][0]["starts_at"], e["starts_at"],
                          e["ends_at"], e["registered"], e["status"]),
                         (5, "2099-01-01T08:00:00.000000Z", "2099-01-01T08:00:00.000000Z",
                          "2099-09-02T15:00:00.000000Z", 0, "scheduled"))
        before = self.state()
        bad = event(self.prog, kind="party", online=False, place=None, capacity=0,
                    dates=[{"starts_at": "2099-01-02T09:00:00Z", "ends_at": "2099-01-01T09:00:00Z"},
                           {"starts_at": "2099-01-01", "ends_at": "2099-01-03T09:00:00Z"}])
        r = self.send("POST", "/v1/events", bad)
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/capacity", "/dates/1/starts_at", "/kind", "/place"])
        r = self.send("POST", "/v1/events", event(self.prog, dates=[
            {"starts_at": "2099-01-02T09:00:00Z", "ends_at": "2099-01-01T09:00:00Z"},
            {"starts_at": "2099-01-01T08:00:00Z", "ends_at": "2099-01-03T09:00:00Z"}]))
        self.assertProblem(r, 422, errors=[{"pointer": "/dates/0/ends_at", "code": "range"},
                                           {"pointer": "/dates/1/starts_at", "code": "range"}])
        self.assertProblem(self.send("POST", "/v1/events", event(self.prog), token="other_team"),
                           422, errors=[{"pointer": "/programme_id", "code": "not_found"}])
        for token in ("admin", "staff0", "ministry"):
            self.assertProblem(self.send("POST", "/v1/events", event(self.prog), token=token), 403)
        self.assertEqual(self.state(), before)
        self.assertIn(e["id"], [x["id"] for x in self.send(
            "GET", f"/v1/events?programme_id={self.prog}&kind=workshop", token="ministry"
        ).json()["items"]])
        r = self.send("GET", f"/v1/events/{e['id']}", token="staff0")
        self.assertEqual((r.status, r.json()["dates"]), (200, e["dates"]), r)

    def test_2_places_the_per_office_limit_and_the_waiting_list(self):
        e = self.send("POST", "/v1/events", event(self.prog)).json()
        a1 = self.register(e["id"], 0, "Anna", "registered")
        a2 = self.register(e["id"], 0, "Alex", "waitlisted")   # office 0 at its limit
        b1 = self.register(e["id"], 1, "Berta", "registered")
        c1 = self.register(e["id"], 2, "Carl", "waitlisted")   # no place left
        self.assertEqual((a2["waitlist_position"], c1["waitlist_position"]), (1, 2))
        self.assertEqual(a1["person"]["email"], "anna@jugendamt.example")
        # The same person again from the same office: 409 naming the first registration.
        before = self.state()
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": person("Anna")}, token="staff0")
        self.assertProblem(r, 409)
        self.assertEqual(r.header("Location"), f"/v1/event-registrations/{a1['id']}")
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": dict(person("X"), email="not-an-address"),
                       "office_id": self.offices[1]}, token="staff0")
        self.assertProblem(r, 422)
        self.assertEqual([x["pointer"] for x in r.json()["errors"]], ["/person/email"])
        self.assertEqual(self.state(), before)
        # Names are the registering office's and the team's: another office gets 404.
        self.assertProblem(self.send("GET", f"/v1/event-registrations/{a1['id']}",
                                     token="staff1"), 404)
        self.assertIsNone(self.send("GET", f"/v1/event-registrations/{a1['id']}",
                                    token="admin").json()["person"])
        self.assertEqual(self.send("GET", f"/v1/event-registrations/{a1['id']}",
                                   token="team").json()["person"]["first_name"], "Anna")
        self.assertNotIn("Anna", self.stack.sql_value(
            f"SELECT person_enc FROM event_registrations WHERE id = '{a1['id']}'"))
        # Berta cancels: the first who waits and fits moves up — Carl, not Alex (office 0
        # is at its limit).
        r = self.patch(f"/v1/event-registrations/{b1['id']}", {"status": "cancelled"}, "staff1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.send("GET", f"/v1/event-registrations/{c1['id']}",
                                   token="staff2").json()["status"], "registered")
        self.assertEqual(self.send("GET", f"/v1/event-registrations/{a2['id']}",
                                   token="staff0").json()["waitlist_position"], 1)
        self.assertIn([c1["id"]], [json_list(d) for (d,) in self.stack.sql(
            "SELECT details->>'moved_up' FROM audit_log WHERE action = 'event_registration.status'"
            f" AND resource_id = '{b1['id']}'")])
        # More places: the per-office limit still holds; a higher limit lets Alex in.
        r = self.patch(f"/v1/events/{e['id']}", {"capacity": 5}, "team")
        self.assertEqual((r.status, r.json()["registered"], r.json()["waitlisted"]), (200, 2, 1))
        r = self.patch(f"/v1/events/{e['id']}", {"per_office_limit": 2}, "team")
        self.assertEqual((r.json()["registered"], r.json()["waitlisted"]), (3, 0))
        before = self.state()
        r = self.patch(f"/v1/events/{e['id']}", {"capacity": 2}, "team")
        self.assertProblem(r, 409, errors=[{"pointer": "/capacity", "code": "registered"}])
        r = self.patch(f"/v1/events/{e['id']}", {"per_office_limit": 1}, "team")
        self.assertProblem(r, 409, errors=[{"pointer": "/per_office_limit",
                                            "code": "registered"}])
        # Cancelled is final; waiting and registered move by the list only.
        r = self.patch(f"/v1/event-registrations/{b1['id']}", {"status": "registered"}, "staff1")
        self.assertProblem(r, 409)
        r = self.patch(f"/v1/event-registrations/{a1['id']}", {"status": "waitlisted"}, "staff0")
        self.assertProblem(r, 409)
        self.assertEqual(self.state(), before)

    def test_3_participants_only(self):
        e = self.send("POST", "/v1/events", event(self.prog, participants_only=True)).json()
        before = self.state()
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": person("Dora")}, token="staff0")
        self.assertProblem(r, 422, errors=[{"pointer": "/office_id", "code": "not_selected"}])
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": person("Dora")}, token="team")
        self.assertProblem(r, 422, errors=[{"pointer": "/office_id", "code": "required"}])
        self.assertEqual(self.state(), before)

    def test_4_attendance_per_date_and_feedback_after_the_event(self):
        e = self.send("POST", "/v1/events", event(self.prog, dates=[
            {"starts_at": "2099-01-01T09:00:00Z", "ends_at": "2099-01-01T12:00:00Z"},
            {"starts_at": "2099-02-01T09:00:00Z", "ends_at": "2099-02-01T12:00:00Z"}])).json()
        reg = self.register(e["id"], 0, "Emil", "registered")
        self.assertEqual(reg["attended"], [False, False])
        path = f"/v1/event-registrations/{reg['id']}"
        before = self.state()
        self.assertProblem(self.patch(path, {"attended": [True, False]}, "team"), 409,
                           errors=[{"pointer": "/attended", "code": "not_begun"}])
        self.assertProblem(self.patch(path, {"feedback_rating": 5}, "staff0"), 409,
                           errors=[{"pointer": "/feedback_rating", "code": "not_ended"}])
        self.assertEqual(self.state(), before)
        # The series took place (its dates moved into the past).
        r = self.patch(f"/v1/events/{e['id']}", {"dates": [
            {"starts_at": "2020-01-01T09:00:00Z", "ends_at": "2020-01-01T12:00:00Z"},
            {"starts_at": "2020-02-01T09:00:00Z", "ends_at": "2020-02-01T12:00:00Z"}]}, "team")
        self.assertEqual(r.status, 200, r)
        before = self.state()
        self.assertProblem(self.patch(path, {"attended": [True, True]}, "staff0"), 403)
        self.assertProblem(self.patch(path, {"attended": [True]}, "team"), 422,
                           errors=[{"pointer": "/attended", "code": "length"}])
        self.assertProblem(self.patch(path, {"feedback_rating": 6}, "staff0"), 422)
        self.assertProblem(self.patch(path, {"feedback_rating": 4}, "team"), 403)
        self.assertEqual(self.state(), before)
        r = self.patch(path, {"attended": [True, False]}, "team")
        self.assertEqual((r.status, r.json()["attended"]), (200, [True, False]), r)
        r = self.patch(path, {"feedback_rating": 4, "feedback_comment": "Sehr hilfreich"},
                       "staff0")
        self.assertEqual((r.status, r.json()["feedback_rating"], r.json()["feedback_comment"]),
                         (200, 4, "Sehr hilfreich"), r)
        # Registration closes when the event begins; the number of dates stays once
        # attendance is recorded.
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": person("Late")}, token="staff1")
        self.assertProblem(r, 409, errors=[{"pointer": "/event_id", "code": "begun"}])
        r = self.patch(f"/v1/events/{e['id']}", {"dates": [
            {"starts_at": "2020-01-01T09:00:00Z", "ends_at": "2020-01-01T12:00:00Z"}]}, "team")
        self.assertProblem(r, 409, errors=[{"pointer": "/dates", "code": "attended"}])

    def test_5_calendar_export(self):
        e = self.send("POST", "/v1/events", event(self.prog, title="Netzwerktreffen, digital",
                                                  kind="network_meeting", online=True,
                                                  place=None)).json()
        self.register(e["id"], 1, "Frieda", "registered")
        r = self.send("GET", f"/v1/events.ics?programme_id={self.prog}", token="ministry")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/calendar"))
        text = r.body.decode()
        self.assertTrue(text.startswith("BEGIN:VCALENDAR\r\n"))
        self.assertIn(f"UID:{e['id']}-5@kqe\r\n", text)
        self.assertIn("SUMMARY:Netzwerktreffen\\, digital (1/5)\r\n", text)
        self.assertIn("DTSTART:20990101T080000Z\r\n", text)
        self.assertIn("LOCATION:online\r\n", text)
        self.assertTrue(all(len(line.encode()) <= 75 for line in text.split("\r\n")))
        r = self.patch(f"/v1/events/{e['id']}", {"status": "cancelled"}, "team")
        self.assertEqual(r.status, 200, r)
        text = self.send("GET", f"/v1/events.ics?programme_id={self.prog}",
                         token="staff0").body.decode()
        self.assertEqual(text.count("STATUS:CANCELLED"), 5)
        # An office's calendar: the events its people have a place at, no others.
        mine = self.send("GET", "/v1/event-registrations.ics", token="staff1").body.decode()
        self.assertIn(f"UID:{e['id']}-1@kqe", mine)
        other = self.send("GET", "/v1/event-registrations.ics", token="staff2").body.decode()
        self.assertNotIn(e["id"], other)
        r = self.send("POST", "/v1/event-registrations",
                      {"event_id": e["id"], "person": person("Gerd")}, token="staff2")
        self.assertProblem(r, 409, errors=[{"pointer": "/event_id", "code": "cancelled"}])

    def test_6_concurrent_registrations_never_overfill_an_event(self):
        # Twelve people from three offices register at the same moment for 5 places,
        # at most 2 per office: whatever the interleaving, 5 get a place, the rest wait, and
        # no office has more than 2.
        import threading
        e = self.send("POST", "/v1/events", event(self.prog, capacity=5,
                                                  per_office_limit=2)).json()
        barrier, results = threading.Barrier(12), []

        def one(k):
            barrier.wait()
            r = self.send("POST", "/v1/event-registrations",
                          {"event_id": e["id"], "person": person(f"P{k}")},
                          token=f"staff{k % 3}")
            results.append((r.status, r.json().get("status")))
        threads = [threading.Thread(target=one, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [(201, "registered")] * 5 + [(201, "waitlisted")] * 7)
        self.assertEqual(self.stack.sql(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM event_registrations"
            f" WHERE event_id = '{e['id']}' AND status = 'registered' GROUP BY office_id) x"),
            [["2"]])


class ServiceDeskTest(StackTestCase):
    """The service desk: offices and professionals ask the programme's team, the team
    answers and publishes an entry of the FAQ in its own words, which everyone reads."""
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id LIMIT 2")]
        r = s.post("/v1/programmes", programme(title="Servicestelle (Test)"))
        assert r.status == 201, r
        cls.prog = r.json()["id"]
        other = s.sql_value(f"SELECT id FROM programmes WHERE id <> '{cls.prog}' LIMIT 1")
        cls.tok = {"admin": s.default_token,
                   "team": s.token("programme_team", programme=cls.prog)[0],
                   "other_team": s.token("programme_team", programme=other)[0],
                   "pro": s.professional_token(cls.prog)[0],
                   "other_pro": s.professional_token(other)[0],
                   "staff0": s.token("office_staff", office=cls.offices[0])[0],
                   "staff1": s.token("office_staff", office=cls.offices[1])[0]}

    def send(self, method, path, body=None, token="team"):
        headers = {}
        if method == "PATCH":
            version = self.stack.sql_value("SELECT version FROM service_requests"
                                           f" WHERE id = '{path.rsplit('/', 1)[1]}'")
            headers["If-Match"] = f'"v{version}"'
        return self.stack.request(method, path, body=body, headers=headers,
                                  token=self.tok[token])

    def state(self):
        return self.stack.sql("SELECT count(*), coalesce(sum(version), 0) FROM service_requests"
                              )[0] + [self.stack.sql_value("SELECT count(*) FROM audit_log")]

    def ask(self, token="staff0", **over):
        body = {"programme_id": self.prog, "subject": "Schutzkonzept",
                "question": "Wie beteiligen wir Frau Müller als Pflegemutter?"}
        body.update(over)
        r = self.send("POST", "/v1/service-requests", body, token=token)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def test_1_asked_answered_published(self):
        q = self.ask()
        self.assertEqual((q["status"], q["office_id"], q["professional_id"]),
                         ("open", self.offices[0], None))
        self.assertNotIn("Müller", self.stack.sql_value(
            f"SELECT question_enc FROM service_requests WHERE id = '{q['id']}'"))
        p = self.ask(token="pro", subject="Materialien")
        self.assertIsNotNone(p["professional_id"])
        # Who reads what.
        self.assertProblem(self.send("GET", f"/v1/service-requests/{q['id']}", token="staff1"),
                           404)
        self.assertProblem(self.send("GET", f"/v1/service-requests/{q['id']}",
                                     token="other_team"), 404)
        self.assertProblem(self.send("GET", f"/v1/service-requests/{q['id']}", token="pro"), 404)
        self.assertIsNone(self.send("GET", f"/v1/service-requests/{q['id']}",
                                    token="admin").json()["question"])
        path = f"/v1/service-requests/{q['id']}"
        self.assertIn("Müller", self.send("GET", path).json()["question"])
        before = self.state()
        self.assertProblem(self.send("PATCH", path, {"question": "Anders"}), 403)
        self.assertProblem(self.send("PATCH", path, {"answer": "Ja."}, token="staff0"), 403)
        self.assertProblem(self.send("PATCH", path, {"status": "answered"}), 422,
                           errors=[{"pointer": "/answer", "code": "required"}])
        self.assertProblem(self.send("PATCH", path, {"faq_published": True}), 422)
        r = self.send("PATCH", path, {"faq_published": True, "faq_question": "F?",
                                      "faq_answer": "A."})
        self.assertProblem(r, 409, errors=[{"pointer": "/faq_published", "code": "open"}])
        self.assertEqual(self.state(), before)
        r = self.send("PATCH", path, {"subject": "Schutzkonzept (Beteiligung)"}, token="staff0")
        self.assertEqual(r.status, 200, r)
        r = self.send("PATCH", path, {"status": "answered",
                                      "answer": "Über die Beteiligungswerkstatt."})
        self.assertEqual((r.status, r.json()["status"]), (200, "answered"), r)
        self.assertIsNotNone(r.json()["answered_at"])
        self.assertProblem(self.send("PATCH", path, {"question": "Noch eine"}, token="staff0"),
                           409)
        r = self.send("PATCH", path, {"faq_published": True,
                                      "faq_question": "Wie werden Pflegeeltern beteiligt?",
                                      "faq_answer": "Über Beteiligungswerkstätten."})
        self.assertEqual((r.status, r.json()["faq_published"]), (200, True), r)
        faq = self.stack.get(f"/v1/faq?programme_id={self.prog}", token=None)
        self.assertEqual(faq.status, 200, faq)
        self.assertEqual([(e["question"], e["answer"]) for e in faq.json()["items"]],
                         [("Wie werden Pflegeeltern beteiligt?", "Über Beteiligungswerkstätten.")])
        self.assertNotIn("Müller", faq.body.decode())
        # Closed by the asker; closed is final.
        r = self.send("PATCH", path, {"status": "closed"}, token="staff0")
        self.assertEqual(r.status, 200, r)
        before = self.state()
        body = self.assertProblem(self.send("PATCH", path, {"status": "open"}), 409)
        self.assertEqual(body["errors"][0]["code"], "transition")
        self.assertEqual(self.state(), before)

    def test_2_bad_questions_store_nothing(self):
        before = self.state()
        r = self.send("POST", "/v1/service-requests", {"programme_id": self.prog, "subject": "",
                                                       "question": 5, "status": "answered"},
                      token="staff0")
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/question", "/status", "/subject"])
        r = self.send("POST", "/v1/service-requests", {"programme_id": self.prog, "subject": "x",
                                                       "question": "y"}, token="other_pro")
        self.assertProblem(r, 422, errors=[{"pointer": "/programme_id", "code": "not_found"}])
        for token in ("team", "admin"):
            self.assertProblem(self.send("POST", "/v1/service-requests",
                                         {"programme_id": self.prog, "subject": "x",
                                          "question": "y"}, token=token), 403)
        self.assertEqual(self.state(), before)


def json_list(text):
    import json
    return json.loads(text) if text else None


def pdf(text="Instrument"):
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n% " + text.encode() +
            b"\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def docx():
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/content-types"><Override PartName="/word/'
                   'document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        z.writestr("word/document.xml", '<?xml version="1.0"?><w/>')
    return out.getvalue()


PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class MaterialsTest(StackTestCase):
    """The materials library: the team keeps materials and their files; a programme-only
    material is read by the programme's participants alone, a public one by everyone,
    without a token; a file is stored whole, checked against what it claims to be, and sent
    back byte for byte."""
    seed_demo = True
    api_env = {"KQE_MATERIAL_MAX_BYTES": 1048576}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id LIMIT 2")]
        r = s.post("/v1/programmes", programme(title="Materialien (Test)"))
        assert r.status == 201, r
        cls.prog = r.json()["id"]
        other = s.sql_value(f"SELECT id FROM programmes WHERE id <> '{cls.prog}' LIMIT 1")
        # The first office is selected in a call of the programme, the second is not.
        call_id = "5f0c7f3e-1d2a-4c1e-9a7b-000000000001"
        s.sql(f"INSERT INTO calls (id, programme_id, title, deadline, criteria, places) VALUES"
              f" ('{call_id}', '{cls.prog}', 'Aufruf', now(), '[]', '{{\"model\": 1}}')")
        s.sql("INSERT INTO applications (id, call_id, programme_id, office_id, preferred_role,"
              " answers_enc, points, status, role, entered_by) VALUES"
              f" (gen_random_uuid(), '{call_id}', '{cls.prog}', '{cls.offices[0]}', 'model',"
              " 'x', 0, 'selected', 'model', 'programme_team')")
        cls.tok = {"admin": s.default_token,
                   "team": s.token("programme_team", programme=cls.prog)[0],
                   "other_team": s.token("programme_team", programme=other)[0],
                   "pro": s.professional_token(cls.prog)[0],
                   "other_pro": s.professional_token(other)[0],
                   "selected": s.token("office_staff", office=cls.offices[0])[0],
                   "not_selected": s.token("office_staff", office=cls.offices[1])[0],
                   "ministry": s.token("ministry")[0], "anonymous": None}

    def send(self, method, path, body=None, token="team", raw=None, headers=None):
        headers = dict(headers or {})
        if method in ("PATCH", "PUT") and "If-Match" not in headers:
            version = self.stack.sql_value("SELECT version FROM materials"
                                           f" WHERE id = '{path.split('/')[3]}'")
            headers["If-Match"] = f'"v{version}"'
        return self.stack.request(method, path, body=body, raw=raw, headers=headers,
                                  token=self.tok[token])

    def state(self):
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM materials), (SELECT coalesce(sum(version), 0)"
            " FROM materials), (SELECT count(*) FROM material_files),"
            " (SELECT coalesce(sum(octet_length(content)), 0) FROM material_files),"
            " (SELECT count(*) FROM audit_log)")[0]

    def material(self, **over):
        body = {"programme_id": self.prog, "kind": "instrument",
                "title": "Leitfaden Fallanalyse", "description": "Für die Werkstätten",
                "link": None, "visibility": "programme", "file_name": "Leitfaden.pdf"}
        body.update(over)
        r = self.send("POST", "/v1/materials", body)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def upload(self, mid, data, ctype=PDF, token="team"):
        return self.send("PUT", f"/v1/materials/{mid}/file", raw=data, token=token,
                         headers={"Content-Type": ctype})

    def test_1_kept_by_the_team_with_a_file(self):
        m = self.material()
        self.assertEqual((m["visibility"], m["file"], m["version"]), ("programme", None, 1))
        data = pdf()
        r = self.upload(m["id"], data)
        self.assertEqual(r.status, 200, r)
        f = r.json()["file"]
        self.assertEqual((f["type"], f["size"], f["sha256"], f["href"], r.json()["version"]),
                         (PDF, len(data), hashlib.sha256(data).hexdigest(),
                          f"/v1/materials/{m['id']}/file", 2))
        got = self.send("GET", f["href"], token="pro")
        self.assertEqual((got.status, got.body, got.header("Content-Type")),
                         (200, data, PDF), got)
        self.assertEqual(got.header("Content-Disposition"),
                         "attachment; filename=\"Leitfaden.pdf\"; filename*=UTF-8''Leitfaden.pdf")
        self.assertEqual(got.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(got.header("ETag"), f'"{f["sha256"]}"')
        again = self.send("GET", f["href"], token="pro",
                          headers={"If-None-Match": got.header("ETag")})
        self.assertEqual((again.status, again.body), (304, b""))
        head = self.send("HEAD", f["href"], token="pro")
        self.assertEqual((head.status, head.body, head.header("Content-Length")),
                         (200, b"", str(len(data))))
        # A new file replaces the old one; the audit names the upload, not the name.
        data2 = docx()
        r = self.upload(m["id"], data2, DOCX)
        self.assertEqual((r.status, r.json()["file"]["type"], r.json()["version"]),
                         (200, DOCX, 3), r)
        self.assertEqual(self.send("GET", f["href"], token="team").body, data2)
        details = self.stack.sql_value(
            "SELECT details::text FROM audit_log WHERE action = 'material.file'"
            f" AND resource_id = '{m['id']}' ORDER BY id DESC LIMIT 1")
        self.assertEqual(json.loads(details), {"fields": ["file"], "type": DOCX,
                                               "size": len(data2)})
        # Metadata by PATCH; a file name with a path is refused.
        r = self.send("PATCH", f"/v1/materials/{m['id']}", {"title": "Leitfaden (2. Fassung)"})
        self.assertEqual((r.status, r.json()["title"], r.json()["version"]),
                         (200, "Leitfaden (2. Fassung)", 4), r)

    def test_2_who_reads_what(self):
        inner = self.material(title="Nur für Beteiligte")
        self.assertEqual(self.upload(inner["id"], pdf("inner")).status, 200)
        public = self.material(title="Für alle Kommunen", visibility="public",
                               file_name="Arbeitshilfe Prüfbögen für Kinderschutz.pdf")
        self.assertEqual(self.upload(public["id"], pdf("public")).status, 200)
        readers = {"team", "pro", "selected", "admin"}
        for who in self.tok:
            listed = self.send("GET", f"/v1/materials?programme_id={self.prog}", token=who)
            self.assertEqual(listed.status, 200, (who, listed))
            ids = {x["id"] for x in listed.json()["items"]}
            self.assertIn(public["id"], ids, who)
            self.assertEqual(inner["id"] in ids, who in readers, who)
            one = self.send("GET", f"/v1/materials/{inner['id']}", token=who)
            fil = self.send("GET", f"/v1/materials/{inner['id']}/file", token=who)
            if who in readers:
                self.assertEqual((one.status, fil.status, fil.body), (200, 200, pdf("inner")))
            else:  # a material one may not read does not exist for one
                self.assertProblem(one, 404)
                self.assertProblem(fil, 404)
            pub = self.send("GET", f"/v1/materials/{public['id']}/file", token=who)
            self.assertEqual((pub.status, pub.body), (200, pdf("public")), who)
        # A name beyond ASCII: a fallback and RFC 8187's form.
        self.assertEqual(pub.header("Content-Disposition"),
                         "attachment; filename=\"Arbeitshilfe Pr_fb_gen f_r Kinderschutz.pdf\";"
                         " filename*=UTF-8''Arbeitshilfe%20Pr%C3%BCfb%C3%B6gen%20f%C3%BCr%20"
                         "Kinderschutz.pdf")
        # Only the team writes: other roles are refused, another team finds nothing to change.
        for who, status in (("pro", 403), ("selected", 403), ("other_team", 404),
                            ("anonymous", 401), ("admin", 403)):
            before = self.state()
            r = self.upload(public["id"], pdf("x"), token=who)
            self.assertProblem(r, status)
            r = self.send("PATCH", f"/v1/materials/{public['id']}", {"title": "x"}, token=who)
            self.assertProblem(r, status)
            self.assertEqual(self.state(), before, who)
        r = self.send("POST", "/v1/materials", {"programme_id": self.prog, "kind": "method",
                                                "title": "x", "visibility": "public"},
                      token="other_team")
        self.assertProblem(r, 422, [{"pointer": "/programme_id", "code": "not_found"}])

    def test_3_bad_materials_and_files_store_nothing(self):
        m = self.material(title="Ziel der schlechten Dateien")
        before = self.state()
        r = self.send("POST", "/v1/materials", {
            "programme_id": self.prog, "kind": "poster", "title": "", "description": 7,
            "link": "http://example.org/aufzeichnung", "visibility": "everyone",
            "file_name": "../etc/passwd", "extra": 1})
        self.assertProblem(r, 422, [
            {"pointer": "/kind", "code": "enum"}, {"pointer": "/title", "code": "length"},
            {"pointer": "/description", "code": "type"}, {"pointer": "/link", "code": "format"},
            {"pointer": "/visibility", "code": "enum"},
            {"pointer": "/file_name", "code": "format"},
            {"pointer": "/extra", "code": "unknown_field"}])
        path = f"/v1/materials/{m['id']}/file"
        cases = [
            (pdf(), "application/x-msdownload", 415),  # not on the list
            (b"MZ\x90\x00" + b"\x00" * 200, PDF, 415),  # claims PDF, is a program
            (b"<html><script>alert(1)</script></html>", "text/plain", 415),
            # Bytes libmagic cannot classify (a fuzzing find: this was a 500).
            (b"\xff\xfe\x00\x00" + b"\xff" * 6 + b"\x02\x00", "text/plain", 415),
            (pdf(), None, 415),  # no Content-Type
            (b"", PDF, 400),  # nothing
            (pdf() + b"\x00" * (1024 * 1024), PDF, 413),  # over KQE_MATERIAL_MAX_BYTES
        ]
        for data, ctype, status in cases:
            headers = {"Content-Type": ctype} if ctype else {}
            r = self.send("PUT", path, raw=data, headers=headers)
            self.assertProblem(r, status)
        self.assertProblem(self.send("PUT", path, raw=pdf(),
                                     headers={"Content-Type": PDF, "If-Match": '"v9"'}), 412)
        self.assertProblem(self.stack.request("PUT", path, raw=pdf(), headers={
            "Content-Type": PDF}, token=self.tok["team"]), 428)
        # A dry run answers what would be stored and keeps nothing.
        r = self.send("PUT", path + "?dry_run=true", raw=pdf(), headers={"Content-Type": PDF})
        self.assertEqual((r.status, r.json()["file"]["size"]), (200, len(pdf())), r)
        self.assertEqual(self.state(), before)
        self.assertProblem(self.send("GET", path), 404)  # still no file
        self.assertProblem(self.send("GET", f"/v1/materials/{UNKNOWN}/file"), 404)

    def test_4_a_large_file_comes_back_byte_for_byte(self):
        m = self.material(kind="slides", title="Folien Transfertagung")
        data = pdf() + bytes(range(256)) * 3000  # ~770 kB, every byte value
        r = self.upload(m["id"], data)
        self.assertEqual(r.status, 200, r)
        got = self.send("GET", f"/v1/materials/{m['id']}/file", token="selected")
        self.assertEqual((got.status, len(got.body), hashlib.sha256(got.body).hexdigest()),
                         (200, len(data), hashlib.sha256(data).hexdigest()))
        stored = self.stack.sql_value("SELECT encode(sha256(content), 'hex') FROM material_files"
                                      f" WHERE material_id = '{m['id']}'")
        self.assertEqual(stored, hashlib.sha256(data).hexdigest())

    def test_5_row_level_security_alone_keeps_programme_materials(self):
        m = self.material(title="RLS")
        self.assertEqual(self.upload(m["id"], pdf("rls")).status, 200)
        def count(ctx, table, column):
            sets = "".join(f", set_config('kqe.{k}', '{v}', true)" for k, v in ctx.items())
            out = psql(self.stack.service_url, f"BEGIN; SELECT 1{sets}; SELECT count(*)"
                       f" FROM {table} WHERE {column} = '{m['id']}'; COMMIT;")
            return int(out[-1][0])
        other = self.stack.sql_value(f"SELECT id FROM programmes WHERE id <> '{self.prog}' LIMIT 1")
        for ctx, seen in (({"role": "anonymous"}, 0), ({"role": "ministry"}, 0),
                          ({"role": "office_staff", "office_id": self.offices[1]}, 0),
                          ({"role": "professional", "programme_id": other}, 0),
                          ({"role": "office_staff", "office_id": self.offices[0]}, 1),
                          ({"role": "professional", "programme_id": self.prog}, 1)):
            self.assertEqual((count(ctx, "materials", "id"),
                              count(ctx, "material_files", "material_id")), (seen, seen), ctx)


if __name__ == "__main__":
    unittest.main()
