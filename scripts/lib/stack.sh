# shellcheck shell=bash
#
# scripts/lib/stack.sh -- dependency installation and throw-away/local
# PostgreSQL 15 + Redis 7 servers for scripts/run and scripts/test.
#
# Source it; do not execute it.  It defines functions only (no options are
# changed, no variables are set at source time) and every function is written
# to work whether or not the caller runs under `set -euo pipefail`: failures
# are reported on stderr ("stack: ...") and turned into a non-zero return
# status instead of relying on errexit.
#
# Public functions:
#   stack_install_deps [PKG...]       ensure build/runtime Debian packages
#   stack_free_port                   print a free TCP port on 127.0.0.1
#   stack_pg_bindir                   print the PostgreSQL server bin dir
#   stack_pg_start DATADIR PORT [CONF_LINE...]
#                                     initdb (if needed) + start, idempotent
#   stack_pg_stop DATADIR             fast shutdown, ok if not running
#   stack_pg_destroy DATADIR          stop + delete the cluster (and DATADIR)
#   stack_pg_url PORT [DBNAME]        print postgresql://postgres@127.0.0.1:PORT/DB
#   stack_redis_start DIR PORT [persist]
#                                     start a daemonized redis-server, idempotent
#   stack_redis_stop DIR              shutdown nosave, ok if not running
#   stack_wait_http URL SECONDS       poll until HTTP 200 (1 on timeout)
#
# Internal helpers are named stack__*.

# ---------------------------------------------------------------------------
# generic helpers
# ---------------------------------------------------------------------------

stack__log() {
    printf 'stack: %s\n' "$*" >&2
}

# stack__pid_alive PID -- true if PID names a live (non-zombie) process.
# Zombies matter here: in containers PID 1 often does not reap orphans, so a
# daemonized server that exited can linger as a zombie that `kill -0` still
# reports as alive.
stack__pid_alive() {
    local pid=${1:-} state rest
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ "$pid" -gt 0 ] || return 1
    if [ -r "/proc/$pid/stat" ]; then
        # /proc/PID/stat: "pid (comm) STATE ..."; comm may contain spaces.
        rest=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
        rest=${rest##*) }
        state=${rest%% *}
        [ "$state" != "Z" ] && [ "$state" != "X" ]
        return
    fi
    [ -d /proc/self ] && return 1 # /proc works, the pid is gone
    kill -0 "$pid" 2>/dev/null
}

