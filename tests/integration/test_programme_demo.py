"""The demo of issue 14, end to end through the HTTP API: each of the three programmes kqe was
founded on (docs/programmes.md) is run the way its documents describe it, by the people who
run it — the admin, the programme's team, the offices' leads, a professional and someone
without a token — and then the Ministry's accountability table is read in the state's report.

1. The § 7 pilot of the Landesjugendämter (NRW only): an expression of interest with eight
   places, fourteen offices apply, the team selects eight (a ninth is refused: the places
   are full), a working group of six meetings for three people per pilot office with a
   waiting list (one cancels, the first who waits moves up and is told by mail), a workshop
   with outside experts and a transfer conference; attendance recorded by the team, feedback
   from the offices after the events.
2. The Qualitätsoffensive Pflegekinderhilfe (§ 10, NRW only, no call): online seminars, a
   network meeting and a participation workshop; the service desk, whose answer the team
   publishes as an FAQ entry in its own words, read without a token; a professional who
   registers without a token, confirms the address by the mail's link, is approved, receives
   its key by mail, downloads a material for the programme's participants and registers
   itself for an online seminar; without a token that material does not exist, a public one
   does.
3. A nationwide programme like the NZFH's "Aus Fehlern lernen": a call against published
   criteria with 12 model and 36 partner places, 60 applications (30 NRW offices applying
   themselves, 30 offices of the other Länder entered by the team), the selection within the
   places, 12 clusters of a model municipality and three partners, and a workshop series of
   five two-day meetings, one every two months, for up to 30 professionals per model
   municipality, with a waiting list and attendance.
4. The report: the state's report of the current year carries the figures by programme for
   the three programmes, each count exactly its NRW records perturbed by the cell-key method
   (harness.published), the offices outside NRW counted nowhere, and the HTML report names
   the programmes by their titles.

The test plays time forward: registration closes when an event begins, attendance needs the
event to have begun, feedback needs it ended, and the report counts events held. So the events
are planned in the future (2099), the people register, and then the team moves the events'
dates into the past of the current year (PATCH /v1/events/{id} {"dates": …}, as
test_programme_figures.py does) — the same number of dates, so the series stays a series.
"""

import hashlib
import os
import statistics
import unittest
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from harness import MailSink, StackTestCase, published, wait_until
from test_programmes import answers, call, event, pdf, person, programme

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.now(timezone.utc)
YEAR = NOW.astimezone(BERLIN).year  # the report's period: the year the test runs in
PUBLIC_URL = "https://kqe.example"

TITLES = {"pilot": "§ 7-Pilot der Landesjugendämter (Demo-Test)",
          "offensive": "Qualitätsoffensive Pflegekinderhilfe (Demo-Test)",
          "nationwide": "Aus Fehlern lernen (Demo-Test)"}


def add_months(year, month, k):
    months = year * 12 + month - 1 + k
    return months // 12, months % 12 + 1


def series(year, month, n, every_months, days):
    """n dates, one every every_months months from (year, month), each of days days (09:00 to
    16:00, Berlin time), with their offset."""
    dates = []
    for i in range(n):
        y, m = add_months(year, month, i * every_months)
        start = datetime(y, m, 2, 9, tzinfo=BERLIN)
        end = datetime(y, m, 1 + days, 16, tzinfo=BERLIN)
        dates.append({"starts_at": start.isoformat(), "ends_at": end.isoformat()})
    return dates


def planned(n, every_months=1, days=1):
    """The dates as planned: far in the future, so that registration is open."""
    return series(2099, 1, n, every_months, days)


def held(n, every_months=1, days=1):
    """The same series moved into the past of the current year: its last date in the month
    before this one. Early in a year the series does not fit: then its dates share the time
    since New Year evenly (still n dates, each ending before the next begins)."""
    local = NOW.astimezone(BERLIN)
    last = add_months(local.year, local.month, -1)
    first = add_months(*last, -(n - 1) * every_months)
    if first[0] == YEAR:
        return series(*first, n, every_months, days)
    begin = datetime(YEAR, 1, 1, 1, tzinfo=BERLIN)
    slot = (NOW - timedelta(hours=1) - begin) / n
    return [{"starts_at": (begin + i * slot).isoformat(),
             "ends_at": (begin + i * slot + slot / 2).isoformat()} for i in range(n)]


