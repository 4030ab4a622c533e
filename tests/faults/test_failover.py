"""Failover under load: a PostgreSQL standby promoted, a Redis master replaced by Sentinel
(docs/operations.md "Failover"; docs/reliability.md "Fault drills"). They bring their own
servers, so ./scripts/test runs them (ctest faults.failover, alone), and --faults does not
again.

Production runs PostgreSQL with a synchronous standby behind one read-write address (the
CloudNativePG Cluster of deploy/k8s/overlays/production, or libpq's list of hosts with
target_session_attrs=read-write), and Redis as a master and a replica watched by Sentinels.
Each drill builds that here from Debian's servers, puts kqe-api and kqe-aggregator under the
load of drill.Load, takes the primary or the master away, lets the standby or the replica take
over, and checks the three promises of drill.py: nothing acknowledged is lost, the service
answers again within RECOVERY_S of the takeover, and meanwhile only 2xx or 503 within the
deadline. kqe is never restarted or told: it must find the new primary and master itself.
"""

import os
import shutil
import signal
import subprocess
import time
import unittest

from drill import Drill, stack_sh  # first: it puts tests/integration on the path

import harness  # noqa: E402
from harness import free_port, wait_until  # noqa: E402

# How long the operator (CloudNativePG, or a person) takes to promote the standby after the
# primary died: requests meanwhile are answered 503.
DETECT_S = 1.0
# Bounds, not promises: the servers start, the Sentinels agree, a failover completes.
SERVERS_UP_S = 60.0
FAILOVER_BOUND_S = 30.0


class PostgresPair:
    """A primary and a synchronous standby (streaming replication) in a directory of their own;
    url lists both hosts with target_session_attrs=read-write, as a deployment without a
    proxy in front does. A commit is acknowledged only once the standby has it
    (synchronous_standby_names), so a promotion loses nothing acknowledged."""

    def __init__(self):
        self.dir = stack_sh("stack_tmpdir", "failover").stdout.strip()
        self.primary, self.standby = os.path.join(self.dir, "a"), os.path.join(self.dir, "b")
        self.ports = (free_port(), free_port())
        self.settings = ["fsync=off", "full_page_writes=off", "max_connections=200"]
        self.url = (f"postgresql://postgres@127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"
                    "/postgres?target_session_attrs=read-write")

    def start(self):
        stack_sh("stack_pg_start", self.primary, str(self.ports[0]), *self.settings,
                 "synchronous_standby_names=standby")
        stack_sh("stack__pg", "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports[0]),
                 "-U", "postgres", "-D", self.standby, "-R", "-X", "stream", "-c", "fast")
        # The standby's name in the primary's synchronous_standby_names is its cluster_name.
        stack_sh("stack_pg_start", self.standby, str(self.ports[1]), *self.settings,
                 "cluster_name=standby")
        primary = f"postgresql://postgres@127.0.0.1:{self.ports[0]}/postgres"
        wait_until(lambda: harness.psql(primary, "SELECT sync_state FROM pg_stat_replication")
                   == [["sync"]], timeout=SERVERS_UP_S, what="the standby streaming synchronously")

    def crash_primary(self):
        stack_sh("stack__pg", "pg_ctl", "stop", "-D", self.primary, "-m", "immediate", "-w")

    def promote_standby(self):
        stack_sh("stack__pg", "pg_ctl", "promote", "-D", self.standby, "-w", "-t", "60")

    def destroy(self):
        stack_sh("stack_pg_destroy", self.primary, check=False)
        stack_sh("stack_pg_destroy", self.standby, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelRedis:
    """Two redis-servers (a master and its replica, append-only files as in production) and
    three Sentinels watching them (quorum 2), in the stack's directory; harness.Redis's methods,
    so the stack takes it as its Redis. The services get only the Sentinels: KQE_REDIS_URL
    points where nothing listens, and only its /db counts."""

    NAME = "kqe"

    def __init__(self, workdir, persist=True):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.ports = [free_port(), free_port()]  # a, b: a is the first master
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs = {}

    def env(self):
        return {"KQE_REDIS_URL": "redis://127.0.0.1:9/0",
                "KQE_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "KQE_REDIS_MASTER_NAME": self.NAME}

    def start_server(self, i, replica_of=None):
        d = os.path.join(self.dir, "ab"[i])
        os.makedirs(d, exist_ok=True)
        argv = ["redis-server", "--port", str(self.ports[i]), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--dir", d]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.ports[replica_of])]
        self.procs["ab"[i]] = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli_at(self.ports[i], "PING") == "PONG", what="redis-server")

    def start(self):
        self.start_server(0)
        self.start_server(1, replica_of=0)
        for n, port in enumerate(self.sentinel_ports):
            conf = os.path.join(self.dir, f"sentinel-{n}.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {self.NAME} 127.0.0.1 {self.ports[0]} 2\n"
                        f"sentinel down-after-milliseconds {self.NAME} 1000\n"
                        f"sentinel failover-timeout {self.NAME} 10000\n")
            self.procs[f"s{n}"] = subprocess.Popen(["redis-server", conf, "--sentinel"],
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL)
        # A failover needs the Sentinels to know the replica and each other (they meet through
        # the master every 2 s).
        for port in self.sentinel_ports:
            wait_until(lambda: self.sentinel(port, "replicas") and
                       len(self.sentinel(port, "sentinels")) >= 2,
                       timeout=SERVERS_UP_S, what="the Sentinels know the replica and each other")

    def sentinel(self, port, what):
        """SENTINEL REPLICAS|SENTINELS kqe at one Sentinel: a list of their ports."""
        out = self.cli_at(port, "SENTINEL", what, self.NAME) or ""
        lines = out.split("\n")
        return [lines[i + 1] for i, key in enumerate(lines[:-1]) if key == "port"]

    def master_port(self):
        out = self.cli_at(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name",
                          self.NAME)
        return int(out.split("\n")[1]) if out and "\n" in out else None

    def kill_master(self):
        """SIGKILL of the master (a crash: no append-only flush, no goodbye to the replica);
        returns which one it was."""
        name = "ab"[self.ports.index(self.master_port())]
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)
        return name

    def restart(self, name):
        """The crashed server back: the Sentinels make it a replica of the new master."""
        i = "ab".index(name)
        self.start_server(i, replica_of=None)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = {}

    def group_info(self, stream="kqe:jobs", group="kqe-aggregators"):
        return harness.Redis.group_info(self, stream, group)

    def cli(self, *args):
        return self.cli_at(self.master_port(), *args)

    @staticmethod
    def cli_at(port, *args):
        r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                           text=True)
        return r.stdout.strip() if r.returncode == 0 else None


