"""bench/run, run small: the benchmark that says whether the performance targets are met
must itself keep working (docs/performance.md). A smoke run on a few thousand cases, one
second per measurement, with the suite's release build; it checks that every figure was
measured and judged, never how fast anything was (no timed assertions in tests)."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import REPO

FIGURES = {
    "seed_synthetic_s", "rollup_rebuild_s", "healthz_rps", "get_by_id_rps", "get_by_id_p99_ms",
    "list_page_rps", "list_page_p99_ms", "post_rps", "post_vs_pgbench", "post_p99_ms",
    "csv_100k_s", "csv_rows", "api_peak_rss_mb", "aggregator_peak_rss_mb",
    "freshness_load_rps", "freshness_rollup_p50_s", "freshness_rollup_p99_s",
    "freshness_report_p50_s", "freshness_report_p99_s",
}
# Measured beside a ceiling from the same run.
WITH_CEILING = {"healthz_rps", "get_by_id_rps", "post_rps"}


class BenchRunTest(unittest.TestCase):
    def test_quick_run_measures_and_judges_every_figure(self):
        build = os.path.join(REPO, "build", "release-check")
        if not os.path.exists(os.path.join(build, "bin", "kqe-api")):
            self.skipTest("no release build (./scripts/test makes build/release-check)")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "latest.json")
            env = dict(os.environ, KQE_BENCH_CASES="2000", KQE_BENCH_SECONDS="1",
                       KQE_BENCH_RESULTS=out, KQE_BENCH_BUILD=build)
            r = subprocess.run([os.path.join(REPO, "bench", "run"), "--quick"], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            with open(out, encoding="utf-8") as f:
                figures = {row["name"]: row for row in json.load(f)}
        self.assertEqual(set(figures), FIGURES)
        for name, row in figures.items():
            with self.subTest(figure=name):
                self.assertEqual(set(row), {"name", "value", "unit", "ceiling", "ratio",
                                            "target", "met"})
                self.assertIsInstance(row["value"], float)
                self.assertGreater(row["value"], 0)
                if name in WITH_CEILING:
                    self.assertGreater(row["ceiling"], 0)
                    self.assertAlmostEqual(row["ratio"], row["value"] / row["ceiling"], 2)
                if row["target"] is not None:
                    self.assertIsInstance(row["met"], bool)
        # A few thousand cases: the CSV export ends when the list does.
        self.assertGreater(figures["csv_rows"]["value"], 2000)


if __name__ == "__main__":
    unittest.main()
