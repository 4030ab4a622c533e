"""Figures for the Ministry's accountability on programmes (docs/programmes.md, "Figures for
the Ministry"): participation, events held, registrations, attendance, feedback and the
service desk in the reports, perturbed by the cell-key method on their records' keys, medians
under the rules for comparison values, and offices outside NRW counted nowhere."""

import unittest

from harness import StackTestCase, published
from test_programmes import answers, call, event, person, programme

YEAR = 2026  # the period: the questions below are asked now (December 2026)
PAST = [{"starts_at": "2026-03-02T09:00:00Z", "ends_at": "2026-03-02T16:00:00Z"},
        {"starts_at": "2026-03-03T09:00:00Z", "ends_at": "2026-03-03T16:00:00Z"}]
FUTURE = [{"starts_at": "2099-03-02T09:00:00Z", "ends_at": "2099-03-02T16:00:00Z"},
          {"starts_at": "2099-03-03T09:00:00Z", "ends_at": "2099-03-03T16:00:00Z"}]
ELSEWHERE = [f"fig-by-{i}" for i in range(10)]


class ProgrammeFiguresTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.offices = [r[0] for r in s.sql(
            "(SELECT id FROM offices WHERE region = 'LVR' ORDER BY id LIMIT 3) UNION ALL"
            " (SELECT id FROM offices WHERE region = 'LWL' ORDER BY id LIMIT 3)")]
        for i, office in enumerate(ELSEWHERE):
            s.sql("INSERT INTO offices_elsewhere (id, name, kind, state) VALUES"
                  f" ('{office}', 'Jugendamt {i} (Bayern)', 'kreis', 'BY')")
        cls.prog = {}
        cls.tok = {}
        for name, over in (("P", {}), ("Q", {}), ("N", {"nrw_only": False})):
            r = s.post("/v1/programmes", programme(title=f"Kennzahlen {name} (Test)",
                                                   starts_on="2026-01-01", **over))
            assert r.status == 201, r
            cls.prog[name] = r.json()["id"]
            cls.tok[name] = s.token("programme_team", programme=cls.prog[name])[0]
        for i, office in enumerate(cls.offices):
            cls.tok[i] = s.token("office_lead", office=office)[0]
        cls.build()
        cls.reports = {}
        for body in ({"scope": "state"}, {"scope": "region", "region": "LVR"},
                     {"scope": "region", "region": "LWL"}):
            r = s.post("/v1/reports", dict(body, period=str(YEAR)))
            assert r.status == 202, r
            s.wait_job(r.json()["id"], timeout=60)
            rep = s.get(s.get(f"/v1/jobs/{r.json()['id']}").json()["result"]).json()
            cls.reports[body.get("region", "state")] = rep

    # --- the data, made through the API ----------------------------------------------------
    @classmethod
    def send(cls, method, path, body, token, table=None):
        headers = {}
        if table is not None:
            version = cls.stack.sql_value(
                f"SELECT version FROM {table} WHERE id = '{path.rsplit('/', 1)[1]}'")
            headers["If-Match"] = f'"v{version}"'
        r = cls.stack.request(method, path, body=body, headers=headers, token=cls.tok[token])
        assert r.status in (200, 201), (method, path, body, r)
        return r.json()

    @classmethod
    def new_event(cls, prog, registrations=(), **over):
        e = cls.send("POST", "/v1/events", event(cls.prog[prog], dates=FUTURE, **over), prog)
        regs = [cls.send("POST", "/v1/event-registrations",
                         dict({"event_id": e["id"], "person": person(who)}, **extra), token)
                for token, who, extra in registrations]
        cls.send("PATCH", f"/v1/events/{e['id']}", {"dates": PAST}, prog, "events")
        return e, regs

    @classmethod
    def build(cls):
        # Participation: six NRW offices selected in P (2 model, 4 partner); ten offices of
        # Bavaria selected in the nationwide N.
        c = cls.send("POST", "/v1/calls", call(cls.prog["P"], places={"model": 2, "partner": 4}),
                     "P")
        apps = [cls.send("POST", "/v1/applications", {"call_id": c["id"], "answers": answers(),
                                                      "preferred_role": "model"}, i)
                for i in range(6)]
        cls.send("PATCH", f"/v1/calls/{c['id']}", {"deadline": "2020-01-01T00:00:00Z"}, "P",
                 "calls")
        for i, a in enumerate(apps):
            cls.send("PATCH", f"/v1/applications/{a['id']}",
                     {"status": "selected", "role": "model" if i < 2 else "partner"}, "P",
                     "applications")
        c = cls.send("POST", "/v1/calls", call(cls.prog["N"], places={"model": 10}), "N")
        apps = [cls.send("POST", "/v1/applications",
                         {"call_id": c["id"], "answers": answers(), "preferred_role": "model",
                          "office_id": office}, "N") for office in ELSEWHERE]
        cls.send("PATCH", f"/v1/calls/{c['id']}", {"deadline": "2020-01-01T00:00:00Z"}, "N",
                 "calls")
        for a in apps:
            cls.send("PATCH", f"/v1/applications/{a['id']}", {"status": "selected",
                                                               "role": "model"}, "N",
                     "applications")
        # Events of P: a workshop with five places for seven people of NRW offices (two
        # wait; one cancels, the first who waits moves up), and two the team registered
        # naming no office or an office of Bavaria; a network meeting; an online seminar
        # that was cancelled.
        people = [(0, "Anna", {}), (0, "Bert", {}), (1, "Cem", {}), (2, "Dora", {}),
                  (3, "Emil", {}), (4, "Fritz", {}), (5, "Gül", {}),
                  ("P", "Hanna", {}), ("P", "Ida", {"office_id": ELSEWHERE[0]})]
        _, regs = cls.new_event("P", people, capacity=5, per_office_limit=5)
        cls.send("PATCH", f"/v1/event-registrations/{regs[1]['id']}", {"status": "cancelled"},
                 0, "event_registrations")
        for reg, days in zip(regs, ([True, True], None, [True, False], [True, True],
                                    [False, False], [True, True])):
            if days is not None:
                cls.send("PATCH", f"/v1/event-registrations/{reg['id']}", {"attended": days},
                         "P", "event_registrations")
        for (token, _, _), reg, rating in zip(people, regs, (5, None, 4, 4, 2, 3)):
            if rating is not None:
                cls.send("PATCH", f"/v1/event-registrations/{reg['id']}",
                         {"feedback_rating": rating}, token, "event_registrations")
        cls.new_event("P", kind="network_meeting")
        e, _ = cls.new_event("P", kind="online_seminar")
        cls.send("PATCH", f"/v1/events/{e['id']}", {"status": "cancelled"}, "P", "events")
        # Q: feedback from two offices only; six professionals seated in Köln registered
        # themselves (stored as the API stores a professional's own registration: no office).
        eq, regs = cls.new_event("Q", [(0, "Jan", {}), (1, "Kim", {})], capacity=10)
        for token, reg in zip((0, 1), regs):
            cls.send("PATCH", f"/v1/event-registrations/{reg['id']}", {"feedback_rating": 5},
                     token, "event_registrations")
        for _ in range(6):
            _, pro = cls.stack.professional_token(cls.prog["Q"])
            cls.stack.sql(f"UPDATE professionals SET seat_ags = '05315000' WHERE id = '{pro}'")
            cls.stack.sql(
                "INSERT INTO event_registrations (id, event_id, programme_id, professional_id,"
                " person_enc, email_key, status, attended, registered_by) VALUES"
                f" (gen_random_uuid(), '{eq['id']}', '{cls.prog['Q']}', '{pro}', 'x',"
                " md5(random()::text) || md5(random()::text), 'registered', '{true,false}',"
                " 'professional')")
        # N: six people of Bavarian offices at a network meeting.
        cls.new_event("N", [("N", f"By{i}", {"office_id": ELSEWHERE[i]}) for i in range(6)],
                      kind="network_meeting", capacity=10, per_office_limit=None)
        # The service desk of P: a question from each office, five answered after 2, 4, 6,
        # 8 and 30 hours, one closed by its office; a professional seated in Köln asks too.
        # A professional of N seated outside NRW asks N.
        questions = [cls.send("POST", "/v1/service-requests",
                              {"programme_id": cls.prog["P"], "subject": f"Frage {i}",
                               "question": "Wie beteiligen wir Pflegeeltern?"}, i)
                     for i in range(6)]
        for q in questions[:5]:
            cls.send("PATCH", f"/v1/service-requests/{q['id']}",
                     {"status": "answered", "answer": "Über Werkstätten."}, "P",
                     "service_requests")
        cls.send("PATCH", f"/v1/service-requests/{questions[5]['id']}", {"status": "closed"},
                 5, "service_requests")
        for q, hours in zip(questions, (2, 4, 6, 8, 30)):
            cls.stack.sql("UPDATE service_requests SET created_at = answered_at - interval"
                          f" '{hours} hours' WHERE id = '{q['id']}'")
        s = cls.stack
        cls.tok["pro"], pro = s.professional_token(cls.prog["P"])
        s.sql(f"UPDATE professionals SET seat_ags = '05315000' WHERE id = '{pro}'")
        cls.tok["pro_n"], _ = s.professional_token(cls.prog["N"])
        for who, prog in (("pro", "P"), ("pro_n", "N")):
            cls.send("POST", "/v1/service-requests", {"programme_id": cls.prog[prog],
                                                      "subject": "Zugang",
                                                      "question": "Wo finde ich das?"}, who)

    # --- helpers ---------------------------------------------------------------------------
    def table(self, table_id, report="state"):
        found = [t for t in self.reports[report]["tables"] if t["id"] == table_id]
        self.assertEqual(len(found), 1, table_id)
        return found[0]

    def cell(self, table_id, report="state", **dims):
        t = self.table(table_id, report)
        found = [c for c in t["cells"] if all(c.get(d) == v for d, v in dims.items())
                 and all(c.get(d) is None for d in t["dimensions"] if d not in dims)]
        self.assertEqual(len(found), 1, (table_id, dims))
        return found[0]

    def atoms(self, sql):
        """(n, sum of record keys) of each atom: a query grouping by year, region and kind."""
        return [(int(n), int(k)) for n, k in self.stack.sql(sql)]

    def regs(self, prog, where):
        return (" FROM event_registrations r JOIN offices o ON o.id = r.office_id"
                " JOIN events e ON e.id = r.event_id"
                f" WHERE r.programme_id = '{self.prog[prog]}' AND e.status = 'scheduled'"
                f" AND e.ends_at <= now() AND {where}")

    # --- the tests -------------------------------------------------------------------------
    def test_the_tables_of_every_scope(self):
        ids = {t["id"] for t in self.reports["state"]["tables"]}
        for base in ("programme_participants", "programme_registrations", "programme_attendance",
                     "programme_feedback", "programme_feedback_median", "programme_questions",
                     "programme_questions_answered", "programme_response_hours"):
            for grouping in ("_by_region", "_by_kind", "_by_programme"):
                self.assertIn(base + grouping, ids)
                self.assertIn(base + grouping, {t["id"] for t in self.reports["LVR"]["tables"]})
        self.assertIn("programme_events_by_programme", ids)
        # Events belong to their programme, not to a region: in the state's report only.
        self.assertNotIn("programme_events_by_programme",
                         {t["id"] for t in self.reports["LVR"]["tables"]})
        rows = [c["programme"] for c in self.table("programme_events_by_programme")["cells"]
                if c["event_kind"] == "workshop"]
        for name in ("P", "Q", "N"):
            self.assertIn(self.prog[name], rows)
        self.assertIsNone(rows[-1])  # the total over the programmes
        kinds = [c["kind"] for c in self.table("programme_questions_by_kind")["cells"]
                 if c["service_request_status"] is None]
        self.assertEqual(kinds, ["kreisfreie_stadt", "kreis", "kreisangehoerige_stadt",
                                 "professional"])

    def test_counts_are_their_records_perturbed(self):
        p = self.prog["P"]
        # Participation: the selected offices by role.
        for role, true in (("model", 2), ("partner", 4), ("pilot", 0)):
            atoms = self.atoms(
                "SELECT count(*), sum(a.record_key) FROM applications a JOIN offices o"
                f" ON o.id = a.office_id WHERE a.programme_id = '{p}' AND a.status = 'selected'"
                f" AND a.role = '{role}' GROUP BY o.region, o.kind")
            self.assertEqual(sum(n for n, _ in atoms), true)
            self.assertEqual(self.cell("programme_participants_by_programme", programme=p,
                                       programme_role=role)["value"],
                             published(self.stack, atoms), role)
        # Events held: the workshop and the network meeting, not the cancelled seminar —
        # public records (every caller lists them), published as counted.
        for kind, true in (("workshop", 1), ("network_meeting", 1), ("online_seminar", 0)):
            self.assertEqual(self.stack.sql_value(
                "SELECT count(*) FROM events"
                f" WHERE programme_id = '{p}' AND status = 'scheduled' AND ends_at <= now()"
                f" AND kind = '{kind}'"), str(true))
            self.assertEqual(self.cell("programme_events_by_programme", programme=p,
                                       event_kind=kind)["value"], true, kind)
        # Registrations of NRW offices by status (the team's two count nowhere).
        for status, true in (("registered", 5), ("waitlisted", 1), ("cancelled", 1)):
            atoms = self.atoms("SELECT count(*), sum(r.record_key)" + self.regs(
                "P", f"r.status = '{status}'") + " GROUP BY o.region, o.kind")
            self.assertEqual(sum(n for n, _ in atoms), true)
            self.assertEqual(self.cell("programme_registrations_by_programme", programme=p,
                                       registration_status=status)["value"],
                             published(self.stack, atoms), status)
        # Feedback by rating.
        for rating, true in (("1", 0), ("2", 1), ("3", 1), ("4", 2), ("5", 1)):
            atoms = self.atoms("SELECT count(*), sum(r.record_key)" + self.regs(
                "P", f"r.feedback_rating = {rating}") + " GROUP BY o.region, o.kind")
            self.assertEqual(sum(n for n, _ in atoms), true)
            self.assertEqual(self.cell("programme_feedback_by_programme", programme=p,
                                       feedback_rating=rating)["value"],
                             published(self.stack, atoms), rating)
        # Attendance: the share of registered people's dates attended (7 of 10), from the
        # perturbed counts of attended and missed dates.
        counts = {}
        for flag in ("true", "false"):
            atoms = self.atoms(
                "SELECT sum(x.n), sum(x.n * x.k) FROM (SELECT o.region, o.kind,"
                " (SELECT count(*) FROM unnest(r.attended) d WHERE d = " + flag + ") AS n,"
                " r.record_key AS k" + self.regs("P", "r.status = 'registered'") +
                ") x WHERE x.n > 0 GROUP BY x.region, x.kind")
            counts[flag] = (sum(n for n, _ in atoms), published(self.stack, atoms))
        self.assertEqual((counts["true"][0], counts["false"][0]), (7, 3))
        yes, no = counts["true"][1], counts["false"][1]
        self.assertEqual(self.cell("programme_attendance_by_programme", programme=p,
                                   fact="attended")["value"],
                         round(100 * yes / (yes + no), 1) if yes + no else None)
        # The service desk: by status, the professional of Köln among them (LVR).
        for status, true in (("answered", 5), ("closed", 1), ("open", 1)):
            atoms = self.atoms(
                "SELECT count(*), sum(s.record_key) FROM service_requests s"
                " LEFT JOIN offices o ON o.id = s.office_id"
                " LEFT JOIN professionals f ON f.id = s.professional_id"
                f" WHERE s.programme_id = '{p}' AND s.status = '{status}'"
                " AND (o.id IS NOT NULL OR f.seat_ags IS NOT NULL)"
                " GROUP BY o.region, o.kind, f.id")
            self.assertEqual(sum(n for n, _ in atoms), true)
            self.assertEqual(self.cell("programme_questions_by_programme", programme=p,
                                       service_request_status=status)["value"],
                             published(self.stack, atoms), status)

    def test_professionals_count_by_their_seat(self):
        # Their own event registrations count in the region of their seat (Köln: LVR), as
        # the row of registered professionals; six of them are never published as 0.
        atoms = self.atoms(
            "SELECT count(*), sum(r.record_key) FROM event_registrations r"
            " JOIN professionals f ON f.id = r.professional_id"
            f" WHERE r.programme_id = '{self.prog['Q']}' AND r.status = 'registered'")
        self.assertEqual(atoms[0][0], 6)
        value = published(self.stack, atoms)
        self.assertGreater(value, 0)
        self.assertEqual(self.cell("programme_registrations_by_kind", kind="professional",
                                   registration_status="registered")["value"], value)
        self.assertEqual(self.cell("programme_registrations_by_kind", "LVR", kind="professional",
                                   registration_status="registered")["value"], value)
        self.assertEqual(self.cell("programme_registrations_by_kind", "LWL", kind="professional",
                                   registration_status="registered")["value"], 0)

    def test_medians_follow_the_rules_for_comparison_values(self):
        # Five offices, five ratings (2, 3, 4, 4, 5) and five answers (2 … 30 hours).
        self.assertEqual(self.cell("programme_feedback_median_by_programme",
                                   programme=self.prog["P"])["value"], 4.0)
        self.assertEqual(self.cell("programme_response_hours_by_programme",
                                   programme=self.prog["P"])["value"], 6.0)
        # Two offices only: not shown.
        cell = self.cell("programme_feedback_median_by_programme", programme=self.prog["Q"])
        self.assertEqual((cell["value"], cell["suppressed"]), (None, True))
        self.assertIn(cell["reason"], ("min_offices", "min_count"))
        for t in self.reports["state"]["tables"]:
            if t["id"].startswith("programme_") and t["measure"] == "count":
                self.assertEqual(t.get("exact", False), t["id"] == "programme_events_by_programme")
                if t.get("exact"):
                    continue  # public records, counted as they are
                for c in t["cells"]:
                    self.assertFalse(c["suppressed"], c)
                    self.assertFalse(1 <= c["value"] <= 2, (t["id"], c))

    def test_offices_outside_nrw_never_count(self):
        n = self.prog["N"]
        # Ten Bavarian offices selected, six of their people at a meeting: a true count of
        # 6 or 10 is never published as 0 (the noise is at most 5 and never makes 1 or 2).
        for table, column in (("programme_participants_by_programme", "programme_role"),
                              ("programme_registrations_by_programme", "registration_status"),
                              ("programme_questions_by_programme", "service_request_status")):
            for c in self.table(table)["cells"]:
                if c["programme"] == n:
                    self.assertEqual(c["value"], 0, (table, c))
        self.assertEqual(self.cell("programme_participants_by_programme", programme=n)["value"],
                         0)
        # The meeting itself was held by the programme and counts as an event, exactly.
        self.assertEqual(self.cell("programme_events_by_programme", programme=n,
                                   event_kind="network_meeting")["value"], 1)

    def test_tables_add_up_across_groupings_and_reports(self):
        state, lvr, lwl = (self.reports[k] for k in ("state", "LVR", "LWL"))
        for t in state["tables"]:
            if not (t["id"].startswith("programme_") and t["measure"] == "count"
                    and t["id"].endswith("_by_region")):
                continue
            base, column = t["id"][:-len("_by_region")], t["dimensions"][1]
            by_kind = self.table(base + "_by_kind")
            by_programme = self.table(base + "_by_programme")
            for total in (c for c in t["cells"] if c["region"] is None):
                code = total[column]
                with self.subTest(table=base, code=code):
                    parts = [c["value"] for c in t["cells"]
                             if c["region"] is not None and c[column] == code]
                    self.assertEqual(sum(parts), total["value"])
                    self.assertEqual(sum(c["value"] for c in by_kind["cells"]
                                         if c[column] == code), total["value"])
                    self.assertEqual(sum(c["value"] for c in by_programme["cells"]
                                         if c[column] == code), total["value"])
            # The state's row of a programme is the sum of the regions' rows.
            for c in by_programme["cells"]:
                regional = [x["value"] for rep in (lvr, lwl) for tt in rep["tables"]
                            if tt["id"] == base + "_by_programme" for x in tt["cells"]
                            if x["programme"] == c["programme"] and x[column] == c[column]]
                self.assertEqual(sum(regional), c["value"], (base, c))

    def test_html_report_shows_the_programmes_by_title(self):
        rep = self.reports["state"]
        html = self.stack.get(f"/v1/reports/{rep['id']}.html").body.decode()
        for t in rep["tables"]:
            self.assertIn(f'id="t-{t["id"]}"', html)
        for needle in ("Kennzahlen P (Test)", "nach Programm", "Servicestelle: Anfragen nach Stand",
                       "Registrierte Fachkräfte (Sitz in NRW)", "Werkstatt"):
            self.assertIn(needle, html)
        self.assertNotIn(self.prog["P"], html)


if __name__ == "__main__":
    unittest.main()
