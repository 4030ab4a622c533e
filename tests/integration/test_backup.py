"""The backup and restore drill (docs/operations.md, "Backup and restore"): PostgreSQL dumped
with pg_dump and restored into an empty database, the rollups rebuilt from the records, the
releases back as they were, and the same reports come out with the same content hashes —
from a new, empty Redis. And Redis holds nothing that cannot be rebuilt: flushed with jobs
in it, every job still gets done."""

import json
import os
import subprocess
import unittest

from harness import Stack, StackTestCase

# What a report's content is: everything but when and by which job it was built.
ROLLUPS = ("SELECT md5(string_agg(concat_ws('|', office_id, year, cycle, dimension, category, n),"
           " ',' ORDER BY office_id, year, cycle, dimension, category)) FROM rollups")
RELEASES = ("SELECT count(*), md5(string_agg(concat_ws('|', release_id, office_id, year, cycle,"
            " dimension, category), ',' ORDER BY 1)) FROM release_rollups")
REPORTS = ({"scope": "state", "period": "2024"},
           {"scope": "region", "region": "LVR", "period": "2023-2028"})


class BackupRestoreTest(StackTestCase):
    seed_demo = True
    start_aggregator = True

    def report(self, stack, body):
        r = stack.post("/v1/reports", body)
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        stack.wait_job(job, timeout=90)
        h, watermark, tables = stack.sql(
            "SELECT r.content_hash, r.watermark::text, r.tables::text FROM reports r"
            f" JOIN jobs j ON j.result_id = r.id WHERE j.id = '{job}'")[0]
        return h, json.loads(watermark), json.loads(tables)

    def test_1_dump_restore_rebuild_and_the_same_reports(self):
        a = self.stack
        hashes = [self.report(a, body) for body in REPORTS]
        rollups, releases = a.sql_value(ROLLUPS), a.sql(RELEASES)[0]
        dump = os.path.join(a.workdir, "kqe.dump")
        r = subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", a.db_url],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

        b = Stack("restored")
        try:
            b.setup(migrate=False)  # an empty database and a new, empty Redis
            r = subprocess.run(["pg_restore", "--exit-on-error", f"--dbname={b.db_url}", dump],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            # Nothing to migrate: the dump holds the schema and its migration records.
            migrations = b.sql_value("SELECT count(*) FROM schema_migrations")
            b.kqe("migrate", check=True)
            self.assertEqual(b.sql_value("SELECT count(*) FROM schema_migrations"), migrations)
            # The derived rows, rebuilt from the records, are what they were.
            b.sql("TRUNCATE rollups")
            b.kqe("rollups", "rebuild", check=True)
            self.assertEqual(b.sql_value(ROLLUPS), rollups)
            # The releases are records of what was published: restored as they were, never
            # made again. With nothing changed, the aggregator makes no new one either.
            self.assertEqual(b.sql(RELEASES)[0], releases)
            release_ids = a.sql("SELECT id FROM releases ORDER BY id")
            b.default_token = b.token("admin")[0]
            b.start_api()
            b.start_aggregator()
            for body, (h, watermark, tables) in zip(REPORTS, hashes):
                h2, watermark2, tables2 = self.report(b, body)
                self.assertEqual(watermark2, watermark, body)
                for t, t2 in zip(tables, tables2):
                    self.assertEqual(t2, t, (body, t["id"]))
                self.assertEqual(h2, h, body)
            self.assertEqual(b.sql("SELECT id FROM releases ORDER BY id"), release_ids)
        finally:
            b.teardown()

    def test_2_redis_flushed_with_jobs_in_it_every_job_gets_done(self):
        s = self.stack
        s.stop_aggregator()
        jobs = []
        for body in REPORTS:
            r = s.post("/v1/reports", body)
            self.assertEqual(r.status, 202, r)
            jobs.append(r.json()["id"])
        # Published to the stream, not consumed; then Redis loses everything.
        self.assertEqual(s.sql_value("SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                     f" AND job_id IN ('{jobs[0]}', '{jobs[1]}')"), "0")
        s.redis.cli("FLUSHALL")
        self.assertEqual(s.redis.cli("DBSIZE").strip(), "0")
        s.start_aggregator()
        for job in jobs:
            s.wait_job(job, timeout=90)
        self.assertIn("job stream empty; jobs published again",
                      [line.get("msg") for line in s.log_lines("aggregator")])


if __name__ == "__main__":
    unittest.main()
