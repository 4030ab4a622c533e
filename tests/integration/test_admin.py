"""The kqe admin command and configuration handling of all three binaries."""

import os
import re
import subprocess
import unittest

from harness import BIN, REPO, StackTestCase

SAMPLE = os.path.join(REPO, "tests/data/nrw-jugendaemter-sample.csv")

API_VARS = ["KQE_HTTP_ADDR", "KQE_HTTP_PORT", "KQE_DATABASE_URL", "KQE_REDIS_URL",
            "KQE_LOG_LEVEL", "KQE_API_THREADS", "KQE_MAX_BODY_BYTES", "KQE_MAX_HEADER_BYTES",
            "KQE_HTTP_TIMEOUT_MS", "KQE_STATEMENT_TIMEOUT_MS", "KQE_SHUTDOWN_TIMEOUT_MS",
            "KQE_JSON_MAX_DEPTH", "KQE_REDIS_TIMEOUT_MS", "KQE_JWKS_FILE", "KQE_JWKS_URL",
            "KQE_JWKS_CA_FILE", "KQE_JWT_PROGRAMME_CLAIM", "KQE_PUBLIC_URL",
            "KQE_SIGNUP_RATE_LIMIT_PER_MINUTE", "KQE_REDIS_SENTINELS", "KQE_REDIS_MASTER_NAME"]
AGGREGATOR_VARS = ["KQE_DATABASE_URL", "KQE_REDIS_URL", "KQE_LOG_LEVEL", "KQE_JOBS_BATCH",
                   "KQE_JOBS_BLOCK_MS", "KQE_JOBS_VISIBILITY_MS", "KQE_OUTBOX_GRACE_MS",
                   "KQE_STATEMENT_TIMEOUT_MS", "KQE_REDIS_TIMEOUT_MS", "KQE_RETENTION_YEARS",
                   "KQE_RETENTION_INTERVAL_S", "KQE_JOBS_TRIM_INTERVAL_S", "KQE_JOBS_DEAD_MAX",
                   "KQE_DATA_KEYS", "KQE_SMTP_URL", "KQE_MAIL_FROM", "KQE_SMTP_TIMEOUT_MS",
                   "KQE_MAIL_RETRY_MS", "KQE_MAIL_ATTEMPTS", "KQE_AUDIT_SIGNING_KEY",
                   "KQE_AUDIT_SEAL_INTERVAL_MS", "KQE_AUDIT_HEAD_INTERVAL_S"]
ADMIN_VARS = ["KQE_DATABASE_ADMIN_URL", "KQE_REDIS_URL", "KQE_LOG_LEVEL", "KQE_PSEUDONYM_KEY",
              "KQE_DATA_KEYS", "KQE_RETENTION_YEARS", "KQE_AUDIT_SIGNING_KEY",
              "KQE_AUDIT_PUBLIC_KEY"]


def run(binary, *args, env=None):
    return subprocess.run([os.path.join(BIN, binary), *args], capture_output=True, text=True,
                          env=env, timeout=30)