# stack__abspath PATH -- absolute path of PATH; the parent is resolved
# physically (symlinks in the parent chain removed) when it exists, the last
# component is kept as is (it may itself be a symlink we manage).
stack__abspath() {
    local p=${1:-} dir base
    [ -n "$p" ] || return 1
    case $p in /*) ;; *) p="$PWD/$p" ;; esac
    while [ "${#p}" -gt 1 ] && [ "${p%/}" != "$p" ]; do p=${p%/}; done
    dir=$(dirname -- "$p") || return 1
    base=$(basename -- "$p") || return 1
    if [ -d "$dir" ]; then
        dir=$(cd -P -- "$dir" 2>/dev/null && pwd -P) || return 1
    fi
    if [ "$dir" = "/" ]; then
        printf '/%s\n' "$base"
    else
        printf '%s/%s\n' "$dir" "$base"
    fi
}

stack__is_root() {
    [ "$(id -u)" -eq 0 ]
}

# stack__tail_log FILE [N] [OFFSET] -- show the last N lines of FILE on
# stderr; with OFFSET (a byte size recorded earlier) only what was appended
# since then.
stack__tail_log() {
    local file=$1 n=${2:-25} off=${3:-0} line
    [ -r "$file" ] || return 0
    stack__log "---- last lines of $file ----"
    while IFS= read -r line; do
        printf 'stack:   %s\n' "$line" >&2
    done < <(tail -c "+$((off + 1))" -- "$file" 2>/dev/null | tail -n "$n" || true)
    stack__log "---- end of $file ----"
}

# stack__fsize FILE -- size in bytes (0 if missing).
stack__fsize() {
    local n
    n=$(stat -c %s -- "$1" 2>/dev/null) || n=0
    printf '%s\n' "${n:-0}"
}

# stack__timeout SECS CMD... -- run CMD with a time limit if timeout(1) exists.
stack__timeout() {
    local secs=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$secs" "$@"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------

# stack_install_deps [EXTRA_PKG...]
# Ensure the project's Debian packages (plus any given as arguments) are
# installed; installs only the missing ones.  Returns 1 if something is
# missing and we can neither be root nor use sudo, or if apt fails.
stack_install_deps() {
    local pkgs=(build-essential cmake pkg-config libevent-dev libpq-dev
        libjansson-dev libssl-dev libhiredis-dev libjwt-dev libcmocka-dev libcurl4-openssl-dev
        postgresql redis-server python3 python3-yaml curl openssl)
    local missing=() pkg status log
    local -a asroot=()
    pkgs+=("$@")
    for pkg in "${pkgs[@]}"; do
        [ -n "$pkg" ] || continue
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) || status=
        if [ "$status" != "install ok installed" ]; then
            case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        stack__log "dependencies ok (${#pkgs[@]} packages already installed)"
        return 0
    fi
    if ! stack__is_root; then
        if command -v sudo >/dev/null 2>&1; then
            asroot=(sudo)
        else
            stack__log "missing Debian packages: ${missing[*]}"
            stack__log "not root and sudo is not available; as root run:"
            stack__log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
            return 1
        fi
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/stack-apt.XXXXXX.log") || {
        stack__log "cannot create a log file under ${TMPDIR:-/tmp}"
        return 1
    }
    chmod 644 "$log" 2>/dev/null || true
    stack__log "apt-get update (log: $log)"
    if ! "${asroot[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 update >>"$log" 2>&1; then
        stack__log "warning: apt-get update failed, trying to install anyway"
    fi
    stack__log "installing ${#missing[@]} package(s): ${missing[*]} (log: $log)"
    if ! "${asroot[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1; then
        stack__log "apt-get install failed"
        stack__tail_log "$log" 20
        return 1
    fi
    stack__log "installed: ${missing[*]}"
}

# ---------------------------------------------------------------------------
# ports / http
# ---------------------------------------------------------------------------

# stack_free_port -- print a TCP port that is currently free on 127.0.0.1.
# (The kernel picks it by binding port 0; it is released again at once, so
# there is the usual small window in which someone else could grab it.)
stack_free_port() {
    local port py i
    for py in /usr/bin/python3 python3 python; do
        command -v "$py" >/dev/null 2>&1 || continue
        port=$("$py" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) || port=
        case $port in '' | *[!0-9]*) ;; *)
            printf '%s\n' "$port"
            return 0
            ;;
        esac
    done
    # Fallback without python: random high port nobody accepts connections on.
    for i in $(seq 1 200); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            # (no "| grep -q": under pipefail an early grep exit fails ss)
            if ! command -v ss >/dev/null 2>&1 ||
                [ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then
                printf '%s\n' "$port"
                return 0
            fi
        fi
        : "$i"
    done
    stack__log "could not find a free TCP port"
    return 1
}

# stack_wait_http URL SECONDS -- poll URL until it answers HTTP 200; return 1
# if that does not happen within SECONDS.
stack_wait_http() {
    local url=${1:-} secs=${2:-30} code deadline
    if [ -z "$url" ]; then
        stack__log "usage: stack_wait_http URL SECONDS"
        return 2
    fi
    case $secs in '' | *[!0-9]*) secs=30 ;; esac
    deadline=$(($(date +%s) + secs))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            --noproxy '127.0.0.1,localhost,::1' -- "$url" 2>/dev/null) || true
        [ "$code" = "200" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && break
        sleep 0.2
    done
    stack__log "timeout after ${secs}s waiting for HTTP 200 from $url (last status: ${code:-none})"
    return 1
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# System user the clusters run as when the caller is root (initdb and
# postgres refuse to run as root).
stack__pg_sysuser() { printf '%s\n' kqe-pg; }

# Where clusters are kept when the caller is root and the pg user cannot
# reach the parent of DATADIR (see stack__pg_prepare).
stack__pg_relocbase() { printf '%s\n' /var/tmp/kqe-pg; }

# stack_pg_bindir -- print the directory holding initdb/pg_ctl/postgres.
stack_pg_bindir() {
    local d cand=()
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null) || d=
        [ -n "$d" ] && cand+=("$d")
    fi
    cand+=(/usr/lib/postgresql/15/bin)
    for d in /usr/lib/postgresql/*/bin; do
        [ -d "$d" ] && cand+=("$d")
    done
    for d in "${cand[@]}"; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    stack__log "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install 'postgresql' (stack_install_deps)"
    return 1
}

