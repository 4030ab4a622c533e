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
import os, statistics, sys, time
sys.path.insert(0, "bench")
from freshness_probe import Sql, case_body, call as call_port, report_done, wait as wait_for

port, admin, office, procedure, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sql = Sql(os.environ["KQE_DATABASE_ADMIN_URL"])

def call(method, path, token, body=None):
    return call_port(port, method, path, token, body)

def rollup_cases():
    return int(sql("SELECT coalesce(sum(n), 0) FROM rollups WHERE office_id = 'demo-lvr-001'"
                   " AND dimension = 'cases'"))

def wait(pred, limit=30.0):
    wait_for(pred, limit)

def report_grand(job):
    j = report_done(port, admin, job)
    status, rep = call("GET", j["result"], admin)
    t = next(t for t in rep["tables"] if t["id"] == "case_results_by_region")
    return next(c["value"] for c in t["cells"] if c["region"] is None and c["result"] is None)

def state_report():
    status, j = call("POST", "/v1/reports", admin, {"scope": "state", "period": "2023-2028"})
    assert status == 202, j
    return report_grand(j["id"])

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
    status, _ = call("POST", "/v1/case-analyses", office,
                     case_body(procedure, f"BENCH-{time.time_ns()}-{i}"))
    assert status == 201, status
    t0 = time.monotonic()
    wait(lambda: rollup_cases() == before + 1)
    to_rollup.append((time.monotonic() - t0) * 1000)
    # A finished report job includes every write committed before it was requested
    # (docs/rollups.md); its figures are perturbed (the cell-key method), so they are not
    # compared with SQL here.
    state_report()
    to_report.append((time.monotonic() - t0) * 1000)

def fmt(xs):
    return f"median {statistics.median(xs):7.1f} ms   max {max(xs):7.1f} ms"
print(f"submission -> office rollup      {fmt(to_rollup)}")
print(f"submission -> state report done  {fmt(to_report)}   (target 2000 ms)")
print(f"ceiling: office recompute alone  {recompute_ms:7.1f} ms")
print(f"ceiling: quiet state report job  {fmt(quiet)}")
PY
