"""Idempotency-Key on POST: replay, reuse with another body, release after failure."""

import signal
import threading
import unittest

from harness import SqlSession, StackTestCase, wait_until
from test_case_analyses import valid

REPORT = {"scope": "state", "period": "2024"}


class IdempotencyTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proc, cls.office = cls.stack.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed' ORDER BY id LIMIT 1")[0]
        cls.office_token = cls.stack.token("office_staff", office=cls.office)[0]

    def post(self, path, body, key, token="default"):
        return self.stack.post(path, body, headers={"Idempotency-Key": key}, token=token)

    def count(self, table):
        return int(self.stack.sql_value(f"SELECT count(*) FROM {table}"))

    def test_same_key_same_request_replays_the_first_answer(self):
        jobs = self.count("jobs")
        first = self.post("/v1/reports", REPORT, "report-key-1")
        self.assertEqual(first.status, 202, first)
        again = self.post("/v1/reports", REPORT, "report-key-1")
        self.assertEqual(again.status, 202, again)
        self.assertEqual(again.header("Location"), first.header("Location"))
        self.assertEqual(again.header("Idempotency-Replayed"), "true")
        self.assertEqual(again.json()["id"], first.json()["id"])
        self.assertIsNone(first.header("Idempotency-Replayed"))
        self.assertEqual(self.count("jobs"), jobs + 1)

    def test_same_key_other_body_is_422(self):
        self.assertEqual(self.post("/v1/reports", REPORT, "report-key-2").status, 202)
        jobs = self.count("jobs")
        r = self.post("/v1/reports", {"scope": "state", "period": "2025"}, "report-key-2")
        self.assertProblem(r, 422, detail="This Idempotency-Key was used with a different request.")
        self.assertEqual(self.count("jobs"), jobs)

    def test_case_analysis_replay_creates_one_record_and_keeps_201(self):
        body = valid(self.proc, reference="IDEM-1")
        rows = self.count("case_analyses")
        first = self.post("/v1/case-analyses", body, "case-key-1", token=self.office_token)
        again = self.post("/v1/case-analyses", body, "case-key-1", token=self.office_token)
        self.assertEqual((first.status, again.status), (201, 201), (first, again))
        self.assertEqual(again.json(), first.json())
        self.assertEqual(self.count("case_analyses"), rows + 1)
        # The stored outcome holds no body: no findings text at rest.
        self.assertEqual(self.stack.sql(
            "SELECT status, location FROM idempotency_keys WHERE key = 'case-key-1'"),
            [["201", first.header("Location")]])

    def test_a_dry_run_keeps_nothing_not_even_its_key(self):
        items = [valid(self.proc, reference=f"IDEM-DRY-{i}") for i in range(2)]
        rows = self.count("case_analyses")
        for path, body in (("/v1/case-analyses:batch?dry_run=true", {"items": items}),
                           ("/v1/case-analyses?dry_run=true", items[0])):
            with self.subTest(path=path):
                r = self.post(path, body, "dry-key-" + path[-20:], token=self.office_token)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.stack.sql_value(
                    f"SELECT count(*) FROM idempotency_keys WHERE key = 'dry-key-{path[-20:]}'"),
                    "0")
        self.assertEqual(self.count("case_analyses"), rows)
        real = self.post("/v1/case-analyses:batch", {"items": items}, "dry-key-batch",
                         token=self.office_token)
        self.assertEqual((real.status, real.json()["created"]), (201, 2), real)

    def test_retried_batch_replays_its_summary(self):
        items = [valid(self.proc, reference=f"IDEM-B-{i}") for i in range(3)]
        rows = self.count("case_analyses")
        first = self.post("/v1/case-analyses:batch", {"items": items}, "batch-key-1",
                          token=self.office_token)
        again = self.post("/v1/case-analyses:batch", {"items": items}, "batch-key-1",
                          token=self.office_token)
        self.assertEqual((first.status, again.status), (201, 201), (first, again))
        self.assertEqual(again.json(), first.json())
        self.assertEqual(again.header("Idempotency-Replayed"), "true")
        self.assertEqual(self.count("case_analyses"), rows + 3)
        stored = self.stack.sql_value("SELECT body FROM idempotency_keys WHERE key = 'batch-key-1'")
        self.assertNotIn("IDEM-B", stored)  # counts and ids only

    def test_failed_request_releases_the_key(self):
        bad = valid(self.proc, reference="IDEM-2", result="unsure")
        r = self.post("/v1/case-analyses", bad, "case-key-2", token=self.office_token)
        self.assertProblem(r, 422)
        r = self.post("/v1/case-analyses", valid(self.proc, reference="IDEM-2"), "case-key-2",
                      token=self.office_token)
        self.assertEqual(r.status, 201, r)

    def hold_procedure(self):
        """A session holding the procedure's row: a case write waits for it, key claimed."""
        hold = SqlSession(self.stack.db_url)
        hold.run(f"BEGIN; SELECT 1 FROM procedures WHERE id = '{self.proc}' FOR UPDATE;")
        return hold

    def claimed_by(self):
        """The backend holding an Idempotency-Key's claim (a transaction advisory lock)."""
        return wait_until(lambda: self.stack.sql_value(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"),
            what="a request claiming its key")

    def test_a_concurrent_duplicate_is_409_at_once_and_the_write_happens_once(self):
        items = [valid(self.proc, reference=f"IDEM-CC-{i}") for i in range(3)]
        rows = self.count("case_analyses")
        hold = self.hold_procedure()
        first = {}
        t = threading.Thread(target=lambda: first.update(r=self.post(
            "/v1/case-analyses:batch", {"items": items}, "cc-key", token=self.office_token)))
        t.start()
        self.claimed_by()
        # The first holds the key (and waits for the procedure): the duplicate does not wait.
        second = self.post("/v1/case-analyses:batch", {"items": items}, "cc-key",
                           token=self.office_token)
        self.assertProblem(second, 409,
                           detail="A request with this Idempotency-Key is still in progress.")
        hold.run("ROLLBACK;")
        hold.close()
        t.join()
        self.assertEqual(first["r"].status, 201, first["r"])
        third = self.post("/v1/case-analyses:batch", {"items": items}, "cc-key",
                          token=self.office_token)
        self.assertEqual((third.status, third.header("Idempotency-Replayed")), (201, "true"))
        self.assertEqual(third.json(), first["r"].json())
        self.assertEqual(self.count("case_analyses"), rows + 3)

    def test_a_key_is_free_as_soon_as_the_killed_apis_transaction_is_gone(self):
        # The key is claimed in the write's own transaction: when the process dies
        # mid-request, PostgreSQL aborts it, key and all, and the retry runs at once.
        items = [valid(self.proc, reference=f"IDEM-KILL-{i}") for i in range(3)]
        rows = self.count("case_analyses")
        hold = self.hold_procedure()

        def doomed():
            try:
                self.post("/v1/case-analyses:batch", {"items": items}, "kill-key",
                          token=self.office_token)
            except OSError:
                pass  # the connection dies with the process

        t = threading.Thread(target=doomed)
        t.start()
        backend = self.claimed_by()
        try:
            self.stack.stop_api(signal.SIGKILL)
        finally:
            hold.run("ROLLBACK;")
            hold.close()
            t.join()
            self.stack.start_api()
        wait_until(lambda: self.stack.sql_value(
            f"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend}") == "0",
            what="the killed request's transaction to end")
        self.assertEqual((self.count("case_analyses"), self.stack.sql_value(
            "SELECT count(*) FROM idempotency_keys WHERE key = 'kill-key'")), (rows, "0"))
        retry = self.post("/v1/case-analyses:batch", {"items": items}, "kill-key",
                          token=self.office_token)
        self.assertEqual((retry.status, retry.json()["created"]), (201, 3), retry)
        self.assertIsNone(retry.header("Idempotency-Replayed"))
        self.assertEqual(self.count("case_analyses"), rows + 3)

    def test_keys_belong_to_their_caller(self):
        a = self.post("/v1/reports", REPORT, "shared-key")
        other = self.stack.token("ministry", name="other-caller")[0]
        b = self.post("/v1/reports", REPORT, "shared-key", token=other)
        self.assertEqual((a.status, b.status), (202, 202))
        self.assertNotEqual(a.json()["id"], b.json()["id"])

    def test_invalid_keys_are_400_and_store_nothing(self):
        keys = self.count("idempotency_keys")
        for key in ("x" * 201, "with space", "tab\there"):
            with self.subTest(key=key):
                self.assertProblem(self.post("/v1/reports", REPORT, key), 400)
        self.assertEqual(self.count("idempotency_keys"), keys)


if __name__ == "__main__":
    unittest.main()
