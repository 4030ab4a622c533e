# shellcheck shell=bash
# scripts/lib/faults.sh — ./scripts/test --faults: the fault drills (tests/faults; docs/testing.md
# "Fault drills", docs/reliability.md). Builds the Debug ASan+UBSan binaries as ./scripts/test
# does, starts the drills' PostgreSQL cluster and a second, small one whose data directory lives
# on a tmpfs of its own (the disk-full drill), and runs the drills one at a time: they stop,
# crash and freeze the cluster, so two at once would spoil each other. Each drill runs in a
# process group of its own, so whatever it started (Redis, kqe-api, kqe-aggregator) ends with
# it. On any exit — failure, Ctrl-C — the drill's group is ended, a frozen cluster is thawed,
# both clusters are stopped and the tmpfs is unmounted. Prints each drill's figures and
# "faults: N passed, M failed"; exits non-zero if a drill failed.
# Environment: KQE_FAULTS_FILTER (a regex over drill ids such as test_postgres.PostgresDown.
# test_stopped, default all), KQE_FAULTS_DISK_MB (size of the tmpfs, default 96).
# Sourced by scripts/test (after scripts/lib/stack.sh), which calls faults_main.

faults__say() { printf 'faults: %s\n' "$*" >&2; }

# faults__thaw DIR — SIGCONT the cluster's postmaster and the processes it forked (a drill
# that died while the cluster was frozen would leave it so, and pg_ctl stop would wait).
faults__thaw() {
	local pid child
	pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || return 0
	for child in $(pgrep -P "$pid"); do kill -CONT "$child" 2>/dev/null || true; done
}

# faults__as_root CMD... — mount and umount need root; a developer who is not gets sudo.
faults__as_root() {
	if stack__root; then "$@"; else sudo "$@"; fi
}

