"""The job stream kqe:jobs: its state (backlog = undelivered + pending, dead letters) and
trimming it without ever removing an entry a consumer still needs.

The state is read through `kqe jobs status` (jobs_stream_state(), what kqe-api's /metrics
exports) and compared with what XRANGE and XPENDING say, never with XINFO's own lag. The trim
runs through `kqe jobs trim` while no aggregator does (so entries can be left undelivered
and pending on purpose) and in kqe-aggregator on its timer.
"""

import json
import re
import unittest

from harness import StackTestCase, wait_until

STREAM, GROUP, DEAD = "kqe:jobs", "kqe-aggregators", "kqe:jobs:dead"
VALID = {"scope": "state", "period": "2024"}
# Adds ARGV[1] entries to KEYS[1] in one command (thousands of redis-cli calls take seconds).
ADD_MANY = ("for i = 1, tonumber(ARGV[1]) do"
            " redis.call('XADD', KEYS[1], '*', 'kind', 'nonsense', 'n', i) end")


def stream_id(text):
    ms, seq = text.split("-")
    return int(ms), int(seq)


class StreamMixin:
    def redis(self, *args):
        return self.stack.redis.cli(*args)

    def rjson(self, *args):
        return json.loads(self.redis("--json", *args))

    def add(self, n=1):
        return [self.redis("XADD", STREAM, "*", "kind", "nonsense", "n", str(i))
                for i in range(n)]

    def deliver(self, consumer, n):
        """XREADGROUP as `consumer`: n entries become pending, as for a consumer that then
        died before acknowledging them. Their ids."""
        reply = self.rjson("XREADGROUP", "GROUP", GROUP, consumer, "COUNT", str(n),
                           "STREAMS", STREAM, ">")
        return [e[0] for e in next(iter(reply.values()))] if reply else []

    def ids(self):
        return [e[0] for e in self.rjson("XRANGE", STREAM, "-", "+")]

    def kqe_jobs(self, command):
        r = self.stack.kqe("jobs", command)
        self.assertEqual(r.returncode, 0, r.stderr)
        return dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())

    def status(self):
        s = self.kqe_jobs("status")
        for k in ("length", "undelivered", "pending", "backlog", "dead"):
            s[k] = int(s[k])
        return s

    def truth(self):
        """(undelivered, pending) as XRANGE and XPENDING see them."""
        group = next(g for g in self.rjson("XINFO", "GROUPS", STREAM) if g["name"] == GROUP)
        last = stream_id(group["last-delivered-id"])
        undelivered = sum(1 for i in self.ids() if stream_id(i) > last)
        return undelivered, self.rjson("XPENDING", STREAM, GROUP)[0]


