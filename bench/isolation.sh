#!/usr/bin/env bash
# bench/isolation.sh — does one office's heavy work slow everyone else down?
# Two clients of one office send 1,000-item dry-run batches in a loop (bench/batch_load.py);
# meanwhile wrk measures GET /healthz and another office's GET /v1/offices/{id}. The ceiling
# is the same two measurements without the batches, taken in the same run. Not a test: it
# never fails on speed.
#
# Environment: KQE_BENCH_SECONDS (default 10), KQE_BENCH_CONNECTIONS (default 4),
#              KQE_API_THREADS (default 2), KQE_DB_POOL (default 4).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh wrk
secs=${KQE_BENCH_SECONDS:-10}
conns=${KQE_BENCH_CONNECTIONS:-4}

heavy_office=demo-lvr-001
other_office=demo-lwl-001
batch_a=$(bench_token office_staff --office "$heavy_office")
batch_b=$(bench_token office_staff --office "$heavy_office")
other=$(bench_token office_staff --office "$other_office")
procedure=$(psql -X -At "$KQE_DATABASE_ADMIN_URL" -c \
	"SELECT id FROM procedures WHERE office_id = '$heavy_office' AND phase <> 'completed' AND NOT out_of_cycle ORDER BY id LIMIT 1")

apiport=$(stack_free_port)
KQE_RATE_LIMIT_PER_MINUTE=1000000 KQE_HTTP_PORT=$apiport build/bin/kqe-api >"$work/api.log" 2>&1 &
pids+=($!)
stack_wait_http "http://127.0.0.1:$apiport/readyz" 20

lua=$work/get.lua
cp bench/report.lua "$lua"
wrk_run() { # url [token] → "p50 p99 rps errors"
	local auth=()
	[ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
	wrk -t2 -c"$conns" -d"${secs}s" --latency "${auth[@]}" -s "$lua" "$1" |
		sed -n 's/^RESULT rps=\([0-9]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) errors=\([0-9]*\)$/\2 \3 \1 \4/p'
}
health=http://127.0.0.1:$apiport/healthz
office=http://127.0.0.1:$apiport/v1/offices/$other_office

echo "kqe-api isolation bench: ${KQE_API_THREADS:-2} loops, pool ${KQE_DB_POOL:-4}, wrk $conns connections, ${secs}s per run, $(nproc) cores"
read -r h0_p50 h0_p99 _ h0_err < <(wrk_run "$health")
read -r o0_p50 o0_p99 _ o0_err < <(wrk_run "$office" "$other")

python3 bench/batch_load.py "$apiport" "$procedure" $((2 * secs + 4)) "$batch_a" "$batch_b" >"$work/batches.out" &
load=$!
sleep 2 # both batch clients are sending
read -r h1_p50 h1_p99 _ h1_err < <(wrk_run "$health")
read -r o1_p50 o1_p99 _ o1_err < <(wrk_run "$office" "$other")
wait "$load"
batches=$(cat "$work/batches.out")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
printf '\n%-32s %14s %14s %22s %22s\n' "what" "alone p50 ms" "alone p99 ms" "with batches p50 ms" "with batches p99 ms"
printf '%-32s %14s %14s %22s %22s\n' "GET /healthz" "$h0_p50" "$h0_p99" "$h1_p50 (x$(ratio "$h1_p50" "$h0_p50"))" "$h1_p99"
printf '%-32s %14s %14s %22s %22s\n' "GET /v1/offices/{id} (other)" "$o0_p50" "$o0_p99" "$o1_p50 (x$(ratio "$o1_p50" "$o0_p50"))" "$o1_p99"
echo "batch load: $batches (2 clients of $heavy_office, 1,000 items each, dry run)"
echo "errors (non-2xx or socket): healthz $h0_err/$h1_err, other office $o0_err/$o1_err"