class ConfigTest(unittest.TestCase):
    def test_help_lists_every_variable_with_its_default(self):
        for binary, names in (("kqe-api", API_VARS), ("kqe-aggregator", AGGREGATOR_VARS),
                              ("kqe", ADMIN_VARS)):
            r = run(binary, "--help")
            self.assertEqual(r.returncode, 0)
            for name in names:
                with self.subTest(binary=binary, name=name):
                    self.assertRegex(r.stdout, rf"\n  {name} +default ")

    def test_version(self):
        for binary in ("kqe-api", "kqe-aggregator", "kqe"):
            r = run(binary, "--version")
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, rf"^{binary} \d+\.\d+\.\d+\n$")

    def test_invalid_values_exit_2_naming_the_variable(self):
        cases = [("kqe-api", "KQE_HTTP_PORT", "70000"), ("kqe-api", "KQE_API_THREADS", "0"),
                 ("kqe-api", "KQE_API_THREADS", "two"), ("kqe-api", "KQE_LOG_LEVEL", "loud"),
                 ("kqe-api", "KQE_MAX_BODY_BYTES", "12"), ("kqe-api", "KQE_HTTP_ADDR", "nowhere"),
                 ("kqe-api", "KQE_DATABASE_URL", ""),
                 ("kqe-aggregator", "KQE_JOBS_BATCH", "0"),
                 ("kqe-aggregator", "KQE_REDIS_URL", "http://x"),
                 ("kqe", "KQE_LOG_LEVEL", "x"),
                 ("kqe-aggregator", "KQE_RETENTION_YEARS", "101"),
                 ("kqe-aggregator", "KQE_RETENTION_YEARS", "10y"),
                 ("kqe-aggregator", "KQE_RETENTION_INTERVAL_S", "0"),
                 ("kqe-aggregator", "KQE_JOBS_TRIM_INTERVAL_S", "-1"),
                 ("kqe-aggregator", "KQE_JOBS_TRIM_INTERVAL_S", "86401"),
                 ("kqe-aggregator", "KQE_JOBS_DEAD_MAX", "99"),
                 ("kqe-aggregator", "KQE_JOBS_DEAD_MAX", "ten"),
                 ("kqe", "KQE_RETENTION_YEARS", "-1")]
        for binary, name, value in cases:
            with self.subTest(binary=binary, name=name, value=value):
                env = dict(os.environ, **{name: value})
                args = ["migrate"] if binary == "kqe" else []
                r = run(binary, *args, env=env)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(name, r.stderr)

    def test_unknown_arguments_exit_2(self):
        self.assertEqual(run("kqe-api", "--bogus").returncode, 2)
        self.assertEqual(run("kqe", "bogus").returncode, 2)
        self.assertEqual(run("kqe").returncode, 2)


