"""Requests against busy, slow, hung and dead dependencies (services/api/pool.c, common/src/db.c).

Before the pool, each event loop ran its requests' queries itself: one slow request (a batch,
a lock wait) stalled every connection of its loop, /healthz included, and a frozen PostgreSQL
or a hung Redis held every request without end. Now the loops only do HTTP; requests that
need a dependency run on a bounded pool with per-client and per-kind caps and a deadline,
every wait on PostgreSQL ends at that deadline, and a breaker makes requests fail fast while
a dependency is known to be gone.

The tests make requests wait in PostgreSQL deterministically: a session holds the row of the
procedure that every case analysis below refers to (FOR UPDATE), so each create waits in its
reference check until the session lets go.
"""

import json
import socket
import threading
import time
import unittest

from harness import SqlSession, StackTestCase, metric, timing_dependent, wait_until
from test_case_analyses import valid


class Waiting:
    """Requests sent in threads, each waiting in PostgreSQL until the hold is released."""

    def __init__(self, test):
        self.test, self.threads, self.answers = test, [], {}

    def send(self, name, method, path, body=None, token=None, timeout=60):
        def run():
            try:
                self.answers[name] = self.test.stack.request(method, path, body=body,
                                                             token=token, timeout=timeout)
            except OSError as e:  # a hang past the client's bound shows as an error
                self.answers[name] = e
        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join()
        return self.answers


class PoolTest(StackTestCase):
    seed_demo = True
    api_env = {"KQE_DB_POOL": 4, "KQE_STATEMENT_TIMEOUT_MS": 60000,
               "KQE_REQUEST_TIMEOUT_MS": 60000}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proc, cls.office, _ = cls.stack.open_procedure()
        cls.tokens = [cls.stack.token("office_staff", office=cls.office, name=f"pool-{i}")[0]
                      for i in range(6)]

    def setUp(self):
        self.hold = SqlSession(self.stack.db_url)
        self.hold.run(f"BEGIN; SELECT 1 FROM procedures WHERE id = '{self.proc}' FOR UPDATE;")
        self.waiting = Waiting(self)
        self.n = 0

    def tearDown(self):
        self.hold.run("ROLLBACK;")
        self.hold.close()
        self.waiting.join()

    def create(self, name, token):
        self.n += 1
        body = valid(self.proc, reference=f"POOL-{self.id()[-12:]}-{self.n}")
        self.waiting.send(name, "POST", "/v1/case-analyses", body, token=token)

    def batch(self, name, token):
        self.n += 1
        items = [valid(self.proc, reference=f"POOLB-{self.id()[-12:]}-{self.n}-{i}")
                 for i in range(3)]
        self.waiting.send(name, "POST", "/v1/case-analyses:batch", {"items": items}, token=token)

    def busy_and_queued(self, busy, queued):
        wait_until(lambda: (metric(self.stack, "kqe_pool_busy"),
                            metric(self.stack, "kqe_pool_queued")) == (busy, queued),
                   what=f"{busy} pool threads busy and {queued} queued")

    def release(self):
        self.hold.run("ROLLBACK;")
        self.hold.run("BEGIN;")  # tearDown's ROLLBACK then ends nothing of importance
        return self.waiting.join()

    def test_health_metrics_and_contract_answer_while_every_pool_thread_waits(self):
        for i in range(4):  # four clients, one request each: every thread
            self.create(f"c{i}", self.tokens[i])
        self.create("queued", self.tokens[4])
        self.busy_and_queued(4, 1)  # /metrics answered while all of them wait
        self.assertEqual(self.stack.get("/healthz", token=None, timeout=5).status, 200)
        self.assertEqual(self.stack.get("/openapi.json", token=None, timeout=5).status, 200)
        self.assertEqual(self.stack.get("/docs", token=None, timeout=5).status, 200)
        answers = self.release()
        self.assertEqual(sorted(a.status for a in answers.values()), [201] * 5, answers)

    def test_one_client_holds_at_most_half_of_the_pool(self):
        for i in range(4):  # one client, four requests: two run, two wait
            self.create(f"a{i}", self.tokens[0])
        self.busy_and_queued(2, 2)
        # Another client is served meanwhile: a thread was kept free for it.
        other = self.stack.get("/v1/offices?limit=1", token=self.tokens[1], timeout=10)
        self.assertEqual(other.status, 200)
        self.assertEqual(metric(self.stack, "kqe_pool_busy"), 2)  # the first still wait
        answers = self.release()
        self.assertEqual([a.status for a in answers.values()], [201] * 4, answers)

    def test_batches_hold_at_most_half_of_the_pool(self):
        for i in range(3):  # three clients' batches: two run, one waits
            self.batch(f"b{i}", self.tokens[i])
        self.busy_and_queued(2, 1)
        other = self.stack.get("/v1/offices?limit=1", token=self.tokens[3], timeout=10)
        self.assertEqual(other.status, 200)
        answers = self.release()
        self.assertEqual([a.status for a in answers.values()], [201] * 3, answers)

    def test_a_client_gone_while_its_request_waits_costs_nothing_and_the_retry_replays(self):
        body = valid(self.proc, reference=f"POOL-GONE-{self.id()[-6:]}")
        raw = json.dumps(body).encode()
        head = (f"POST /v1/case-analyses HTTP/1.1\r\nHost: kqe\r\n"
                f"Authorization: Bearer {self.tokens[5]}\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: gone-1\r\nContent-Length: {len(raw)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", self.stack.api_port)) as s:
            s.sendall(head + raw)
            self.busy_and_queued(1, 0)
        # The client is gone; the request still runs to its end once the row is free, and
        # its answer goes nowhere (the loop must not touch what evhttp freed).
        self.release()
        wait_until(lambda: metric(self.stack, "kqe_pool_busy") == 0, what="the pool idle")
        again = self.stack.post("/v1/case-analyses", body, token=self.tokens[5],
                                headers={"Idempotency-Key": "gone-1"})
        self.assertEqual((again.status, again.header("Idempotency-Replayed")), (201, "true"))
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM case_analyses WHERE id = '"
            + again.header("Location").rsplit("/", 1)[1] + "'"), "1")
        self.assertEqual(self.stack.get("/healthz", token=None).status, 200)