class StreamStateTest(StreamMixin, StackTestCase):
    """jobs_stream_state() in states built with Redis commands."""
    start_api = False
    default_role = None

    def setUp(self):
        if self.stack.redis.proc is None:
            self.stack.redis.start()
        self.redis("FLUSHALL")

    def assertState(self, undelivered, pending):
        """The scenario is what the test built, and the state says the same."""
        self.assertEqual(self.truth(), (undelivered, pending))
        s = self.status()
        self.assertEqual((s["undelivered"], s["pending"], s["backlog"]),
                         (undelivered, pending, undelivered + pending), s)
        self.assertEqual(s["length"], len(self.ids()))
        return s

    def test_no_stream_yet_is_an_empty_backlog_not_an_error(self):
        s = self.status()
        self.assertEqual((s["stream_exists"], s["group_exists"]), ("no", "no"))
        self.assertEqual((s["length"], s["backlog"], s["dead"]), (0, 0, 0))

    def test_without_a_group_every_entry_is_backlog(self):
        # The API published before any aggregator created the group (at 0): all still to do.
        self.add(3)
        s = self.status()
        self.assertEqual(s["group_exists"], "no")
        self.assertEqual((s["length"], s["undelivered"], s["pending"], s["backlog"]),
                         (3, 3, 0, 3))
        self.assertEqual(s["trim_keeps_from"], "-")

    def test_backlog_is_undelivered_plus_pending_not_the_length(self):
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
        self.add(8)
        done = self.deliver("a-1", 3)
        self.deliver("b-2", 1)
        self.assertEqual(self.rjson("XACK", STREAM, GROUP, *done[:2]), 2)
        s = self.assertState(undelivered=4, pending=2)
        self.assertEqual(s["length"], 8)
        self.assertEqual(s["lag"], "from Redis")

    def test_unknown_lag_after_xdel_is_counted(self):
        # 2500 entries: the count takes three XRANGE pages of 1000.
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
        self.redis("EVAL", ADD_MANY, "1", STREAM, "2500")
        self.deliver("a-1", 5)
        undelivered = self.ids()[5:]
        self.assertEqual(self.rjson("XDEL", STREAM, undelivered[0], undelivered[1500]), 2)
        group = self.rjson("XINFO", "GROUPS", STREAM)[0]
        self.assertIsNone(group["lag"])  # what Redis 7.0 answers here
        s = self.assertState(undelivered=2493, pending=5)
        self.assertEqual(s["lag"], "counted (Redis did not know it)")

    def test_trim_past_the_group_counts_what_is_left_not_redis_lag(self):
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
        self.add(10)
        self.deliver("a-1", 5)
        self.assertEqual(self.rjson("XTRIM", STREAM, "MAXLEN", "2"), 8)
        group = self.rjson("XINFO", "GROUPS", STREAM)[0]
        self.assertEqual(group["lag"], 5)  # Redis 7.0 still counts the trimmed entries
        # Pending entries whose entries are gone stay pending until XAUTOCLAIM drops them.
        self.assertState(undelivered=2, pending=5)

    def test_dead_letters_are_counted(self):
        self.redis("XADD", DEAD, "*", "job_id", "x", "source_id", "1-0")
        self.redis("XADD", DEAD, "*", "job_id", "y", "source_id", "2-0")
        self.assertEqual(self.status()["dead"], 2)

    def test_redis_down_is_an_error_not_zeros(self):
        self.stack.redis.stop()
        r = self.stack.kqe("jobs", "status")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("did not answer", r.stderr)

    def test_trim_keeps_undelivered_and_pending_entries(self):
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
        ids = self.add(10)
        first = self.deliver("a-1", 6)
        self.rjson("XACK", STREAM, GROUP, *first[:3], *first[4:])
        # ids[3] is pending (delivered, never acknowledged), ids[6:] undelivered.
        t = self.kqe_jobs("trim")
        self.assertEqual((t["trimmed"], t["removed"], t["kept_from"]), ("yes", "3", ids[3]))
        self.assertEqual(self.ids(), ids[3:])
        self.assertState(undelivered=4, pending=1)
        # Nothing more can go until ids[3] is acknowledged; then up to the undelivered.
        self.assertEqual(self.kqe_jobs("trim")["removed"], "0")
        self.rjson("XACK", STREAM, GROUP, ids[3])
        self.assertEqual(self.kqe_jobs("trim")["removed"], "3")
        self.assertEqual(self.ids(), ids[6:])
        self.assertState(undelivered=4, pending=0)

    def test_trim_waits_for_every_group(self):
        # A second group (say, an operator's) has read less: its entries stay too.
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
        self.redis("XGROUP", "CREATE", STREAM, "audit-copy", "0")
        ids = self.add(4)
        self.rjson("XACK", STREAM, GROUP, *self.deliver("a-1", 4))
        self.rjson("XREADGROUP", "GROUP", "audit-copy", "c", "NOACK", "COUNT", "1",
                   "STREAMS", STREAM, ">")
        self.assertEqual(self.kqe_jobs("trim")["removed"], "1")
        self.assertEqual(self.ids(), ids[1:])
        self.assertState(undelivered=0, pending=0)

    def test_trim_without_a_group_removes_nothing(self):
        self.add(3)
        t = self.kqe_jobs("trim")
        self.assertEqual((t["trimmed"], t["removed"]), ("no", "0"))
        self.assertEqual(len(self.ids()), 3)


