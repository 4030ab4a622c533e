#!/usr/bin/env bash
# bench/http.sh — kqe-api measured against ceilings taken in the same run:
#   GET  /healthz            vs a bare evhttp server with the same threading (bench/bare_evhttp.c)
#   GET  /v1/offices/{id}    vs pgbench running the same prepared SELECT
#   POST /v1/reports         vs pgbench running the same write transaction + outbox update
# Starts its own throw-away PostgreSQL (durable settings) and Redis; no aggregator runs, so
# the POST figures measure only the API's write path. Not a test: it never fails on speed.
#
# Environment: KQE_BENCH_SECONDS (default 5), KQE_BENCH_CONNECTIONS (default 16),
#              KQE_API_THREADS (default 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh wrk
secs=${KQE_BENCH_SECONDS:-5}
conns=${KQE_BENCH_CONNECTIONS:-16}
threads=${KQE_API_THREADS:-2}
token=$(bench_token admin)

apiport=$(stack_free_port)
bareport=$(stack_free_port)
# One token makes every request: a limit it never reaches, so the Redis count still runs.
KQE_RATE_LIMIT_PER_MINUTE=1000000 KQE_HTTP_PORT=$apiport KQE_API_THREADS=$threads build/bin/kqe-api >"$work/api.log" 2>&1 &
pids+=($!)
build/bench/bare_evhttp "$bareport" "$threads" &
pids+=($!)
stack_wait_http "http://127.0.0.1:$apiport/readyz" 20
stack_wait_http "http://127.0.0.1:$bareport/" 20

lua_get=$work/get.lua
cp bench/report.lua "$lua_get"
lua_post=$work/post.lua
cat bench/post_report.lua bench/report.lua >"$lua_post"

wrk_run() { # url script → "rps p99"
	wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" -s "$2" "$1" |
		sed -n 's/^RESULT rps=\([0-9]*\) p50_ms=[0-9.]* p99_ms=\([0-9.]*\) errors=\([0-9]*\)$/\1 \2 \3/p'
}
pgbench_run() { # file clients → tps
	pgbench -n -M prepared -c "$2" -j "$2" -T "$secs" -f "$1" "$KQE_DATABASE_ADMIN_URL" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | cut -d. -f1
}

cat >"$work/select.sql" <<'SQL'
SELECT id, json_build_object('id', id, 'name', name, 'kind', kind, 'region', region, 'population_under_18', population_under_18, 'synthetic', synthetic, 'version', version, 'created_at', kqe_ts(created_at), 'updated_at', kqe_ts(updated_at))::text FROM offices WHERE id = 'demo-lvr-001';
SQL
cat >"$work/write.sql" <<'SQL'
BEGIN;
WITH j AS (INSERT INTO jobs (kind, params) VALUES ('build_report', '{"period":"2024","scope":"state"}'::jsonb) RETURNING id, kind) INSERT INTO outbox (kind, job_id) SELECT kind, id FROM j RETURNING id AS outbox_id \gset
COMMIT;
UPDATE outbox SET published_at = now() WHERE id = ANY(ARRAY[:outbox_id]::bigint[]);
SQL

echo "kqe-api bench: $threads API threads, wrk $conns connections, ${secs}s per run, $(nproc) cores"
read -r bare_rps bare_p99 _ < <(wrk_run "http://127.0.0.1:$bareport/" "$lua_get")
read -r health_rps health_p99 health_err < <(wrk_run "http://127.0.0.1:$apiport/healthz" "$lua_get")
read -r get_rps get_p99 get_err < <(wrk_run "http://127.0.0.1:$apiport/v1/offices/demo-lvr-001" "$lua_get")
pg_select=$(pgbench_run "$work/select.sql" "$threads")
read -r post_rps post_p99 post_err < <(wrk_run "http://127.0.0.1:$apiport/v1/reports" "$lua_post")
pg_write=$(pgbench_run "$work/write.sql" "$threads")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-34s %10s %9s %12s %10s %7s\n' "what" "req/s" "p99 ms" "ceiling" "ceil/s" "ratio"
printf '%-34s %10s %9s %12s %10s %7s\n' "GET /healthz" "$health_rps" "$health_p99" "bare evhttp" "$bare_rps" "$(ratio "$health_rps" "$bare_rps")"
printf '%-34s %10s %9s %12s %10s %7s\n' "GET /v1/offices/{id}" "$get_rps" "$get_p99" "pgbench" "$pg_select" "$(ratio "$get_rps" "$pg_select")"
printf '%-34s %10s %9s %12s %10s %7s\n' "POST /v1/reports (txn+XADD)" "$post_rps" "$post_p99" "pgbench" "$pg_write" "$(ratio "$post_rps" "$pg_write")"
printf '\nnon-2xx/socket errors: healthz %s, get %s, post %s (POST answers 202)\n' "$health_err" "$get_err" "$post_err"
echo "ceilings: bare evhttp p99 ${bare_p99} ms; pgbench with $threads clients (one per API thread)"
