"""Job delivery: nothing is lost when the aggregator or Redis is down, nothing counted twice."""

import os
import signal
import unittest

from harness import SqlSession, StackTestCase, wait_until

VALID = {"scope": "state", "period": "2024"}


class JobDeliveryTest(StackTestCase):
    seed_demo = True

    def tearDown(self):
        if self.stack.aggregator is not None:
            self.stack.stop_aggregator()
        if self.stack.redis.proc is None:
            self.stack.redis.start()

    def post_job(self):
        r = self.stack.post("/v1/reports", VALID)
        self.assertEqual(r.status, 202, r)
        return r.json()["id"]

    def test_job_posted_while_aggregator_stopped_completes_when_it_starts(self):
        job = self.post_job()
        self.assertEqual(self.stack.sql_value(f"SELECT status FROM jobs WHERE id = '{job}'"),
                         "queued")
        self.stack.start_aggregator()
        self.stack.wait_job(job)
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FROM reports WHERE job_id = '{job}'"), "1")

    def test_submission_while_redis_is_down_is_accepted_and_relayed(self):
        self.stack.redis.stop()
        job = self.post_job()
        self.assertEqual(self.stack.sql_value(
            f"SELECT published_at IS NULL FROM outbox WHERE job_id = '{job}'"), "t")
        self.stack.redis.start()  # same port, empty: the stream and group are gone too
        self.stack.start_aggregator()
        self.stack.wait_job(job)
        self.assertEqual(self.stack.sql_value(
            f"SELECT published_at IS NOT NULL FROM outbox WHERE job_id = '{job}'"), "t")

    def test_duplicate_delivery_builds_one_report(self):
        self.stack.start_aggregator()
        job = self.post_job()
        self.stack.wait_job(job)
        # Deliver the same job again, as a relay racing the API would.
        entry = self.stack.redis.cli("XADD", "kqe:jobs", "*", "outbox_id", "0", "kind",
                                     "build_report", "job_id", job)
        wait_until(lambda: self.stack.redis.group_info().get("last-delivered-id") == entry
                   and self.stack.redis.group_info().get("pending") == "0",
                   what="duplicate consumed and acknowledged")
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FROM reports WHERE job_id = '{job}'"), "1")
        self.assertEqual(self.stack.sql_value(f"SELECT attempts FROM jobs WHERE id = '{job}'"),
                         "1")

    def test_a_job_another_instance_finished_meanwhile_stays_finished(self):
        # Two instances can hold one job (a redelivery claimed while the first still builds).
        # The one that waited for the job row gets a serialization error once the other
        # commits; recording that as a failed attempt turned 'succeeded' into 'failed', the
        # retry then hit the report already there (23505) until the job was dead. Found
        # under valgrind, where builds are slow enough for claims. Here the other instance
        # is a psql session holding the job row.
        releases, other = SqlSession(self.stack.db_url), SqlSession(self.stack.db_url)
        try:
            # Holds the aggregator after it started the job, before it locks the job row.
            releases.run("SELECT pg_advisory_lock(hashtext('kqe_release'))")
            self.stack.start_aggregator()
            job = self.post_job()
            waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                       " AND query LIKE '{}%'")
            wait_until(lambda: self.stack.sql_value(waiting.format("SELECT kqe_release_make"))
                       == "1", what="aggregator waiting to take a release")
            self.assertEqual(other.run(
                f"BEGIN; SELECT status FROM jobs WHERE id = '{job}' FOR UPDATE"), ["running"])
            releases.run("SELECT pg_advisory_unlock(hashtext('kqe_release'))")
            wait_until(lambda: self.stack.sql_value(waiting.format("SELECT status FROM jobs"))
                       == "1", what="aggregator waiting for the job row")
            other.run(f"UPDATE jobs SET status = 'succeeded', finished_at = now()"
                      f" WHERE id = '{job}'; COMMIT")
            wait_until(lambda: any(l.get("msg") == "job finished elsewhere"
                                   or l.get("msg", "").startswith("job failed")
                                   for l in self.stack.log_lines("aggregator")),
                       what="the aggregator's attempt ended")
            wait_until(lambda: self.stack.redis.group_info().get("pending") == "0",
                       what="the job's message acknowledged")
        finally:
            releases.close()
            other.close()
        self.assertEqual(self.stack.sql_value(
            f"SELECT status || ' ' || attempts FROM jobs WHERE id = '{job}'"), "succeeded 1")
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FROM reports WHERE job_id = '{job}'"), "0")

    def test_garbage_stream_entries_are_acknowledged_and_skipped(self):
        self.stack.start_aggregator()
        self.stack.redis.cli("XADD", "kqe:jobs", "*", "kind", "build_report", "job_id", "x")
        self.stack.redis.cli("XADD", "kqe:jobs", "*", "kind", "nonsense")
        job = self.post_job()
        self.stack.wait_job(job)
        self.assertTrue(self.stack.aggregator.alive())

    def test_aggregator_stops_on_sigterm(self):
        # The log is appended to by every start in this class: wait for this start's line.
        seen = len(self.stack.log_lines("aggregator")) if os.path.exists(
            os.path.join(self.stack.logs, "aggregator.log")) else 0
        self.stack.start_aggregator()
        wait_until(lambda: any(l.get("msg") == "consuming"
                               for l in self.stack.log_lines("aggregator")[seen:]),
                   what="consuming")
        self.assertEqual(self.stack.stop_aggregator(signal.SIGTERM), 0)