class PostgresFailover(Drill):

    def postgres(self):
        pair = PostgresPair()
        self.addCleanup(pair.destroy)
        pair.start()
        return pair

    def felt_503(self, outage):
        self.assertSome(outage, lambda c: c.status == 503, "was answered 503")

    def test_standby_promoted(self):
        """The primary crashes (pg_ctl stop -m immediate) under load; DETECT_S later the
        standby is promoted. Writes in flight at the crash are in doubt; every write
        acknowledged before it was on the standby too (synchronous replication) and must be
        there, and kqe-api and kqe-aggregator must find the new primary by themselves (libpq
        passes over the host that is down and the one still read-only)."""
        def inject():
            self.in_doubt_since = self.t_fault
            self.pg.crash_primary()
            self.in_doubt_until = time.monotonic()
        self.run_drill(inject=inject, undo=self.pg.promote_standby, hold=DETECT_S,
                       felt=self.felt_503)
        self.assertEqual(self.stack.sql_value("SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(self.stack.sql_value("SELECT current_setting('port')"),
                         str(self.pg.ports[1]))


class TestCluster:
    """The run's own cluster (KQE_TEST_PG_URL; under --faults the drills'): the Redis drill
    does nothing to it."""
    url = harness.PG_URL


class RedisFailover(Drill):
    redis_cls = SentinelRedis

    def postgres(self):
        if not TestCluster.url:
            raise unittest.SkipTest("KQE_TEST_PG_URL is not set: run through ./scripts/test")
        return TestCluster()

    def test_master_replaced_by_sentinel(self):
        """The Redis master is killed (SIGKILL) under load. The Sentinels notice (1 s), agree
        and promote the replica; kqe asks them for the master at its next reconnection. The
        killed server comes back and is made a replica of the new master. Jobs whose stream
        entries the old master took with it are published again from PostgreSQL
        (consumer.c lost_entries): every report asked for is made."""
        r = self.stack.redis
        killed = []
        old = r.master_port()

        def moved():
            wait_until(lambda: r.master_port() not in (None, old), timeout=FAILOVER_BOUND_S,
                       interval=0.1, what="the Sentinels promoting the replica")
            self.figures["failover_s"] = round(time.monotonic() - self.t_fault, 2)
        self.run_drill(inject=lambda: killed.append(r.kill_master()),
                       undo=lambda: killed and r.restart(killed[0]), hold=moved)
        new = r.master_port()
        self.assertNotEqual(new, old)
        wait_until(lambda: (r.cli_at(old, "ROLE") or "").split("\n")[0] == "slave",
                   timeout=FAILOVER_BOUND_S, what="the old master a replica of the new one")
        for which in ("api", "aggregator"):
            self.assertIn(new, [line.get("port") for line in self.stack.log_lines(which)
                                if line.get("msg") == "redis master moved"],
                          f"kqe-{which} did not follow the failover")
        # The job stream lives on the new master: the aggregator consumes there.
        self.assertTrue(r.group_info(), "no consumer group on the new master")


if __name__ == "__main__":
    unittest.main()
