"""PostgreSQL stopped, frozen and crashed under load (docs/reliability.md "Fault drills").

Each drill runs the load of drill.Load against kqe-api and kqe-aggregator, does one thing to
the cluster both use, undoes it and checks the three promises (drill.py). kqe-api and
kqe-aggregator are never restarted: they must find the database again by themselves.
"""

import time
import unittest

from drill import DOWN_S, HANG_S, Drill


class PostgresDrills(Drill):

    def felt_503(self, outage):
        """Requests were refused while the database was away (not served from nowhere)."""
        self.assertSome(outage, lambda c: c.status == 503, "was answered 503")

    def test_stopped(self):
        """pg_ctl stop -m fast (every session ended, no new one accepted) for DOWN_S, then
        started again. Every write in flight is rolled back by the server: no write is in
        doubt, so every non-2xx write must have left nothing."""
        self.run_drill(inject=lambda: self.pg.stop("fast"), undo=self.pg.start, hold=DOWN_S,
                       felt=self.felt_503)

    def test_hung(self):
        """The postmaster and every backend SIGSTOPped for HANG_S (a server that stops
        answering without closing a connection: a stalled disk, a VM paused, a network
        partition), then SIGCONT. A request waiting for it must answer 503 at its deadline,
        and the other requests must not queue behind it. A write whose COMMIT was on its way
        when the server froze may land when it wakes although it was answered 503: only those
        in flight at the freeze are in doubt."""
        def inject():
            self.in_doubt_since = self.t_fault
            self.pg.freeze()
            self.in_doubt_until = time.monotonic()
        self.run_drill(inject=inject, undo=self.pg.thaw, hold=HANG_S, felt=self.felt_503)

    def test_restarted(self):
        """A crash and a restart under load: pg_ctl stop -m immediate (every server process
        killed at once, as in a crash), then started at once (crash recovery). Writes in
        flight at the crash are in doubt; everything acknowledged must survive it."""
        def inject():
            self.in_doubt_since = self.t_fault
            self.pg.stop("immediate")
            self.in_doubt_until = time.monotonic()
        self.run_drill(inject=inject, undo=self.pg.start, hold=0, felt=self.felt_503)


if __name__ == "__main__":
    unittest.main()
