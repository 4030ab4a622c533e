"""Fault drills: the machinery every drill shares (docs/testing.md "Fault drills").

A drill is a test method of a tests/faults/test_*.py module. It gets a stack of its own
(harness.Stack: a database on the drills' PostgreSQL cluster, a Redis with an append-only file
as in production, kqe-api and kqe-aggregator on the demo state), puts it under load (Load:
Python threads writing case analyses and batches with Idempotency-Keys, reading lists and CSV,
requesting reports, recording every answer), injects its fault, undoes it, and checks the
three promises of docs/reliability.md:

 1. Writes. Every write acknowledged 2xx is in PostgreSQL exactly once (its rows, one audit
    entry, one outbox event, its Idempotency-Key) and counted exactly once in the statistics
    (once the aggregator caught up, the rollups equal a recount from the case tables and a
    report built then equals SQL); a write answered otherwise left nothing behind. Retried
    with its Idempotency-Key, every write then lands exactly once.
 2. Recovery. Within RECOVERY_S of the fault's end the service answers again by itself: a
    poll bounded by RECOVERY_S, the one time bound of the drills besides the request deadline.
 3. Answers meanwhile. Each is 2xx or 503 problem+json with Retry-After, within the request
    deadline (the client waits DEADLINE_MS plus MARGIN_S): never a 500, never a hang; the
    processes stay alive.

A write whose outcome the client cannot know — no answer at all (kqe-api killed under it, the
client gone), or an answer given while its COMMIT may still be on its way to a server that is
frozen or crashing — may have landed or not, but never twice and never in part; the retry with
its Idempotency-Key settles it. Only writes that were in flight when such a fault struck count
as that (Drill.in_doubt); every other non-2xx write must have left nothing.

scripts/lib/faults.sh starts the clusters (KQE_TEST_PG_URL, KQE_FAULTS_PG_*; the small one on
a tmpfs, KQE_FAULTS_DISK_*) and runs each module; drill figures go to KQE_FAULTS_RESULTS.
"""

import collections
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402  (tests/integration: the stack, reused as it is)
from harness import Stack, wait_until  # noqa: E402
from test_case_analyses import valid  # noqa: E402
from test_rollups import (CYCLE, assert_report_equals_sql,  # noqa: E402
                          assert_rollups_equal_source, quiet)

# The API's request deadline in the drills (KQE_REQUEST_TIMEOUT_MS; shorter than the
# default so a drill that waits it out stays short) and the client's margin beyond it.
DEADLINE_MS = 3000
MARGIN_S = 2.0
CLIENT_TIMEOUT_S = DEADLINE_MS / 1000 + MARGIN_S
# The service answers again this long after its dependency returned (promise 2).
RECOVERY_S = 5.0
# How long a hang is held: past the deadline and the client's margin, so a request that waits
# for the dependency instead of answering at its deadline is seen hanging.
HANG_S = DEADLINE_MS / 1000 + MARGIN_S + 1.0
# How long a stopped dependency stays down.
DOWN_S = 4.0
# Load after recovery, before the load stops: what the service answers once it is back.
AFTER_S = 3.0
# Liveness bounds (not promises): the load must get going, the aggregator must catch up.
WARM_UP_BOUND_S = 30.0
CATCH_UP_BOUND_S = 120.0
# The load generator's own bounds: it stops by itself.
LOAD_MAX_S = 180.0
LOAD_MAX_CALLS = 20000

PSEUDONYM_KEY = __import__("base64").b64decode(harness.TEST_KEYS["KQE_PSEUDONYM_KEY"])
REPO = harness.REPO
RESULTS = os.environ.get("KQE_FAULTS_RESULTS")

API_ENV = {"KQE_REQUEST_TIMEOUT_MS": DEADLINE_MS,
           # The load is one client per token far above a person's pace; the rate limit
           # stays on (it is Redis work every request does) but never refuses.
           "KQE_RATE_LIMIT_PER_MINUTE": 1000000}
AGGREGATOR_ENV = {"KQE_JOBS_VISIBILITY_MS": 1000}


