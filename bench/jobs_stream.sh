#!/usr/bin/env bash
# bench/jobs_stream.sh — what the job stream kqe:jobs costs in Redis, for choosing how to trim
# it (docs/design.md, "Trimming kqe:jobs"):
#   - memory per entry, for both kinds of entry the outbox adds (MEMORY USAGE / entries);
#   - XTRIM MINID exact (=) against approximate (~): Redis time to remove N entries
#     (SLOWLOG, microseconds, median of KQE_BENCH_ROUNDS) and the entries left over;
#   - reading the state: XINFO STREAM … FULL COUNT 1 in Redis time, with few and with many
#     consumers in the group, and `kqe jobs status` end to end when Redis does not know the
#     lag and the undelivered entries are counted with XRANGE.
# Starts its own throw-away Redis (no PostgreSQL). Not a test: it never fails on speed.
#
# Environment: KQE_BENCH_ROUNDS (default 3).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/stack.sh
source scripts/lib/stack.sh
stack_install_deps

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKQE_SANITIZE=OFF >/dev/null
cmake --build build -j"$(nproc)" --target kqe >/dev/null

work=$(stack_tmpdir bench)
cleanup() {
	stack_redis_stop "$work/redis" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
port=$(stack_free_port)
stack_redis_start "$work/redis" "$port" 2>/dev/null

echo "jobs stream bench: $(redis-server --version | cut -d' ' -f3), $(nproc) cores"
python3 - "$port" "${KQE_BENCH_ROUNDS:-3}" build/bin/kqe <<'PY'
import os, socket, statistics, subprocess, sys, time

port, rounds, kqe = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Redis:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")

    def read(self):
        line = self.f.readline()
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RuntimeError(body.decode())
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        n = int(body)
        return None if n < 0 else [self.read() for _ in range(n)]

    def cmd(self, *args):
        self.sock.sendall(resp(*args))
        return self.read()

    def pipe(self, commands):
        self.sock.sendall(b"".join(resp(*c) for c in commands))
        return [self.read() for _ in commands]


r = Redis()
r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
r.cmd("CONFIG", "SET", "slowlog-max-len", "1024")

# The fields outbox.c's xadd() writes, for each kind of event.
KINDS = {
    "office_changed": lambda i: ("outbox_id", i, "kind", "office_changed", "job_id", "",
                                 "office_id", "demo-lvr-%03d" % (i % 95 + 1)),
    "build_report": lambda i: ("outbox_id", i, "kind", "build_report", "job_id",
                               "0c6ad2f4-5a2b-4f57-9a4e-%012d" % i, "office_id", ""),
}


def fill(n, kind="build_report", key="kqe:jobs"):
    ids = []
    for start in range(0, n, 10000):
        ids += r.pipe([("XADD", key, "*") + KINDS[kind](i)
                       for i in range(start, min(n, start + 10000))])
    return ids


def redis_us(*args):
    """Runs one command; the microseconds Redis spent on it (SLOWLOG) and its reply."""
    r.cmd("SLOWLOG", "RESET")
    reply = r.cmd(*args)
    entry = next(e for e in r.cmd("SLOWLOG", "GET", "10") if e[3][0].upper() == args[0])
    return entry[2], reply


print("\nmemory per entry (MEMORY USAGE kqe:jobs SAMPLES 0, 100,000 entries)")
for kind in KINDS:
    r.cmd("DEL", "kqe:jobs")
    fill(100000, kind)
    print(f"  {kind:15} {r.cmd('MEMORY', 'USAGE', 'kqe:jobs', 'SAMPLES', '0') / 100000:6.1f}"
          " bytes")

print("\nXTRIM kqe:jobs MINID <id of the 10th newest entry>: Redis time, median of"
      f" {rounds}")
print(f"  {'entries':>9} {'exact (=) us':>13} {'left':>5} {'approx (~) us':>14} {'left':>5}")
for n in (6000, 100000, 1000000):
    row = {}
    for mode in ("=", "~"):
        times, left = [], []
        for _ in range(rounds):
            r.cmd("DEL", "kqe:jobs")
            ids = fill(n)
            us, _ = redis_us("XTRIM", "kqe:jobs", "MINID", mode, ids[-10],
                             *(["LIMIT", "0"] if mode == "~" else []))
            times.append(us)
            left.append(r.cmd("XLEN", "kqe:jobs"))
        row[mode] = (statistics.median(times), max(left))
    print(f"  {n:>9,} {row['='][0]:>13,.0f} {row['='][1]:>5} {row['~'][0]:>14,.0f}"
          f" {row['~'][1]:>5}")

print("\nXINFO STREAM kqe:jobs FULL COUNT 1 (1,000,000 entries): Redis time, median of"
      f" {rounds}")
r.cmd("DEL", "kqe:jobs")
ids = fill(1000000)
r.cmd("XGROUP", "CREATE", "kqe:jobs", "kqe-aggregators", "0")
for consumers in (4, 1000):
    for c in range(consumers):
        r.cmd("XREADGROUP", "GROUP", "kqe-aggregators", f"host-{c}", "COUNT", "16",
              "STREAMS", "kqe:jobs", ">")
    times, size = [], 0
    for _ in range(rounds):
        us, reply = redis_us("XINFO", "STREAM", "kqe:jobs", "FULL", "COUNT", "1")
        times.append(us)
    print(f"  {consumers:>5} consumers, {consumers * 16:>6,} pending: "
          f"{statistics.median(times):>7,.0f} us")
    r.cmd("XGROUP", "DESTROY", "kqe:jobs", "kqe-aggregators")
    r.cmd("XGROUP", "CREATE", "kqe:jobs", "kqe-aggregators", "0")

print("\nkqe jobs status when Redis does not know the lag (an XDEL of an undelivered entry):"
      f"\nwall time of the command, median of {rounds}")
env = dict(os.environ, KQE_REDIS_URL=f"redis://127.0.0.1:{port}/0", KQE_LOG_LEVEL="error")
for n in (1000, 100000, 1000000):
    r.cmd("DEL", "kqe:jobs")
    ids = fill(n)
    r.cmd("XGROUP", "CREATE", "kqe:jobs", "kqe-aggregators", "0")
    r.cmd("XREADGROUP", "GROUP", "kqe-aggregators", "c", "COUNT", "1", "STREAMS", "kqe:jobs",
          ">")
    r.cmd("XDEL", "kqe:jobs", ids[n // 2])
    times = []
    for _ in range(rounds):
        t = time.monotonic()
        out = subprocess.run([kqe, "jobs", "status"], env=env, capture_output=True, text=True,
                             check=True).stdout
        times.append(time.monotonic() - t)
    assert "lag: counted" in out and f"undelivered: {n - 2}" in out, out
    print(f"  {n:>9,} entries: {statistics.median(times) * 1000:>8,.1f} ms")
r.cmd("DEL", "kqe:jobs")
PY
