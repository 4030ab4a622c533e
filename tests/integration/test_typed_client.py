"""The typed client: tests/typed-client/flows.ts, compiled by scripts/test, against a live stack.

scripts/test generates TypeScript types from proto/openapi.yaml (openapi-typescript), checks
flows.ts with `tsc --noEmit` (no casts allowed) and compiles it to
build/asan/typed-client/js/flows.js. Here node runs it against this module's kqe-api: the
office flow and the ministry flow must both go as the contract says (exit 0). Its requests
are node's, so the contract recording does not see them; what they left behind is checked
here instead.
"""

import os
import subprocess
import unittest

from harness import BIN, REPO, StackTestCase

FLOWS = os.path.abspath(os.path.join(BIN, "..", "typed-client", "js", "flows.js"))
NODE_MODULES = os.path.join(REPO, "tools", "node_modules")


class TypedClientTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.office = s.sql_value(
            "SELECT office_id FROM procedures WHERE cycle = '2023-2028' AND NOT out_of_cycle"
            " AND phase <> 'completed' ORDER BY office_id LIMIT 1")
        cls.office_token, cls.office_token_id = s.token("office_staff", office=cls.office)
        cls.ministry_token = s.token("ministry")[0]

    def test_office_and_ministry_flows_need_no_casts_and_pass(self):
        self.assertTrue(os.path.exists(FLOWS),
                        f"{FLOWS} is missing: scripts/test compiles tests/typed-client")
        count = ("SELECT count(*) FROM case_analyses WHERE office_id = '%s'" % self.office)
        before = int(self.stack.sql_value(count))
        env = dict(os.environ,
                   NODE_PATH=NODE_MODULES,
                   KQE_BASE_URL=f"http://127.0.0.1:{self.stack.api_port}",
                   KQE_OFFICE_TOKEN=self.office_token,
                   KQE_MINISTRY_TOKEN=self.ministry_token)
        r = subprocess.run(["node", FLOWS], env=env, capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, f"flows.js failed:\n{r.stdout}\n{r.stderr}")
        self.assertIn("typed client: office flow ok", r.stdout)
        self.assertIn("typed client: ministry flow ok", r.stdout)
        # The dry run kept nothing and the replayed create stored nothing twice: one more
        # case analysis, created and then updated once by the office's token.
        self.assertEqual(int(self.stack.sql_value(count)), before + 1)
        actions = [a for (a,) in self.stack.sql(
            "SELECT action FROM audit_log WHERE actor = 'token:%s' AND resource = 'case_analysis'"
            " AND action IN ('case_analysis.create', 'case_analysis.update') ORDER BY id"
            % self.office_token_id)]
        self.assertEqual(actions, ["case_analysis.create", "case_analysis.update"])
        # The ministry's two jobs were queued and built: one report, then a batch of three.
        jobs = self.stack.sql("SELECT kind, status FROM jobs ORDER BY created_at")
        self.assertEqual(jobs, [["build_report", "succeeded"], ["ministry_batch", "succeeded"]])


if __name__ == "__main__":
    unittest.main()
