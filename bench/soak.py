#!/usr/bin/env python3
"""The load generator of bench/soak.sh: a capacity measurement, then a long open-loop run at a
fraction of it, then consistency checks. Standard library only.

Phases:
  1. capacity: every worker thread sends the request mix back to back (closed loop) for
     --capacity-seconds; the completion rate is the capacity *as measured by this generator
     on this machine* (it shares the cores with kqe-api, kqe-aggregator, PostgreSQL, Redis).
  2. soak: the dispatcher releases one request of the mix every 1/rate seconds (fixed
     spacing, open loop: a slow answer does not slow the arrivals) to a pool of worker
     threads, for --seconds; rate = --fraction of the capacity unless --rate is given.
     Latency is measured from the request's scheduled time, so time spent waiting for a free
     worker counts (no coordinated omission).
  Throughout both phases one thread sends a 100-item batch every --batch-every seconds and
  another queues a report job every --report-every seconds and polls it until it succeeded.

The mix (weights per 100 single requests; office tokens chosen at random for each):
  reads 75:  GET /v1/offices?limit=50 10, GET /v1/offices/{id} 10, GET /v1/procedures 10,
             GET /v1/case-analyses?limit=20 15, GET /v1/case-analyses/{id} 15,
             GET /v1/reports?limit=10 10, GET /v1/reports/{id} 5 (the newest report, ministry)
  writes 25: POST /v1/case-analyses 15 (Idempotency-Key; every 20th sent twice, the second
             must replay the same Location), PATCH /v1/case-analyses/{id} 10 (If-Match with the
             ETag of our own last write; no two PATCHes of one record overlap, so no 412)

Every answer is recorded: a status other than the expected one (200, 201 for creates and
batches, 202 for report jobs) or a socket error is an error. RSS (VmRSS) of kqe-api and
kqe-aggregator, and Redis's used_memory and the length of kqe:jobs, are sampled every 10 s.

At the end: every acknowledged create (single or batch) is in PostgreSQL exactly once, found
by its pseudonym (HMAC-SHA256 of office id, 0x1f, reference, as common/src/crypto.c) in its
procedure, with the id we were given, and patched records have the version our PATCHes
imply; no other case analysis appeared; every report job succeeded and has its report; once
the aggregator is quiet the rollups equal kqe_rollup_rows() recounted from the case tables,
and a new state report's grand total equals a count in SQL.

Exit status 0 only if: no errors, RSS growth of both services from the end of the first
minute (warm-up) to the end < --max-rss-growth %, the p99 of the last minute <= 2 x the p99
of the second minute ("stable"), and every consistency check holds.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import resource
import subprocess
import sys
import threading
import time

CYCLE = "2023-2028"
MIX = [  # (operation, weight per 100)
    ("offices_list", 10), ("office_get", 10), ("procedures_list", 10),
    ("cases_list", 15), ("case_get", 15), ("reports_list", 10), ("report_get", 5),
    ("case_create", 15), ("case_patch", 10),
]
READS = {"offices_list", "office_get", "procedures_list", "cases_list", "case_get",
         "reports_list", "report_get"}
REPORT_BODIES = [
    {"scope": "state", "period": CYCLE},
    {"scope": "region", "region": "LVR", "period": "2025"},
    {"scope": "region", "region": "LWL", "period": CYCLE},
    {"scope": "state", "period": "2026"},
]
# Valid combinations of result and endangerment forms; the PATCHes switch between the first
# two so that every patch changes what the rollups count.
RESULTS = [
    ("latente_gefaehrdung", ["vernachlaessigung"]),
    ("weder_gefaehrdung_noch_hilfebedarf", []),
    ("akute_gefaehrdung", ["vernachlaessigung"]),
    ("hilfebedarf_ohne_gefaehrdung", []),
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-pid", type=int, required=True)
    p.add_argument("--aggregator-pid", type=int, required=True)
    p.add_argument("--ministry", required=True, help="ministry token (report jobs)")
    p.add_argument("--office", action="append", required=True,
                   help="OFFICE_ID=PROCEDURE_ID=TOKEN of an office_staff token")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--capacity-seconds", type=float, default=30)
    p.add_argument("--rate", type=float, default=0, help="fixed rate; skips the capacity phase")
    p.add_argument("--fraction", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--closed-workers", type=int, default=16)
    p.add_argument("--batch-every", type=float, default=5)
    p.add_argument("--batch-items", type=int, default=100)
    p.add_argument("--report-every", type=float, default=10)
    p.add_argument("--max-rss-growth", type=float, default=5.0)
    p.add_argument("--json", help="write the figures to this file as well")
    return p.parse_args()


ARGS = parse_args()
DB = os.environ["KQE_DATABASE_ADMIN_URL"]
PSEUDONYM_KEY = base64.b64decode(os.environ["KQE_PSEUDONYM_KEY"])
RUN = f"SOAK-{os.getpid()}-{int(time.time())}"
OFFICES = []  # (office_id, procedure_id, token)
for spec in ARGS.office:
    office, procedure, token = spec.split("=", 2)
    OFFICES.append((office, procedure, token))


def pseudonym(office, reference):
    return hmac.new(PSEUDONYM_KEY, f"{office}\x1f{reference}".encode(), hashlib.sha256).hexdigest()


def sql(query):
    r = subprocess.run(["psql", "-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1", DB],
                       input=query, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines()]


# --- shared state ------------------------------------------------------------------------
class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []       # (t_sched, t_done, phase, op, ok, latency_s)
        self.errors = collections.Counter()
        self.error_samples = []
        self.seq = 0
        # pseudonym -> [office, procedure, id, version] of every acknowledged create
        self.acked = {}
        self.known = {o[0]: [] for o in OFFICES}  # office -> readable case analysis ids
        self.patchable = collections.deque()     # [id, office, token, etag, n] (exclusive)
        self.jobs = []                           # (job id, seconds to succeeded or None)
        self.newest_report = None
        self.replays = 0
        self.batches = []                        # seconds per batch

    def next_reference(self):
        with self.lock:
            self.seq += 1
            return f"{RUN}-{self.seq}"

    def record(self, t_sched, phase, op, ok, latency, detail=None, service=None):
        """service: from when the request was sent (latency counts from when it was due)."""
        with self.lock:
            self.records.append((t_sched, time.monotonic(), phase, op, ok, latency,
                                 latency if service is None else service))
            if not ok:
                self.errors[op] += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{phase} {op}: {detail}")


S = State()
PHASE = ["capacity"]
STOP = threading.Event()


class Conn:
    """One keep-alive connection per thread; a socket error drops it (and is an error)."""

    def __init__(self):
        self.c = None

    def call(self, method, path, token, body=None, headers=None):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", ARGS.port, timeout=60)
        h = {"Authorization": f"Bearer {token}"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            self.c.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers=h)
            r = self.c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.c.close()
            self.c = None
            return 0, {}, repr(e).encode()
        if r.getheader("Connection", "").lower() == "close":
            self.c.close()
            self.c = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def case_body(procedure, reference, rng):
    result, forms = rng.choice(RESULTS)
    body = {
        "procedure_id": procedure, "case_reference": reference,
        "selection": rng.choice(["random", "added_by_office"]),
        "closed_month": f"{rng.randint(2023, 2025)}-{rng.randint(1, 12):02d}",
        "child": {"sex": rng.choice(["weiblich", "maennlich"]),
                  "birth_month": f"{rng.randint(2008, 2020)}-{rng.randint(1, 12):02d}"},
        "parents_age_group": "27_und_aelter",
        "reported_by": rng.choice(["schule", "polizei_gericht_staatsanwaltschaft"]),
        "result": result, "endangerment_forms": forms,
        "process": {"days_to_first_contact": rng.randint(0, 30),
                    "direct_impression": rng.random() < 0.7},
        "ratings": {"intake": rng.randint(1, 4)},
        "learning_themes": rng.choice([["documentation"], ["childs_voice"], []]),
    }
    if rng.random() < 0.5:
        body["findings"] = f"Soak-Befund {reference}: Hausbesuch nach {rng.randint(1, 20)} Tagen."
    return body


def bad(status, data):
    try:
        problem = json.loads(data)
        errs = problem.get("errors") or (problem.get("rejected_items") or [{}])[0].get("errors")
        return f"status {status}: {problem.get('detail')} {json.dumps(errs)[:300]}"
    except (ValueError, AttributeError):
        return f"status {status}: {data[:300].decode(errors='replace')}"


# --- operations: each returns (ok, detail) -----------------------------------------------
def op_read(conn, rng, op):
    office, procedure, token = rng.choice(OFFICES)
    if op == "offices_list":
        path = "/v1/offices?limit=50"
    elif op == "office_get":
        path = f"/v1/offices/{rng.choice(OFFICES)[0]}"
    elif op == "procedures_list":
        path = "/v1/procedures?limit=20"
    elif op == "cases_list":
        path = f"/v1/case-analyses?limit=20&procedure_id={procedure}"
    elif op == "case_get":
        with S.lock:
            ids = S.known[office]
            cid = ids[rng.randrange(len(ids))] if ids else None
        path = f"/v1/case-analyses/{cid}" if cid else f"/v1/procedures/{procedure}"
    elif op == "reports_list":
        path = "/v1/reports?limit=10"
    else:  # report_get
        href = S.newest_report
        path, token = (href, ARGS.ministry) if href else ("/v1/reports?limit=1", token)
    status, _, data = conn.call("GET", path, token)
    return status == 200, None if status == 200 else f"GET {path} {bad(status, data)}"


def op_create(conn, rng):
    office, procedure, token = rng.choice(OFFICES)
    reference = S.next_reference()
    body = case_body(procedure, reference, rng)
    key = {"Idempotency-Key": f"{reference}-create"}
    status, h, data = conn.call("POST", "/v1/case-analyses", token, body, key)
    if status != 201:
        return False, f"POST case-analyses {bad(status, data)}"
    cid = json.loads(data)["id"]
    with S.lock:
        S.acked[pseudonym(office, reference)] = [office, procedure, cid, 1]
        S.known[office].append(cid)
    if rng.random() < 0.05:  # a client that did not see the answer sends the same request again
        status2, h2, data2 = conn.call("POST", "/v1/case-analyses", token, body, key)
        if status2 != 201 or h2.get("idempotency-replayed") != "true" \
                or h2.get("location") != h.get("location"):
            return False, f"idempotent replay {bad(status2, data2)} location {h2.get('location')}"
        with S.lock:
            S.replays += 1
    with S.lock:
        S.patchable.append([cid, office, token, h.get("etag"), pseudonym(office, reference)])
    return True, None


def op_patch(conn, rng):
    with S.lock:
        item = S.patchable.popleft() if S.patchable else None
    if item is None:
        return op_create(conn, rng)
    cid, office, token, etag, pseud = item
    with S.lock:
        version = S.acked[pseud][3]
    # Days to first contact above any create's (0-30) and growing: every PATCH changes the
    # record, so each one acknowledged adds one to its version.
    result, forms = RESULTS[version % 2]
    patch = {"result": result, "endangerment_forms": forms,
             "process": {"days_to_first_contact": 30 + version}}
    status, h, data = conn.call("PATCH", f"/v1/case-analyses/{cid}", token, patch,
                                {"If-Match": etag,
                                 "Content-Type": "application/merge-patch+json"})
    if status != 200:
        return False, f"PATCH {cid} {bad(status, data)}"  # dropped: its state is unknown
    with S.lock:
        S.acked[pseud][3] += 1
        S.patchable.append([cid, office, token, h.get("etag"), pseud])
    return True, None


def run_op(conn, rng, op):
    if op in READS:
        return op_read(conn, rng, op)
    if op == "case_create":
        return op_create(conn, rng)
    return op_patch(conn, rng)


# --- load shapes -------------------------------------------------------------------------
OPS = [op for op, _ in MIX]
WEIGHTS = [w for _, w in MIX]


def closed_worker(n, until):
    rng, conn = random.Random(1000 + n), Conn()
    while time.monotonic() < until:
        t = time.monotonic()
        op = rng.choices(OPS, WEIGHTS)[0]
        ok, detail = run_op(conn, rng, op)
        S.record(t, "capacity", op, ok, time.monotonic() - t, detail)


def open_worker(n, q):
    rng, conn = random.Random(2000 + n), Conn()
    while True:
        item = q.get()
        if item is None:
            return
        t_sched, op = item
        t_sent = time.monotonic()
        ok, detail = run_op(conn, rng, op)
        S.record(t_sched, PHASE[0], op, ok, time.monotonic() - t_sched, detail,
                 time.monotonic() - t_sent)


def dispatcher(q, rate, until):
    rng = random.Random(7)
    interval, t = 1.0 / rate, time.monotonic()
    while t < until:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        q.put((t, rng.choices(OPS, WEIGHTS)[0]))
        t += interval


def periodic(every, fn):
    """Runs fn every `every` seconds until STOP; a slow fn delays the next one, never overlaps."""
    conn, rng, t = Conn(), random.Random(every), time.monotonic()
    while not STOP.is_set():
        fn(conn, rng, t)
        t += every
        STOP.wait(max(0.0, t - time.monotonic()))


def batch_once(conn, rng, t):
    office, procedure, token = OFFICES[len(S.batches) % len(OFFICES)]
    refs = [S.next_reference() for _ in range(ARGS.batch_items)]
    items = [case_body(procedure, r, rng) for r in refs]
    start = time.monotonic()
    status, _, data = conn.call("POST", "/v1/case-analyses:batch", token, {"items": items},
                                {"Idempotency-Key": f"{refs[0]}-batch"})
    took = time.monotonic() - start
    ok = status == 201
    detail = None
    if ok:
        summary = json.loads(data)
        ids = summary.get("created_ids") or []
        ok = summary.get("created") == len(items) and len(ids) == len(items)
        if ok:
            with S.lock:
                for r, cid in zip(refs, ids):
                    S.acked[pseudonym(office, r)] = [office, procedure, cid, 1]
                S.known[office].extend(ids)
                S.batches.append(took)
        else:
            detail = f"batch summary {data[:200]!r}"
    else:
        detail = f"POST batch {bad(status, data)}"
        with S.lock:
            S.batches.append(took)
    S.record(start, PHASE[0], "batch", ok, took, detail)


def report_once(conn, rng, t):
    body = REPORT_BODIES[len(S.jobs) % len(REPORT_BODIES)]
    start = time.monotonic()
    status, h, data = conn.call("POST", "/v1/reports", ARGS.ministry, body,
                                {"Idempotency-Key": f"{RUN}-report-{len(S.jobs)}"})
    S.record(start, PHASE[0], "report_create", status == 202, time.monotonic() - start,
             None if status == 202 else f"POST reports {bad(status, data)}")
    if status != 202:
        return
    job = json.loads(data)["id"]
    took = None
    while time.monotonic() - start < 120:
        t0 = time.monotonic()
        status, _, data = conn.call("GET", f"/v1/jobs/{job}", ARGS.ministry)
        S.record(t0, PHASE[0], "job_get", status == 200, time.monotonic() - t0,
                 None if status == 200 else f"GET job {bad(status, data)}")
        if status == 200:
            j = json.loads(data)
            if j["status"] == "succeeded":
                took = time.monotonic() - start
                S.newest_report = j["result"]
                break
            if j["status"] == "dead":
                break
        time.sleep(0.25)
    with S.lock:
        S.jobs.append((job, took, start))
    if took is None:
        S.record(start, PHASE[0], "report_job", False, time.monotonic() - start,
                 f"job {job} did not succeed within 120 s")


# --- sampling ------------------------------------------------------------------------------
def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def redis(*words):
    r = subprocess.run(["redis-cli", "-u", os.environ["KQE_REDIS_URL"], *words],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.splitlines()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu():
    """CPU seconds used so far by the services, by PostgreSQL's backends serving each of them
    (by application_name) and its other processes, and by this generator."""
    out = {"kqe-api": cpu_s(ARGS.api_pid), "kqe-aggregator": cpu_s(ARGS.aggregator_pid),
           "generator": cpu_s(os.getpid())}
    try:
        for backend, name, pid in sql("SELECT backend_type, application_name, pid"
                                      " FROM pg_stat_activity"):
            key = "postgres for " + name if name.startswith("kqe-") else "postgres, other"
            out[key] = out.get(key, 0.0) + cpu_s(pid)
    except RuntimeError:
        pass
    return out


def sample():
    """(RSS kB of kqe-api, of kqe-aggregator, Redis used_memory, XLEN kqe:jobs, entries not yet
    acknowledged by the aggregators: undelivered (lag) + pending, CPU seconds so far)."""
    used = xlen = backlog = -1
    try:
        used = int(next(l.split(":")[1] for l in redis("INFO", "memory")
                        if l.startswith("used_memory:")))
        xlen = int(redis("XLEN", "kqe:jobs")[0])
        group = redis("XINFO", "GROUPS", "kqe:jobs")
        info = dict(zip(group[0::2], group[1::2]))
        backlog = int(info["lag"]) + int(info["pending"])
    except (OSError, subprocess.SubprocessError, StopIteration, ValueError, IndexError, KeyError):
        pass
    return (rss_kb(ARGS.api_pid), rss_kb(ARGS.aggregator_pid), used, xlen, backlog, cpu())


def sampler(t0, samples):
    t = t0
    while not STOP.is_set():
        samples.append((time.monotonic() - t0, *sample()))
        t += 10
        STOP.wait(max(0.0, t - time.monotonic()))


# --- figures -------------------------------------------------------------------------------
def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def ms(x):
    return f"{x * 1000:.1f}"


def consistency(initial_cases):
    """Returns a list of (what, ok, detail)."""
    out = []
    rows = "\n".join(f"{p}\t{v[0]}\t{v[1]}\t{v[2]}\t{v[3]}" for p, v in S.acked.items())
    found = sql("CREATE TEMP TABLE acked (pseudonym text, office_id text, procedure_id uuid,"
                " id uuid, version int);\nCOPY acked FROM STDIN;\n" + rows + "\n\\.\n"
                "SELECT count(*) FILTER (WHERE n <> 1), count(*) FILTER (WHERE wrong_id),"
                " count(*) FILTER (WHERE wrong_version) FROM (SELECT a.pseudonym,"
                " count(c.id) AS n, bool_or(c.id IS DISTINCT FROM a.id) AS wrong_id,"
                " bool_or(c.version IS DISTINCT FROM a.version) AS wrong_version"
                " FROM acked a LEFT JOIN case_analyses c ON c.case_pseudonym = a.pseudonym"
                " AND c.procedure_id = a.procedure_id AND c.office_id = a.office_id"
                " GROUP BY a.pseudonym) x;\n"
                "SELECT count(*) FROM case_analyses;")
    not_once, wrong_id, wrong_version = (int(x) for x in found[0])
    total = int(found[1][0])
    out.append(("every acknowledged create stored exactly once, with its id",
                not_once == 0 and wrong_id == 0,
                f"{len(S.acked)} acknowledged; not exactly once {not_once}, other id {wrong_id}"))
    out.append(("patched records have the version our PATCHes imply", wrong_version == 0,
                f"{sum(1 for v in S.acked.values() if v[3] > 1)} patched; wrong {wrong_version}"))
    out.append(("no other case analysis appeared", total == initial_cases + len(S.acked),
                f"{initial_cases} before + {len(S.acked)} = {initial_cases + len(S.acked)};"
                f" table holds {total}"))
    jobs = [j[0] for j in S.jobs]
    if jobs:
        ids = ",".join(f"'{j}'" for j in jobs)
        st = sql(f"SELECT count(*) FILTER (WHERE status = 'succeeded'), max(attempts),"
                 f" (SELECT count(*) FROM reports WHERE job_id IN ({ids}))"
                 f" FROM jobs WHERE id IN ({ids})")[0]
        out.append(("every report job succeeded and has its report",
                    int(st[0]) == len(jobs) and int(st[2]) == len(jobs),
                    f"{len(jobs)} jobs; succeeded {st[0]}; reports {st[2]}; most attempts {st[1]}"))
    else:
        out.append(("every report job succeeded and has its report", False, "no report job ran"))
    deadline = time.monotonic() + 120
    while True:
        dirty, unpublished = sql("SELECT (SELECT count(*) FROM rollup_dirty),"
                                 " (SELECT count(*) FROM outbox WHERE published_at IS NULL)")[0]
        if (dirty, unpublished) == ("0", "0") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    quiet = (dirty, unpublished) == ("0", "0")
    diff = sql("SELECT count(*) FROM ((TABLE rollups EXCEPT SELECT o.id, r.* FROM offices o,"
               " kqe_rollup_rows(o.id) r) UNION ALL (SELECT o.id, r.* FROM offices o,"
               " kqe_rollup_rows(o.id) r EXCEPT TABLE rollups)) d")[0][0]
    nrows = sql("SELECT count(*) FROM rollups")[0][0]
    out.append(("rollups equal a recount from the case tables", quiet and diff == "0",
                f"aggregator quiet: {quiet} (dirty offices {dirty}, unpublished events"
                f" {unpublished}); {nrows} rows; rows differing {diff}"))
    # A report built now counts every case analysis of the cycle.
    conn = Conn()
    status, _, data = conn.call("POST", "/v1/reports", ARGS.ministry,
                                {"scope": "state", "period": CYCLE})
    grand = None
    if status == 202:
        job = json.loads(data)["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, _, data = conn.call("GET", f"/v1/jobs/{job}", ARGS.ministry)
            j = json.loads(data) if data else {}
            if j.get("status") == "succeeded":
                _, _, data = conn.call("GET", j["result"], ARGS.ministry)
                t = next(t for t in json.loads(data)["tables"]
                         if t["id"] == "case_results_by_region")
                grand = next(c["value"] for c in t["cells"]
                             if c["region"] is None and c["result"] is None)
                break
            time.sleep(0.25)
    expected = int(sql("SELECT count(*) FROM case_analyses c JOIN procedures p"
                       f" ON p.id = c.procedure_id WHERE p.cycle = '{CYCLE}'")[0][0])
    out.append(("a new state report counts every case analysis of the cycle", grand == expected,
                f"report {grand}, SQL {expected}"))
    return out


def main():
    initial_cases = int(sql("SELECT count(*) FROM case_analyses")[0][0])
    for office, cid in sql("SELECT office_id, id FROM case_analyses"):
        if office in S.known:
            S.known[office].append(cid)
    t_start = time.monotonic()
    samples = []
    threading.Thread(target=sampler, args=(t_start, samples), daemon=True).start()
    side = [threading.Thread(target=periodic, args=(ARGS.batch_every, batch_once)),
            threading.Thread(target=periodic, args=(ARGS.report_every, report_once))]
    for t in side:
        t.start()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    capacity = None
    if ARGS.rate > 0:
        rate = ARGS.rate
    else:
        print(f"capacity: closed loop, {ARGS.closed_workers} threads,"
              f" {ARGS.capacity_seconds:.0f} s", flush=True)
        until = time.monotonic() + ARGS.capacity_seconds
        workers = [threading.Thread(target=closed_worker, args=(n, until))
                   for n in range(ARGS.closed_workers)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        # The rate of the mix once every thread is busy: the first 3 s are ramp-up.
        t_from = t_start + 3
        done = [r for r in S.records if r[2] == "capacity" and r[3] in OPS and r[1] >= t_from]
        capacity = len(done) / (until - t_from)
        cap_lat = [r[5] for r in done]
        print(f"capacity: {capacity:.0f} req/s (p50 {ms(pct(cap_lat, 50))} ms,"
              f" p99 {ms(pct(cap_lat, 99))} ms)", flush=True)
        rate = capacity * ARGS.fraction

    print(f"soak: open loop at {rate:.0f} req/s for {ARGS.seconds:.0f} s, {ARGS.workers} workers",
          flush=True)
    PHASE[0] = "soak"
    t_soak = time.monotonic()
    soak_samples_from = len(samples)
    samples.append((t_soak - t_start, *sample()))
    q = queue.Queue()
    workers = [threading.Thread(target=open_worker, args=(n, q)) for n in range(ARGS.workers)]
    for w in workers:
        w.start()
    disp = threading.Thread(target=dispatcher, args=(q, rate, t_soak + ARGS.seconds))
    disp.start()
    minute_printed = 0
    while disp.is_alive():
        disp.join(timeout=1)
        m = int((time.monotonic() - t_soak) // 60)
        while minute_printed < m:
            recs = [r for r in S.records if r[2] == "soak"
                    and minute_printed * 60 <= r[0] - t_soak < (minute_printed + 1) * 60]
            lat = [r[5] for r in recs]
            print(f"  minute {minute_printed + 1}: {len(recs)} requests, p50 {ms(pct(lat, 50))}"
                  f" ms, p99 {ms(pct(lat, 99))} ms, errors {sum(1 for r in recs if not r[4])},"
                  f" RSS api {samples[-1][1]} kB aggregator {samples[-1][2]} kB,"
                  f" stream backlog {samples[-1][5]}", flush=True)
            minute_printed += 1
    for _ in workers:
        q.put(None)
    for w in workers:
        w.join()
    t_end = time.monotonic()
    final = (t_end - t_start, *sample())
    STOP.set()
    for t in side:
        t.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    samples.append(final)

    # Figures of the soak phase.
    soak = [r for r in S.records if r[2] == "soak"]
    singles = [r for r in soak if r[3] in OPS]
    minutes = []
    nmin = int(ARGS.seconds // 60)
    for m in range(nmin):
        recs = [r for r in soak if m * 60 <= r[0] - t_soak < (m + 1) * 60]
        lat = [r[5] for r in recs]
        jobs = [j[1] for j in S.jobs
                if j[1] is not None and m * 60 <= j[2] - t_soak < (m + 1) * 60]
        at_end = [x for x in samples if x[0] <= t_soak - t_start + (m + 1) * 60 + 5]
        at_start = [x for x in samples if x[0] <= t_soak - t_start + m * 60 + 5]
        used = {}
        if at_end and at_start and at_end[-1] is not at_start[-1]:
            span = at_end[-1][0] - at_start[-1][0]
            used = {k: (v - at_start[-1][6].get(k, 0.0)) * 60 / span
                    for k, v in at_end[-1][6].items()}
        minutes.append({"minute": m + 1, "requests": len(recs), "rate": len(recs) / 60,
                        "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
                        "errors": sum(1 for r in recs if not r[4]),
                        "report_job_max_s": max(jobs, default=float("nan")),
                        "backlog": at_end[-1][5] if at_end else -1, "cpu": used})
    achieved = len(singles) / (t_end - t_soak)
    errors = sum(S.errors.values())
    total = len(S.records)
    soak_samples = samples[soak_samples_from:]
    base = next((s for s in soak_samples if s[0] - (t_soak - t_start) >= 60), soak_samples[0])
    growth = {name: (final[i] - base[i]) * 100.0 / base[i] for name, i in
              (("kqe-api", 1), ("kqe-aggregator", 2))}
    if len(minutes) >= 3:
        p99_2, p99_last = minutes[1]["p99_ms"], minutes[-1]["p99_ms"]
        stable = p99_last <= 2 * p99_2
        stable_text = (f"p99 last minute {p99_last:.1f} ms vs 2 x second minute"
                       f" {2 * p99_2:.1f} ms")
    else:
        stable, stable_text = True, "fewer than 3 minutes: not judged"
    print("\nchecking consistency …", flush=True)
    checks = consistency(initial_cases)

    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    mix = collections.Counter(r[3] for r in soak)
    print("\n==== soak summary ====")
    print(f"machine: {os.cpu_count()} cores (shared by generator, kqe-api, kqe-aggregator,"
          f" PostgreSQL, Redis); load average at the end {os.getloadavg()[0]:.2f}")
    if capacity is not None:
        print(f"capacity of the mix (closed loop, {ARGS.closed_workers} threads,"
              f" {ARGS.capacity_seconds:.0f} s, as measured by this generator on this machine):"
              f" {capacity:.0f} req/s")
    print(f"target rate {rate:.0f} req/s; achieved {achieved:.1f} req/s of single requests over"
          f" {t_end - t_soak:.0f} s, plus {mix['batch']} batches of {ARGS.batch_items} and"
          f" {mix['report_create']} report jobs ({mix['job_get']} job polls)")
    print("mix sent in the soak: " + ", ".join(f"{op} {mix[op]}" for op, _ in MIX)
          + f"; idempotent replays {S.replays}")
    print(f"generator CPU {cpu:.0f} s over {t_end - t_start:.0f} s")
    print(f"\n{'minute':>6} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
          f" {'report job max s':>17} {'stream backlog':>15}")
    for m in minutes:
        print(f"{m['minute']:>6} {m['requests']:>9} {m['rate']:>7.1f} {m['p50_ms']:>8.1f}"
              f" {m['p99_ms']:>8.1f} {m['errors']:>7} {m['report_job_max_s']:>17.1f}"
              f" {m['backlog']:>15}")
    keys = sorted({k for m in minutes for k in m["cpu"]})
    print(f"\nCPU seconds per minute ({os.cpu_count()} cores: {60 * os.cpu_count()} s)")
    print(f"{'minute':>6} " + " ".join(f"{k:>{max(8, len(k))}}" for k in keys))
    for m in minutes:
        print(f"{m['minute']:>6} " + " ".join(f"{m['cpu'].get(k, 0):>{max(8, len(k))}.1f}"
                                               for k in keys))
    print("\nper request kind, p50 / p99 ms from sending (not from when it was due),"
          " first and last minute:")
    first = [r for r in soak if r[0] - t_soak < 60]
    last = [r for r in soak if (nmin - 1) * 60 <= r[0] - t_soak < nmin * 60] if nmin else []
    for op in OPS + ["batch", "report_create", "job_get"]:
        a, b = [r[6] for r in first if r[3] == op], [r[6] for r in last if r[3] == op]
        print(f"  {op:<16} {ms(pct(a, 50)):>8} / {ms(pct(a, 99)):>8}"
              f"   {ms(pct(b, 50)):>8} / {ms(pct(b, 99)):>8}")
    by = lambda op: [r[5] for r in soak if r[3] == op]  # noqa: E731
    print(f"\nbatches: {len(by('batch'))}, p50 {ms(pct(by('batch'), 50))} ms,"
          f" max {ms(max(by('batch'), default=0))} ms")
    jobs_took = [j[1] for j in S.jobs if j[1] is not None]
    print(f"report jobs (queued to succeeded, all phases): {len(S.jobs)},"
          f" p50 {ms(pct(jobs_took, 50))} ms, max {ms(max(jobs_took, default=0))} ms")
    print(f"\nRSS kB   {'start':>8} {'after 1 min':>12} {'end':>8} {'growth':>8}")
    for name, i in (("kqe-api", 1), ("kqe-aggregator", 2)):
        print(f"{name:<15} {soak_samples[0][i]:>8} {base[i]:>12} {final[i]:>8}"
              f" {growth[name]:>7.2f}%")
    print(f"redis used_memory {soak_samples[0][3]} -> {final[3]} bytes;"
          f" kqe:jobs length {soak_samples[0][4]} -> {final[4]}")
    print(f"\nerrors: {errors} of {total} requests (both phases)"
          + (": " + ", ".join(f"{k} {v}" for k, v in S.errors.items()) if errors else ""))
    for e in S.error_samples:
        print(f"  {e}")
    print(f"p99 stable: {stable} ({stable_text})")
    for what, ok, detail in checks:
        print(f"consistency: {'ok  ' if ok else 'FAIL'} {what} — {detail}")

    failures = []
    if errors:
        failures.append(f"{errors} errors")
    for name, g in growth.items():
        if g >= ARGS.max_rss_growth:
            failures.append(f"{name} RSS grew {g:.2f} %")
    if not stable:
        failures.append("p99 not stable")
    failures += [what for what, ok, _ in checks if not ok]
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"capacity": capacity, "rate": rate, "achieved": achieved,
                       "minutes": minutes, "samples": samples, "growth": growth,
                       "errors": errors, "requests": total, "checks": checks,
                       "failures": failures}, f, indent=1)
    print("\nSOAK " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
