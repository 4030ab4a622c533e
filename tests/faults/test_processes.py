"""kqe-api and kqe-aggregator SIGKILLed mid-work (docs/reliability.md "Fault drills").

A killed process is restarted as its supervisor would (systemd, Kubernetes): kqe-api on the
port its clients know, kqe-aggregator as a new consumer. Nothing it had in hand may be lost
or done twice.
"""

import signal
import unittest

from drill import AGGREGATOR_ENV, API_ENV, Drill, wait_until

# A supervisor's restart delay.
RESTART_S = 1.0


class ProcessDrills(Drill):

    def test_api_killed(self):
        """SIGKILL to kqe-api while writes are in flight; started again after RESTART_S.
        Its open transactions die with its connections (PostgreSQL rolls them back), so a
        write that never got an answer landed whole or not at all; the connections refused
        while it is down are no answers. Recovery counts from the restart."""
        port = self.stack.api_port

        def restart():
            self.stack.start_api(wait_ready=False, port=port, **{**API_ENV, **self.api_env})

        def felt(outage):
            self.assertSome(outage, lambda c: c.error in ("reset", "refused"),
                            "lost its connection")
        self.run_drill(
            when=lambda: wait_until(lambda: self.load.writes_in_flight() >= 2, interval=0.001,
                                    what="two writes in flight"),
            inject=lambda: self.stack.stop_api(signal.SIGKILL), undo=restart, hold=RESTART_S,
            felt=felt, restart=True)

    def answer_allowed(self, call):
        # While kqe-api is dead its clients get no answer: a reset or a refused connection.
        if (self._testMethodName == "test_api_killed" and call.error in ("reset", "refused")
                and call.t1 >= self.t_fault and call.t0 <= (self.t_recovered or self.t_return)):
            return None
        return super().answer_allowed(call)

    def test_aggregator_killed(self):
        """SIGKILL to kqe-aggregator while it builds a report; a new one started after
        RESTART_S. The job it had in hand is claimed again (XAUTOCLAIM after the visibility
        timeout) and built once; the API is not affected at all."""
        running = []

        def when():
            running.extend(wait_until(lambda: self.stack.sql(
                "SELECT id, attempts FROM jobs WHERE status = 'running'"), interval=0.01,
                timeout=60, what="a report job running"))

        def restart():
            self.stack.start_aggregator(**{**AGGREGATOR_ENV, **self.aggregator_env})

        self.run_drill(when=when, inject=lambda: self.stack.stop_aggregator(signal.SIGKILL),
                       undo=restart, hold=RESTART_S,
                       felt=lambda outage: self.assertEqual(
                           [c.describe() for c in outage if not c.ok], [],
                           "kqe-api answered otherwise than 2xx without its aggregator"))
        # After the drill's checks (the aggregator caught up): the job cut short was built
        # once, on a later attempt than the one that died with the process.
        (job, attempts), = running[:1]
        self.assertEqual(self.stack.sql(
            f"SELECT status, attempts > {attempts}, (SELECT count(*) FROM reports"
            f" WHERE job_id = '{job}') FROM jobs WHERE id = '{job}'"), [["succeeded", "t", "1"]])


if __name__ == "__main__":
    unittest.main()