class AdminTest(StackTestCase):
    start_api = False
    default_role = None

    def offices(self):
        return self.stack.sql("SELECT id, name, kind, region, population_under_18, version"
                              " FROM offices ORDER BY id")

    def test_migrate_is_idempotent_and_concurrent_runs_do_not_race(self):
        env = self.stack.env()
        procs = [subprocess.Popen([os.path.join(BIN, "kqe"), "migrate"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        for p in procs:
            p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0)
        versions = self.stack.sql("SELECT version FROM schema_migrations ORDER BY version")
        self.assertEqual([v[0] for v in versions], [str(i + 1) for i in range(len(versions))])

    def test_migrate_from_empty_database_in_parallel(self):
        # Two instances starting together against a fresh database.
        self.stack.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        env = self.stack.env()
        procs = [subprocess.Popen([os.path.join(BIN, "kqe"), "migrate"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        self.assertEqual([p.returncode for p in procs], [0, 0], outs)
        applied = sorted(int(o[0].split()[1]) for o in outs)
        self.assertEqual(applied[0], 0)  # the second found nothing left to do
        self.assertGreater(applied[1], 0)

    def test_a_comment_only_edit_of_a_migration_is_accepted(self):
        # 0001 as it was before its comment stopped citing a file outside the repository.
        current = self.stack.sql_value("SELECT checksum FROM schema_migrations WHERE version = 1")
        self.stack.sql("UPDATE schema_migrations SET checksum = 'fd5d25aaf502d134760c7b5c6ef3cd0f"
                       "0b9e7999ad7664e39087b9f73777a0fd' WHERE version = 1")
        try:
            r = self.stack.kqe("migrate")
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            self.stack.sql(f"UPDATE schema_migrations SET checksum = '{current}' WHERE version = 1")

    def test_changed_applied_migration_is_refused(self):
        self.stack.sql("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        try:
            r = self.stack.kqe("migrate")
            self.assertEqual(r.returncode, 1)
            self.assertIn("applied migration was changed", r.stderr)
        finally:
            self.stack.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            self.stack.kqe("migrate", check=True)

    def test_import_sample_csv_twice(self):
        r = self.stack.kqe("import", "offices", SAMPLE, check=True)
        self.assertIn("25 imported (25 created, 0 updated, 0 unchanged)", r.stdout)
        first = self.offices()
        r = self.stack.kqe("import", "offices", SAMPLE, check=True)
        self.assertIn("25 imported (0 created, 0 updated, 25 unchanged)", r.stdout)
        self.assertEqual(self.offices(), first)
        essen = self.stack.sql("SELECT name, kind, region FROM offices WHERE id = 'stadt-essen'")
        self.assertEqual(essen, [["Stadt Essen", "kreisfreie_stadt", "LVR"]])
        mg = self.stack.sql_value("SELECT kind FROM offices WHERE id = 'stadt-moenchengladbach'")
        self.assertEqual(mg, "kreisfreie_stadt")

    def test_bad_csv_imports_nothing_and_names_every_line(self):
        before = self.offices()
        path = os.path.join(self.stack.workdir, "bad.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,type,landesjugendamt_region\n"
                    "Stadt Gut,Kreis,LVR\n"
                    "Stadt Falsch,Dorf,LVR\n"
                    ",Kreis,LWL\n"
                    "Stadt Auch Gut,Kreis,LWL\n"
                    "Stadt Region,Kreis,NRW\n")
        r = self.stack.kqe("import", "offices", path)
        self.assertEqual(r.returncode, 1)
        for line in (":3:", ":4:", ":6:"):
            self.assertIn(line, r.stderr)
        self.assertNotIn(":2:", r.stderr)
        self.assertEqual(self.offices(), before)

    def test_seed_demo_is_deterministic_and_idempotent(self):
        r = self.stack.kqe("seed", "--demo", check=True)
        self.assertIn("186 offices (95 LVR, 91 LWL)", r.stdout)
        first = self.offices()
        self.stack.kqe("seed", "--demo", check=True)
        self.assertEqual(self.offices(), first)
        counts = self.stack.sql("SELECT region, count(*), count(*) FILTER (WHERE synthetic)"
                                " FROM offices WHERE id LIKE 'demo-%' GROUP BY 1 ORDER BY 1")
        self.assertEqual(counts, [["LVR", "95", "95"], ["LWL", "91", "91"]])
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM offices WHERE id LIKE 'demo-%'"
            " AND (name NOT LIKE '%(synthetisch)%' OR population_under_18 IS NULL)"), "0")
        # § 7 advice requests in every status, some answered in the thread; a second run
        # adds none.
        advice = self.stack.sql("SELECT status, count(*) FROM advice_requests GROUP BY 1"
                                " ORDER BY 1")
        self.assertEqual([row[0] for row in advice],
                         ["accepted", "answered", "closed", "declined", "in_progress",
                          "submitted", "withdrawn"])
        self.stack.kqe("seed", "--demo", check=True)
        self.assertEqual(self.stack.sql("SELECT status, count(*) FROM advice_requests"
                                        " GROUP BY 1 ORDER BY 1"), advice)
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM advice_requests a WHERE a.status IN ('answered', 'closed')"
            " AND NOT EXISTS (SELECT FROM advice_messages m WHERE m.request_id = a.id)"), "0")
        # § 10: twenty providers, every demo office served by one; concepts of both kinds of
        # owner, some overdue for review; a second run adds none.
        foster = ("SELECT (SELECT count(*) FROM providers),"
                  " (SELECT count(DISTINCT office_id) FROM provider_offices),"
                  " (SELECT count(*) FROM protection_concepts WHERE office_id IS NOT NULL),"
                  " (SELECT count(*) FROM protection_concepts WHERE provider_id IS NOT NULL),"
                  " (SELECT count(*) FROM protection_concepts"
                  "  WHERE next_review_on < current_date)")
        counts = self.stack.sql(foster)[0]
        self.assertEqual(counts[:2], ["20", "186"])
        self.assertTrue(all(int(n) > 0 for n in counts[2:]), counts)
        self.stack.kqe("seed", "--demo", check=True)
        self.assertEqual(self.stack.sql(foster)[0], counts)


    def test_seed_synthetic_adds_cases_once_by_population(self):
        per_office = "SELECT office_id, count(*) FROM case_analyses GROUP BY 1"
        before = {office: int(n) for office, n in self.stack.sql(per_office)}
        r = self.stack.kqe("seed", "--synthetic", "--offices", "5", "--cases", "3000",
                           check=True)
        self.assertIn("synthetic: 3000 case analyses over 5 offices", r.stdout)
        after = {office: int(n) for office, n in self.stack.sql(per_office)}
        added = {office: n - before.get(office, 0) for office, n in after.items()
                 if n != before.get(office, 0)}
        # The first five demo offices, each in proportion to its population under 18.
        pops = dict(self.stack.sql("SELECT id, coalesce(population_under_18, 0) FROM offices"
                                   " WHERE id LIKE 'demo-%' ORDER BY id LIMIT 5"))
        self.assertEqual(sorted(added), sorted(pops))
        self.assertEqual(sum(added.values()), 3000)
        total_pop = sum(int(pop) + 1 for pop in pops.values())
        for office, pop in pops.items():
            self.assertLessEqual(abs(added[office] - 3000 * (int(pop) + 1) / total_pop), 1.0,
                                 office)
        # With the demo's distributions: every result code occurs, and no case is older
        # than 18 in its closing month.
        results = [row[0] for row in self.stack.sql(
            "SELECT DISTINCT result FROM case_analyses ORDER BY 1")]
        self.assertEqual(len(results), 4, results)
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM case_analyses"
            " WHERE child_birth_month > closed_month"
            " OR closed_month - child_birth_month > 18 * 366"), "0")
        # A second run adds nothing and says so; bad arguments are refused.
        r = self.stack.kqe("seed", "--synthetic", "--offices", "5", "--cases", "3000",
                           check=True)
        self.assertIn("already seeded", r.stdout)
        self.assertEqual({office: int(n) for office, n in self.stack.sql(per_office)}, after)
        for args in (["--offices", "0"], ["--offices", "187"], ["--cases", "x"], ["--cases"],
                     ["--rows", "5"]):
            with self.subTest(args=args):
                self.assertEqual(self.stack.kqe("seed", "--synthetic", *args).returncode, 2)


