"""The disk of PostgreSQL's data directory full (docs/reliability.md "Fault drills").

This drill's stack uses a cluster of its own whose data directory is a small tmpfs
(scripts/lib/faults.sh; its WAL is on another file system, as production keeps it). The drill
fills the tmpfs with a file until not one page is left, holds it full, then deletes the file.
While full, PostgreSQL cannot extend a table or an index: writes must be answered 503 with
Retry-After and roll back whole; reads go on. Once there is room again, writes are accepted
without a restart.
"""

import errno
import os
import time
import unittest

from drill import Drill, send, wait_until

# Held full after the first write was refused, so a few more are refused too.
FULL_S = 3.0


class DiskDrill(Drill):
    pg_prefix = "KQE_FAULTS_DISK_PG"

    def setUp(self):
        self.mount = os.environ.get("KQE_FAULTS_DISK_MOUNT")
        if not self.mount:
            raise unittest.SkipTest("KQE_FAULTS_DISK_MOUNT is not set: ./scripts/test --faults")
        self.filler = os.path.join(self.mount, "filler")
        super().setUp()

    def fill(self):
        """Writes self.filler until the file system has no block left.

        PostgreSQL keeps working meanwhile and may free a few pages after the first ENOSPC
        (a CI run saw 54 pages come back: autovacuum truncating a table, a temporary file
        removed), so the filler goes on writing until a check finds the file system full."""
        deadline = time.monotonic() + 30
        with open(self.filler, "wb", buffering=0) as f:
            while True:
                for size in (1 << 20, 4096):
                    chunk = b"\0" * size
                    while True:
                        try:
                            f.write(chunk)
                        except OSError as e:
                            if e.errno != errno.ENOSPC:
                                raise
                            break
                st = os.statvfs(self.mount)
                if st.f_bavail * st.f_frsize < 4096 or time.monotonic() > deadline:
                    break
        self.figures["filler_mb"] = round(os.path.getsize(self.filler) / 2**20, 1)
        self.assertLess(st.f_bavail * st.f_frsize, 4096, "the file system is not full")

    def free(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def hold(self):
        wait_until(lambda: any(c.write and c.t0 >= self.t_fault and c.t1 and not c.ok
                               for c in list(self.load.calls)),
                   timeout=60, interval=0.05, what="a write refused for want of space")
        time.sleep(FULL_S)

    def probe_extra(self, read):
        # The service is back when a write is accepted again (it is recorded like any other
        # write of the load, so the checks account for it).
        call = self.load.create_call(0)
        self.load.calls.append(call)
        return send(self.stack.api_port, call).status == 201

    def test_full(self):
        def felt(outage):
            self.assertSome(outage, lambda c: c.write and c.status == 503, "was refused 503")
        self.run_drill(inject=self.fill, undo=self.free, hold=self.hold, felt=felt)


if __name__ == "__main__":
    unittest.main()
