"""Redis stopped and frozen under load (docs/reliability.md "Fault drills").

Redis holds the job stream and the rate-limit counters, nothing durable: a write is
committed with its outbox event in PostgreSQL, so a Redis outage must cost no write and no
report — the aggregator relays the events the API could not publish once Redis is back.
Redis runs with an append-only file, as in production (docs/operations.md), so a stop and
start keeps the stream.
"""

import os
import signal
import unittest

from drill import DOWN_S, HANG_S, Drill


class RedisDrills(Drill):

    def probe_extra(self, read):
        # The API counts requests in Redis again: an authenticated answer carries the limit.
        return read.headers.get("ratelimit-limit") is not None

    def felt_without_redis(self, outage):
        """Requests were served without Redis (no rate-limit headers) while it was away."""
        self.assertSome(outage, lambda c: c.ok and c.token and "ratelimit-limit" not in
                        c.headers, "was served without Redis")

    def test_stopped(self):
        """redis-server stopped (SIGTERM, the append-only file flushed) for DOWN_S, then
        started again on its port: writes and reads go on, report requests are accepted,
        their events are relayed afterwards."""
        self.run_drill(inject=self.stack.redis.stop, undo=self.stack.redis.start, hold=DOWN_S,
                       felt=self.felt_without_redis)

    def test_hung(self):
        """redis-server SIGSTOPped for HANG_S (accepts connections, answers nothing), then
        SIGCONT: each request may spend the Redis timeout, none its whole deadline."""
        pid = self.stack.redis.proc.pid
        self.run_drill(inject=lambda: os.kill(pid, signal.SIGSTOP),
                       undo=lambda: os.kill(pid, signal.SIGCONT), hold=HANG_S,
                       felt=self.felt_without_redis)


if __name__ == "__main__":
    unittest.main()