class ProgrammeDemoTest(StackTestCase):
    """The three programmes of the demo, run end to end; then the accountability table."""
    seed_demo = True
    api_env = {"KQE_PUBLIC_URL": PUBLIC_URL}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        # Mail goes to a local SMTP sink, sent by the aggregator, which also builds the report.
        cls.sink = MailSink(os.path.join(s.workdir, "maildir")).start()
        s.start_aggregator(KQE_SMTP_URL=cls.sink.url, KQE_MAIL_RETRY_MS=100)
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id")]
        # The demo seed's synthetic offices of the other Länder (two per Land).
        cls.elsewhere = [r[0] for r in s.sql(
            "SELECT id FROM offices_elsewhere WHERE synthetic ORDER BY id")]
        assert len(cls.elsewhere) == 30, cls.elsewhere
        cls.leads = {}
        cls.prog = {}
        cls.team = {}

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        super().tearDownClass()

    # --- helpers -----------------------------------------------------------------------
    def lead(self, office):
        """The office lead's key of an NRW office (made once)."""
        if office not in self.leads:
            self.leads[office] = self.stack.token("office_lead", office=office)[0]
        return self.leads[office]

    def send(self, method, path, body=None, token=None, table=None, status=(200, 201)):
        """A request with the caller's key; for a change, If-Match with the version the
        database holds (table names where). Asserts the status; returns the JSON."""
        headers = {}
        if table is not None:
            version = self.stack.sql_value(
                f"SELECT version FROM {table} WHERE id = '{path.rsplit('/', 1)[1]}'")
            headers["If-Match"] = f'"v{version}"'
        r = self.stack.request(method, path, body=body, headers=headers,
                               token=self.stack.default_token if token is None else token)
        self.assertIn(r.status, status if isinstance(status, tuple) else (status,),
                      (method, path, body, r))
        return r.json()

    def new_programme(self, name, **over):
        p = self.send("POST", "/v1/programmes", programme(
            title=TITLES[name], starts_on=f"{YEAR}-01-01", ends_on=f"{YEAR + 1}-12-31", **over))
        type(self).prog[name] = p["id"]
        type(self).team[name] = self.stack.token("programme_team", programme=p["id"])[0]
        self.assertEqual(self.send("GET", "/v1/me", token=self.team[name])["programme_id"],
                         p["id"])
        return p["id"]

    def close(self, call_id, name):
        """The team closes the call early: its deadline moved into the past."""
        c = self.send("PATCH", f"/v1/calls/{call_id}", {"deadline": "2020-01-01T00:00:00Z"},
                      self.team[name], "calls")
        self.assertFalse(c["open"])

    def decide(self, application, body, name):
        return self.send("PATCH", f"/v1/applications/{application}", body, self.team[name],
                         "applications")

    def refused(self, application, body, name):
        """A decision the service refuses: its problem (asserted 409)."""
        version = self.stack.sql_value(
            f"SELECT version FROM applications WHERE id = '{application}'")
        r = self.stack.request("PATCH", f"/v1/applications/{application}", body=body,
                               token=self.team[name], headers={"If-Match": f'"v{version}"'})
        self.assertEqual(r.status, 409, r)
        return r

    def new_event(self, name, n=1, every_months=1, days=1, **over):
        body = event(self.prog[name], dates=planned(n, every_months, days), **over)
        e = self.send("POST", "/v1/events", body, self.team[name], status=201)
        self.assertEqual((len(e["dates"]), e["status"], e["registered"]), (n, "scheduled", 0))
        return e

    def register(self, event_id, token, who, expect, **extra):
        """who: the person; None for a professional, who registers itself."""
        body = dict({"event_id": event_id}, **extra)
        if who is not None:
            body["person"] = who
        r = self.send("POST", "/v1/event-registrations", body, token, status=201)
        self.assertEqual(r["status"], expect, (who, r))
        return r

    def play_forward(self, name, e, n, every_months=1, days=1):
        """The event takes place: its dates (as many as planned) move into the past."""
        r = self.send("PATCH", f"/v1/events/{e['id']}",
                      {"dates": held(n, every_months, days)}, self.team[name], "events")
        self.assertLessEqual(datetime.fromisoformat(r["ends_at"].replace("Z", "+00:00")), NOW)
        self.assertEqual(len(r["dates"]), n)
        return r

    def versions(self, ids):
        """The registrations' versions, read at once: If-Match for many changes."""
        rows = self.stack.sql("SELECT id, version FROM event_registrations WHERE id IN ("
                              + ", ".join(f"'{i}'" for i in ids) + ")")
        return {i: f'"v{v}"' for i, v in rows}

    def record_attendance(self, name, regs, pattern):
        """The team records attendance per date for each registration (pattern(k) → list)."""
        tags = self.versions([r["id"] for r in regs])
        for k, reg in enumerate(regs):
            r = self.stack.request("PATCH", f"/v1/event-registrations/{reg['id']}",
                                   body={"attended": pattern(k)}, token=self.team[name],
                                   headers={"If-Match": tags[reg["id"]]})
            self.assertEqual((r.status, r.json()["attended"]), (200, pattern(k)), r)

    def mail_to(self, address, count=1):
        wait_until(lambda: len([m for m, _, _ in self.sink.messages()
                                if m["To"] == address]) >= count,
                   timeout=30, what=f"mail {count} to {address}")
        return [(subject, text) for m, subject, text in self.sink.messages()
                if m["To"] == address]

    def db_registrations(self, event_id):
        return dict((status, int(n)) for status, n in self.stack.sql(
            "SELECT status, count(*) FROM event_registrations"
            f" WHERE event_id = '{event_id}' GROUP BY status"))

    # --- 1. the § 7 pilot --------------------------------------------------------------
    def test_1_the_section_7_pilot(self):
        s = self.stack
        pid = self.new_programme("pilot", legal_basis="§ 7 Abs. 2 AG-KJHG NRW",
                                 sponsor="MKJFGFI NRW (Test)",
                                 run_by="Landesjugendämter LVR und LWL (Test)", nrw_only=True)
        # The expression of interest: eight places for pilot offices.
        c = self.send("POST", "/v1/calls", call(pid, title="Interessenbekundung § 7-Pilot",
                                                places={"pilot": 8}), self.team["pilot"])
        self.assertEqual((c["open"], c["places"], c["selected"]), (True, {"pilot": 8}, {}))
        # Fourteen NRW offices apply, each through its lead.
        offices = self.offices[:14]
        apps = [self.send("POST", "/v1/applications",
                          {"call_id": c["id"], "preferred_role": "pilot",
                           "answers": answers(cases=i % 3 == 0, text=f"Pilotinteresse {i}")},
                          self.lead(o), status=201) for i, o in enumerate(offices)]
        self.assertEqual({(a["status"], a["entered_by"]) for a in apps},
                         {("submitted", "office")})
        # No decision while the call is open.
        r = self.refused(apps[0]["id"], {"status": "selected", "role": "pilot"}, "pilot")
        self.assertProblem(r, 409, errors=[{"pointer": "/status", "code": "open"}])
        self.close(c["id"], "pilot")
        # The team selects eight in the order of the ranking; the ninth finds no place.
        ranking = self.send("GET", f"/v1/calls/{c['id']}/ranking", token=self.team["pilot"])
        order = [i["application_id"] for i in ranking["items"]]
        self.assertEqual(sorted(order), sorted(a["id"] for a in apps))
        for a in order[:8]:
            self.assertEqual(self.decide(a, {"status": "selected", "role": "pilot"},
                                         "pilot")["status"], "selected")
        r = self.refused(order[8], {"status": "selected", "role": "pilot"}, "pilot")
        self.assertProblem(r, 409, errors=[{"pointer": "/role", "code": "full"}])
        for a in order[8:]:
            self.decide(a, {"status": "rejected"}, "pilot")
        self.assertEqual(self.send("GET", f"/v1/calls/{c['id']}")["selected"], {"pilot": 8})
        self.assertEqual(s.sql(f"SELECT status, count(*) FROM applications WHERE call_id ="
                               f" '{c['id']}' GROUP BY status ORDER BY status"),
                         [["rejected", "6"], ["selected", "8"]])
        by_id = {a["id"]: a["office_id"] for a in apps}
        chosen, others = [by_id[a] for a in order[:8]], [by_id[a] for a in order[8:]]
        # Each office reads the decision on its application.
        mine = self.send("GET", f"/v1/applications?call_id={c['id']}", token=self.lead(chosen[0]))
        self.assertEqual([(a["status"], a["role"], a["score"]) for a in mine["items"]],
                         [("selected", "pilot", None)])

        # The working group: six meetings, three people per pilot office (24 places).
        wg = self.new_event("pilot", 6, kind="working_group_meeting",
                            title="Arbeitsgruppe § 7-Pilot", place="Köln", capacity=24,
                            per_office_limit=3, participants_only=True)
        members = {}
        for i, o in enumerate(chosen):
            members[o] = [self.register(wg["id"], self.lead(o),
                                        person(f"AG{i}x{k}", f"ag{i}-{k}@jugendamt.example"),
                                        "registered") for k in range(3)]
        # An office not chosen cannot register: the group is for the pilot offices.
        r = s.post("/v1/event-registrations", {"event_id": wg["id"], "person": person("Nein")},
                   token=self.lead(others[0]))
        self.assertProblem(r, 422, errors=[{"pointer": "/office_id", "code": "not_selected"}])
        # Two more people want to come: their offices' shares are full, they wait.
        wait1 = self.register(wg["id"], self.lead(chosen[0]),
                              person("Warte1", "warte1@jugendamt.example"), "waitlisted")
        wait2 = self.register(wg["id"], self.lead(chosen[1]),
                              person("Warte2", "warte2@jugendamt.example"), "waitlisted")
        self.assertEqual((wait1["waitlist_position"], wait2["waitlist_position"]), (1, 2))
        e = self.send("GET", f"/v1/events/{wg['id']}")
        self.assertEqual((e["registered"], e["waitlisted"]), (24, 2))
        # One of the first office cancels: the first who waits moves up and is told by mail.
        gone = members[chosen[0]].pop(0)
        r = self.send("PATCH", f"/v1/event-registrations/{gone['id']}", {"status": "cancelled"},
                      self.lead(chosen[0]), "event_registrations")
        self.assertEqual(r["status"], "cancelled")
        up = self.send("GET", f"/v1/event-registrations/{wait1['id']}",
                       token=self.lead(chosen[0]))
        self.assertEqual((up["status"], up["waitlist_position"]), ("registered", None))
        members[chosen[0]].append(up)
        self.assertEqual(self.send("GET", f"/v1/event-registrations/{wait2['id']}",
                                   token=self.lead(chosen[1]))["waitlist_position"], 1)
        self.assertEqual(self.db_registrations(wg["id"]),
                         {"registered": 24, "waitlisted": 1, "cancelled": 1})
        self.assertIn(f'["{wait1["id"]}"]', [d for (d,) in s.sql(
            "SELECT details->>'moved_up' FROM audit_log WHERE action ="
            f" 'event_registration.status' AND resource_id = '{gone['id']}'")])
        self.assertIn("Platz frei geworden: Arbeitsgruppe § 7-Pilot",
                      [subject for subject, _ in self.mail_to("warte1@jugendamt.example", 2)])

        # A workshop with outside experts (the team registers the experts, who come from no
        # office) and a transfer conference open to every office.
        ew = self.new_event("pilot", kind="expert_workshop", title="Expertenworkshop § 7",
                            place="Münster", capacity=20, per_office_limit=2)
        experts = [self.register(ew["id"], self.team["pilot"],
                                 person(f"Expertin{k}", f"expertin{k}@hochschule.example"),
                                 "registered") for k in range(2)]
        self.assertEqual({x["office_id"] for x in experts}, {None})
        ew_regs = [self.register(ew["id"], self.lead(o), person(f"EW{i}", f"ew{i}@ja.example"),
                                 "registered") for i, o in enumerate(chosen)]
        tc = self.new_event("pilot", kind="transfer_conference", title="Transfertagung § 7",
                            place="Düsseldorf", capacity=100, per_office_limit=None)
        tc_regs = [self.register(tc["id"], self.lead(o), person(f"TC{i}", f"tc{i}@ja.example"),
                                 "registered") for i, o in enumerate(chosen + others[:3])]

        # Time passes: the events take place. The team records attendance per date (one
        # member misses a meeting now and then); each pilot office gives its feedback.
        self.play_forward("pilot", wg, 6)
        self.play_forward("pilot", ew, 1)
        self.play_forward("pilot", tc, 1)
        group = [reg for o in chosen for reg in members[o]]
        self.assertEqual(len(group), 24)
        self.record_attendance("pilot", group,
                               lambda k: [not (k % 4 == 0 and d == k % 6) for d in range(6)])
        self.record_attendance("pilot", ew_regs + experts, lambda k: [True])
        self.record_attendance("pilot", tc_regs, lambda k: [k % 5 != 4])
        ratings = [5, 4, 4, 3, 4, 5, 4, 4]
        for o, rating in zip(chosen, ratings):
            r = self.send("PATCH", f"/v1/event-registrations/{members[o][0]['id']}",
                          {"feedback_rating": rating, "feedback_comment": "Hilfreicher Austausch"},
                          self.lead(o), "event_registrations")
            self.assertEqual(r["feedback_rating"], rating)
        self.assertEqual(s.sql(
            "SELECT count(*), sum(cardinality(attended)), sum((SELECT count(*) FROM"
            " unnest(attended) d WHERE d)) FROM event_registrations"
            f" WHERE event_id = '{wg['id']}' AND status = 'registered'"),
            [["24", str(24 * 6), str(24 * 6 - 6)]])
        self.assertEqual(sorted(int(x) for (x,) in s.sql(
            "SELECT feedback_rating FROM event_registrations WHERE feedback_rating IS NOT NULL"
            f" AND event_id = '{wg['id']}'")), sorted(ratings))
        type(self).pilot_ratings = ratings

    # --- 2. the quality offensive ------------------------------------------------------
    def test_2_the_quality_offensive(self):
        s = self.stack
        qid = self.new_programme("offensive", legal_basis="§ 10 Landeskinderschutzgesetz NRW",
                                 sponsor="MKJFGFI NRW (Test)", run_by="LVR und LWL (Test)",
                                 nrw_only=True)
        team = self.team["offensive"]
        self.assertEqual(self.send("GET", f"/v1/calls?programme_id={qid}")["items"], [])
        offices = self.offices[44:47]
        # Its events: two online seminars, a network meeting and a participation workshop
        # with young people and foster carers; the offices register their people.
        seminars = [self.new_event("offensive", kind="online_seminar", online=True, place=None,
                                   title=f"Online-Seminar Pflegekinderhilfe {k}", capacity=50,
                                   per_office_limit=None) for k in (1, 2)]
        meeting = self.new_event("offensive", kind="network_meeting", place="Dortmund",
                                 title="Netzwerktreffen Pflegekinderdienste", capacity=30,
                                 per_office_limit=5)
        workshop = self.new_event("offensive", kind="participation_workshop", place="Bochum",
                                  title="Beteiligungswerkstatt Pflegefamilien", capacity=12,
                                  per_office_limit=4)
        regs = {}
        for e in seminars + [meeting, workshop]:
            regs[e["id"]] = [self.register(e["id"], self.lead(o),
                                           person(f"Q{i}x{k}", f"q{i}-{k}@jugendamt.example"),
                                           "registered")
                             for i, o in enumerate(offices) for k in range(2)]

        # The materials library: methods for the programme's participants, and a work aid
        # passed on to every municipality.
        inner = self.send("POST", "/v1/materials", {
            "programme_id": qid, "kind": "method", "title": "Methodenkoffer Beteiligung",
            "description": "Für die Beteiligungswerkstätten", "visibility": "programme",
            "file_name": "Methodenkoffer.txt"}, team)
        inner_bytes = "Methoden für die Beteiligung junger Menschen und Pflegeeltern\n".encode()
        r = s.request("PUT", f"/v1/materials/{inner['id']}/file", raw=inner_bytes, token=team,
                      headers={"Content-Type": "text/plain", "If-Match": '"v1"'})
        self.assertEqual((r.status, r.json()["file"]["size"]), (200, len(inner_bytes)), r)
        public = self.send("POST", "/v1/materials", {
            "programme_id": qid, "kind": "instrument", "title": "Arbeitshilfe Schutzkonzept",
            "visibility": "public", "file_name": "Arbeitshilfe.pdf"}, team)
        public_bytes = pdf("Arbeitshilfe Schutzkonzept")
        r = s.request("PUT", f"/v1/materials/{public['id']}/file", raw=public_bytes, token=team,
                      headers={"Content-Type": "application/pdf", "If-Match": '"v1"'})
        self.assertEqual((r.status, r.json()["file"]["sha256"]),
                         (200, hashlib.sha256(public_bytes).hexdigest()), r)

        # The service desk: an office asks (naming a foster mother), the team answers and
        # publishes the entry in its own words; everyone reads the FAQ without a token.
        asker = self.lead(offices[0])
        q = self.send("POST", "/v1/service-requests", {
            "programme_id": qid, "subject": "Beteiligung von Pflegeeltern",
            "question": "Wie beteiligen wir Frau Beispiel als Pflegemutter am Hilfeplan?"},
            asker)
        self.assertEqual((q["status"], q["office_id"]), ("open", offices[0]))
        path = f"/v1/service-requests/{q['id']}"
        r = self.send("PATCH", path, {"status": "answered",
                                      "answer": "Laden Sie sie zur Beteiligungswerkstatt ein."},
                      team, "service_requests")
        self.assertEqual(r["status"], "answered")
        self.assertIsNotNone(r["answered_at"])
        faq_entry = ("Wie werden Pflegeeltern am Hilfeplan beteiligt?",
                     "Über Beteiligungswerkstätten und eine frühe Einladung zum Hilfeplan.")
        r = self.send("PATCH", path, {"faq_published": True, "faq_question": faq_entry[0],
                                      "faq_answer": faq_entry[1]}, team, "service_requests")
        self.assertTrue(r["faq_published"])
        self.assertEqual(self.send("GET", path, token=asker)["answer"],
                         "Laden Sie sie zur Beteiligungswerkstatt ein.")
        faq = s.get(f"/v1/faq?programme_id={qid}", token=None)
        self.assertEqual(faq.status, 200, faq)
        self.assertEqual([(x["question"], x["answer"]) for x in faq.json()["items"]],
                         [faq_entry])
        self.assertNotIn("Beispiel", faq.body.decode())

        # A professional registers for the protected area, without a token.
        address = "paula.demo@traeger.example"
        r = s.post("/v1/registrations", {
            "programme_id": qid, "seat": "Bielefeld",
            "person": {"first_name": "Paula", "last_name": "Pflege", "email": address,
                       "institution": "Pflegekinderdienst Bielefeld (Test)",
                       "position": "Fachberatung Pflegekinderhilfe"}}, token=None)
        self.assertEqual(r.status, 201, r)
        reg = r.json()
        self.assertEqual((reg["status"], reg["seat_ags"]), ("unconfirmed", s.sql_value(
            "SELECT ags FROM municipalities WHERE name = 'Bielefeld'")))
        # The mail brings the link; following it confirms the address.
        [(subject, text)] = self.mail_to(address)
        self.assertEqual(subject, f"Registrierung bestätigen: {TITLES['offensive']}")
        link = next(line for line in text.splitlines() if line.startswith(PUBLIC_URL))
        page = s.get(link[len(PUBLIC_URL):], token=None)
        self.assertEqual(page.status, 200, page)
        self.assertIn("E-Mail-Adresse bestätigt", page.body.decode())
        # The team finds it confirmed and approves it; the key comes by mail.
        listed = self.send("GET", f"/v1/registrations?programme_id={qid}&status=confirmed",
                           token=team)["items"]
        self.assertEqual([x["id"] for x in listed], [reg["id"]])
        r = self.send("PATCH", f"/v1/registrations/{reg['id']}", {"status": "approved"}, team,
                      "professionals")
        self.assertEqual(r["status"], "approved")
        text = next(t for subject, t in self.mail_to(address, 2)
                    if subject == f"Registrierung freigeschaltet: {TITLES['offensive']}")
        key = next(line for line in text.splitlines() if line.startswith("kqe_"))
        me = self.send("GET", "/v1/me", token=key)
        self.assertEqual((me["role"], me["programme_id"]), ("professional", qid))
        self.assertEqual(s.sql_value("SELECT count(*) FROM api_tokens WHERE professional_id ="
                                     f" '{reg['id']}' AND role = 'professional'"), "1")
        # With its key it reads the programme's materials and downloads the inner one.
        listed = self.send("GET", f"/v1/materials?programme_id={qid}", token=key)["items"]
        self.assertEqual({m["id"] for m in listed}, {inner["id"], public["id"]})
        got = s.get(f"/v1/materials/{inner['id']}/file", token=key)
        self.assertEqual((got.status, got.body, got.header("Content-Type")),
                         (200, inner_bytes, "text/plain"), got)
        # It registers itself for the first online seminar, under its registration's name.
        own = self.register(seminars[0]["id"], key, None, "registered")
        self.assertEqual((own["registered_by"], own["professional_id"], own["office_id"],
                          own["person"]["email"]), ("professional", reg["id"], None, address))
        self.assertIn(f"Anmeldung bestätigt: {seminars[0]['title']}",
                      [subject for subject, _ in self.mail_to(address, 3)])
        # Without a token the programme's material does not exist; the public one does.
        for p in (f"/v1/materials/{inner['id']}", f"/v1/materials/{inner['id']}/file"):
            self.assertProblem(s.get(p, token=None), 404)
        got = s.get(f"/v1/materials/{public['id']}/file", token=None)
        self.assertEqual((got.status, got.body), (200, public_bytes), got)
        self.assertEqual([m["id"] for m in s.get(f"/v1/materials?programme_id={qid}",
                                                 token=None).json()["items"]], [public["id"]])

        # Time passes: the events take place; attendance and feedback, the professional's too.
        for e in seminars + [meeting, workshop]:
            self.play_forward("offensive", e, len(e["dates"]))
        regs[seminars[0]["id"]].append(own)
        for e in seminars + [meeting, workshop]:
            self.record_attendance("offensive", regs[e["id"]], lambda k: [k % 3 != 2])
        r = self.send("PATCH", f"/v1/event-registrations/{own['id']}", {"feedback_rating": 5},
                      key, "event_registrations")
        self.assertEqual((r["feedback_rating"], r["attended"]), (5, [True]))
        type(self).professional = reg["id"]

    # --- 3. the nationwide programme ---------------------------------------------------
    def test_3_the_nationwide_programme(self):
        s = self.stack
        nid = self.new_programme("nationwide", legal_basis="Bundesprogramm",
                                 sponsor="Bundesministerium (Test)",
                                 run_by="Nationales Zentrum Frühe Hilfen (Test)", nrw_only=False)
        team = self.team["nationwide"]
        # A call against published criteria: 12 model and 36 partner municipalities.
        c = self.send("POST", "/v1/calls", call(nid, title="Bewerbung Modellkommunen",
                                                places={"model": 12, "partner": 36}), team)
        criteria = self.send("GET", f"/v1/calls/{c['id']}", token=self.lead(self.offices[14]))
        self.assertEqual([x["id"] for x in criteria["criteria"]],
                         ["interest", "problematic-cases", "motivation"])
        # 60 applications: 30 NRW offices apply themselves; the team enters those of 30
        # offices of the other Länder, which have no kqe account.
        nrw = self.offices[14:44]
        apps = {}
        for i, o in enumerate(nrw):
            apps[o] = self.send("POST", "/v1/applications", {
                "call_id": c["id"], "preferred_role": "model" if i < 10 else "partner",
                "answers": answers(cases=i % 2 == 0)}, self.lead(o), status=201)
        for i, o in enumerate(self.elsewhere):
            apps[o] = self.send("POST", "/v1/applications", {
                "call_id": c["id"], "office_id": o, "preferred_role": "model" if i < 10
                else "partner", "answers": answers(cases=i % 2 == 1)}, team, status=201)
        self.assertEqual({apps[o]["entered_by"] for o in self.elsewhere}, {"programme_team"})
        self.assertEqual({apps[o]["entered_by"] for o in nrw}, {"office"})
        self.close(c["id"], "nationwide")
        ranking = self.send("GET", f"/v1/calls/{c['id']}/ranking", token=team)
        self.assertEqual(len(ranking["items"]), 60)
        # The selection: half of each role from NRW, half from the other Länder.
        models = nrw[:6] + self.elsewhere[:6]
        partners = nrw[6:24] + self.elsewhere[6:24]
        for o in models:
            self.decide(apps[o]["id"], {"status": "selected", "role": "model"}, "nationwide")
        for o in partners:
            self.decide(apps[o]["id"], {"status": "selected", "role": "partner"}, "nationwide")
        # A thirteenth model municipality finds no place.
        r = self.refused(apps[nrw[24]]["id"], {"status": "selected", "role": "model"},
                         "nationwide")
        self.assertProblem(r, 409, errors=[{"pointer": "/role", "code": "full"}])
        for o in nrw[24:27] + self.elsewhere[24:27]:
            self.decide(apps[o]["id"], {"status": "waitlisted"}, "nationwide")
        for o in nrw[27:] + self.elsewhere[27:]:
            self.decide(apps[o]["id"], {"status": "rejected"}, "nationwide")
        ranking = self.send("GET", f"/v1/calls/{c['id']}/ranking", token=team)
        self.assertEqual(ranking["places"], [
            {"role": "model", "places": 12, "selected": 12, "remaining": 0},
            {"role": "partner", "places": 36, "selected": 36, "remaining": 0}])
        self.assertEqual(s.sql(
            "SELECT a.role, count(*), count(*) FILTER (WHERE o.id IS NOT NULL)"
            " FROM applications a LEFT JOIN offices o ON o.id = a.office_id"
            f" WHERE a.call_id = '{c['id']}' AND a.status = 'selected' GROUP BY 1 ORDER BY 1"),
            [["model", "12", "6"], ["partner", "36", "18"]])

        # Twelve clusters: a model municipality and three partners each.
        for i, model in enumerate(models):
            k = self.send("POST", "/v1/clusters", {
                "programme_id": nid, "name": f"Kinderschutzcluster {i + 1}",
                "model_office_id": model, "partner_office_ids": partners[3 * i:3 * i + 3]},
                team)
            self.assertEqual((k["model_office_id"], k["partner_office_ids"]),
                             (model, sorted(partners[3 * i:3 * i + 3])))
        clusters = self.send("GET", f"/v1/clusters?programme_id={nid}&limit=100",
                             token=self.lead(nrw[0]))["items"]
        self.assertEqual([len(k["partner_office_ids"]) for k in clusters], [3] * 12)
        self.assertEqual(s.sql_value(f"SELECT count(*) FROM clusters WHERE programme_id ="
                                     f" '{nid}'"), "12")

        # The workshop series: five two-day meetings, one every two months, up to 30
        # professionals per model municipality, 64 places.
        ws = self.new_event("nationwide", 5, every_months=2, days=2, kind="workshop",
                            title="Werkstatt Aus Fehlern lernen", place="Kassel", capacity=64,
                            per_office_limit=30, participants_only=True)
        a, b, cc = (self.lead(o) for o in nrw[:3])

        def people(token, tag, n, expect, **extra):
            return [self.register(ws["id"], token,
                                  person(f"{tag}{k}", f"{tag.lower()}{k}@jugendamt.example"),
                                  expect(k), **extra) for k in range(n)]
        # The first model municipality sends 31: the 31st waits (its share of 30 is full).
        regs_a = people(a, "WA", 31, lambda k: "registered" if k < 30 else "waitlisted")
        regs_b = people(b, "WB", 26, lambda k: "registered")
        # The team registers four people of a model municipality in another Land.
        regs_by = people(self.team["nationwide"], "WBY", 4, lambda k: "registered",
                         office_id=self.elsewhere[0])
        # The third sends six: four get the last places, two wait (the event is full).
        regs_c = people(cc, "WC", 6, lambda k: "registered" if k < 4 else "waitlisted")
        self.assertEqual([r["waitlist_position"] for r in (regs_a[30], regs_c[4], regs_c[5])],
                         [1, 2, 3])
        e = self.send("GET", f"/v1/events/{ws['id']}")
        self.assertEqual((e["registered"], e["waitlisted"]), (64, 3))
        # One of the second cancels: the first who waits *and fits* moves up — not the
        # first municipality's 31st (its share is full), but the third's fifth.
        gone = regs_b.pop(0)
        self.send("PATCH", f"/v1/event-registrations/{gone['id']}", {"status": "cancelled"}, b,
                  "event_registrations")
        self.assertEqual(self.send("GET", f"/v1/event-registrations/{regs_c[4]['id']}",
                                   token=cc)["status"], "registered")
        self.assertEqual([self.send("GET", f"/v1/event-registrations/{r['id']}", token=t)
                          ["waitlist_position"] for r, t in ((regs_a[30], a), (regs_c[5], cc))],
                         [1, 2])
        self.assertEqual(self.db_registrations(ws["id"]),
                         {"registered": 64, "waitlisted": 2, "cancelled": 1})
        self.assertEqual(s.sql(
            "SELECT office_id, count(*) FROM event_registrations WHERE status = 'registered'"
            f" AND event_id = '{ws['id']}' GROUP BY 1 ORDER BY 2 DESC"),
            [[nrw[0], "30"], [nrw[1], "25"], [nrw[2], "5"], [self.elsewhere[0], "4"]])
        ics = s.get(f"/v1/events.ics?programme_id={nid}", token=cc)
        self.assertEqual((ics.status, ics.body.count(b"BEGIN:VEVENT")), (200, 5), ics)

        # Time passes: the five meetings take place; attendance per two-day meeting.
        self.play_forward("nationwide", ws, 5, every_months=2, days=2)
        present = regs_a[:30] + regs_b + regs_by + regs_c[:5]
        self.assertEqual(len(present), 64)
        self.record_attendance("nationwide", present,
                               lambda k: [not (k % 7 == 0 and d == k % 5) for d in range(5)])
        for token, reg, rating in ((a, regs_a[0], 5), (b, regs_b[0], 4), (cc, regs_c[0], 4)):
            self.send("PATCH", f"/v1/event-registrations/{reg['id']}",
                      {"feedback_rating": rating}, token, "event_registrations")
        self.assertEqual(s.sql_value(
            "SELECT count(*) FROM event_registrations, unnest(attended) d"
            f" WHERE event_id = '{ws['id']}' AND status = 'registered'"), str(64 * 5))

    # --- 4. the accountability table ---------------------------------------------------
    def test_4_the_accountability_table_in_the_report(self):
        s = self.stack
        self.assertEqual(len(self.prog), 3, "the programmes are made by tests 1 to 3")
        r = s.post("/v1/reports", {"scope": "state", "period": str(YEAR)})
        self.assertEqual(r.status, 202, r)
        s.wait_job(r.json()["id"], timeout=60)
        rep = s.get(s.get(f"/v1/jobs/{r.json()['id']}").json()["result"]).json()
        tables = {t["id"]: t for t in rep["tables"]}
        mine = set(self.prog.values())
        for base in ("programme_participants", "programme_registrations",
                     "programme_attendance", "programme_feedback", "programme_questions",
                     "programme_events"):
            table = tables[base + "_by_programme"]
            self.assertLessEqual(mine, {c["programme"] for c in table["cells"]}, base)
            titles = {c["programme"]: c.get("programme_title") for c in table["cells"]}
            self.assertEqual({titles[p] for p in mine}, set(TITLES.values()), base)

        def cell(table_id, **dims):
            t = tables[table_id]
            found = [c for c in t["cells"] if all(c.get(d) == v for d, v in dims.items())
                     and all(c.get(d) is None for d in t["dimensions"] if d not in dims)]
            self.assertEqual(len(found), 1, (table_id, dims))
            return found[0]

        def atoms(sql):
            return [(int(n), int(k)) for n, k in s.sql(sql)]

        def check(table_id, true, sql, **dims):
            """The cell is its records' atoms perturbed; true is their count."""
            found = atoms(sql)
            self.assertEqual(sum(n for n, _ in found), true, (table_id, dims))
            self.assertEqual(cell(table_id, **dims)["value"], published(s, found),
                             (table_id, dims))

        held_regs = (" FROM event_registrations r JOIN offices o ON o.id = r.office_id"
                     " JOIN events e ON e.id = r.event_id WHERE r.programme_id = '{p}'"
                     " AND e.status = 'scheduled' AND e.ends_at <= now() AND {where}"
                     " GROUP BY o.region, o.kind")
        pilot, offensive, nationwide = (self.prog[k] for k in ("pilot", "offensive",
                                                               "nationwide"))
        # Participation: the pilot's eight; of the nationwide programme only its NRW
        # offices (6 model, 18 partner of 12 and 36), never those of the other Länder.
        for p, role, true in ((pilot, "pilot", 8), (nationwide, "model", 6),
                              (nationwide, "partner", 18), (offensive, "model", 0)):
            check("programme_participants_by_programme", true,
                  "SELECT count(*), sum(a.record_key) FROM applications a JOIN offices o"
                  f" ON o.id = a.office_id WHERE a.programme_id = '{p}' AND a.status ="
                  f" 'selected' AND a.role = '{role}' GROUP BY o.region, o.kind",
                  programme=p, programme_role=role)
        # Events held, by kind: a programme's own events are public (every caller lists
        # them), so they are published as counted.
        for p, kind, true in ((pilot, "working_group_meeting", 1), (pilot, "expert_workshop", 1),
                              (pilot, "transfer_conference", 1), (offensive, "online_seminar", 2),
                              (offensive, "network_meeting", 1),
                              (offensive, "participation_workshop", 1),
                              (nationwide, "workshop", 1)):
            self.assertEqual(s.sql_value(
                f"SELECT count(*) FROM events WHERE programme_id = '{p}' AND status ="
                f" 'scheduled' AND ends_at <= now() AND kind = '{kind}'"), str(true))
            self.assertEqual(cell("programme_events_by_programme", programme=p,
                                  event_kind=kind)["value"], true, (p, kind))
        # Registrations of NRW offices by status: the pilot's three events (the experts the
        # team registered come from no office and count nowhere); of the workshop series 60
        # of the 64 with a place (four are of an office in another Land).
        for p, status, true in ((pilot, "registered", 24 + 8 + 11), (pilot, "waitlisted", 1),
                                (pilot, "cancelled", 1), (nationwide, "registered", 60),
                                (nationwide, "waitlisted", 2), (nationwide, "cancelled", 1)):
            check("programme_registrations_by_programme", true,
                  "SELECT count(*), sum(r.record_key)"
                  + held_regs.format(p=p, where=f"r.status = '{status}'"),
                  programme=p, registration_status=status)
        # The quality offensive's: the offices' 24 and the professional seated in Bielefeld,
        # an atom of its own (the row of registered professionals, region LWL).
        office_atoms = atoms("SELECT count(*), sum(r.record_key)" + held_regs.format(
            p=offensive, where="r.status = 'registered'"))
        pro_atoms = atoms("SELECT count(*), sum(record_key) FROM event_registrations WHERE"
                          f" professional_id = '{self.professional}' AND status = 'registered'")
        self.assertEqual((sum(n for n, _ in office_atoms), pro_atoms[0][0]), (24, 1))
        self.assertEqual(cell("programme_registrations_by_programme", programme=offensive,
                              registration_status="registered")["value"],
                         published(s, office_atoms + pro_atoms))
        # Attendance in the pilot: the share of its registered people's dates attended, from
        # the perturbed counts of dates attended and missed.
        counts = {}
        for flag in ("true", "false"):
            found = atoms(
                "SELECT sum(x.n), sum(x.n * x.k) FROM (SELECT o.region, o.kind,"
                f" (SELECT count(*) FROM unnest(r.attended) d WHERE d = {flag}) AS n,"
                " r.record_key AS k FROM event_registrations r JOIN offices o"
                " ON o.id = r.office_id JOIN events e ON e.id = r.event_id"
                f" WHERE r.programme_id = '{pilot}' AND e.status = 'scheduled'"
                " AND e.ends_at <= now() AND r.status = 'registered') x WHERE x.n > 0"
                " GROUP BY x.region, x.kind")
            counts[flag] = published(s, found)
        yes, no = counts["true"], counts["false"]
        self.assertGreater(yes, 0)
        self.assertEqual(cell("programme_attendance_by_programme", programme=pilot,
                              fact="attended")["value"], round(100 * yes / (yes + no), 1))
        # Feedback: eight pilot offices rated the working group; their median is shown.
        self.assertEqual(cell("programme_feedback_median_by_programme", programme=pilot)["value"],
                         float(statistics.median(self.pilot_ratings)))
        # The service desk: the quality offensive's question, answered.
        check("programme_questions_by_programme", 1,
              "SELECT count(*), sum(q.record_key) FROM service_requests q JOIN offices o"
              f" ON o.id = q.office_id WHERE q.programme_id = '{offensive}'"
              " AND q.status = 'answered' GROUP BY o.region, o.kind",
              programme=offensive, service_request_status="answered")
        # The HTML report names the programmes by their titles.
        page = s.get(f"/v1/reports/{rep['id']}.html")
        self.assertEqual(page.status, 200, page)
        html = page.body.decode()
        self.assertIn("nach Programm", html)
        for title in TITLES.values():
            self.assertIn(title, html)


if __name__ == "__main__":
    unittest.main()
