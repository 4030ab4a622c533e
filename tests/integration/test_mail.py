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


if __name__ == "__main__":
    unittest.main()
