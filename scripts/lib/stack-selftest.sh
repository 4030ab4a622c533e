#!/usr/bin/env bash
#
# scripts/lib/stack-selftest.sh -- exercise scripts/lib/stack.sh for real.
#
#   scripts/lib/stack-selftest.sh            as root: run the suite as root,
#                                            then again as a throw-away
#                                            non-root user (created with
#                                            useradd -m, removed afterwards);
#                                            as non-root: run the suite once
#   scripts/lib/stack-selftest.sh --suite    run the suite once as the
#                                            current user only
#
# Starts real PostgreSQL/Redis servers on free ports inside fresh `mktemp -d`
# directories (mode 700 -- the root pitfall stack.sh has to handle) and
# removes everything it created when it exits.  Exit status: 0 iff all
# checks passed.
set -euo pipefail

ST_HERE=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=SCRIPTDIR/stack.sh
. "$ST_HERE/stack.sh"

st_pass=0
st_fail=0
st_tmp=
st_hpid=
st_user=

st_ok() {
    st_pass=$((st_pass + 1))
    printf '  PASS  %s\n' "$*"
}
st_bad() {
    st_fail=$((st_fail + 1))
    printf '  FAIL  %s\n' "$*"
}
# st_check DESCRIPTION CMD... -- run CMD, record PASS/FAIL.
st_check() {
    local desc=$1
    shift
    if "$@"; then st_ok "$desc"; else st_bad "$desc"; fi
}
# st_check_not DESCRIPTION CMD... -- CMD must fail.
st_check_not() {
    local desc=$1
    shift
    if "$@"; then st_bad "$desc"; else st_ok "$desc"; fi
}
st_eq() { [ "$1" = "$2" ] || {
    printf '        expected [%s], got [%s]\n' "$2" "$1"
    return 1
}; }
st_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@" 2>/dev/null; }
st_pgpid() { head -n1 "$1/postmaster.pid" 2>/dev/null; }
st_section() { printf '\n== %s\n' "$*"; }

st_suite_cleanup() {
    [ -n "$st_hpid" ] && { kill "$st_hpid" 2>/dev/null || true; wait "$st_hpid" 2>/dev/null || true; }
    if [ -n "$st_tmp" ] && [ -d "$st_tmp" ]; then
        local d
        for d in "$st_tmp"/redis*; do
            [ -d "$d" ] && { stack_redis_stop "$d" 2>/dev/null || true; }
        done
        for d in "$st_tmp"/pg*; do
            [ -e "$d" ] && { stack_pg_destroy "$d" 2>/dev/null || true; }
        done
        rm -rf -- "$st_tmp"
    fi
    st_tmp=
}

