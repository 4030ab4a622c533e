"""The valgrind gate itself (./scripts/test --valgrind, harness.py Process): a process that
leaks or reads memory it never wrote fails when it is stopped, with valgrind's report; one
that does nothing wrong passes; after SIGKILL only the errors reported before count.

It runs tests/valgrind/memcheck_probe, which does one such thing on purpose, under the same
KQE_TEST_WRAPPER as kqe-api and kqe-aggregator. Without the wrapper there is nothing to test.
"""

import os
import signal
import unittest

from harness import BIN, LOG_DIR, WRAPPER, Process, wait_until

PROBE = os.path.join(BIN, "..", "tests", "memcheck_probe")


@unittest.skipUnless(WRAPPER, "needs KQE_TEST_WRAPPER: ./scripts/test --valgrind")
class MemcheckGateTest(unittest.TestCase):
    def start(self, mode):
        logs = os.path.join(LOG_DIR, "memcheck")
        os.makedirs(logs, exist_ok=True)
        log_path = os.path.join(logs, f"{self.id().rsplit('.', 1)[-1]}.log")  # one per test
        probe = Process(f"probe {mode}", [PROBE, mode], dict(os.environ), log_path)

        def ready():
            with open(log_path) as f:
                return "ready" in f.read()
        wait_until(ready, what=f"probe {mode} ready")
        return probe

    def test_a_clean_process_passes(self):
        self.assertEqual(self.start("clean").stop(), 0)

    def test_a_definite_leak_fails_with_the_report(self):
        probe = self.start("leak")
        with self.assertRaisesRegex(AssertionError, r"probe leak: 1 error\(s\), definite and "
                                    r"indirect leaks included \(exit status 99\)[\s\S]*64 bytes in 1 blocks are "
                                    r"definitely lost[\s\S]*lose_a_block"):
            probe.stop()

    def test_an_uninitialised_read_fails_with_the_report(self):
        probe = self.start("uninit")
        with self.assertRaisesRegex(AssertionError, r"Conditional jump or move depends on "
                                    r"uninitialised value[\s\S]*read_unwritten"):
            probe.stop()

    def test_an_error_reported_before_sigkill_still_fails(self):
        probe = self.start("uninit")
        with self.assertRaisesRegex(AssertionError, r"probe uninit: 1 error\(s\) before it "
                                    r"was killed[\s\S]*read_unwritten"):
            probe.stop(signal.SIGKILL)

    def test_after_sigkill_there_is_no_leak_check(self):
        self.assertEqual(self.start("leak").stop(signal.SIGKILL), -signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