stack__runuser_bin() {
    if command -v runuser >/dev/null 2>&1; then
        command -v runuser
    elif [ -x /usr/sbin/runuser ]; then
        printf '%s\n' /usr/sbin/runuser
    elif [ -x /sbin/runuser ]; then
        printf '%s\n' /sbin/runuser
    else
        stack__log "runuser (util-linux) not found"
        return 1
    fi
}

# stack__pg_as USER CMD... -- run CMD as USER (directly if we already are
# USER).  Through runuser it runs from / so an unreadable cwd such as /root
# does not matter, and without TMPDIR, which may point at a root-only dir.
stack__pg_as() {
    local user=$1 ru
    shift
    if [ "$user" = "$(id -un)" ]; then
        "$@"
        return
    fi
    ru=$(stack__runuser_bin) || return 1
    (cd / && exec "$ru" -u "$user" -- env -u TMPDIR "$@")
}

stack__ensure_sysuser() {
    local user
    user=$(stack__pg_sysuser)
    getent passwd "$user" >/dev/null 2>&1 && return 0
    local nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    if ! useradd --system --no-create-home --home-dir /nonexistent \
        --shell "$nologin" "$user" >/dev/null 2>&1; then
        # lost a race with a concurrent caller?
        getent passwd "$user" >/dev/null 2>&1 && return 0
        stack__log "cannot create system user $user (useradd failed)"
        return 1
    fi
    stack__log "created system user $user for PostgreSQL"
}

# stack__pg_hashdir ABS_DATADIR -- relocation dir for that DATADIR path.
stack__pg_hashdir() {
    local h
    h=$(printf '%s' "$1" | sha256sum) || return 1
    printf '%s/%s\n' "$(stack__pg_relocbase)" "${h:0:16}"
}

# stack__pg_realdir ABS_DATADIR -- the directory that really holds (or would
# hold) the cluster: the symlink target if DATADIR is a symlink, DATADIR
# itself if it exists, else (root only) an orphaned relocation dir for that
# path if one exists, else DATADIR.
stack__pg_realdir() {
    local abs=$1 hd
    if [ -L "$abs" ]; then
        readlink -m -- "$abs"
    elif [ -e "$abs" ]; then
        printf '%s\n' "$abs"
    else
        if stack__is_root; then
            hd=$(stack__pg_hashdir "$abs") || return 1
            if [ -f "$hd/data/PG_VERSION" ]; then
                printf '%s\n' "$hd/data"
                return 0
            fi
        fi
        printf '%s\n' "$abs"
    fi
}

# stack__pg_owner REALDIR -- user that must run pg_ctl for this cluster.
stack__pg_owner() {
    local real=$1 owner
    if [ -e "$real/PG_VERSION" ]; then
        owner=$(stat -c %U -- "$real" 2>/dev/null) || owner=
        if [ -n "$owner" ] && [ "$owner" != "UNKNOWN" ]; then
            printf '%s\n' "$owner"
            return 0
        fi
    fi
    if stack__is_root; then
        stack__pg_sysuser
    else
        id -un
    fi
}

# stack__pg_running REALDIR -- true if postmaster.pid names a live process.
stack__pg_running() {
    local pid=
    [ -r "$1/postmaster.pid" ] || return 1
    IFS= read -r pid <"$1/postmaster.pid" 2>/dev/null || true
    stack__pid_alive "$pid"
}

stack__pg_running_port() {
    local port
    port=$(sed -n '4p' "$1/postmaster.pid" 2>/dev/null) || port=
    printf '%s\n' "$port"
}

