"""§ 7 advice requests: an office asks, its region's advisor takes the request up and answers
through the thread; every legal and illegal move; who sees what; bad input changes nothing."""

import unittest

from harness import StackTestCase
from test_rollups import CYCLE, assert_report_equals_sql, sql_counts

QUESTION = "Wie beziehen wir das Kind Lena M. (7) in die Gefährdungseinschätzung ein?"
FILE_NUMBER = "51.2-KWG-2026-0042"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def request(**over):
    body = {"kind": "case_specific", "case_reference": FILE_NUMBER, "topic": "child_involvement",
            "urgency": "soon", "question": QUESTION}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


class AdviceRequestTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.office, cls.region = s.sql(
            "SELECT id, region FROM offices WHERE region = 'LVR' ORDER BY id LIMIT 1")[0]
        cls.other_office = s.sql_value(
            f"SELECT id FROM offices WHERE region = 'LVR' AND id <> '{cls.office}'"
            " ORDER BY id LIMIT 1")
        cls.tok = {
            "staff": s.token("office_staff", office=cls.office)[0],
            "lead": s.token("office_lead", office=cls.office)[0],
            "advisor": s.token("advisor", region="LVR")[0],
            "lwl": s.token("advisor", region="LWL")[0],
            "other": s.token("office_staff", office=cls.other_office)[0],
            "institute": s.token("institute", institute=s.sql_value(
                "SELECT id FROM institutes ORDER BY id LIMIT 1"))[0],
            "ministry": s.token("ministry")[0],
            "admin": s.token("admin")[0],
        }

    def send(self, method, path, body=None, token="staff", etag=None):
        headers = {"If-Match": etag} if etag is not None else {}
        return self.stack.request(method, path, body=body, headers=headers,
                                  token=self.tok[token])

    def open_request(self, token="staff", **over):
        r = self.send("POST", "/v1/advice-requests", request(**over), token=token)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def state(self):
        """Everything a write touches: rows, versions, audit, events."""
        return self.stack.sql(
            "SELECT (SELECT count(*) FROM advice_requests),"
            " (SELECT coalesce(sum(version), 0) FROM advice_requests),"
            " (SELECT count(*) FROM advice_messages), (SELECT count(*) FROM audit_log),"
            " (SELECT count(*) FROM outbox)")[0]

    def move(self, rid, status, token, version, expect=200, **extra):
        r = self.send("PATCH", f"/v1/advice-requests/{rid}", {"status": status, **extra},
                      token=token, etag=f'"v{version}"')
        self.assertEqual(r.status, expect, r)
        return r.json()

    def test_1_bad_input_is_422_naming_every_field_and_stores_nothing(self):
        before = self.state()
        r = self.send("POST", "/v1/advice-requests",
                      {"kind": "structural", "case_reference": FILE_NUMBER, "topic": "weather",
                       "urgency": "", "question": "x" * 10001, "topic_id": "nope",
                       "status": "accepted", "colour": "red"})
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/case_reference", "/colour", "/question", "/status", "/topic",
                          "/topic_id", "/urgency"])
        # A case-specific request names its case; a topic must be the office's own.
        other_topic = self.stack.sql_value(
            f"SELECT id FROM topics WHERE office_id <> '{self.office}' ORDER BY id LIMIT 1")
        r = self.send("POST", "/v1/advice-requests",
                      request(case_reference=None, topic_id=other_topic))
        self.assertProblem(r, 422, errors=[
            {"pointer": "/topic_id", "code": "not_found"},
            {"pointer": "/case_reference", "code": "required"}])
        # Not a JSON object, and roles that do not open requests.
        self.assertProblem(self.stack.request("POST", "/v1/advice-requests", raw=b"[1]",
                                              headers={"Content-Type": "application/json"},
                                              token=self.tok["staff"]), 422)
        for token in ("advisor", "institute", "ministry", "admin"):
            self.assertProblem(self.send("POST", "/v1/advice-requests", request(), token=token),
                               403)
        self.assertEqual(self.state(), before)

    def test_2_asked_taken_up_answered_closed_and_counted(self):
        s = self.stack
        topic = s.sql_value(f"SELECT id FROM topics WHERE office_id = '{self.office}' LIMIT 1")
        a = self.open_request(topic_id=topic)
        rid = a["id"]
        self.assertEqual((a["status"], a["region"], a["office_id"], a["question"], a["version"]),
                         ("submitted", "LVR", self.office, QUESTION, 1))
        self.assertEqual(len(a["case_pseudonym"]), 64)
        self.assertNotIn("case_reference", a)
        self.assertFalse(a["overdue"])
        self.assertIsNone(a["first_response_at"])
        # Neither the file number nor the question is stored or logged in plain text.
        row = " ".join(s.sql(f"SELECT * FROM advice_requests WHERE id = '{rid}'")[0])
        self.assertNotIn(FILE_NUMBER, row)
        self.assertNotIn("Lena", row)
        with open(f"{s.logs}/api.log", encoding="utf-8") as f:
            log = f.read()
        self.assertNotIn(FILE_NUMBER, log)
        self.assertNotIn("Lena", log)

        # The office edits while submitted; the advisor may not edit what it asked.
        a = self.move(rid, "submitted", "staff", 1, urgency="urgent")
        self.assertEqual((a["urgency"], a["version"]), ("urgent", 2))
        before = self.state()
        body = self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                            {"urgency": "routine"}, token="advisor",
                                            etag='"v2"'), 403)
        self.assertIn("Advice is advice", body["detail"])
        # The office cannot accept its own request; the advisor cannot withdraw it.
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                     {"status": "accepted"}, token="lead", etag='"v2"'), 403)
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                     {"status": "withdrawn"}, token="advisor", etag='"v2"'),
                           403)
        # Skipping a step is a 409 naming the moves the caller may make.
        body = self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                            {"status": "answered"}, token="advisor",
                                            etag='"v2"'), 409)
        self.assertEqual(body["allowed_next"], ["accepted", "declined"])
        self.assertEqual(self.state(), before)

        # The advisor of the other region, another office, institutes and the ministry: 404
        # or 403, never the request.
        for token, status in (("lwl", 404), ("other", 404), ("institute", 403),
                              ("ministry", 403)):
            self.assertEqual(self.send("GET", f"/v1/advice-requests/{rid}", token=token).status,
                             status, token)
            self.assertEqual(self.send("GET", f"/v1/advice-requests/{rid}/messages",
                                       token=token).status, status, token)
        self.assertEqual(self.send("POST", f"/v1/advice-requests/{rid}/messages",
                                   {"text": "Hallo"}, token="lwl").status, 404)
        self.assertEqual(self.state(), before)

        # Taken up, a first message (the first response), in progress, answered, closed.
        a = self.move(rid, "accepted", "advisor", 2)
        self.assertIsNotNone(a["first_response_at"])
        self.assertIsNotNone(a["accepted_at"])
        first = a["first_response_at"]
        r = self.send("POST", f"/v1/advice-requests/{rid}/messages",
                      {"text": "Wir schlagen ein Gespräch mit Lena in der Schule vor."},
                      token="advisor")
        self.assertEqual(r.status, 201, r)
        msg = r.json()
        self.assertEqual(r.header("Location"), f"/v1/advice-requests/{rid}/messages/{msg['id']}")
        self.assertEqual((msg["author_role"], msg["request_id"]), ("advisor", rid))
        self.assertEqual(self.send("GET", r.header("Location")).json()["text"],
                         "Wir schlagen ein Gespräch mit Lena in der Schule vor.")
        # A message is read under its own request only.
        other = self.open_request(kind="structural", case_reference=None)
        self.assertEqual(self.send(
            "GET", f"/v1/advice-requests/{other['id']}/messages/{msg['id']}").status, 404)
        r = self.send("POST", f"/v1/advice-requests/{rid}/messages", {"text": "Danke!"})
        self.assertEqual(r.status, 201, r)
        thread = self.send("GET", f"/v1/advice-requests/{rid}/messages").json()["items"]
        self.assertEqual([(m["author_role"], m["text"][:5]) for m in thread],
                         [("advisor", "Wir s"), ("office_staff", "Danke")])
        a = self.send("GET", f"/v1/advice-requests/{rid}").json()
        self.assertEqual(a["first_response_at"], first)  # set once
        a = self.move(rid, "in_progress", "advisor", a["version"])
        a = self.move(rid, "answered", "advisor", a["version"])
        self.assertIsNotNone(a["answered_at"])
        # Taken up, the office adds through messages, not by editing.
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                     {"question": "Neu"}, etag=f'"v{a["version"]}"'), 409)
        a = self.move(rid, "closed", "advisor", a["version"])
        self.assertIsNotNone(a["ended_at"])
        # Closed is final, and its thread takes no more messages.
        body = self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{rid}",
                                            {"status": "in_progress"}, token="advisor",
                                            etag=f'"v{a["version"]}"'), 409)
        self.assertEqual(body["allowed_next"], [])
        self.assertProblem(self.send("POST", f"/v1/advice-requests/{rid}/messages",
                                     {"text": "Noch eine Frage"}), 409)
        moves = s.sql("SELECT role, details->>'from', details->>'to' FROM audit_log"
                      f" WHERE action = 'advice_request.status' AND resource_id = '{rid}'"
                      " ORDER BY id")
        self.assertEqual(moves, [["advisor", "submitted", "accepted"],
                                 ["advisor", "accepted", "in_progress"],
                                 ["advisor", "in_progress", "answered"],
                                 ["advisor", "answered", "closed"]])
        # Advisors' reads are audited; the office's own are not.
        self.assertEqual(self.send("GET", f"/v1/advice-requests/{rid}", token="advisor").status,
                         200)
        self.assertGreater(int(s.sql_value(
            "SELECT count(*) FROM audit_log WHERE action = 'advice_request.read'"
            f" AND resource_id = '{rid}' AND role = 'advisor'")), 0)
        # Admin reads the request, not its text.
        self.assertIsNone(self.send("GET", f"/v1/advice-requests/{rid}",
                                    token="admin").json()["question"])

    def test_3_declined_with_a_reason_withdrawn_by_the_office(self):
        a = self.open_request(kind="structural", case_reference=None, topic="documentation")
        before = self.state()
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{a['id']}",
                                     {"status": "declined"}, token="advisor", etag='"v1"'),
                           422, errors=[{"pointer": "/decline_reason", "code": "required"}])
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{a['id']}",
                                     {"decline_reason": "duplicate"}, token="advisor",
                                     etag='"v1"'),
                           422, errors=[{"pointer": "/decline_reason", "code": "forbidden"}])
        self.assertEqual(self.state(), before)
        d = self.move(a["id"], "declined", "advisor", 1, decline_reason="supervisory_matter")
        self.assertEqual((d["status"], d["decline_reason"]), ("declined", "supervisory_matter"))
        self.assertIsNotNone(d["ended_at"])
        self.assertIsNotNone(d["first_response_at"])
        # The reason is the advisor's: the office cannot change it.
        before = self.state()
        self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{a['id']}",
                                     {"decline_reason": "duplicate"}, token="lead",
                                     etag=f'"v{d["version"]}"'), 403)
        self.assertEqual(self.state(), before)

        w = self.open_request()
        w = self.move(w["id"], "withdrawn", "lead", 1)
        self.assertIsNone(w["first_response_at"])
        # Once accepted, the office can no longer withdraw.
        x = self.open_request()
        x = self.move(x["id"], "accepted", "advisor", 1)
        body = self.assertProblem(self.send("PATCH", f"/v1/advice-requests/{x['id']}",
                                            {"status": "withdrawn"}, etag='"v2"'), 409)
        self.assertEqual(body["allowed_next"], [])

    def test_3b_every_move_from_every_status_by_either_side(self):
        # The workflow table: which move exists, and whose it is ("both": office or advisor).
        legal = {("submitted", "accepted"): "advisor", ("submitted", "declined"): "advisor",
                 ("submitted", "withdrawn"): "office", ("accepted", "in_progress"): "advisor",
                 ("accepted", "declined"): "advisor", ("in_progress", "answered"): "advisor",
                 ("answered", "closed"): "both"}
        statuses = ["submitted", "accepted", "in_progress", "answered", "closed", "declined",
                    "withdrawn"]
        for start in statuses:
            for to in statuses:
                if to == start:
                    continue
                for side, token in (("office", "lead"), ("advisor", "advisor")):
                    a = self.open_request(kind="structural", case_reference=None)
                    # Put the request in its starting state past the guard (as a restore
                    # would), with the columns that state needs.
                    ended = start in ("closed", "declined", "withdrawn")
                    self.stack.sql(
                        "BEGIN; SET LOCAL session_replication_role = replica;"
                        f" UPDATE advice_requests SET status = '{start}',"
                        " decline_reason = " + ("'duplicate'" if start == "declined" else "NULL")
                        + ", ended_at = " + ("now()" if ended else "NULL")
                        + f" WHERE id = '{a['id']}'; COMMIT")
                    body = {"status": to}
                    if to == "declined":
                        body["decline_reason"] = "outside_remit"
                    if start == "declined":
                        body["decline_reason"] = None
                    before = self.state()
                    r = self.send("PATCH", f"/v1/advice-requests/{a['id']}", body, token=token,
                                  etag='"v1"')
                    who = legal.get((start, to))
                    want = 409 if who is None else 200 if who in (side, "both") else 403
                    with self.subTest(start=start, to=to, side=side):
                        self.assertEqual(r.status, want, r)
                        if want != 200:
                            self.assertEqual(self.state(), before)
                        else:
                            self.assertEqual(r.json()["status"], to)

    def test_4_the_queue_filters_overdue_and_exports(self):
        s = self.stack
        a = self.open_request(urgency="urgent")
        s.sql(f"UPDATE advice_requests SET respond_by = now() - interval '1 day'"
              f" WHERE id = '{a['id']}'")
        queue = self.send("GET", "/v1/advice-requests?overdue=true&urgency=urgent",
                          token="advisor").json()["items"]
        self.assertIn(a["id"], [x["id"] for x in queue])
        self.assertTrue(all(x["overdue"] and x["urgency"] == "urgent" for x in queue))
        self.assertTrue(all(x["region"] == "LVR" for x in queue))
        lwl = self.send("GET", "/v1/advice-requests?overdue=true", token="lwl").json()["items"]
        self.assertNotIn(a["id"], [x["id"] for x in lwl])
        self.assertEqual({x["region"] for x in lwl}, {"LWL"})  # the demo has overdue ones
        self.assertNotIn(a["id"], [x["id"] for x in self.send(
            "GET", "/v1/advice-requests", token="other").json()["items"]])
        # Answered in time or not, a response ends being overdue.
        self.move(a["id"], "accepted", "advisor", 1)
        self.assertNotIn(a["id"], [x["id"] for x in self.send(
            "GET", "/v1/advice-requests?overdue=true", token="advisor").json()["items"]])
        r = self.send("GET", "/v1/advice-requests.csv?status=accepted", token="advisor")
        self.assertEqual(r.status, 200, r)
        head, *rows = r.body.decode().splitlines()
        self.assertTrue(head.startswith("id,office_id,region,kind,case_pseudonym,topic"))
        self.assertIn(a["id"], r.body.decode())
        self.assertProblem(self.send("GET", "/v1/advice-requests?overdue=maybe&kind=x",
                                     token="advisor"), 400)

    def test_5_a_message_names_no_other_request(self):
        a = self.open_request()
        before = self.state()
        r = self.send("POST", f"/v1/advice-requests/{a['id']}/messages",
                      {"request_id": UNKNOWN, "text": ""})
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/request_id", "/text"])
        self.assertEqual(self.send("POST", f"/v1/advice-requests/{UNKNOWN}/messages",
                                   {"text": "Hallo"}).status, 404)
        self.assertEqual(self.send("GET", f"/v1/advice-requests/{UNKNOWN}/messages").status, 404)
        self.assertEqual(self.state(), before)