st_suite() {
    local who port port2 rport url pid1 pid2 out hd rdir rpdir busy t0
    who="$(id -un) (uid $(id -u))"
    t0=$(date +%s)
    st_tmp=$(mktemp -d) # mode 700, as the callers' mktemp dirs are
    trap st_suite_cleanup EXIT
    printf '\n#### stack.sh selftest as %s, tmp dir %s (mode %s)\n' \
        "$who" "$st_tmp" "$(stat -c %a "$st_tmp")"

    st_section "dependencies / helpers"
    st_check "stack_install_deps (nothing missing -> no apt, no sudo needed)" stack_install_deps
    local bindir
    bindir=$(stack_pg_bindir)
    st_check "stack_pg_bindir -> $bindir has initdb/pg_ctl/postgres" \
        test -x "$bindir/initdb" -a -x "$bindir/pg_ctl" -a -x "$bindir/postgres"
    port=$(stack_free_port)
    st_check "stack_free_port -> $port" test "$port" -gt 1024
    st_check "stack_pg_url" st_eq "$(stack_pg_url 5999 kqe)" "postgresql://postgres@127.0.0.1:5999/kqe"
    st_check "stack_pg_url default db" st_eq "$(stack_pg_url 5999)" "postgresql://postgres@127.0.0.1:5999/postgres"
    # shellcheck disable=SC2016 # expanded by the inner bash
    st_check "functions are set -euo pipefail safe on absent dirs" \
        bash -euo pipefail -c '. "$1"; stack_pg_stop "$2/nope"; stack_redis_stop "$2/nope"; stack_pg_destroy "$2/nope"' \
        _ "$ST_HERE/stack.sh" "$st_tmp"

    st_section "PostgreSQL in $st_tmp/pg (port $port)"
    local pgdir=$st_tmp/pg
    local rc=0
    out=$(stack_pg_start "$pgdir" "$port" fsync=off synchronous_commit=off full_page_writes=off) || rc=$?
    st_check "stack_pg_start (initdb + start, test settings)" st_eq "$rc" 0
    st_check "...printed nothing on stdout" st_eq "$out" ""
    url=$(stack_pg_url "$port")
    st_check "select 1 via $url" st_eq "$(st_psql "$url" -c 'select 1')" 1
    st_check "listens on 127.0.0.1 only" st_eq "$(st_psql "$url" -c 'show listen_addresses')" 127.0.0.1
    st_check "extra config applied (fsync=off)" st_eq "$(st_psql "$url" -c 'show fsync')" off
    st_check "max_connections=100" st_eq "$(st_psql "$url" -c 'show max_connections')" 100
    st_check "server encoding UTF8" st_eq "$(st_psql "$url" -c 'show server_encoding')" UTF8
    if stack__is_root; then
        hd=$(stack__pg_hashdir "$pgdir")
        st_check "root: DATADIR in 700 dir is a symlink to $hd/data" \
            st_eq "$(readlink "$pgdir")" "$hd/data"
        st_check "root: cluster owned by kqe-pg" st_eq "$(stat -c %U "$hd/data")" kqe-pg
        st_check "root: postgres runs as kqe-pg" \
            st_eq "$(ps -o user= -p "$(st_pgpid "$pgdir")" | tr -d ' ')" kqe-pg
    else
        st_check "non-root: DATADIR is a plain dir owned by us" \
            test -d "$pgdir" -a ! -L "$pgdir" -a -O "$pgdir"
    fi
    st_psql "$url" -c 'create table kv(k text primary key, v text)' -c "insert into kv values ('a','survives')" >/dev/null
    pid1=$(st_pgpid "$pgdir")
    st_check "stack_pg_start again (idempotent)" stack_pg_start "$pgdir" "$port" fsync=off
    pid2=$(st_pgpid "$pgdir")
    st_check "same postmaster pid after 2nd start ($pid1)" st_eq "$pid2" "$pid1"
    st_check "stack_pg_stop" stack_pg_stop "$pgdir"
    st_check_not "not reachable after stop" st_psql "$url" -c 'select 1'
    st_check "stack_pg_stop again (not running -> ok)" stack_pg_stop "$pgdir"
    port2=$(stack_free_port)
    st_check "stack_pg_start again on a new port $port2 (port rewritten)" stack_pg_start "$pgdir" "$port2"
    url=$(stack_pg_url "$port2")
    st_check "data survived restart" st_eq "$(st_psql "$url" -c "select v from kv where k='a'")" survives
    st_check "config block regenerated (fsync back on)" st_eq "$(st_psql "$url" -c 'show fsync')" on
    st_check "exactly one managed port line" \
        st_eq "$(grep -c '^port = ' "$pgdir/postgresql.conf")" 1
    rport=$(stack_free_port)
    st_check "stack_pg_stop" stack_pg_stop "$pgdir"
    st_check "stack_pg_stop on non-existent dir" stack_pg_stop "$st_tmp/does-not-exist"

    st_section "PostgreSQL failure path"
    # occupy a port with a plain listener, postgres must fail cleanly
    busy=$(stack_free_port)
    python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(60)' "$busy" &
    st_hpid=$!
    sleep 0.5
    st_check_not "stack_pg_start on a busy port fails (returns 1, log shown)" \
        stack_pg_start "$pgdir" "$busy"
    st_check_not "...and leaves no server running" stack__pg_running "$(readlink -f "$pgdir")"
    st_check_not "stack_redis_start on a busy port fails" stack_redis_start "$st_tmp/redis-busy" "$busy"
    kill "$st_hpid" 2>/dev/null || true
    wait "$st_hpid" 2>/dev/null || true
    st_hpid=

    if stack__is_root; then
        st_section "root: DATADIR whose parent kqe-pg can traverse / garbage collection"
        local d2 d3 hd3 p3
        d3=$(mktemp -d)
        p3=$(stack_free_port)
        stack_pg_start "$d3/pg" "$p3" 2>/dev/null
        hd3=$(stack__pg_hashdir "$d3/pg")
        stack_pg_stop "$d3/pg" 2>/dev/null
        rm -rf -- "$d3" # caller forgets stack_pg_destroy
        d2=$st_tmp/open
        mkdir -p "$d2" && chmod 755 "$st_tmp" "$d2"
        st_check "stack_pg_start in a traversable dir" stack_pg_start "$d2/pg" "$p3"
        st_check "...DATADIR used in place (no symlink), owned by kqe-pg" \
            test -d "$d2/pg" -a ! -L "$d2/pg" -a "$(stat -c %U "$d2/pg")" = kqe-pg
        st_check "...select 1" st_eq "$(st_psql "$(stack_pg_url "$p3")" -c 'select 1')" 1
        st_check "orphaned relocated cluster ($hd3) garbage-collected" test ! -e "$hd3"
        st_check "stack_pg_destroy in-place cluster" stack_pg_destroy "$d2/pg"
        st_check "...gone" test ! -e "$d2/pg"
        chmod 700 "$st_tmp"
    fi

    st_section "Redis in $st_tmp/redis (port $rport)"
    rdir=$st_tmp/redis
    st_check "stack_redis_start" stack_redis_start "$rdir" "$rport"
    st_check "redis-cli ping -> PONG" st_eq "$(redis-cli -p "$rport" ping)" PONG
    st_check "bound to 127.0.0.1" st_eq "$(redis-cli -p "$rport" config get bind | sed -n 2p)" 127.0.0.1
    st_check "no persistence (save '' appendonly no)" \
        st_eq "$(redis-cli -p "$rport" config get save | sed -n 2p)/$(redis-cli -p "$rport" config get appendonly | sed -n 2p)" "/no"
    st_check "redis.port recorded" st_eq "$(cat "$rdir/redis.port")" "$rport"
    pid1=$(cat "$rdir/redis.pid")
    st_check "stack_redis_start again (idempotent)" stack_redis_start "$rdir" "$rport"
    st_check "same pid ($pid1)" st_eq "$(cat "$rdir/redis.pid")" "$pid1"
    st_check "stack_redis_stop" stack_redis_stop "$rdir"
    st_check_not "not reachable after stop" redis-cli -p "$rport" ping
    st_check_not "process $pid1 gone" stack__pid_alive "$pid1"
    st_check "stack_redis_stop again (not running -> ok)" stack_redis_stop "$rdir"

    st_section "Redis persist mode in $st_tmp/redis-persist"
    rpdir=$st_tmp/redis-persist
    rport=$(stack_free_port)
    st_check "stack_redis_start persist" stack_redis_start "$rpdir" "$rport" persist
    st_check "appendonly yes" st_eq "$(redis-cli -p "$rport" config get appendonly | sed -n 2p)" yes
    redis-cli -p "$rport" set kqe:selftest survives >/dev/null
    st_check "stack_redis_stop" stack_redis_stop "$rpdir"
    st_check "restart persist" stack_redis_start "$rpdir" "$rport" persist
    st_check "key survived restart (AOF in DIR)" st_eq "$(redis-cli -p "$rport" get kqe:selftest)" survives
    st_check "stack_redis_stop" stack_redis_stop "$rpdir"

    st_section "stack_wait_http"
    local hport
    hport=$(stack_free_port)
    (cd "$st_tmp" && exec python3 -m http.server --bind 127.0.0.1 "$hport" >/dev/null 2>&1) &
    st_hpid=$!
    st_check "stack_wait_http -> 200 from python http.server" stack_wait_http "http://127.0.0.1:$hport/" 20
    kill "$st_hpid" 2>/dev/null || true
    wait "$st_hpid" 2>/dev/null || true
    st_hpid=
    st_check_not "stack_wait_http times out (returns 1) on a closed port" \
        stack_wait_http "http://127.0.0.1:$hport/" 2

    st_section "cleanup"
    local pgreal
    pgreal=$(readlink -f "$pgdir")
    st_check "stack_pg_destroy" stack_pg_destroy "$pgdir"
    st_check "...cluster dir $pgreal removed" test ! -e "$pgreal"
    st_suite_cleanup
    trap - EXIT
    printf '\n#### as %s: %d passed, %d failed (%ss)\n' "$who" "$st_pass" "$st_fail" "$(($(date +%s) - t0))"
    [ "$st_fail" -eq 0 ]
}

