#!/usr/bin/env bash
# bench/writes.sh — durable case-analysis submissions (POST /v1/case-analyses: row, audit entry,
# outbox event, encrypted findings, one transaction with synchronous_commit on) at 64
# connections, with kqe-aggregator running as in production (it seals the audit log), and how
# far the audit seal lags behind: the oldest unsealed entry's age, sampled every 0.2 s. Not a
# test: it never fails on speed (docs/performance.md, "Writes and the audit log").
#
# Environment: KQE_BENCH_SECONDS (default 10), KQE_BENCH_CONNECTIONS (default 64),
#              KQE_API_THREADS (default 2), KQE_DB_POOL (default 4).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh wrk
secs=${KQE_BENCH_SECONDS:-10}
conns=${KQE_BENCH_CONNECTIONS:-64}
read -r procedure office < <(psql -X -At -F ' ' "$KQE_DATABASE_ADMIN_URL" -c \
	"SELECT id, office_id FROM procedures WHERE phase <> 'completed' AND NOT out_of_cycle ORDER BY id LIMIT 1")
token=$(bench_token office_staff --office "$office")

apiport=$(stack_free_port)
KQE_RATE_LIMIT_PER_MINUTE=1000000 KQE_HTTP_PORT=$apiport build/bin/kqe-api >"$work/api.log" 2>&1 &
pids+=($!)
build/bin/kqe-aggregator >"$work/aggregator.log" 2>&1 &
pids+=($!)
stack_wait_http "http://127.0.0.1:$apiport/readyz" 20

# What the database's sessions wait for (KQE_BENCH_WAITS=1): sampled every 0.1 s.
if [ -n "${KQE_BENCH_WAITS:-}" ]; then
	(
		while sleep 0.1; do
			psql -X -At "$KQE_DATABASE_ADMIN_URL" -c "SELECT coalesce(wait_event_type, 'cpu') ||
				':' || coalesce(wait_event, '-') FROM pg_stat_activity WHERE state = 'active'
				AND pid <> pg_backend_pid()" 2>/dev/null
		done >"$work/waits"
	) &
	pids+=($!)
fi
lag=$work/lag
(
	while sleep 0.2; do
		psql -X -At "$KQE_DATABASE_ADMIN_URL" -c "SELECT coalesce(extract(epoch FROM
			clock_timestamp() - min(at)), 0) FROM audit_log WHERE seq IS NULL" 2>/dev/null ||
			psql -X -At "$KQE_DATABASE_ADMIN_URL" -c "SELECT 0" # before the sealer existed
	done >"$lag"
) &
pids+=($!)

# A file, not a pipe: wrk reads the script once per thread.
script=$work/post_case.lua
cat bench/post_case.lua bench/report.lua >"$script"
result=$(KQE_BENCH_PROCEDURE=$procedure KQE_BENCH_RUN=$$ wrk -t2 -c"$conns" -d"${secs}s" --latency \
	-H "Authorization: Bearer $token" -s "$script" "http://127.0.0.1:$apiport/v1/case-analyses")
line=$(sed -n 's/^RESULT //p' <<<"$result")
stored=$(psql -X -At "$KQE_DATABASE_ADMIN_URL" -c \
	"SELECT count(*) FROM case_analyses WHERE procedure_id = '$procedure'")
maxlag=$(sort -g "$lag" | tail -n 1)
echo "POST /v1/case-analyses, $conns connections, ${secs}s: $line stored=$stored seal_lag_max_s=${maxlag:-0}"
if [ -n "${KQE_BENCH_WAITS:-}" ]; then
	echo "what active sessions waited for (samples):"
	sort "$work/waits" | uniq -c | sort -rn | head -8
fi