class AggregatorTrimTest(StreamMixin, StackTestCase):
    """kqe-aggregator trims on its timer; jobs whose entries a trim must keep still run once."""
    seed_demo = True

    def setUp(self):
        self.redis("FLUSHALL")

    def tearDown(self):
        self.stack.sql("GRANT SELECT ON offices TO kqe_service")
        if self.stack.aggregator is not None:
            self.stack.stop_aggregator()

    def post_job(self):
        r = self.stack.post("/v1/reports", VALID)
        self.assertEqual(r.status, 202, r)
        return r.json()["id"]

    def entry_of(self, job):
        return next(e[0] for e in self.rjson("XRANGE", STREAM, "-", "+")
                    if dict(zip(e[1][0::2], e[1][1::2])).get("job_id") == job)

    def assertRanOnce(self, job):
        self.stack.wait_job(job)
        self.assertEqual(self.stack.sql_value(f"SELECT attempts FROM jobs WHERE id = '{job}'"),
                         "1")
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FROM reports WHERE job_id = '{job}'"), "1")

    def trims(self):
        return [l for l in self.stack.log_lines("aggregator")
                if l.get("msg") == "jobs stream trimmed"]

    def test_stream_is_trimmed_to_the_backlog_after_jobs_complete(self):
        self.stack.start_aggregator(KQE_JOBS_TRIM_INTERVAL_S=1)
        jobs = [self.post_job() for _ in range(3)]
        for job in jobs:
            self.assertRanOnce(job)
        wait_until(lambda: self.ids() == [], what="the stream trimmed empty")
        s = self.status()
        self.assertEqual((s["length"], s["backlog"]), (0, 0))
        self.assertEqual(self.rjson("XINFO", "STREAM", STREAM)["entries-added"], 3)

    def metric(self, name):
        text = self.stack.get("/metrics", token=None).body.decode()
        m = re.search(rf"^{name} (\d+)$", text, re.M)
        return int(m.group(1)) if m else None

    def test_the_apis_metrics_say_the_backlog_not_the_length(self):
        # No aggregator: the jobs wait. kqe-api's sampler (every 5 s) reports them as backlog.
        jobs = [self.post_job() for _ in range(3)]
        wait_until(lambda: self.metric("kqe_jobs_backlog") == 3, what="a backlog of 3")
        self.assertEqual(self.metric("kqe_jobs_backlog"), self.status()["backlog"])
        self.stack.start_aggregator(KQE_JOBS_TRIM_INTERVAL_S=1)
        for job in jobs:
            self.assertRanOnce(job)
        # Done and trimmed: nothing left to do, whatever the stream held before.
        wait_until(lambda: (self.metric("kqe_jobs_backlog"),
                            self.metric("kqe_jobs_stream_length")) == (0, 0),
                   what="backlog and stream empty")
        self.assertEqual(self.metric("kqe_jobs_pending"), 0)
        self.assertEqual(self.metric("kqe_redis_up"), 1)

    def test_jobs_left_undelivered_and_pending_survive_a_trim_and_run_once(self):
        # Entries done with before: delivered and acknowledged by a consumer.
        self.add(2)
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0")
        self.rjson("XACK", STREAM, GROUP, *self.deliver("earlier-1", 2))
        # No aggregator runs: three jobs are queued, a consumer takes the first and dies.
        jobs = [self.post_job() for _ in range(3)]
        entries = [self.entry_of(job) for job in jobs]
        self.assertEqual(self.deliver("crashed-2", 1), entries[:1])
        t = self.kqe_jobs("trim")
        self.assertEqual((t["removed"], t["kept_from"]), ("2", entries[0]))
        self.assertEqual(self.ids(), entries)
        s = self.status()
        self.assertEqual((s["undelivered"], s["pending"], s["backlog"]), (2, 1, 3))
        # The aggregator claims the dead consumer's entry and reads the others.
        self.stack.start_aggregator(KQE_JOBS_VISIBILITY_MS=200, KQE_JOBS_TRIM_INTERVAL_S=1)
        for job in jobs:
            self.assertRanOnce(job)
        wait_until(lambda: self.ids() == [], what="the stream trimmed empty")

    def test_running_aggregator_keeps_a_peers_pending_entry(self):
        # A peer aggregator took job g and died; job b comes after it. The running aggregator
        # (visibility 60 s: it does not claim g yet) does b and trims every second.
        self.add(1)
        self.redis("XGROUP", "CREATE", STREAM, GROUP, "0")
        self.rjson("XACK", STREAM, GROUP, *self.deliver("earlier-1", 1))
        g = self.post_job()
        self.assertEqual(self.deliver("peer-2", 1), [self.entry_of(g)])
        b = self.post_job()
        self.stack.start_aggregator(KQE_JOBS_VISIBILITY_MS=60000, KQE_JOBS_TRIM_INTERVAL_S=1,
                                    KQE_LOG_LEVEL="debug")
        self.assertRanOnce(b)
        seen = len(self.trims())
        wait_until(lambda: len(self.trims()) >= seen + 2, what="two trims after job b")
        # Everything from g's entry on stays (b's entry too: MINID cuts only before g).
        self.assertEqual(self.ids(), [self.entry_of(g), self.entry_of(b)])
        self.assertEqual(self.trims()[-1]["kept_from"], self.entry_of(g))
        self.assertEqual(self.stack.sql_value(f"SELECT status FROM jobs WHERE id = '{g}'"),
                         "queued")
        s = self.status()
        self.assertEqual((s["undelivered"], s["pending"], s["backlog"]), (0, 1, 1))
        # Restarted with a short visibility, it claims g, runs it once, and trims all.
        self.stack.stop_aggregator()
        self.stack.start_aggregator(KQE_JOBS_VISIBILITY_MS=200, KQE_JOBS_TRIM_INTERVAL_S=1)
        self.assertRanOnce(g)
        wait_until(lambda: self.ids() == [], what="the stream trimmed empty")

    def test_a_job_whose_entry_redis_lost_is_published_again_and_runs_once(self):
        # Redis loses entries without losing the stream: a failover to a replica that had
        # not received them, an append-only file cut short. Job lost's entry goes; job kept's
        # stays, so the stream is not empty (an empty one is rebuilt at start anyway).
        lost, kept = self.post_job(), self.post_job()
        entry = self.entry_of(lost)
        self.assertEqual(self.stack.sql_value(
            f"SELECT entry_id FROM outbox WHERE job_id = '{lost}'"), entry)
        self.redis("XDEL", STREAM, entry)
        self.stack.start_aggregator(KQE_JOBS_VISIBILITY_MS=200)
        self.assertRanOnce(kept)
        self.assertRanOnce(lost)
        self.assertIn("job stream entries lost; jobs published again",
                      [l.get("msg") for l in self.stack.log_lines("aggregator")])
        # Its new event went to the stream as an entry of its own.
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(DISTINCT entry_id) FROM outbox WHERE job_id = '{lost}'"), "2")

    def test_dead_letter_stream_is_bounded(self):
        # 1000 old dead letters; a job out of attempts adds one with MAXLEN ~ 100.
        self.redis("EVAL", ADD_MANY, "1", DEAD, "1000")
        self.stack.sql("REVOKE SELECT ON offices FROM kqe_service")
        self.stack.start_aggregator(KQE_JOBS_MAX_ATTEMPTS=1, KQE_JOBS_DEAD_MAX=100)
        job = self.post_job()
        self.stack.wait_job(job, status="dead")
        newest = self.rjson("XREVRANGE", DEAD, "+", "-", "COUNT", "1")[0]
        self.assertEqual(dict(zip(newest[1][0::2], newest[1][1::2]))["job_id"], job)
        # Approximate: Redis drops whole nodes (at most 100 entries each by default).
        dead = self.status()["dead"]
        self.assertTrue(100 <= dead <= 200, dead)


if __name__ == "__main__":
    unittest.main()
