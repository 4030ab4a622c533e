#!/usr/bin/env bash
# bench/soak.sh — a long run at about half the measured capacity: kqe-api and kqe-aggregator
# on the demo state, a mix of reads, writes, batches and report jobs (bench/soak.py says which),
# first a capacity measurement in a closed loop, then KQE_SOAK_SECONDS open-loop at half of it.
# Fails (exit 1) on any error, RSS growth of either service >= 5 % after the first minute, a
# p99 of the last minute above twice that of the second minute, or an inconsistency between
# what was acknowledged and what PostgreSQL and the rollups hold. docs/reliability.md has the
# figures. Not part of ./scripts/test: it takes more than 10 minutes.
#
# Environment: KQE_SOAK_SECONDS (default 600), KQE_SOAK_CAPACITY_SECONDS (default 30),
#              KQE_SOAK_RATE (a fixed rate in req/s instead of half the measured capacity),
#              KQE_SOAK_OFFICES (offices sending the load, default 0: every office with an
#              open procedure),
#              KQE_SOAK_JSON (also write the figures to this file),
#              KQE_API_THREADS (default 2), KQE_DB_POOL (default 4).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh
secs=${KQE_SOAK_SECONDS:-600}
capacity_secs=${KQE_SOAK_CAPACITY_SECONDS:-30}
noffices=${KQE_SOAK_OFFICES:-0}

# Offices with an open procedure of the current cycle (all of them, 161 of the demo's 186, or
# KQE_SOAK_OFFICES of them, alternating between the regions), each with its own token. Spread
# over all of them, ten minutes of writes add a few hundred case analyses to each office; a
# few offices would get thousands each, far beyond any real office (docs/reliability.md).
offices=()
while IFS='|' read -r office procedure; do
	offices+=(--office "$office=$procedure=$(bench_token office_staff --office "$office")")
done < <(psql -XAtq "$KQE_DATABASE_ADMIN_URL" -c \
	"SELECT office_id, id FROM (SELECT p.office_id, p.id, row_number() OVER (PARTITION BY
	 o.region ORDER BY p.office_id) AS n FROM procedures p JOIN offices o ON o.id = p.office_id
	 WHERE p.cycle = '2023-2028' AND NOT p.out_of_cycle AND p.phase <> 'completed') x
	 ORDER BY n, office_id $([ "$noffices" -gt 0 ] && echo "LIMIT $noffices")")
ministry=$(bench_token ministry)

apiport=$(stack_free_port)
# Many requests per token: a limit they never reach, so the Redis count still runs.
KQE_RATE_LIMIT_PER_MINUTE=1000000 KQE_HTTP_PORT=$apiport build/bin/kqe-api >"$work/api.log" 2>&1 &
pids+=($!)
api_pid=$!
build/bin/kqe-aggregator >"$work/aggregator.log" 2>&1 &
pids+=($!)
aggregator_pid=$!
stack_wait_http "http://127.0.0.1:$apiport/readyz" 20

rate=${KQE_SOAK_RATE:+"$KQE_SOAK_RATE req/s"}
rate=${rate:-"half the capacity measured in ${capacity_secs}s"}
echo "soak: $(nproc) cores, ${KQE_API_THREADS:-2} API threads, pool ${KQE_DB_POOL:-4}," \
	"$((${#offices[@]} / 2)) office tokens; ${secs}s at $rate"
status=0
python3 bench/soak.py --port "$apiport" --api-pid "$api_pid" --aggregator-pid "$aggregator_pid" \
	--ministry "$ministry" "${offices[@]}" --seconds "$secs" --capacity-seconds "$capacity_secs" \
	--rate "${KQE_SOAK_RATE:-0}" ${KQE_SOAK_JSON:+--json "$KQE_SOAK_JSON"} || status=$?

# Both services must still be running, and say what they logged at warn and above.
for p in "$api_pid" "$aggregator_pid"; do
	if ! kill -0 "$p" 2>/dev/null; then
		echo "soak: process $p is gone"
		status=1
	fi
done
for log in api aggregator; do
	printf 'log lines at warn or above, %s: %s\n' "$log" \
		"$(grep -c '"level":"\(warn\|error\|fatal\)"' "$work/$log.log" || true)"
	sed -n 's/.*"level":"\(warn\|error\|fatal\)","msg":"\([^"]*\)".*/\1: \2/p' "$work/$log.log" |
		sort | uniq -c | sort -rn | head -5
done
exit "$status"
