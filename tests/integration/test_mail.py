"""Mail: what a registration tells its person — confirmed, waiting, moved up — is queued in
the write's transaction and sent over SMTP by the aggregator to a real SMTP server (a local
sink), retried with backoff while the server is away, and marked failed in the end; no
address in the database's clear text or in a log."""

import os
import unittest

from harness import MailSink, StackTestCase, free_port, wait_until
from test_programmes import event, person, programme


class MailTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.sink = MailSink(os.path.join(s.workdir, "maildir")).start()
        s.start_aggregator(KQE_SMTP_URL=cls.sink.url, KQE_MAIL_RETRY_MS=100,
                           KQE_MAIL_FROM="kqe@programme.example")
        cls.offices = [r[0] for r in s.sql("SELECT id FROM offices ORDER BY id LIMIT 2")]
        r = s.post("/v1/programmes", programme(title="Mail (Test)"))
        assert r.status == 201, r
        cls.team = s.token("programme_team", programme=r.json()["id"])[0]
        cls.staff = [s.token("office_staff", office=o)[0] for o in cls.offices]
        cls.programme = r.json()["id"]

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        super().tearDownClass()

    def new_event(self, **over):
        r = self.stack.post("/v1/events", event(self.programme, capacity=1,
                                                per_office_limit=None, **over), token=self.team)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def register(self, event_id, who, office=0):
        r = self.stack.post("/v1/event-registrations",
                            {"event_id": event_id, "person": person(who)},
                            token=self.staff[office])
        self.assertEqual(r.status, 201, r)
        return r.json()

    def mails_to(self, address):
        return [(subject, text) for (m, subject, text) in self.sink.messages()
                if m["To"] == address]

    def test_1_confirmed_waiting_and_moved_up(self):
        e = self.new_event(title="Werkstatt Kinderschutz")
        anna = self.register(e["id"], "Anna")
        berta = self.register(e["id"], "Berta", office=1)
        self.assertEqual((anna["status"], berta["status"]), ("registered", "waitlisted"))
        wait_until(lambda: len(self.mails_to("anna@jugendamt.example")) == 1
                   and len(self.mails_to("berta@jugendamt.example")) == 1, timeout=20,
                   what="Anna's and Berta's mails")
        [(subject, text)] = self.mails_to("anna@jugendamt.example")
        self.assertEqual(subject, "Anmeldung bestätigt: Werkstatt Kinderschutz")
        self.assertIn("Guten Tag Anna Muster,", text)
        self.assertIn("Beginn: 01.01.2099 09:00 Uhr (erster von 5 Terminen)", text)  # Berlin
        self.assertIn(anna["id"], text)
        [(subject, _)] = self.mails_to("berta@jugendamt.example")
        self.assertEqual(subject, "Warteliste: Werkstatt Kinderschutz")
        # Anna cancels: Berta moves up and is told.
        version = self.stack.sql_value(
            f"SELECT version FROM event_registrations WHERE id = '{anna['id']}'")
        r = self.stack.request("PATCH", f"/v1/event-registrations/{anna['id']}",
                               body={"status": "cancelled"}, token=self.staff[0],
                               headers={"If-Match": f'"v{version}"'})
        self.assertEqual(r.status, 200, r)
        wait_until(lambda: len(self.mails_to("berta@jugendamt.example")) == 2, timeout=20,
                   what="Berta's second mail")
        self.assertIn("Platz frei geworden: Werkstatt Kinderschutz",
                      [s for s, _ in self.mails_to("berta@jugendamt.example")])
        message = next(m for m, s, _ in self.sink.messages() if s.startswith("Platz frei"))
        self.assertEqual(message["From"], "kqe@programme.example")
        # Stored encrypted; neither log names an address.
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM mails WHERE recipient_enc LIKE '%@%'"
            " OR body_enc LIKE '%Muster%'"), "0")
        for which in ("api", "aggregator"):
            with open(os.path.join(self.stack.logs, f"{which}.log"), encoding="utf-8") as f:
                self.assertNotIn("jugendamt.example", f.read())
        wait_until(lambda: self.stack.sql_value(
            "SELECT count(*) FROM mails WHERE status <> 'sent'") == "0", timeout=20,
            what="every mail sent")

    def test_2_a_server_that_is_away_delays_mail_and_loses_none(self):
        self.sink.stop()
        e = self.new_event(title="Netzwerktreffen")
        carl = self.register(e["id"], "Carl")
        wait_until(lambda: int(self.stack.sql_value(
            "SELECT coalesce(max(attempts), 0) FROM mails WHERE status = 'queued'")) >= 2,
            timeout=20, what="two attempts")
        row = self.stack.sql("SELECT status, last_error FROM mails WHERE status = 'queued'")[0]
        self.assertEqual(row[0], "queued")
        self.assertRegex(row[1], r"^curl \d+ ")
        self.assertNotIn("carl", row[1])
        self.sink.start()
        wait_until(lambda: len(self.mails_to("carl@jugendamt.example")) == 1, timeout=30,
                   what="Carl's mail once the server is back")
        self.assertIn(carl["id"], self.mails_to("carl@jugendamt.example")[0][1])

    def test_3_a_mail_that_never_goes_is_marked_failed(self):
        s = self.stack
        s.stop_aggregator()
        dead = f"smtp://127.0.0.1:{free_port()}"
        s.start_aggregator(KQE_SMTP_URL=dead, KQE_MAIL_RETRY_MS=50, KQE_MAIL_ATTEMPTS=3)
        try:
            e = self.new_event(title="Online-Seminar")
            self.register(e["id"], "Dora")
            wait_until(lambda: s.sql_value(
                "SELECT count(*) FROM mails WHERE status = 'failed'") == "1", timeout=30,
                what="the mail marked failed")
            self.assertEqual(s.sql("SELECT attempts, last_error LIKE 'curl 7 %'"
                                   " FROM mails WHERE status = 'failed'"), [["3", "t"]])
        finally:
            s.stop_aggregator()
            s.start_aggregator(KQE_SMTP_URL=self.sink.url, KQE_MAIL_RETRY_MS=100)


