#!/usr/bin/env bash
# bench/freshness.sh — how soon a single submission shows in the office's rollup and in a new
# state report, on the demo state (186 offices, ~2,800 case analyses), with kqe-api and one
# kqe-aggregator running. Target: both within 2 s.
# Ceilings measured in the same run: the office recompute alone (kqe_rollup_office in SQL),
# and a state report job on a quiet system (nothing dirty) — what freshness cannot beat.
# Not a test: it never fails on speed.
#
# Environment: KQE_BENCH_ROUNDS (default 10).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh
rounds=${KQE_BENCH_ROUNDS:-10}
admin=$(bench_token admin)
office=$(bench_token office_staff --office demo-lvr-001)
procedure=$(psql -XAtq "$KQE_DATABASE_ADMIN_URL" -c \
	"SELECT id FROM procedures WHERE office_id = 'demo-lvr-001' AND cycle = '2023-2028'
	 AND NOT out_of_cycle")

apiport=$(stack_free_port)
KQE_HTTP_PORT=$apiport build/bin/kqe-api >"$work/api.log" 2>&1 &
pids+=($!)
build/bin/kqe-aggregator >"$work/aggregator.log" 2>&1 &
pids+=($!)
stack_wait_http "http://127.0.0.1:$apiport/readyz" 20

echo "freshness bench: demo state, $rounds rounds, one kqe-aggregator, $(nproc) cores"
python3 - "$apiport" "$admin" "$office" "$procedure" "$rounds" <<'PY'
import http.client, json, statistics, subprocess, sys, time, os

port, admin, office, procedure, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
db = os.environ["KQE_DATABASE_ADMIN_URL"]

def call(method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    c.request(method, path, body=json.dumps(body) if body else None,
              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None

# One psql session answers polls: a fork per poll would dominate the figure.
psql = subprocess.Popen(["psql", "-XAtq", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        text=True, bufsize=1)
def sql(q):
    psql.stdin.write(q.rstrip(";") + ";\n")
    return psql.stdout.readline().strip()

def rollup_cases():
    return int(sql("SELECT coalesce(sum(n), 0) FROM rollups WHERE office_id = 'demo-lvr-001'"
                   " AND dimension = 'cases'"))

def wait(pred, limit=30.0):
    t = time.monotonic()
    while not pred():
        if time.monotonic() - t > limit:
            raise SystemExit("timed out")
        time.sleep(0.002)

def report_grand(job):
    status, j = call("GET", f"/v1/jobs/{job}", admin)
    if j["status"] != "succeeded":
        return None
    status, rep = call("GET", j["result"], admin)
    t = next(t for t in rep["tables"] if t["id"] == "case_results_by_region")
    return next(c["value"] for c in t["cells"] if c["region"] is None and c["result"] is None)

def state_report():
    status, j = call("POST", "/v1/reports", admin, {"scope": "state", "period": "2023-2028"})
    assert status == 202, j
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        grand = report_grand(j["id"])
        if grand is not None:
            return grand
        time.sleep(0.002)
    raise SystemExit("report timed out")

wait(lambda: sql("SELECT count(*) FROM rollup_dirty") == "0")
# Ceilings: the recompute alone, and a report job when nothing is dirty.
sql("SELECT set_config('kqe.role', 'system', false)")
t = time.monotonic(); sql("SELECT kqe_rollup_office('demo-lvr-001')"); recompute_ms = (time.monotonic() - t) * 1000
quiet = []
for _ in range(3):
    t = time.monotonic(); state_report(); quiet.append((time.monotonic() - t) * 1000)

to_rollup, to_report = [], []
for i in range(rounds):
    before = rollup_cases()
    body = {"procedure_id": procedure, "case_reference": f"BENCH-{time.time_ns()}-{i}",
            "selection": "random", "closed_month": "2024-05",
            "child": {"sex": "weiblich", "birth_month": "2015-03"},
            "parents_age_group": "27_und_aelter", "reported_by": "schule",
            "result": "hilfebedarf_ohne_gefaehrdung", "endangerment_forms": [],
            "process": {"days_to_first_contact": 2, "direct_impression": True}}
    status, _ = call("POST", "/v1/case-analyses", office, body)
    assert status == 201, status
    t0 = time.monotonic()
    wait(lambda: rollup_cases() == before + 1)
    to_rollup.append((time.monotonic() - t0) * 1000)
    expected = int(sql("SELECT count(*) FROM case_analyses c JOIN procedures p"
                       " ON p.id = c.procedure_id WHERE p.cycle = '2023-2028'"))
    grand = state_report()
    assert grand == expected, (grand, expected)
    to_report.append((time.monotonic() - t0) * 1000)

def fmt(xs):
    return f"median {statistics.median(xs):7.1f} ms   max {max(xs):7.1f} ms"
print(f"submission -> office rollup      {fmt(to_rollup)}")
print(f"submission -> state report done  {fmt(to_report)}   (target 2000 ms; report equals SQL)")
print(f"ceiling: office recompute alone  {recompute_ms:7.1f} ms")
print(f"ceiling: quiet state report job  {fmt(quiet)}")
PY