class AdviceStatisticsTest(StackTestCase):
    """The reports count advice requests like any other record: through the rollups and a
    release, perturbed by the cell-key method, equal to SQL over the requests."""
    seed_demo = True
    start_aggregator = True

    def report(self):
        r = self.stack.post("/v1/reports", {"scope": "state", "period": CYCLE})
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        self.stack.wait_job(job, timeout=60)
        rep = self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()
        return rep, {t["id"]: t for t in rep["tables"]}

    def test_an_answered_request_is_in_the_next_report(self):
        s = self.stack
        office = s.sql_value("SELECT id FROM offices WHERE region = 'LVR' ORDER BY id LIMIT 1")
        staff = s.token("office_staff", office=office)[0]
        advisor = s.token("advisor", region="LVR")[0]
        before = sql_counts(self, "advice_kinds", "region")[("LVR", "case_specific")]

        r = s.post("/v1/advice-requests", request(), token=staff)
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        for status, version in (("accepted", 1), ("in_progress", 2)):
            r = s.request("PATCH", f"/v1/advice-requests/{rid}", {"status": status},
                          headers={"If-Match": f'"v{version}"'}, token=advisor)
            self.assertEqual(r.status, 200, r)
        r = s.post(f"/v1/advice-requests/{rid}/messages", {"text": "Unsere Empfehlung: …"},
                   token=advisor)
        self.assertEqual(r.status, 201, r)
        for status, version in (("answered", 3), ("closed", 4)):
            r = s.request("PATCH", f"/v1/advice-requests/{rid}", {"status": status},
                          headers={"If-Match": f'"v{version}"'}, token=advisor)
            self.assertEqual(r.status, 200, r)

        rep, tables = self.report()
        after = sql_counts(self, "advice_kinds", "region")[("LVR", "case_specific")]
        self.assertEqual(sum(n for n, _ in after), sum(n for n, _ in before) + 1)
        # Every advice cell (and every other figure) equals SQL over the source tables, the
        # new request included.
        assert_report_equals_sql(self, rep)
        for table in ("advice_kinds_by_region", "advice_kinds_by_kind", "advice_topics_by_region",
                      "advice_days_to_first_response_by_region",
                      "advice_days_to_answer_by_region"):
            self.assertIn(table, tables)
        # Medians of whole days, as percentile_cont over the requests (when shown at all).
        shown = 0
        for measure, column in (("first_response", "first_response_at"),
                                ("answer", "answered_at")):
            want = dict(s.sql(
                "SELECT o.region, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY"
                f" floor(extract(epoch FROM a.{column} - a.submitted_at) / 86400))::numeric, 1)"
                " FROM advice_requests a JOIN offices o ON o.id = a.office_id"
                f" WHERE a.{column} IS NOT NULL AND kqe_cycle_of(a.submitted_at) = '{CYCLE}'"
                " GROUP BY 1"))
            cells = [c for c in tables[f"advice_days_to_{measure}_by_region"]["cells"]
                     if c["region"] == "LVR"]
            self.assertEqual(len(cells), 1)
            if not cells[0]["suppressed"]:
                self.assertEqual(cells[0]["value"], float(want["LVR"]), cells[0])
                shown += 1
        self.assertGreater(shown, 0, "the demo state has enough answered LVR requests")
        # No text of a request reaches a report.
        self.assertNotIn("Lena", str(rep))


if __name__ == "__main__":
    unittest.main()