def professional(programme_id, **over):
    body = {"programme_id": programme_id, "seat": "Bielefeld",
            "person": {"first_name": "Paula", "last_name": "Pflege",
                       "email": "paula@traeger.example", "institution": "Pflegekinderdienst",
                       "position": "Fachberatung Pflegekinderhilfe"}}
    body.update(over)
    return body


class ProfessionalsTest(StackTestCase):
    """A professional registers without a token, confirms the address by the mail's link,
    is approved by the programme's team and uses the key the approval mail brings."""
    seed_demo = True
    api_env = {"KQE_SIGNUP_RATE_LIMIT_PER_MINUTE": 12, "KQE_PUBLIC_URL": "https://kqe.example"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.sink = MailSink(os.path.join(s.workdir, "maildir")).start()
        s.start_aggregator(KQE_SMTP_URL=cls.sink.url, KQE_MAIL_RETRY_MS=100)
        r = s.post("/v1/programmes", programme(title="Qualitätsoffensive (Registrierung)"))
        assert r.status == 201, r
        cls.programme = r.json()["id"]
        cls.team = s.token("programme_team", programme=cls.programme)[0]

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        super().tearDownClass()

    def state(self):
        return self.stack.sql("SELECT (SELECT count(*) FROM professionals),"
                              " (SELECT count(*) FROM mails), (SELECT count(*) FROM api_tokens)")[0]

    def mail_to(self, address, count=1):
        wait_until(lambda: len([m for m, _, _ in self.sink.messages()
                                if m["To"] == address]) >= count,
                   timeout=20, what=f"mail {count} to {address}")
        return [(s, t) for m, s, t in self.sink.messages() if m["To"] == address]

    def decide(self, rid, status):
        version = self.stack.sql_value(f"SELECT version FROM professionals WHERE id = '{rid}'")
        return self.stack.request("PATCH", f"/v1/registrations/{rid}", body={"status": status},
                                  token=self.team, headers={"If-Match": f'"v{version}"'})

    def test_1_register_confirm_approve_and_use_the_key(self):
        s = self.stack
        r = s.post("/v1/registrations", professional(self.programme), token=None)
        self.assertEqual(r.status, 201, r)
        reg = r.json()
        self.assertEqual((reg["status"], reg["seat"], reg["person"]["institution"]),
                         ("unconfirmed", "Bielefeld", "Pflegekinderdienst"))
        self.assertEqual(reg["seat_ags"], s.sql_value(
            "SELECT ags FROM municipalities WHERE name = 'Bielefeld'"))
        [(subject, text)] = self.mail_to("paula@traeger.example")
        self.assertEqual(subject, "Registrierung bestätigen: Qualitätsoffensive (Registrierung)")
        link = next(line for line in text.splitlines() if line.startswith("https://"))
        self.assertTrue(link.startswith("https://kqe.example/v1/registrations/confirm?token="))
        # The team cannot approve before the address is confirmed.
        self.assertProblem(self.decide(reg["id"], "approved"), 409)
        path = link[len("https://kqe.example"):]
        page = s.get(path, token=None)
        self.assertEqual(page.status, 200, page)
        self.assertIn("E-Mail-Adresse bestätigt", page.body.decode())
        self.assertEqual(s.get(path, token=None).status, 200)  # again: nothing changes
        listed = s.get(f"/v1/registrations?programme_id={self.programme}&status=confirmed",
                       token=self.team).json()["items"]
        self.assertEqual([x["id"] for x in listed], [reg["id"]])
        r = self.decide(reg["id"], "approved")
        self.assertEqual((r.status, r.json()["status"]), (200, "approved"), r)
        text = next(t for subject, t in self.mail_to("paula@traeger.example", 2)
                    if subject == "Registrierung freigeschaltet: Qualitätsoffensive"
                                  " (Registrierung)")
        key = next(line for line in text.splitlines() if line.startswith("kqe_"))
        # The key: its programme's published part and itself, nothing else.
        me = s.get("/v1/me", token=key).json()
        self.assertEqual((me["role"], me["programme_id"]), ("professional", self.programme))
        self.assertEqual(s.get(f"/v1/events?programme_id={self.programme}", token=key).status,
                         200)
        own = s.get(f"/v1/registrations/{reg['id']}", token=key)
        self.assertEqual((own.status, own.json()["person"]["email"]),
                         (200, "paula@traeger.example"))
        for path in ("/v1/procedures", "/v1/applications", "/v1/offices", "/v1/reports"):
            self.assertProblem(s.get(path, token=key), 403)
        # The identity provider's import: the approved professionals as CSV.
        csv_text = s.get(f"/v1/registrations.csv?programme_id={self.programme}&status=approved",
                         token=self.team).body.decode()
        self.assertIn("paula@traeger.example", csv_text)
        # Stored: the key's hash, the person encrypted; no address in the API's log.
        self.assertEqual(s.sql_value("SELECT count(*) FROM professionals"
                                     " WHERE person_enc LIKE '%paula%'"), "0")
        with open(os.path.join(s.logs, "api.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertNotIn("traeger.example", log)
        self.assertNotIn(key, log)

    def approved(self, first, email):
        """A professional through the whole way: registered, confirmed, approved; its key."""
        s = self.stack
        r = s.post("/v1/registrations", professional(self.programme, person={
            "first_name": first, "last_name": "Pflege", "email": email,
            "institution": "Pflegekinderdienst", "position": "Fachberatung"}), token=None)
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        [(_, text)] = self.mail_to(email)
        link = next(line for line in text.splitlines() if line.startswith("https://"))
        self.assertEqual(s.get(link[len("https://kqe.example"):], token=None).status, 200)
        self.assertEqual(self.decide(rid, "approved").status, 200)
        text = next(t for subject, t in self.mail_to(email, 2)
                    if subject.startswith("Registrierung freigeschaltet"))
        return next(line for line in text.splitlines() if line.startswith("kqe_")), rid

    def test_15_the_protected_area_events_and_materials(self):
        s = self.stack
        key, rid = self.approved("Pia", "pia@traeger.example")
        # Events: a professional registers itself, under its registration's name.
        r = s.post("/v1/events", event(self.programme, capacity=5), token=self.team)
        self.assertEqual(r.status, 201, r)
        ev = r.json()["id"]
        closed = s.post("/v1/events", event(self.programme, participants_only=True),
                        token=self.team).json()["id"]
        before = s.sql("SELECT count(*), (SELECT count(*) FROM audit_log)"
                       " FROM event_registrations")[0]
        r = s.post("/v1/event-registrations", {"event_id": ev, "person": person("Mallory")},
                   token=key)
        self.assertProblem(r, 422, errors=[{"pointer": "/person", "code": "forbidden"}])
        self.assertProblem(s.post("/v1/event-registrations", {"event_id": closed}, token=key),
                           409, errors=[{"pointer": "/event_id", "code": "participants_only"}])
        other = s.sql_value("SELECT id FROM events WHERE programme_id <> "
                            f"'{self.programme}' LIMIT 1")
        self.assertProblem(s.post("/v1/event-registrations", {"event_id": other}, token=key),
                           422, errors=[{"pointer": "/event_id", "code": "not_found"}])
        self.assertEqual(s.sql("SELECT count(*), (SELECT count(*) FROM audit_log)"
                               " FROM event_registrations")[0], before)
        r = s.post("/v1/event-registrations", {"event_id": ev}, token=key)
        self.assertEqual(r.status, 201, r)
        reg = r.json()
        self.assertEqual((reg["status"], reg["registered_by"], reg["professional_id"],
                          reg["office_id"], reg["person"]),
                         ("registered", "professional", rid, None,
                          {"first_name": "Pia", "last_name": "Pflege",
                           "email": "pia@traeger.example"}))
        self.assertProblem(s.post("/v1/event-registrations", {"event_id": ev}, token=key), 409)
        self.assertIn("Anmeldung bestätigt: Qualitätswerkstatt",
                      [subject for subject, _ in self.mail_to("pia@traeger.example", 3)])
        listed = s.get("/v1/event-registrations", token=key).json()["items"]
        self.assertEqual([x["id"] for x in listed], [reg["id"]])
        ics = s.get("/v1/event-registrations.ics", token=key)
        self.assertEqual((ics.status, ics.body.count(b"BEGIN:VEVENT")), (200, 5), ics)
        r = s.request("PATCH", f"/v1/event-registrations/{reg['id']}",
                      body={"status": "cancelled"}, token=key, headers={"If-Match": '"v1"'})
        self.assertEqual((r.status, r.json()["status"]), (200, "cancelled"), r)
        # Materials: the programme's own, a file downloaded with the professional's key.
        r = s.post("/v1/materials", {"programme_id": self.programme, "kind": "method",
                                     "title": "Methodenkoffer Beteiligung",
                                     "visibility": "programme", "file_name": "Methoden.txt"},
                   token=self.team)
        self.assertEqual(r.status, 201, r)
        mid = r.json()["id"]
        data = "Methoden für die Beteiligung junger Menschen\n".encode()
        r = s.request("PUT", f"/v1/materials/{mid}/file", raw=data, token=self.team,
                      headers={"Content-Type": "text/plain", "If-Match": '"v1"'})
        self.assertEqual(r.status, 200, r)
        got = s.get(f"/v1/materials/{mid}/file", token=key)
        self.assertEqual((got.status, got.body, got.header("Content-Type")),
                         (200, data, "text/plain"), got)
        self.assertProblem(s.get(f"/v1/materials/{mid}/file", token=None), 404)

    def test_2_bad_registrations_store_nothing(self):
        s = self.stack
        s.post("/v1/registrations", professional(self.programme, person={
            "first_name": "Dora", "last_name": "Doppelt", "email": "dora@x.example",
            "institution": "Jugendamt", "position": "ASD"}), token=None)
        before = self.state()
        r = s.post("/v1/registrations", professional(self.programme, seat="",
                                                     person={"first_name": "", "email": "no"}),
                   token=None)
        self.assertProblem(r, 422)
        self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]),
                         ["/person/email", "/person/first_name", "/person/institution",
                          "/person/last_name", "/person/position", "/seat"])
        r = s.post("/v1/registrations", professional(self.programme, seat="München"), token=None)
        self.assertProblem(r, 422, errors=[{"pointer": "/seat", "code": "not_found"}])
        r = s.post("/v1/registrations", professional(self.programme, person={
            "first_name": "Dora", "last_name": "Doppelt", "email": "DORA@x.example",
            "institution": "Jugendamt", "position": "ASD"}), token=None)
        self.assertProblem(r, 409, errors=[{"pointer": "/person/email", "code": "conflict"}])
        r = s.post("/v1/registrations", professional("00000000-0000-4000-8000-000000000000"),
                   token=None)
        self.assertProblem(r, 422, errors=[{"pointer": "/programme_id", "code": "not_found"}])
        self.assertEqual(self.state(), before)
        # A link that is unknown, expired, or of a rejected registration.
        self.assertEqual(s.get("/v1/registrations/confirm?token=kqe_nope", token=None).status,
                         404)
        rid = s.sql_value("SELECT id FROM professionals WHERE status = 'unconfirmed'"
                          f" AND programme_id = '{self.programme}' LIMIT 1")
        r = self.decide(rid, "rejected")
        self.assertEqual(r.status, 200, r)
        self.assertIn("Registrierung: Qualitätsoffensive (Registrierung)",
                      [subject for subject, _ in self.mail_to("dora@x.example", 2)])
        # Another programme's team and other roles decide nothing.
        other = s.token("programme_team", programme=s.sql_value(
            f"SELECT id FROM programmes WHERE id <> '{self.programme}' LIMIT 1"))[0]
        self.assertProblem(s.get(f"/v1/registrations/{rid}", token=other), 404)

    def test_3_registering_is_rate_limited_per_address(self):
        s = self.stack
        statuses = [s.post("/v1/registrations", professional(self.programme, person={
            "first_name": "R", "last_name": str(i), "email": f"r{i}@x.example",
            "institution": "I", "position": "P"}), token=None).status for i in range(14)]
        self.assertIn(429, statuses)
        self.assertEqual(statuses[0], 201)


if __name__ == "__main__":
    unittest.main()