def pseudonym(office, reference):
    """What kqe-api stores for a case reference (common/src/crypto.c pseudonym())."""
    return hmac.new(PSEUDONYM_KEY, office.encode() + b"\x1f" + reference.encode(),
                    hashlib.sha256).hexdigest()


def stack_sh(*args, check=True):
    """Runs a function of scripts/lib/stack.sh (the one way servers are run, also as root)."""
    r = subprocess.run(["bash", "-c", 'source "$0/scripts/lib/stack.sh" && "$@"', REPO, *args],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def children_of(pid):
    """Pids whose parent is pid (a postmaster's backends and helpers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


class Postgres:
    """A cluster faults.sh started: stopped, crashed, frozen and brought back by a drill."""

    def __init__(self, prefix="KQE_FAULTS_PG"):
        self.dir = os.environ.get(f"{prefix}_DIR")
        self.port = os.environ.get(f"{prefix}_PORT")
        self.settings = os.environ.get(f"{prefix}_SETTINGS", "").split()
        self.url = os.environ.get(f"{prefix}_URL", harness.PG_URL)
        self.frozen = []
        if not self.dir or not self.port:
            raise unittest.SkipTest(f"{prefix}_DIR is not set: run ./scripts/test --faults")

    def stop(self, mode="fast"):
        stack_sh("stack__pg", "pg_ctl", "stop", "-D", self.dir, "-m", mode, "-w", "-t", "60")

    def start(self):
        stack_sh("stack_pg_start", self.dir, self.port, *self.settings)

    def running(self):
        return stack_sh("stack__pg", "pg_ctl", "status", "-D", self.dir,
                        check=False).returncode == 0

    def postmaster(self):
        with open(os.path.join(self.dir, "postmaster.pid")) as f:
            return int(f.readline())

    def freeze(self):
        """SIGSTOP the postmaster, then every process it forked (each leads a process group
        of its own, so one killpg would not reach them)."""
        pm = self.postmaster()
        os.kill(pm, signal.SIGSTOP)
        self.frozen = [pm]
        for pid in children_of(pm):
            os.kill(pid, signal.SIGSTOP)
            self.frozen.append(pid)

    def thaw(self):
        for pid in reversed(self.frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []


# --- the load --------------------------------------------------------------------------

class Call:
    """One request of the load and what came of it."""

    def __init__(self, kind, method, path, body=None, token=None, key=None, refs=()):
        self.kind, self.method, self.path, self.body = kind, method, path, body
        self.token, self.key, self.refs = token, key, list(refs)
        self.t0 = self.t1 = None
        self.status = None      # the HTTP status, or None: no answer
        self.error = None       # no answer: "refused", "reset", "timeout"
        self.headers = {}
        self.data = b""
        self.vanished = False   # the client itself left before the answer (test_clients.py)

    @property
    def write(self):
        return self.kind in ("create", "batch", "report")

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def request_id(self):
        return self.headers.get("x-request-id")

    def json(self):
        return json.loads(self.data)

    def describe(self, t_fault=None):
        at = f" at fault{self.t0 - t_fault:+.2f}s" if t_fault and self.t0 else ""
        took = f" in {self.t1 - self.t0:.2f}s" if self.t1 else ""
        what = self.status if self.status is not None else self.error
        return (f"{self.kind} {self.method} {self.path}{at}{took} → {what}"
                f" request_id={self.request_id} {self.data[:160]!r}")


def send(port, call, timeout=CLIENT_TIMEOUT_S):
    """Sends call on a new connection and records the outcome in it."""
    headers = {"Host": "kqe"}
    if call.token:
        headers["Authorization"] = f"Bearer {call.token}"
    if call.key:
        headers["Idempotency-Key"] = call.key
    data = None
    if call.body is not None:
        data = json.dumps(call.body).encode()
        headers["Content-Type"] = "application/json"
    call.t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(call.method, call.path, body=data, headers=headers)
        resp = conn.getresponse()
        call.data = resp.read()
        call.status = resp.status
        call.headers = {k.lower(): v for k, v in resp.getheaders()}
    except socket.timeout:
        call.error = "timeout"
    except ConnectionRefusedError:
        call.error = "refused"
    except (ConnectionError, http.client.HTTPException, OSError):
        call.error = "reset"
    finally:
        conn.close()
        call.t1 = time.monotonic()
    return call


class Load:
    """Python threads putting the stack under load; every answer is kept in self.calls.

    two writers   POST /v1/case-analyses, one office each, each with an Idempotency-Key;
    one batcher   POST /v1/case-analyses:batch of BATCH items (every other one atomic=false);
    one reader    lists as JSON and CSV (500 rows), one record, the report list;
    one reporter  POST /v1/reports (a state report of the cycle) about once a second.
    """

    BATCH = 20

    def __init__(self, drill):
        self.drill = drill
        self.calls = []
        self.stop_event = threading.Event()
        self.threads = []
        self.active = set()  # calls in flight
        self.lock = threading.Lock()
        self.serial = 0

    def port(self):
        return self.drill.stack.api_port

    def run(self, call):
        with self.lock:
            self.active.add(call)
            self.calls.append(call)
        try:
            return send(self.port(), call)
        finally:
            with self.lock:
                self.active.discard(call)

    def writes_in_flight(self):
        with self.lock:
            return sum(1 for c in self.active if c.write)

    def reference(self, who):
        with self.lock:
            self.serial += 1
            return f"FAULT-{self.drill.name}-{who}-{self.serial}"

    # What each kind of request is; also used by probes and retries.
    def create_call(self, office_index):
        proc, office = self.drill.procs[office_index]
        ref = self.reference(f"c{office_index}")
        return Call("create", "POST", "/v1/case-analyses", valid(proc, reference=ref),
                    self.drill.office_tokens[office], str(uuid.uuid4()), [(office, ref)])

    def batch_call(self, atomic):
        proc, office = self.drill.procs[2]
        refs = [(office, self.reference("b")) for _ in range(self.BATCH)]
        items = [valid(proc, reference=ref, findings=None,
                       result="akute_gefaehrdung" if i % 3 else "latente_gefaehrdung")
                 for i, (_, ref) in enumerate(refs)]
        path = "/v1/case-analyses:batch" + ("" if atomic else "?atomic=false")
        return Call("batch", "POST", path, {"items": items}, self.drill.office_tokens[office],
                    str(uuid.uuid4()), refs)

    def report_call(self):
        return Call("report", "POST", "/v1/reports", {"scope": "state", "period": CYCLE},
                    self.drill.stack.default_token, str(uuid.uuid4()))

    def read_call(self, n):
        proc, office = self.drill.procs[n % 2]
        token = self.drill.office_tokens[office]
        paths = [("read", f"/v1/case-analyses?limit=100&procedure_id={proc}", token),
                 ("csv", "/v1/case-analyses.csv?limit=500", token),
                 ("read", f"/v1/case-analyses/{self.drill.known_case}",
                  self.drill.office_tokens[self.drill.procs[0][1]]),
                 ("read", "/v1/reports?limit=20", self.drill.stack.default_token),
                 ("read", "/v1/offices?limit=200", token)]
        kind, path, token = paths[n % len(paths)]
        return Call(kind, "GET", path, token=token)

    def _loop(self, make, pause):
        started = time.monotonic()
        n = 0
        while (not self.stop_event.is_set() and n < LOAD_MAX_CALLS
               and time.monotonic() - started < LOAD_MAX_S):
            call = self.run(make(n))
            n += 1
            # A client that was refused comes back later (if not quite as late as told).
            self.stop_event.wait(pause if call.ok else 0.5)

    def start(self):
        loops = [(lambda n: self.create_call(0), 0.01), (lambda n: self.create_call(1), 0.01),
                 (lambda n: self.batch_call(n % 2 == 0), 0.1), (self.read_call, 0.01),
                 (lambda n: self.report_call(), 1.0)]
        for make, pause in loops:
            t = threading.Thread(target=self._loop, args=(make, pause), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S + 10)
        self.threads = []


# --- the drill ---------------------------------------------------------------------------

class Drill(unittest.TestCase):
    """A stack under load per test method; run_drill() injects, undoes and checks."""

    pg_prefix = "KQE_FAULTS_PG"  # which of faults.sh's clusters
    redis_cls = None  # harness.Redis; test_failover.py: a master, a replica and Sentinels
    api_env = {}
    aggregator_env = {}

    def postgres(self):
        """The cluster the drill's stack uses (test_failover.py: a primary and its standby)."""
        return Postgres(self.pg_prefix)

    def setUp(self):
        # postgres_hung, redis_hung, …: the database's, the logs' and the figures' name.
        self.name = (type(self).__module__.removeprefix("test_") + "_" +
                     self._testMethodName.removeprefix("test_"))[:40]
        self.started = time.monotonic()
        self.pg = self.postgres()
        self.figures = {"drill": self.name}
        self.addCleanup(self.save_figures)
        s = self.stack = Stack(self.name, pg_url=self.pg.url,
                               persist_redis=True, redis_cls=self.redis_cls)
        self.addCleanup(s.teardown)
        s.setup()
        s.kqe("seed", "--demo", check=True)
        s.default_token, admin_id = s.token("admin")
        self.procs = s.sql("SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
                           f" AND cycle = '{CYCLE}' AND NOT out_of_cycle ORDER BY id LIMIT 3")
        self.office_tokens, self.actors = {}, {s.default_token: f"token:{admin_id}"}
        for _, office in self.procs:
            token, token_id = s.token("office_staff", office=office)
            self.office_tokens[office] = token
            self.actors[token] = f"token:{token_id}"
        self.known_case = s.sql_value("SELECT id FROM case_analyses WHERE office_id ="
                                      f" '{self.procs[0][1]}' ORDER BY id LIMIT 1")
        s.start_api(**{**API_ENV, **self.api_env})
        s.start_aggregator(**{**AGGREGATOR_ENV, **self.aggregator_env})
        # The demo state leaves every office dirty: the aggregator's first recompute of all of
        # them (seconds, in this build) is done before the drill, not during its fault.
        quiet(self, timeout=CATCH_UP_BOUND_S)
        self.load = Load(self)
        self.addCleanup(self.load.stop)
        self.baseline = {
            "cases": {r[0] for r in s.sql("SELECT id FROM case_analyses")},
            "audit": int(s.sql_value("SELECT coalesce(max(id), 0) FROM audit_log")),
            "outbox": int(s.sql_value("SELECT coalesce(max(id), 0) FROM outbox")),
            "jobs": {r[0] for r in s.sql("SELECT id FROM jobs")},
        }
        self.t_fault = self.t_return = self.t_recovered = None
        # Writes in flight at any moment from in_doubt_since to in_doubt_until (the fault
        # takes effect somewhere in it: pg_ctl stop -m immediate takes a while to kill the
        # server, which commits meanwhile) may have committed unseen.
        self.in_doubt_since = self.in_doubt_until = None
        self.probes = []  # recover()'s requests: answers of the service like any other

    def save_figures(self):
        self.figures["seconds"] = round(time.monotonic() - self.started, 1)
        if RESULTS:
            os.makedirs(RESULTS, exist_ok=True)
            with open(os.path.join(RESULTS, self.name + ".json"), "w") as f:
                json.dump(self.figures, f, indent=1)

    # --- phases ----------------------------------------------------------------------
    def warm_up(self):
        """Until every kind of request has been answered 2xx once: the load works."""
        kinds = {"create", "batch", "report", "read", "csv"}
        wait_until(lambda: kinds <= {c.kind for c in list(self.load.calls) if c.ok},
                   timeout=WARM_UP_BOUND_S, interval=0.1, what="every kind of request 2xx")

    def healthy(self):
        """The service answers again: ready, and an authenticated read is served."""
        ready = Call("probe", "GET", "/readyz")
        self.probes.append(send(self.stack.api_port, ready))
        if ready.status != 200:
            return False
        proc, office = self.procs[0]
        read = Call("probe", "GET", f"/v1/case-analyses?limit=1&procedure_id={proc}",
                    token=self.office_tokens[office])
        self.probes.append(send(self.stack.api_port, read))
        return read.status == 200 and self.probe_extra(read)

    def probe_extra(self, read):
        """A drill's own sign of health on top of healthy()'s (default: none)."""
        return True

    def recover(self):
        """Polls healthy() from the fault's end until RECOVERY_S have passed; the seconds it
        took to be healthy (promise 2), or None."""
        while time.monotonic() < self.t_return + RECOVERY_S:
            if self.healthy():
                self.t_recovered = time.monotonic()
                self.figures["recovery_s"] = round(self.t_recovered - self.t_return, 2)
                return self.t_recovered - self.t_return
            time.sleep(0.05)
        self.figures["recovery_s"] = None
        return None

    def run_drill(self, inject, undo, hold, felt=None, when=None, restart=False):
        """Load, when() (waits for the moment), inject(), hold (seconds, or a function that
        waits), undo(), then every check.

        undo runs even if the drill fails before it; felt(calls during the fault) asserts
        the fault reached the service (a drill that injects nothing must not pass). Recovery
        counts from when undo() brought the dependency back, or, with restart (undo starts
        the killed process itself), from when undo() began."""
        self.load.start()
        self.warm_up()
        if when is not None:
            when()
        done = []

        def undo_once():
            if not done:
                done.append(True)
                undo()
        self.addCleanup(undo_once)
        self.t_fault = time.monotonic()
        inject()
        try:
            hold() if callable(hold) else time.sleep(hold)
        finally:
            t_undo = time.monotonic()
            undo_once()
            self.t_return = t_undo if restart else time.monotonic()
            self.figures["fault_s"] = round(t_undo - self.t_fault, 2)
            self.figures["undo_s"] = round(time.monotonic() - t_undo, 2)
        backlog = threading.Thread(target=self.track_backlog, daemon=True)
        backlog.start()
        recovery = self.recover()
        time.sleep(AFTER_S)
        self.load.stop()
        calls = list(self.load.calls)
        outage = [c for c in calls if c.t1 is not None and c.t1 >= self.t_fault
                  and c.t0 <= (self.t_recovered or self.t_return)]
        self.figures["during_fault"] = dict(collections.Counter(
            str(c.status if c.status is not None else c.error) for c in outage))
        if outage:
            self.figures["slowest_answer_during_fault_s"] = round(
                max(c.t1 - c.t0 for c in outage), 2)
        self.figures["calls"] = len(calls)
        self.figures["writes_2xx"] = sum(1 for c in calls if c.write and c.ok)
        with self.subTest("the fault reached the service"):
            if felt is not None:
                felt(outage)
        with self.subTest("2: answers again within %.0f s of the fault's end" % RECOVERY_S):
            self.assertTrue(recovery is not None and recovery <= RECOVERY_S,
                            f"not healthy within {RECOVERY_S} s after the fault ended"
                            f" (healthy after {recovery} s)")
        with self.subTest("3: meanwhile only 2xx or 503 problem+json with Retry-After, in time"):
            self.check_answers(calls + self.probes)
        with self.subTest("3: the processes are alive"):
            self.assertTrue(self.stack.api.alive(), "kqe-api died")
            self.assertTrue(self.stack.aggregator.alive(), "kqe-aggregator died")
        with self.subTest("1: every 2xx write exactly once, nothing of the others"):
            self.catch_up(calls)
            self.check_writes(calls)
        with self.subTest("1: the statistics count every write exactly once"):
            self.check_statistics(calls)
        with self.subTest("1: retried with its Idempotency-Key, every write lands once"):
            self.check_retries(calls)

    def track_backlog(self):
        """A figure, not a promise: how long after the fault's end every event written until
        then (the outbox) was published to the job stream."""
        try:
            mark = self.stack.sql_value("SELECT coalesce(max(id), 0) FROM outbox")
            wait_until(lambda: self.stack.sql_value(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND id <= " + mark)
                == "0", timeout=CATCH_UP_BOUND_S, interval=0.1)
            self.figures["events_relayed_s"] = round(time.monotonic() - self.t_return, 2)
        except AssertionError:
            self.figures["events_relayed_s"] = None

    # --- promise 3 ---------------------------------------------------------------------
    def answer_allowed(self, call):
        """None if call's outcome is allowed, else why not. Drills widen this (kill)."""
        if call.vanished:
            return None  # no answer was awaited
        if call.t1 is None or call.error == "timeout" or call.t1 - call.t0 > CLIENT_TIMEOUT_S:
            return "no answer within the deadline and margin (a hang)"
        if call.error is not None:
            return f"no answer: connection {call.error}"
        if call.ok:
            return None
        if call.status != 503:
            return f"status {call.status}"
        if not call.headers.get("content-type", "").startswith("application/problem+json"):
            return "503 without problem+json"
        if not call.headers.get("retry-after"):
            return "503 without Retry-After"
        return None

    def check_answers(self, calls):
        bad = [(why, c) for c in calls if (why := self.answer_allowed(c)) is not None]
        self.figures["answers_refused_by_promise_3"] = len(bad)
        if bad:
            summary = collections.Counter(why for why, _ in bad)
            examples = "\n".join(f"  {why}: {c.describe(self.t_fault)}" for why, c in bad[:12])
            self.fail(f"{len(bad)} of {len(calls)} answers break promise 3 {dict(summary)}:\n"
                      f"{examples}")

    # --- promise 1 ---------------------------------------------------------------------
    def in_doubt(self, call):
        """A write whose outcome nobody can know: no answer, or answered while its COMMIT may
        have been on its way to a server the fault froze or crashed (in flight at some moment
        from in_doubt_since to in_doubt_until)."""
        if not call.write:
            return False
        if call.error in ("reset", "timeout"):
            return True
        until = self.in_doubt_until or self.in_doubt_since
        return (self.in_doubt_since is not None and not call.ok
                and call.t0 < until and call.t1 >= self.in_doubt_since)

    def catch_up(self, calls):
        """The aggregator has handled everything: no dirty office, no unpublished event, no
        job of the drill still to run. Records how long that took after recovery."""
        s = self.stack
        t0 = time.monotonic()
        wait_until(lambda: s.sql_value(
            "SELECT (SELECT count(*) FROM rollup_dirty) + (SELECT count(*) FROM outbox"
            " WHERE published_at IS NULL) + (SELECT count(*) FROM jobs"
            " WHERE status IN ('queued', 'running', 'failed'))") == "0",
            timeout=CATCH_UP_BOUND_S, interval=0.2, what="the aggregator caught up")
        self.figures["catch_up_s"] = round(time.monotonic() - t0, 1)

    def state(self):
        """What the database holds now, as the checks need it."""
        s = self.stack
        cases = collections.defaultdict(list)
        for pseudo, cid in s.sql("SELECT case_pseudonym, id FROM case_analyses"):
            cases[pseudo].append(cid)
        # The entries writes leave (reads of case-level data by admin leave others).
        audit = collections.defaultdict(list)
        for rid, action in s.sql(
                "SELECT coalesce(request_id, ''), action FROM audit_log"
                f" WHERE id > {self.baseline['audit']} AND action IN"
                " ('case_analysis.create', 'case_analysis.batch_create', 'report.request')"):
            audit[rid].append(action)
        keys = {(a, k): (int(st), loc) for a, k, st, loc in s.sql(
            "SELECT actor, key, status, coalesce(location, '') FROM idempotency_keys")}
        outbox = collections.Counter(kind for kind, in s.sql(
            f"SELECT kind FROM outbox WHERE id > {self.baseline['outbox']}"))
        jobs = {jid: (status, int(n)) for jid, status, n in s.sql(
            "SELECT j.id, j.status, (SELECT count(*) FROM reports r WHERE r.job_id = j.id)"
            " FROM jobs j")}
        return {"cases": cases, "audit": audit, "keys": keys, "outbox": outbox, "jobs": jobs,
                "all_cases": {r[0] for r in s.sql("SELECT id FROM case_analyses")}}

    def landed(self, call, st):
        """How much of call is in the database: (rows found, rows it has)."""
        if call.kind == "report":
            return int((self.actors[call.token], call.key) in st["keys"]), 1
        found = sum(len(st["cases"].get(pseudonym(o, ref), [])) for o, ref in call.refs)
        return found, len(call.refs)

    def check_writes(self, calls):
        st = self.state()
        problems = []
        committed = []
        for c in (c for c in calls if c.write):
            found, total = self.landed(c, st)
            key_row = st["keys"].get((self.actors[c.token], c.key))
            audit = st["audit"].get(c.request_id or "-", [])
            if c.ok or (self.in_doubt(c) and found > 0):
                committed.append(c)
                if found != total:
                    problems.append(f"{found} of {total} rows: {c.describe(self.t_fault)}")
                # The key keeps the outcome a retry replays: the status answered (a write in
                # doubt: the one it would have had).
                if (key_row is None or key_row[0] <= 0
                        or (c.ok and key_row[0] != c.status)):
                    problems.append(f"Idempotency-Key kept as {key_row}:"
                                    f" {c.describe(self.t_fault)}")
                if c.request_id and len(audit) != 1:
                    problems.append(f"{len(audit)} audit entries: {c.describe(self.t_fault)}")
                if c.ok:
                    problems += self.identity_problems(c, st)
            elif found or key_row is not None or audit:
                problems.append(f"left {found} rows, key {key_row}, {len(audit)} audit entries"
                                f" behind: {c.describe(self.t_fault)}")
        # Exactly once across the whole table, and nothing nobody asked for.
        twice = {p: ids for p, ids in st["cases"].items() if len(ids) > 1}
        if twice:
            problems.append(f"case analyses stored twice: {list(twice.items())[:5]}")
        ours = {cid for c in committed if c.kind != "report" for o, ref in c.refs
                for cid in st["cases"].get(pseudonym(o, ref), [])}
        stray = st["all_cases"] - self.baseline["cases"] - ours
        if stray:
            problems.append(f"{len(stray)} case analyses no acknowledged write made:"
                            f" {sorted(stray)[:5]}")
        # A write that landed without an answer has an entry under a request id nobody saw.
        audit_ids = {c.request_id for c in committed if c.request_id}
        unseen = sum(1 for c in committed if not c.request_id)
        others = [(rid, v) for rid, v in st["audit"].items() if rid not in audit_ids]
        if sum(len(v) for _, v in others) != unseen:
            problems.append(f"{sum(len(v) for _, v in others)} audit entries of writes not"
                            f" acknowledged, {unseen} landed unanswered: {others[:3]}")
        want_events = sum(1 for c in committed if c.kind in ("create", "batch"))
        want_jobs = sum(1 for c in committed if c.kind == "report")
        if st["outbox"]["office_changed"] != want_events:
            problems.append(f"{st['outbox']['office_changed']} office_changed events for"
                            f" {want_events} committed writes")
        if st["outbox"]["build_report"] != want_jobs:
            problems.append(f"{st['outbox']['build_report']} build_report events for"
                            f" {want_jobs} committed report requests")
        new_jobs = set(st["jobs"]) - self.baseline["jobs"]
        if len(new_jobs) != want_jobs:
            problems.append(f"{len(new_jobs)} jobs for {want_jobs} committed report requests")
        for jid in new_jobs:
            status, reports = st["jobs"][jid]
            if status != "succeeded" or reports != 1:
                problems.append(f"job {jid} is {status} with {reports} reports")
        in_doubt = [c for c in calls if self.in_doubt(c)]
        self.figures["writes_in_doubt"] = len(in_doubt)
        self.figures["writes_in_doubt_committed"] = sum(
            1 for c in in_doubt if self.landed(c, st)[0] > 0)
        self.figures["writes_not_2xx"] = sum(1 for c in calls if c.write and not c.ok)
        if problems:
            self.fail(f"{len(problems)} problems with the writes:\n  " +
                      "\n  ".join(problems[:15]))

    def identity_problems(self, c, st):
        """The 2xx answer names what was stored: its id, the batch's ids, the job."""
        try:
            body = c.json()
        except ValueError:
            return [f"2xx answer is not JSON: {c.describe(self.t_fault)}"]
        if c.kind == "create":
            (o, ref), = c.refs
            if st["cases"].get(pseudonym(o, ref)) != [body.get("id")]:
                return [f"answer's id is not the stored one: {c.describe(self.t_fault)}"]
        elif c.kind == "batch":
            stored = [st["cases"].get(pseudonym(o, ref), [None])[0] for o, ref in c.refs]
            if body.get("created_ids") != stored:
                return [f"batch answer's ids are not the stored ones: {c.describe()}"]
        elif c.kind == "report" and body.get("id") not in st["jobs"]:
            return [f"acknowledged job is not in jobs: {c.describe(self.t_fault)}"]
        return []

    @staticmethod
    def identity(call):
        """What a write's 2xx answer names: the record or job id, or the batch's ids."""
        body = call.json()
        return body.get("created_ids") if call.kind == "batch" else body.get("id")

    def check_statistics(self, calls):
        """Rollups equal a recount; a report built now equals SQL over the case tables."""
        assert_rollups_equal_source(self)
        s = self.stack
        r = s.post("/v1/reports", {"scope": "state", "period": CYCLE})
        self.assertEqual(r.status, 202, r)
        s.wait_job(r.json()["id"], timeout=CATCH_UP_BOUND_S)
        rep = s.get(s.get(f"/v1/jobs/{r.json()['id']}").json()["result"]).json()
        self.assertEqual(rep["watermark"]["rollups_pending"], 0)
        self.assertEqual(rep["watermark"]["case_analyses"],
                         int(s.sql_value("SELECT count(*) FROM case_analyses")))
        assert_report_equals_sql(self, rep)

    def check_retries(self, calls):
        """What a client does after a failure: the same request with the same Idempotency-Key.
        Every write that did not get a 2xx, and a sample of those that did, is sent again: one
        that landed is replayed (its id again), one that did not lands now; then each is
        stored exactly once and the statistics still equal a recount."""
        writes = [c for c in calls if c.write]
        ok = [c for c in writes if c.ok]
        again = [c for c in writes if not c.ok] + random.sample(ok, min(len(ok), 60))
        st = self.state()
        problems = []
        for c in again:
            landed = self.landed(c, st)[0] > 0
            r = send(self.stack.api_port, Call(c.kind, c.method, c.path, c.body, c.token,
                                               c.key, c.refs), timeout=30)
            replayed = r.headers.get("idempotency-replayed") == "true"
            if not r.ok or replayed != landed:
                problems.append(f"retry of a write that {'had' if landed else 'had not'}"
                                f" landed: {r.describe()} (first: {c.describe(self.t_fault)})")
            elif c.ok and self.identity(r) != self.identity(c):
                problems.append(f"the replay names something else: {r.describe()}"
                                f" (first: {c.describe(self.t_fault)})")
        self.figures["retried"] = len(again)
        if problems:
            self.fail(f"{len(problems)} retries went wrong:\n  " + "\n  ".join(problems[:10]))
        self.catch_up(calls)
        st = self.state()
        for c in writes:
            found, total = self.landed(c, st)
            if found != total:
                problems.append(f"{found} of {total} rows after the retry: {c.describe()}")
        twice = [ids for ids in st["cases"].values() if len(ids) > 1]
        if twice:
            problems.append(f"stored twice after the retries: {twice[:5]}")
        jobs = set(st["jobs"]) - self.baseline["jobs"]
        reports = sum(1 for c in writes if c.kind == "report")
        if len(jobs) != reports + 1:  # + the report check_statistics asked for
            problems.append(f"{len(jobs)} jobs for {reports} report requests (+1 check)")
        if problems:
            self.fail("\n  ".join(problems[:10]))
        assert_rollups_equal_source(self)
        r = self.stack.kqe("audit", "verify")
        self.assertEqual(r.returncode, 0, f"kqe audit verify: {r.stdout}{r.stderr}")

    # --- helpers for felt() ------------------------------------------------------------
    def assertSome(self, calls, predicate, what):
        n = sum(1 for c in calls if predicate(c))
        self.assertGreater(n, 0, f"no request during the fault {what}")
        return n

    def api_log_since(self, t_wall, msg):
        return [line for line in self.stack.log_lines("api")
                if line.get("msg") == msg and line.get("time", "") >= t_wall]


def wall_now():
    """The services' log time format (UTC, milliseconds), for comparing log lines."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