class DocsTest(unittest.TestCase):
    def test_security_doc_prints_the_permission_table_of_the_code(self):
        table = run("kqe-api", "--permissions").stdout
        with open(os.path.join(REPO, "docs/security.md"), encoding="utf-8") as f:
            self.assertIn(table, f.read())

    def test_every_control_of_the_threat_model_names_tests_that_exist(self):
        with open(os.path.join(REPO, "docs/security.md"), encoding="utf-8") as f:
            doc = f.read()
        model = doc[doc.index("## Threat model"):doc.index("### Known gaps")]
        rows = [line for line in model.splitlines()
                if line.startswith("| ") and not line.startswith("| tries")]
        self.assertGreater(len(rows), 20)
        for row in rows:
            proof = row.rstrip(" |").rsplit(" | ", 1)[1]
            names = re.findall(r"`([^`]+)`", proof)
            with self.subTest(row=row[:60]):
                self.assertTrue(names, "a control without a test")
                current = None  # "test_x.py::a, `b`": b is in test_x.py too
                for name in names:
                    if "::" in name:
                        current, name = name.split("::")
                    elif name.endswith((".c", ".py")):
                        self.assertTrue(os.path.exists(os.path.join(REPO, name)), name)
                        continue
                    elif name.startswith("fuzz_"):
                        self.assertTrue(os.path.exists(
                            os.path.join(REPO, "tests/fuzz", name + ".c")), name)
                        continue
                    self.assertIsNotNone(current, name)
                    path = current if "/" in current else os.path.join("tests/integration",
                                                                       current)
                    with open(os.path.join(REPO, path), encoding="utf-8") as t:
                        self.assertTrue(re.search(rf"(def|class) {re.escape(name)}\b", t.read()),
                                        f"no test {current}::{name}")

    def test_readme_lists_every_route_of_the_route_table_and_no_other(self):
        table = run("kqe-api", "--permissions").stdout
        routes = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        api = readme[readme.index("## API"):readme.index("## Configuration")]
        listed = [line.split("`")[1] for line in api.splitlines() if line.startswith("| `")]
        self.assertEqual(sorted(listed), sorted(routes))
        self.assertEqual(len(listed), len(set(listed)))


if __name__ == "__main__":
    unittest.main()