st_remove_user() {
    [ -n "$st_user" ] || return 0
    if getent passwd "$st_user" >/dev/null; then
        userdel -r "$st_user" 2>/dev/null || userdel "$st_user" || true
    fi
    st_user=
}

st_main() {
    if [ "${1:-}" = "--suite" ] || ! stack__is_root; then
        st_suite
        return
    fi
    local rc_root=0 rc_user=0 home dir

    st_suite || rc_root=$?

    st_user=kqe-selftest-$$
    trap st_remove_user EXIT
    useradd -m -s /bin/bash "$st_user"
    home=$(getent passwd "$st_user" | cut -d: -f6)
    dir=$home/stack-selftest
    install -d -o "$st_user" -m 700 "$dir"
    install -o "$st_user" -m 644 "$ST_HERE/stack.sh" "$dir/stack.sh"
    install -o "$st_user" -m 755 "$ST_HERE/stack-selftest.sh" "$dir/stack-selftest.sh"
    printf '\n#### now as throw-away user %s in %s\n' "$st_user" "$dir"
    # shellcheck disable=SC2016 # expanded by the inner bash
    runuser -u "$st_user" -- env -i HOME="$home" USER="$st_user" LOGNAME="$st_user" \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        bash -c 'cd "$1" && ./stack-selftest.sh --suite' _ "$dir" || rc_user=$?
    if pgrep -u "$st_user" >/dev/null 2>&1; then
        printf 'WARNING: processes of %s still running:\n' "$st_user"
        pgrep -a -u "$st_user" || true
        rc_user=1
    fi
    st_remove_user
    trap - EXIT

    printf '\n#### SUMMARY: root suite %s, non-root suite %s\n' \
        "$([ "$rc_root" -eq 0 ] && echo PASS || echo FAIL)" \
        "$([ "$rc_user" -eq 0 ] && echo PASS || echo FAIL)"
    [ "$rc_root" -eq 0 ] && [ "$rc_user" -eq 0 ]
}

st_main "$@"