class DeadlineTest(StackTestCase):
    """A request never waits past its deadline: for a pool thread or for PostgreSQL."""

    seed_demo = True
    api_env = {"KQE_DB_POOL": 2, "KQE_REQUEST_TIMEOUT_MS": 1500,
               "KQE_STATEMENT_TIMEOUT_MS": 60000}

    @timing_dependent("the last write must finish within the 1.5 s deadline the test sets")
    def test_requests_waiting_past_their_deadline_are_503_and_nothing_is_written(self):
        proc, office, _ = self.stack.open_procedure()
        tokens = [self.stack.token("office_staff", office=office, name=f"dl-{i}")[0]
                  for i in range(4)]
        before = self.stack.sql_value("SELECT count(*) FROM case_analyses")
        hold = SqlSession(self.stack.db_url)
        hold.run(f"BEGIN; SELECT 1 FROM procedures WHERE id = '{proc}' FOR UPDATE;")
        waiting = Waiting(self)
        try:
            # Two run and wait for the lock, two wait for a thread (and get one only when the
            # first two gave up, with little of their own time left). The client's bound is
            # the deadline plus a margin: an answer after it would show as an error here.
            for i, token in enumerate(tokens):
                waiting.send(i, "POST", "/v1/case-analyses",
                             valid(proc, reference=f"DEADLINE-{i}"), token=token, timeout=6.5)
            answers = waiting.join()
        finally:
            hold.run("ROLLBACK;")
            hold.close()
        for name, r in answers.items():
            with self.subTest(request=name):
                self.assertNotIsInstance(r, OSError)
                body = self.assertProblem(r, 503)
                self.assertTrue(r.header("Retry-After"), r)
                self.assertIn(body["detail"], (
                    "The database is unavailable; try again shortly.",
                    "The server could not take the request in time; try again shortly."))
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM case_analyses"), before)
        # The lock is gone: the same request now goes through.
        r = self.stack.post("/v1/case-analyses", valid(proc, reference="DEADLINE-0"),
                            token=tokens[0])
        self.assertEqual(r.status, 201, r)


