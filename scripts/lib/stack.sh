# shellcheck shell=bash
# scripts/lib/stack.sh — the Debian packages kqe needs, and the local PostgreSQL 15 and Redis 7
# servers that scripts/run, scripts/test and bench/ start. Source it; it only defines functions.
#
# One way to run the servers, whoever calls. initdb and postgres refuse to run as root, and
# CI runs as root from a clone that may sit in a directory no other user can enter (/root, a
# mktemp dir). So every server runs as an unprivileged user, in a directory that user owns and
# can reach:
#   - a normal user (with sudo for apt): the servers run as that user; data in .run/ of the
#     checkout (scripts/run) or in a fresh /tmp/kqe-*.XXXXXX (scripts/test, bench/);
#   - root: the servers run as the system user "kqe" (made on first use) through runuser; data
#     in /var/lib/kqe/run-<hash of the checkout path> (scripts/run) or /tmp/kqe-*.XXXXXX,
#     owned by kqe. None of the servers' files lives in the checkout.
# Redis could run as root, but runs the same way. Both listen on 127.0.0.1 only. PostgreSQL
# has no unix socket: every URL is TCP, so neither /var/run/postgresql (not ours) nor the
# 107-byte limit on socket paths gets in the way. Logs: postgres.log, redis.log in the data dir.

stack__say() { printf 'stack: %s\n' "$*" >&2; }
stack__root() { [ "$(id -u)" = 0 ]; }

# as_server_user CMD... — run CMD as the servers' user: as root, as kqe (from /, which kqe may
# enter); otherwise as the caller.
as_server_user() {
	if stack__root; then
		(cd / && runuser -u kqe -- "$@")
	else
		"$@"
	fi
}

# stack__server_dir DIR — make DIR (mode 700) and give it to the servers' user; print it.
# As root, this creates the system user kqe the first time (a concurrent run may beat us to it).
stack__server_dir() {
	if stack__root && ! getent passwd kqe >/dev/null; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kqe ||
			getent passwd kqe >/dev/null || return 1
		stack__say "created the system user kqe: as root, it runs the servers"
	fi
	mkdir -p "$1" && chmod 700 "$1" || return 1
	if stack__root; then chown kqe: "$1" || return 1; fi
	echo "$1"
}

# stack_tmpdir NAME — a new /tmp/kqe-NAME.XXXXXX for throw-away servers; delete it yourself.
stack_tmpdir() {
	local dir
	dir=$(mktemp -d "/tmp/kqe-$1.XXXXXX") && stack__server_dir "$dir"
}

# stack_run_dir CHECKOUT — where scripts/run keeps its servers' data from run to run.
stack_run_dir() {
	if stack__root; then
		install -d -m 755 /var/lib/kqe &&
			stack__server_dir "/var/lib/kqe/run-$(printf %s "$1" | sha256sum | cut -c1-12)"
	else
		stack__server_dir "$1/.run"
	fi
}

# stack_install_deps [PKG...] — install whichever of kqe's Debian packages (and PKGs) are missing.
stack_install_deps() {
	local pkgs=(build-essential cmake pkg-config libevent-dev libpq-dev libjansson-dev libssl-dev
		libhiredis-dev libcurl4-openssl-dev libical-dev libmagic-dev libcmocka-dev python3-aiosmtpd postgresql redis-server python3
		python3-yaml curl openssl "$@")
	local missing=() pkg sudo=()
	for pkg in "${pkgs[@]}"; do
		[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] ||
			missing+=("$pkg")
	done
	[ "${#missing[@]}" -gt 0 ] || return 0
	stack__root || sudo=(sudo) # a normal user needs sudo for this, and only for this
	stack__say "installing ${missing[*]}"
	"${sudo[@]}" apt-get -qq -o DPkg::Lock::Timeout=300 update >&2 ||
		stack__say "apt-get update failed; trying the install anyway"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 \
		install -y --no-install-recommends "${missing[@]}" >&2
}

# stack_free_port — a TCP port free on 127.0.0.1 right now.
stack_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stack_wait_http URL SECONDS — wait until URL answers 2xx; 1 if it does not within SECONDS.
stack_wait_http() {
	local deadline=$((SECONDS + $2))
	until curl -fs -o /dev/null --max-time 2 --noproxy '*' "$1"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			stack__say "no answer from $1 within $2 s"
			return 1
		fi
		sleep 0.2
	done
}

# stack__pg PROGRAM ARG... — run one of PostgreSQL's server programs (not on PATH in Debian).
stack__pg() { as_server_user "$(pg_config --bindir)/$1" "${@:2}"; }

