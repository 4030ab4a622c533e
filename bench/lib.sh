# bench/lib.sh — what every benchmark needs first; source it from the repository root.
# Builds RelWithDebInfo (no sanitizers) into build/ (or uses the build in $KQE_BENCH_BUILD as it
# is: the test suite's smoke run of bench/run uses its own), starts a throw-away PostgreSQL (durable
# settings) and Redis under $work (a /tmp/kqe-bench.* of scripts/lib/stack.sh), exports the kqe
# environment, migrates and loads the demo state. Processes appended to pids=() are killed and
# everything is removed on exit.
# shellcheck shell=bash
# shellcheck source=../scripts/lib/stack.sh
source scripts/lib/stack.sh
stack_install_deps "$@"

build=${KQE_BENCH_BUILD:-build}
if [ -z "${KQE_BENCH_BUILD:-}" ]; then
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKQE_SANITIZE=OFF >/dev/null
	cmake --build build -j"$(nproc)" >/dev/null
fi

work=$(stack_tmpdir bench)
pids=()
bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	stack_redis_stop "$work/redis" >/dev/null 2>&1 || true
	stack_pg_destroy "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap bench_cleanup EXIT

pgport=$(stack_free_port)
redisport=$(stack_free_port)
stack_pg_start "$work/pg" "$pgport" 2>/dev/null
stack_redis_start "$work/redis" "$redisport" 2>/dev/null
export KQE_DATABASE_URL KQE_DATABASE_ADMIN_URL KQE_LOG_LEVEL=warn
# Reports follow every write (a release before each report job, refreshing on any change):
# the benchmarks measure freshness and load, not the release schedule.
export KQE_RELEASE_INTERVAL_S=0 KQE_RELEASE_MIN_CHANGES=1 KQE_RELEASE_FINAL=0
export KQE_REDIS_URL=redis://127.0.0.1:$redisport/0
export KQE_PSEUDONYM_KEY KQE_DATA_KEYS
KQE_PSEUDONYM_KEY=$(openssl rand -base64 32)
KQE_DATA_KEYS=k1:$(openssl rand -base64 32)
KQE_DATABASE_ADMIN_URL=$(stack_pg_url "$pgport")
KQE_DATABASE_URL=postgresql://kqe_service@127.0.0.1:$pgport/postgres
"$build"/bin/kqe migrate >/dev/null 2>&1
"$build"/bin/kqe seed --demo >/dev/null 2>&1

# bench_token ROLE [kqe token create flags…] → a new API key on stdout
bench_token() {
	local role=$1
	shift
	"$build"/bin/kqe token create --name "bench-$role" --role "$role" "$@" 2>/dev/null |
		sed -n 's/^token: //p'
}