class BlackHole:
    """A TCP server that accepts and never answers (a hung dependency); counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.held = 0, []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class HungRedisTest(StackTestCase):
    """Redis accepts connections and never answers: the rate limiter must not hold requests."""

    seed_demo = True
    start_api = False

    def test_requests_go_on_and_redis_is_not_asked_again_and_again(self):
        hole = BlackHole()
        try:
            self.stack.start_api(KQE_REDIS_URL=f"redis://127.0.0.1:{hole.port}/0",
                                 KQE_DB_POOL=2, KQE_REDIS_TIMEOUT_MS=300)
            for _ in range(20):
                r = self.stack.get("/v1/offices?limit=1", timeout=5)
                self.assertEqual(r.status, 200, r)
                self.assertIsNone(r.header("RateLimit-Limit"))  # not known: Redis did not say
            # Without the breaker every request would have waited out its own timeout on a
            # new connection (20 of them); with it, Redis is tried about once per cooldown.
            self.assertLessEqual(hole.accepted, 2 + 1 + 2, hole.accepted)  # pool, sampler, probes
            self.assertGreaterEqual(
                metric(self.stack, 'kqe_breaker_trips_total{dependency="redis"}'), 1)
        finally:
            self.stack.stop_api()
            hole.close()


class RestartedRedisTest(StackTestCase):
    """Redis restarted: the connections kept from before are dead, Redis is not."""

    api_env = {"KQE_DB_POOL": 1}  # one pool thread: the request below surely uses its old one

    def test_the_first_request_after_a_restart_uses_redis_again(self):
        for _ in range(3):
            self.assertIsNotNone(self.stack.get("/v1/me").header("RateLimit-Limit"))
        self.stack.redis.stop()
        self.stack.redis.start()
        # The metrics sampler may have tried Redis while it was down and opened the breaker;
        # its cooldown (2 s) passes first, so what is tested is the kept connection alone.
        time.sleep(2.5)
        trips = metric(self.stack, 'kqe_breaker_trips_total{dependency="redis"}')
        # The pool thread's connection ends in EOF: counted as Redis failing, the breaker
        # would open and this answer would have no RateLimit-* headers (Redis not asked).
        r = self.stack.get("/v1/me")
        self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(r.header("RateLimit-Limit"), r)
        self.assertEqual(metric(self.stack, 'kqe_breaker_trips_total{dependency="redis"}'),
                         trips)


class HungDatabaseTest(StackTestCase):
    """PostgreSQL accepts connections and never answers: 503 within the deadline, fast."""

    start_api = False

    @timing_dependent("the pool threads must still be connecting (3 s) at the first request")
    def test_503_within_the_deadline_and_health_answers(self):
        hole = BlackHole()
        try:
            self.stack.start_api(wait_ready=False, KQE_DB_POOL=2, KQE_REQUEST_TIMEOUT_MS=1000,
                                 KQE_DATABASE_URL=f"postgresql://kqe@127.0.0.1:{hole.port}/kqe")
            # Both pool threads are stuck connecting (3 s from the start): the first request
            # waits for a thread, and the reaper answers it at its deadline (1 s).
            r = self.stack.get("/v1/offices?limit=1", timeout=2 + 4)
            self.assertProblem(r, 503)
            self.assertEqual(metric(self.stack, "kqe_pool_expired_total"), 1)
            for _ in range(30):
                r = self.stack.get("/v1/offices?limit=1", timeout=2 + 4)
                body = self.assertProblem(r, 503)
                self.assertTrue(r.header("Retry-After"), r)
                self.assertIn("try again", body["detail"])
                self.assertEqual(self.stack.get("/healthz", token=None, timeout=5).status, 200)
            # The breaker: the hole saw a connection per thread and probe (one a second at
            # most), not one per request.
            self.assertLessEqual(hole.accepted, 12, hole.accepted)
            self.assertEqual(
                metric(self.stack, 'kqe_breaker_open{dependency="postgresql"}'), 1)
        finally:
            self.stack.stop_api()
            hole.close()


if __name__ == "__main__":
    unittest.main()