# faults__drills — the ids of every drill (module.Class.method), one a line.
faults__drills() {
	(cd tests/faults && python3 -c '
import unittest
def walk(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from walk(t)
        else:
            yield t.id()
# test_failover brings its own servers: ./scripts/test runs it (ctest faults.failover).
print("\n".join(t for t in walk(unittest.defaultTestLoader.discover(".", "test_*.py"))
                if not t.startswith("test_failover.")))')
}

faults_main() {
	local started=$SECONDS filter=${KQE_FAULTS_FILTER:-.} disk_mb=${KQE_FAULTS_DISK_MB:-96}
	stack_install_deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DKQE_SANITIZE=ON >/dev/null
	cmake --build build/asan -j"$(nproc)" >/dev/null

	faults_work=$(stack_tmpdir faults)
	faults_mnt=$faults_work/disk
	faults_group=
	faults_cleanup() {
		local rc=$?
		if [ -n "$faults_group" ] && kill -0 -- "-$faults_group" 2>/dev/null; then
			kill -TERM -- "-$faults_group" 2>/dev/null || true
			sleep 2
			kill -KILL -- "-$faults_group" 2>/dev/null || true
		fi
		faults__thaw "$faults_work/pg"
		faults__thaw "$faults_mnt/pg"
		stack_pg_stop "$faults_work/pg" || true
		stack_pg_stop "$faults_mnt/pg" || true
		if mountpoint -q "$faults_mnt"; then
			faults__as_root umount "$faults_mnt" || faults__as_root umount -l "$faults_mnt" || true
		fi
		if [ "$rc" -ne 0 ] && [ -d "$faults_work/logs" ]; then
			rm -rf build/asan/faults-logs
			cp -r "$faults_work/logs" build/asan/faults-logs || true
			echo "faults: logs of the failed run are in $root/build/asan/faults-logs" >&2
		fi
		rm -rf "$faults_work"
		exit "$rc"
	}
	trap faults_cleanup EXIT
	trap 'exit 130' INT TERM

	# The drills' cluster. synchronous_commit stays on: a commit is acknowledged only once its
	# WAL is written, so a crashed server (pg_ctl stop -m immediate) keeps every acknowledged
	# write. fsync and full pages may be off: the machine itself never crashes in a drill.
	local settings="fsync=off synchronous_commit=on full_page_writes=off max_connections=200"
	local port
	port=$(stack_free_port)
	# shellcheck disable=SC2086 # one word per setting
	stack_pg_start "$faults_work/pg" "$port" $settings
	export KQE_TEST_PG_URL KQE_FAULTS_PG_URL KQE_FAULTS_PG_DIR=$faults_work/pg
	export KQE_FAULTS_PG_PORT=$port KQE_FAULTS_PG_SETTINGS=$settings
	KQE_TEST_PG_URL=$(stack_pg_url "$port")
	KQE_FAULTS_PG_URL=$KQE_TEST_PG_URL

	# The disk-full drill's cluster: its data directory on a tmpfs of disk_mb MiB, its WAL
	# beside the other cluster on the ordinary disk (a separate WAL volume, as production
	# runs it): a full data volume costs writes, a full WAL volume stops PostgreSQL, which
	# the PostgreSQL drills cover.
	mkdir -p "$faults_mnt"
	local owner
	owner=$(stat -c %u "$faults_work")
	faults__as_root mount -t tmpfs -o "size=${disk_mb}m,mode=700,uid=$owner" tmpfs "$faults_mnt"
	as_server_user mkdir "$faults_work/disk-wal"
	stack__pg initdb -D "$faults_mnt/pg" --waldir="$faults_work/disk-wal" -U postgres -A trust \
		-E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
	port=$(stack_free_port)
	# shellcheck disable=SC2086
	stack_pg_start "$faults_mnt/pg" "$port" $settings
	export KQE_FAULTS_DISK_PG_URL KQE_FAULTS_DISK_PG_DIR=$faults_mnt/pg
	export KQE_FAULTS_DISK_PG_PORT=$port KQE_FAULTS_DISK_PG_SETTINGS=$settings
	export KQE_FAULTS_DISK_MOUNT=$faults_mnt
	KQE_FAULTS_DISK_PG_URL=$(stack_pg_url "$port")

	# The drills' own files (harness.Stack's Redis directories) under the run's directory too,
	# so an interrupted drill leaves nothing behind.
	mkdir -p "$faults_work/logs" "$faults_work/tmp"
	export TMPDIR=$faults_work/tmp
	rm -rf build/asan/faults
	export KQE_FAULTS_RESULTS=$root/build/asan/faults
	export KQE_TEST_LOG_DIR=$faults_work/logs KQE_BIN_DIR=$root/build/asan/bin
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export PYTHONDONTWRITEBYTECODE=1

	local drills=() id passed=0 failed=0 failures=()
	while read -r id; do
		[[ $id =~ $filter ]] && drills+=("$id")
	done < <(faults__drills)
	faults__say "${#drills[@]} drills, one at a time"
	for id in "${drills[@]}"; do
		faults__say "$id"
		# A process group of its own (job control), ended whole by faults_cleanup.
		set -m
		(cd tests/faults && exec python3 -m unittest "$id") &
		faults_group=$!
		set +m
		if wait "$faults_group"; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failures+=("$id")
		fi
		faults_group=
	done

	python3 - "$KQE_FAULTS_RESULTS" <<'EOF'
import json, os, sys
rows = []
d = sys.argv[1]
for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    with open(os.path.join(d, name)) as f:
        rows.append(json.load(f))
print("faults: drill | fault s | back s | recovered in s | answers meanwhile | slowest s |"
      " events relayed s | writes 2xx | not 2xx | in doubt (landed) | drill s")
for r in rows:
    print(f"faults: {r['drill']} | {r.get('fault_s')} | {r.get('undo_s')} |"
          f" {r.get('recovery_s')} | {r.get('during_fault')} |"
          f" {r.get('slowest_answer_during_fault_s')} | {r.get('events_relayed_s')} |"
          f" {r.get('writes_2xx')} | {r.get('writes_not_2xx')} | {r.get('writes_in_doubt')}"
          f" ({r.get('writes_in_doubt_committed')}) | {r.get('seconds')}")
EOF
	local f
	for f in "${failures[@]}"; do faults__say "FAILED: $f"; done
	echo "faults: $((SECONDS - started)) s"
	echo "faults: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