# stack_pg_start DIR PORT [NAME=VALUE...] — start the cluster in DIR (initdb first if there is
# none) on 127.0.0.1:PORT with the given settings; nothing to do if it runs already.
# Superuser postgres, no password (trust): see stack_pg_url.
stack_pg_start() {
	local dir=$1 port=$2 opts setting
	shift 2
	if stack__pg pg_ctl status -D "$dir" >/dev/null 2>&1; then
		stack__say "postgres already running ($dir)"
		return 0
	fi
	if [ ! -f "$dir/PG_VERSION" ]; then
		stack__pg initdb -D "$dir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
			--no-instructions >/dev/null || return 1
	fi
	# Settings go on the command line (pg_ctl hands them to a shell), so postgresql.conf stays
	# initdb's and a new port or setting needs no editing.
	opts="-h 127.0.0.1 -p $port -k ''"
	for setting in "$@"; do opts+=" -c $setting"; done
	if ! stack__pg pg_ctl start -D "$dir" -l "$dir/postgres.log" -w -t 60 -o "$opts" >/dev/null; then
		tail -n 20 "$dir/postgres.log" >&2
		return 1
	fi
	stack__say "postgres on 127.0.0.1:$port ($dir)"
}

# stack_pg_stop DIR — fast shutdown; nothing to do if it is not running.
stack_pg_stop() {
	[ -d "$1" ] || return 0
	stack__pg pg_ctl status -D "$1" >/dev/null 2>&1 || return 0
	stack__pg pg_ctl stop -D "$1" -m fast -w -t 60 >/dev/null || return 1
	stack__say "postgres stopped ($1)"
}

# stack_pg_destroy DIR — stop the cluster and delete DIR.
stack_pg_destroy() { stack_pg_stop "$1" && rm -rf -- "$1"; }

# stack_pg_url PORT [DBNAME] — the superuser's URL (database postgres unless DBNAME).
stack_pg_url() { echo "postgresql://postgres@127.0.0.1:$1/${2:-postgres}"; }

# stack__redis_pid DIR — the pid of DIR's running redis-server (whose working dir is DIR).
stack__redis_pid() {
	local pid
	pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$1")" ] &&
		echo "$pid"
}

# stack_redis_start DIR PORT [persist] — start redis-server on 127.0.0.1:PORT with its files in
# DIR; keeps nothing unless "persist" (then an append-only file). Nothing to do if it runs.
stack_redis_start() {
	local dir=$1 port=$2 keep=(--save "" --appendonly no)
	[ "${3:-}" != persist ] || keep=(--save "" --appendonly yes)
	if stack__redis_pid "$dir" >/dev/null; then
		stack__say "redis already running ($dir)"
		return 0
	fi
	as_server_user mkdir -p "$dir" || return 1
	as_server_user redis-server --port "$port" --bind 127.0.0.1 "${keep[@]}" --dir "$dir" \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" || return 1
	# The pid file appears once it listens; PONG alone might come from someone else's server.
	for _ in $(seq 1 100); do
		if stack__redis_pid "$dir" >/dev/null &&
			[ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
			stack__say "redis on 127.0.0.1:$port ($dir)"
			return 0
		fi
		sleep 0.1
	done
	stack__say "redis did not start on port $port"
	tail -n 20 "$dir/redis.log" >&2
	return 1
}

# stack_redis_stop DIR — shut DIR's redis-server down; nothing to do if it is not running.
stack_redis_stop() {
	local pid
	pid=$(stack__redis_pid "$1") || return 0
	kill -TERM "$pid" || return 1
	# Redis removes its pid file after the last write to the append-only file, just before
	# it closes its port and exits.
	for _ in $(seq 1 100); do
		if [ ! -e "$1/redis.pid" ]; then
			stack__say "redis stopped ($1)"
			return 0
		fi
		sleep 0.1
	done
	stack__say "redis ($1, pid $pid) did not stop"
	return 1
}

# stack_promtool — build/tools/promtool from Debian's prometheus package, unpacked and never
# installed (no server starts), for tests/integration/test_deploy.py; exports KQE_PROMTOOL.
# Fetched once per checkout.
stack_promtool() {
	if [ ! -x build/tools/promtool ]; then
		mkdir -p build/tools
		(cd build/tools && { apt-get download prometheus >/dev/null 2>&1 ||
			{ [ "$(id -u)" = 0 ] && apt-get -qq update >/dev/null 2>&1 &&
				apt-get download prometheus >/dev/null 2>&1; }; } &&
			dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool >promtool &&
			chmod +x promtool && rm -f prometheus_*.deb) ||
			stack__say "promtool could not be fetched; test_deploy.py says so"
	fi
	export KQE_PROMTOOL=$PWD/build/tools/promtool
}