class JobRetryTest(StackTestCase):
    """Failed attempts back off and retry; out of attempts a job is dead and dead-lettered."""
    seed_demo = True
    AGG = {"KQE_JOBS_MAX_ATTEMPTS": 3, "KQE_JOBS_BACKOFF_BASE_MS": 100,
           "KQE_JOBS_BACKOFF_MAX_MS": 400}

    def tearDown(self):
        self.stack.sql("GRANT SELECT ON offices TO kqe_service")
        if self.stack.aggregator is not None:
            self.stack.stop_aggregator()

    def post_job(self):
        r = self.stack.post("/v1/reports", VALID)
        self.assertEqual(r.status, 202, r)
        return r.json()["id"]

    def job(self, job_id):
        return self.stack.get(f"/v1/jobs/{job_id}").json()

    def test_failed_attempt_is_retried_after_backoff_and_then_succeeds(self):
        # The aggregator cannot read the directory: every attempt fails (42501).
        self.stack.sql("REVOKE SELECT ON offices FROM kqe_service")
        self.stack.start_aggregator(**self.AGG)
        job = self.post_job()
        wait_until(lambda: self.job(job)["attempts"] >= 2, what="a retry")
        j = self.job(job)
        self.assertIn(j["status"], ("failed", "queued", "running"))
        self.assertIn("42501", j["error"])
        self.stack.sql("GRANT SELECT ON offices TO kqe_service")
        self.stack.wait_job(job, timeout=20)
        j = self.job(job)
        self.assertGreaterEqual(j["attempts"], 2)
        self.assertIsNone(j["next_attempt_at"])
        self.assertIsNotNone(j["result"])

    def test_out_of_attempts_is_dead_and_dead_lettered_without_blocking_others(self):
        self.stack.sql("REVOKE SELECT ON offices FROM kqe_service")
        self.stack.start_aggregator(**self.AGG)
        poison = self.post_job()
        self.stack.wait_job(poison, status="dead", timeout=20)
        j = self.job(poison)
        self.assertEqual(j["attempts"], 3)
        entries = self.stack.redis.cli("XRANGE", "kqe:jobs:dead", "-", "+")
        self.assertIn(poison, entries)
        # Others still go through once the cause is fixed; the dead one stays dead.
        self.stack.sql("GRANT SELECT ON offices TO kqe_service")
        other = self.post_job()
        self.stack.wait_job(other, timeout=20)
        self.assertEqual(self.job(poison)["status"], "dead")

    def test_a_job_postponed_while_the_database_cannot_serve_it_keeps_its_attempts(self):
        # Disk full, a hung server or a statement timeout postpone a job: its delivery stays
        # pending and comes back after the visibility timeout. Counting each return as an
        # attempt made the job dead after a few seconds of outage (found in the disk-full
        # drill). Here a session locks the reports table: every insert times out (57014).
        job = self.post_job()
        lock = SqlSession(self.stack.db_url)
        try:
            lock.run("BEGIN; LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")
            # One attempt only: starting it again would have made it dead. The timeout
            # leaves the release before the job (a quarter of a second) room to finish.
            self.stack.start_aggregator(KQE_JOBS_MAX_ATTEMPTS=1, KQE_JOBS_VISIBILITY_MS=200,
                                        KQE_STATEMENT_TIMEOUT_MS=2000)
            wait_until(lambda: sum(l.get("msg") == "job postponed" and l.get("job_id") == job
                                   for l in self.stack.log_lines("aggregator")) >= 2,
                       timeout=30, what="the job postponed more often than it has attempts")
            self.assertEqual(self.stack.sql_value(
                f"SELECT status || ' ' || attempts FROM jobs WHERE id = '{job}'"), "running 1")
            lock.run("COMMIT")
        finally:
            lock.close()
        self.stack.wait_job(job, timeout=20)
        self.assertEqual(self.job(job)["attempts"], 1)
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FROM reports WHERE job_id = '{job}'"), "1")

    def test_another_runner_starting_a_running_job_counts_an_attempt(self):
        # The poison-job limit still holds: a job left 'running' by a process that is gone
        # (another runner name) counts the crashed attempt when it is started again.
        job = self.post_job()
        self.stack.sql(f"UPDATE jobs SET status = 'running', attempts = 3,"
                       f" runner = 'gone-1-00000000' WHERE id = '{job}'")
        self.stack.start_aggregator(**self.AGG)
        self.stack.wait_job(job, status="dead", timeout=20)
        j = self.job(job)
        self.assertEqual(j["attempts"], 4)
        self.assertIn("crashed or hung", j["error"])

    def test_backoff_doubles_and_is_capped(self):
        # Unit-level figures through the API of the schedule: next_attempt_at - updated_at.
        self.stack.sql("REVOKE SELECT ON offices FROM kqe_service")
        self.stack.start_aggregator(KQE_JOBS_MAX_ATTEMPTS=5, KQE_JOBS_BACKOFF_BASE_MS=2000,
                                    KQE_JOBS_BACKOFF_MAX_MS=60000)
        job = self.post_job()
        wait_until(lambda: self.job(job)["status"] == "failed", what="first failure")
        delay = float(self.stack.sql_value(
            f"SELECT extract(epoch FROM next_attempt_at - updated_at) FROM jobs"
            f" WHERE id = '{job}'"))
        self.assertTrue(1.0 <= delay <= 2.0, delay)  # base 2 s with equal jitter: 1..2 s


class ApiShutdownTest(StackTestCase):
    def test_sigterm_drains_and_exits_zero(self):
        self.assertEqual(self.stack.get("/healthz").status, 200)
        self.assertEqual(self.stack.stop_api(signal.SIGTERM), 0)
        msgs = [l["msg"] for l in self.stack.log_lines()]
        self.assertEqual(msgs[-2:], ["shutting down", "stopped"])


if __name__ == "__main__":
    unittest.main()