# stack__pg_gc -- (root) delete relocated clusters whose DATADIR symlink is
# gone (the caller removed e.g. its mktemp dir) and that are not running.
# The "origin" file is written only after the symlink exists, so a cluster
# that is being set up concurrently is never collected.
stack__pg_gc() {
    local base hd origin target
    base=$(stack__pg_relocbase)
    [ -d "$base" ] || return 0
    for hd in "$base"/*/; do
        hd=${hd%/}
        [ -f "$hd/origin" ] || continue
        IFS= read -r origin <"$hd/origin" 2>/dev/null || continue
        target=
        [ -L "$origin" ] && target=$(readlink -m -- "$origin" 2>/dev/null)
        [ "$target" = "$hd/data" ] && continue
        stack__pg_running "$hd/data" && continue
        rm -rf -- "$hd" 2>/dev/null &&
            stack__log "removed orphaned cluster $hd (was for $origin)"
    done
    return 0
}

# stack__pg_prepare ABS_DATADIR -- make sure a directory for the cluster
# exists and is usable by the user that will run postgres; print its real
# path.
#
# Root pitfall: initdb/postgres must not run as root, so as root they run as
# the system user kqe-pg.  The caller's DATADIR, however, often lives inside
# a directory kqe-pg cannot traverse (a mode-700 `mktemp -d` dir in /tmp,
# /root/...).  Rather than loosening permissions on the caller's directories,
# the cluster is then kept in /var/tmp/kqe-pg/<first 16 hex of sha256 of the
# absolute DATADIR path>/data (owned by kqe-pg, 0700) and DATADIR is made a
# symlink to it.  Every later call follows the symlink (and, should the
# symlink have been deleted, stop/destroy find the cluster again through the
# same hash).  <hashdir>/origin records DATADIR so that clusters whose
# DATADIR disappeared (e.g. `rm -rf "$tmpdir"` without stack_pg_destroy) are
# garbage-collected by the next stack_pg_start as root once not running.
stack__pg_prepare() {
    local abs=$1 user parent hd base
    parent=$(dirname -- "$abs")
    if ! stack__is_root; then
        if [ -L "$abs" ]; then
            readlink -m -- "$abs"
            return 0
        fi
        mkdir -p -- "$abs" || {
            stack__log "cannot create $abs"
            return 1
        }
        [ -e "$abs/PG_VERSION" ] || chmod 700 -- "$abs" || return 1
        printf '%s\n' "$abs"
        return 0
    fi

    stack__ensure_sysuser || return 1
    user=$(stack__pg_sysuser)

    hd=$(stack__pg_hashdir "$abs") || return 1
    # Existing symlink (relocated earlier, or set up by the caller).
    if [ -L "$abs" ]; then
        if [ -e "$abs" ]; then
            readlink -m -- "$abs"
            return 0
        fi
        if [ "$(readlink -m -- "$abs")" != "$hd/data" ]; then
            stack__log "$abs is a dangling symlink to $(readlink -- "$abs")"
            return 1
        fi
        # our relocated cluster was deleted (e.g. /var/tmp cleaned): recreate
        stack__log "relocated cluster $hd/data is gone; creating a new one"
        rm -f -- "$abs" || return 1
    fi
    # Existing cluster in place.
    if [ -e "$abs/PG_VERSION" ]; then
        printf '%s\n' "$abs"
        return 0
    fi
    if [ -e "$abs" ] && [ ! -d "$abs" ]; then
        stack__log "$abs exists and is not a directory"
        return 1
    fi
    if [ -d "$abs" ] && [ -n "$(ls -A -- "$abs" 2>/dev/null)" ]; then
        stack__log "$abs is not empty and holds no PostgreSQL cluster (no PG_VERSION)"
        return 1
    fi

    if stack__pg_as "$user" test -x "$parent" 2>/dev/null; then
        # kqe-pg can reach it: use DATADIR directly.
        mkdir -p -- "$abs" || return 1
        chown "$user:" -- "$abs" || return 1
        chmod 700 -- "$abs" || return 1
        printf '%s\n' "$abs"
        return 0
    fi

    # Relocate.
    base=$(stack__pg_relocbase)
    if [ -e "$hd" ]; then
        # Leftover from an earlier DATADIR with the same path that has since
        # been deleted: that data is gone from the caller's point of view.
        if stack__pg_running "$hd/data"; then
            stack__log "stopping orphaned cluster $hd/data"
            stack__pg_ctl_stop "$hd/data" || return 1
        fi
        rm -rf -- "$hd" || return 1
    fi
    if ! mkdir -p -- "$base" || ! chmod 711 -- "$base"; then
        stack__log "cannot create $base"
        return 1
    fi
    mkdir -p -- "$hd/data" || return 1
    chown -R "$user:" -- "$hd" || return 1
    chmod 700 -- "$hd/data" || return 1
    if [ -d "$abs" ]; then rmdir -- "$abs" || return 1; fi
    ln -s -- "$hd/data" "$abs" || {
        stack__log "cannot create symlink $abs -> $hd/data"
        return 1
    }
    printf '%s\n' "$abs" >"$hd/origin" || return 1
    stack__log "$parent is not accessible to $user; cluster kept in $hd/data, $abs is a symlink to it"
    printf '%s\n' "$hd/data"
}

# stack__pg_ctl_stop REALDIR
stack__pg_ctl_stop() {
    local real=$1 bindir user
    bindir=$(stack_pg_bindir) || return 1
    user=$(stack__pg_owner "$real")
    if ! stack__pg_as "$user" "$bindir/pg_ctl" -D "$real" -m fast -w -t 60 \
        stop >/dev/null 2>&1; then
        # It may have exited on its own meanwhile.
        stack__pg_running "$real" || return 0
        stack__log "pg_ctl stop failed for $real"
        stack__tail_log "$real/postgres.log" 15
        return 1
    fi
}

# stack_pg_start DATADIR PORT [CONF_LINE...]
# Create (initdb) the cluster if DATADIR has no PG_VERSION, (re)write the
# managed config block -- listen on 127.0.0.1:PORT, unix socket in the
# cluster dir, max_connections=100, then CONF_LINEs -- and start it.
# The managed block at the end of postgresql.conf is regenerated on every
# start, so the port and extra lines always reflect the latest call.
# Idempotent: if the cluster is already running, nothing is done.
# Prints nothing on stdout; URL: stack_pg_url PORT.  Server log:
# DATADIR/postgres.log.
stack_pg_start() {
    if [ "$#" -lt 2 ]; then
        stack__log "usage: stack_pg_start DATADIR PORT [postgresql.conf line...]"
        return 2
    fi
    local datadir=$1 port=$2
    shift 2
    local abs real user bindir conf log locale_opt locales running_port
    local sockdir content line logoff
    case $port in '' | *[!0-9]*)
        stack__log "invalid port: $port"
        return 2
        ;;
    esac
    bindir=$(stack_pg_bindir) || return 1
    mkdir -p -- "$(dirname -- "$datadir")" || {
        stack__log "cannot create parent of $datadir"
        return 1
    }
    abs=$(stack__abspath "$datadir") || {
        stack__log "cannot resolve $datadir"
        return 1
    }
    if stack__is_root; then stack__pg_gc; fi

    real=$(stack__pg_prepare "$abs") || return 1
    user=$(stack__pg_owner "$real")
    if [ "$user" = "root" ]; then
        stack__log "$real is owned by root; PostgreSQL cannot run as root"
        return 1
    fi
    log="$real/postgres.log"

    if stack__pg_running "$real"; then
        running_port=$(stack__pg_running_port "$real")
        if [ "$running_port" != "$port" ]; then
            stack__log "warning: postgres for $datadir already running on port $running_port, not $port"
        fi
        stack__log "postgres already running ($datadir, port ${running_port:-?})"
        return 0
    fi
    # A postmaster.pid naming a dead (or zombie) process would make
    # postgres refuse to start.
    [ -e "$real/postmaster.pid" ] && rm -f -- "$real/postmaster.pid"

    if [ ! -e "$real/PG_VERSION" ]; then
        locales=$(locale -a 2>/dev/null) || locales=
        locale_opt=C
        if grep -qixE 'c\.utf-?8' <<<"$locales"; then locale_opt=C.UTF-8; fi
        stack__log "initdb $datadir (user $user, locale $locale_opt)"
        if ! stack__pg_as "$user" "$bindir/initdb" -D "$real" -A trust \
            -U postgres -E UTF8 --locale="$locale_opt" --no-instructions \
            >"${TMPDIR:-/tmp}/stack-initdb.$$.log" 2>&1; then
            stack__log "initdb failed for $real"
            stack__tail_log "${TMPDIR:-/tmp}/stack-initdb.$$.log" 25
            rm -f -- "${TMPDIR:-/tmp}/stack-initdb.$$.log"
            return 1
        fi
        rm -f -- "${TMPDIR:-/tmp}/stack-initdb.$$.log"
    fi

    conf="$real/postgresql.conf"
    if [ ! -f "$conf" ]; then
        stack__log "$conf missing"
        return 1
    fi
    # unix socket path must fit in sockaddr_un.sun_path (108 bytes); we only
    # use TCP, so disable the socket if the cluster path is too long.
    sockdir=$real
    if [ $((${#real} + ${#port} + 12)) -ge 107 ]; then sockdir=; fi
    content=$(sed '/^# BEGIN kqe-stack/,$d' "$conf") || return 1
    {
        printf '%s\n' "$content"
        printf '%s\n' "# BEGIN kqe-stack: managed by scripts/lib/stack.sh, regenerated by every stack_pg_start"
        printf "listen_addresses = '127.0.0.1'\n"
        printf 'port = %s\n' "$port"
        printf "unix_socket_directories = '%s'\n" "${sockdir//\'/\'\'}"
        printf 'max_connections = 100\n'
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$conf" || {
        # writing through ">" keeps the file's owner and mode
        stack__log "cannot write $conf"
        return 1
    }

    logoff=$(stack__fsize "$log")
    if ! stack__pg_as "$user" "$bindir/pg_ctl" -D "$real" -l "$log" -w -t 60 \
        start >/dev/null 2>&1; then
        stack__log "postgres failed to start ($datadir, port $port)"
        stack__tail_log "$log" 25 "$logoff"
        return 1
    fi
    stack__log "postgres started on 127.0.0.1:$port ($datadir)"
}

# stack_pg_stop DATADIR -- fast shutdown if running; 0 if not running or
# DATADIR does not exist.
stack_pg_stop() {
    if [ "$#" -lt 1 ] || [ -z "$1" ]; then
        stack__log "usage: stack_pg_stop DATADIR"
        return 2
    fi
    local abs real
    abs=$(stack__abspath "$1") || return 0
    real=$(stack__pg_realdir "$abs") || return 0
    [ -e "$real/PG_VERSION" ] || return 0
    stack__pg_running "$real" || return 0
    stack__pg_ctl_stop "$real" || return 1
    stack__log "postgres stopped ($1)"
}

# stack_pg_destroy DATADIR -- stop the cluster and delete its data: DATADIR
# itself and, for a relocated cluster (root), the /var/tmp/kqe-pg entry.
stack_pg_destroy() {
    if [ "$#" -lt 1 ] || [ -z "$1" ]; then
        stack__log "usage: stack_pg_destroy DATADIR"
        return 2
    fi
    local abs real hd
    abs=$(stack__abspath "$1") || return 1
    real=$(stack__pg_realdir "$abs") || return 1
    [ -e "$abs" ] || [ -L "$abs" ] || [ -e "$real" ] || return 0
    if [ -e "$real/PG_VERSION" ] && stack__pg_running "$real"; then
        stack__pg_ctl_stop "$real" || return 1
    fi
    hd=$(stack__pg_hashdir "$abs") || return 1
    if [ "$real" = "$hd/data" ]; then
        rm -rf -- "$hd" || return 1
    elif [ -L "$abs" ]; then
        # caller-provided symlink: delete the target's contents only
        [ -e "$real/PG_VERSION" ] && { rm -rf -- "$real" || return 1; }
    fi
    rm -rf -- "$abs" || return 1
    stack__log "postgres cluster removed ($1)"
}

# stack_pg_url PORT [DBNAME]
stack_pg_url() {
    if [ "$#" -lt 1 ] || [ -z "$1" ]; then
        stack__log "usage: stack_pg_url PORT [DBNAME]"
        return 2
    fi
    printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$1" "${2:-postgres}"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

stack__redis_pid() {
    local pid=
    [ -r "$1/redis.pid" ] || return 1
    IFS= read -r pid <"$1/redis.pid" 2>/dev/null || true
    stack__pid_alive "$pid" || return 1
    printf '%s\n' "$pid"
}

stack__redis_ping() {
    local out
    # time limit: something that is not redis may accept on that port and
    # never answer
    out=$(stack__timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) || return 1
    [ "$out" = "PONG" ]
}

# stack_redis_start DIR PORT [persist]
# Start a daemonized redis-server on 127.0.0.1:PORT with pidfile, log and
# working dir in DIR.  Without "persist" nothing is saved; with it an
# append-only file is kept in DIR.  Idempotent (0 if DIR's server is alive).
# Waits (max ~10 s) for PONG.
stack_redis_start() {
    if [ "$#" -lt 2 ]; then
        stack__log "usage: stack_redis_start DIR PORT [persist]"
        return 2
    fi
    local dir=$1 port=$2 mode=${3:-} abs pid oldport i out logoff dpid
    local -a persist_opts=(--save "" --appendonly no)
    case $port in '' | *[!0-9]*)
        stack__log "invalid port: $port"
        return 2
        ;;
    esac
    case $mode in
    '') ;;
    persist) persist_opts=(--appendonly yes --save "") ;;
    *)
        stack__log "stack_redis_start: unknown mode '$mode' (expected: persist)"
        return 2
        ;;
    esac
    command -v redis-server >/dev/null 2>&1 || {
        stack__log "redis-server not found; install 'redis-server' (stack_install_deps)"
        return 1
    }
    mkdir -p -- "$dir" || {
        stack__log "cannot create $dir"
        return 1
    }
    abs=$(cd -P -- "$dir" && pwd -P) || return 1

    if pid=$(stack__redis_pid "$abs"); then
        oldport=
        [ -r "$abs/redis.port" ] && oldport=$(cat -- "$abs/redis.port" 2>/dev/null)
        if [ -n "$oldport" ] && [ "$oldport" != "$port" ]; then
            stack__log "warning: redis for $dir already running on port $oldport, not $port"
        fi
        stack__log "redis already running ($dir, pid $pid, port ${oldport:-?})"
        return 0
    fi
    rm -f -- "$abs/redis.pid"
    printf '%s\n' "$port" >"$abs/redis.port" || return 1
    logoff=$(stack__fsize "$abs/redis.log")

    # (the daemon points its stdio at /dev/null, so $(...) returns at once)
    if ! out=$(redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
        --pidfile "$abs/redis.pid" --logfile "$abs/redis.log" --dir "$abs" \
        "${persist_opts[@]}" 2>&1); then
        stack__log "redis-server failed to start ($dir, port $port): $out"
        stack__tail_log "$abs/redis.log" 20 "$logoff"
        return 1
    fi
    dpid=
    for i in $(seq 1 100); do
        if stack__redis_ping "$port"; then
            stack__log "redis started on 127.0.0.1:$port ($dir${mode:+, $mode})"
            return 0
        fi
        # Give up early if the daemon already died (e.g. port in use).  Its
        # pidfile is written only once it listens, so take the pid from the
        # "Redis version=..., pid=N, just started" log line.
        if [ -z "$dpid" ]; then
            out=$(tail -c "+$((logoff + 1))" -- "$abs/redis.log" 2>/dev/null) || out=
            if [[ $out =~ [\ ,]pid=([0-9]+) ]]; then dpid=${BASH_REMATCH[1]}; fi
        fi
        if [ -n "$dpid" ] && ! stack__pid_alive "$dpid"; then
            break
        fi
        sleep 0.1
    done
    stack__log "redis did not answer PING on port $port"
    stack__tail_log "$abs/redis.log" 20 "$logoff"
    return 1
}

# stack_redis_stop DIR -- shut down DIR's redis (nosave); 0 if not running.
stack_redis_stop() {
    if [ "$#" -lt 1 ] || [ -z "$1" ]; then
        stack__log "usage: stack_redis_stop DIR"
        return 2
    fi
    local dir=$1 pid port='' i
    [ -d "$dir" ] || return 0
    if ! pid=$(stack__redis_pid "$dir"); then
        rm -f -- "$dir/redis.pid"
        return 0
    fi
    [ -r "$dir/redis.port" ] && port=$(cat -- "$dir/redis.port" 2>/dev/null)
    if [ -n "$port" ]; then
        stack__timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for i in $(seq 1 100); do
        stack__pid_alive "$pid" || break
        # shutdown via redis-cli did not take (wrong port?): signal it
        [ "$i" -eq 30 ] && { kill -TERM "$pid" 2>/dev/null || true; }
        sleep 0.1
    done
    if stack__pid_alive "$pid"; then
        stack__log "redis (pid $pid) did not exit, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
        if stack__pid_alive "$pid"; then
            stack__log "cannot stop redis pid $pid"
            return 1
        fi
    fi
    rm -f -- "$dir/redis.pid"
    stack__log "redis stopped ($dir)"
}
