"""Retention of case-level data (docs/retention.md).

On the demo state, with case analyses and topics moved into old years by SQL: old records of
completed procedures are deleted with their encrypted text and pseudonyms; newer ones, records of open procedures, procedures, surveys and
report snapshots stay exactly as they were; every rollup, and every report built afterwards,
has the same figures as before; one audit entry per office, the chain intact. Off by default;
a dry run and a second run change nothing; an office in use is skipped; the aggregator runs
it on its schedule, two at once and without Redis; the API's database role cannot run it.

The tests run in order (test_1 … test_9) on one stack and build on each other.
"""

import json
import os
import pwd
import re
import subprocess
import unittest

from harness import BIN, Process, StackTestCase, wait_until
from test_case_analyses import valid

HORIZON_YEAR = 2011
HORIZON = f"{HORIZON_YEAR}-01-01"
API_FINDINGS = "Befund 7c41e9 zu einem alten Fall, nur verschluesselt gespeichert"

# The rule of docs/retention.md, written down again here rather than calling the SQL under
# test: dated before the horizon, and the procedure completed or its cycle over before it.
GUARD = f"(p.phase = 'completed' OR split_part(p.cycle, '-', 2)::int < {HORIZON_YEAR})"
DUE_CASES = ("SELECT c.office_id, c.id FROM case_analyses c"
             " JOIN procedures p ON p.id = c.procedure_id"
             f" WHERE c.closed_month < DATE '{HORIZON}' AND {GUARD}")
DUE_TOPICS = ("SELECT t.office_id, t.id FROM topics t JOIN procedures p ON p.id = t.procedure_id"
              f" WHERE (t.updated_at AT TIME ZONE 'Europe/Berlin')::date < DATE '{HORIZON}'"
              f" AND {GUARD}")
# Old, but their procedure is still open: kept.
HELD_CASES = ("SELECT c.office_id, c.id FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id"
              f" WHERE c.closed_month < DATE '{HORIZON}' AND NOT {GUARD}")

REPORTS = [{"scope": "state", "period": p} for p in ("2008", "2009", "2010", "2023-2028")]
REPORTS.append({"scope": "region", "region": "LVR", "period": "2009"})

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
OFFICE_LINE = re.compile(r"^office (\S+): case_analyses=(\d+) topics=(\d+)$")


def pick(where, order="c.id"):
    """SQL picking one case analysis of a completed procedure."""
    return ("(SELECT c.id FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id"
            f" WHERE p.phase = 'completed' AND {where} ORDER BY {order} LIMIT 1)")


def pick_topic(where, order="t.id"):
    return ("(SELECT t.id FROM topics t JOIN procedures p ON p.id = t.procedure_id"
            f" WHERE p.phase = 'completed' AND {where} ORDER BY {order} LIMIT 1)")


class RetentionTest(StackTestCase):
    seed_demo = True
    start_aggregator = True  # without KQE_RETENTION_YEARS: retention is off

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        year = int(s.sql_value("SELECT extract(year FROM now() AT TIME ZONE 'Europe/Berlin')"))
        cls.years = year - HORIZON_YEAR  # so the horizon is 1 January 2011 in any year
        cls.env = s.env(KQE_RETENTION_YEARS=cls.years)
        cls.user = "cli:" + pwd.getpwuid(os.geteuid()).pw_name

        # A case analysis written through the API (audited, findings encrypted), read by
        # admin (audited too); its office's procedure is completed below, so it becomes due.
        cls.api_proc, cls.api_office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase = 'evaluation'"
            " AND cycle = '2023-2028' ORDER BY office_id LIMIT 1")[0]
        staff = s.token("office_staff", office=cls.api_office)[0]
        r = s.post("/v1/case-analyses",
                   valid(cls.api_proc, reference="RET-API-1", closed_month="2019-02",
                         findings=API_FINDINGS, child={"sex": "weiblich",
                                                       "birth_month": "2012-03"}),
                   token=staff)
        assert r.status == 201, r
        cls.api_case = r.json()["id"]
        assert s.get(f"/v1/case-analyses/{cls.api_case}").status == 200  # admin: audited

        # Offices with an open procedure whose old records stay (held), two of which later
        # complete it: one for the skipped-office test, one for the aggregator's schedule.
        cls.held_office, cls.skip_office, cls.agg_office = [r[0] for r in s.sql(
            "SELECT office_id FROM procedures WHERE phase IN ('case_analysis', 'report')"
            " AND cycle = '2023-2028' AND office_id <> '" + cls.api_office + "'"
            " AND EXISTS (SELECT 1 FROM case_analyses c WHERE c.procedure_id = procedures.id"
            "   AND c.closed_month < DATE '2021-01-01')"
            " ORDER BY office_id LIMIT 3")]
        s.sql(f"""
            -- 2018-2020 → 2008-2010, the birth month with it (ages stay).
            UPDATE case_analyses SET closed_month = closed_month - interval '10 years',
                child_birth_month = child_birth_month - interval '10 years'
            WHERE closed_month < DATE '2021-01-01';
            UPDATE procedures SET phase = 'completed' WHERE id = '{cls.api_proc}';
            -- The horizon exactly: December 2010 goes, January 2011 stays.
            UPDATE case_analyses SET closed_month = DATE '2010-12-01',
                child_birth_month = DATE '2005-12-01'
            WHERE id = {pick("c.closed_month >= DATE '2021-01-01'")};
            UPDATE case_analyses SET closed_month = DATE '2011-01-01',
                child_birth_month = DATE '2006-01-01'
            WHERE id = {pick("c.closed_month >= DATE '2021-01-01'", "c.id DESC")};
            -- Half the topics identified in 2010; of those, some changed since (they stay).
            UPDATE topics SET created_at = '2010-03-15 10:00 Europe/Berlin',
                updated_at = '2010-03-15 10:00 Europe/Berlin' WHERE id::text < '8';
            UPDATE topics SET updated_at = '2024-05-02 09:00 Europe/Berlin' WHERE id::text < '3';
            -- Midnight in Berlin, not UTC: 23:30 on New Year's Eve goes, 00:30 stays.
            UPDATE topics SET created_at = '2010-06-01 12:00 Europe/Berlin',
                updated_at = '2010-12-31 23:30 Europe/Berlin'
            WHERE id = {pick_topic("t.id::text >= '8'")};
            UPDATE topics SET created_at = '2010-06-01 12:00 Europe/Berlin',
                updated_at = '2011-01-01 00:30 Europe/Berlin'
            WHERE id = {pick_topic("t.id::text >= '8'", "t.id DESC")};
        """)
        cls.quiet()
        cls.due_cases = cls.ids(DUE_CASES)
        cls.due_topics = cls.ids(DUE_TOPICS)
        cls.held_cases = cls.ids(HELD_CASES)
        cls.cases_before = cls.rows("case_analyses")
        cls.topics_before = cls.rows("topics")
        cls.rollups_before = s.sql("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5")
        # What must leave the database with the rows, and what must not (a control).
        due = ",".join(f"'{i}'" for _, i in cls.due_cases)
        cls.gone_secrets = [r[0] for r in s.sql(
            f"SELECT findings_enc FROM case_analyses WHERE id IN ({due})"
            " AND findings_enc IS NOT NULL"
            f" UNION ALL SELECT case_pseudonym FROM case_analyses WHERE id IN ({due})"
            " UNION ALL SELECT description_enc FROM topics WHERE id IN ("
            + ",".join(f"'{i}'" for _, i in cls.due_topics) + ") AND description_enc IS NOT NULL")]
        cls.kept_secrets = [r[0] for r in s.sql(
            "SELECT findings_enc FROM case_analyses WHERE findings_enc IS NOT NULL"
            f" AND id NOT IN ({due}) ORDER BY id LIMIT 3")]
        cls.reports_before = {json.dumps(p, sort_keys=True): cls.report(p) for p in REPORTS}
        cls.others_before = cls.other_tables()
        cls.audit_before = int(s.sql_value("SELECT max(id) FROM audit_log"))

    # --- helpers ---------------------------------------------------------------------------
    @classmethod
    def quiet(cls):
        """Every write seen by the rollups, every event published."""
        wait_until(lambda: cls.stack.sql_value("SELECT count(*) FROM rollup_dirty") == "0"
                   and cls.stack.sql_value(
                       "SELECT count(*) FROM outbox WHERE published_at IS NULL") == "0",
                   timeout=60, what="rollups caught up")

    @classmethod
    def ids(cls, query):
        return {(office, i) for office, i in cls.stack.sql(query)}

    @classmethod
    def rows(cls, table):
        """id → the whole row as text, to see that a kept row is exactly as it was."""
        return dict(cls.stack.sql(f"SELECT id, md5(x::text) FROM {table} x"))

    @classmethod
    def other_tables(cls):
        return {t: cls.stack.sql_value(f"SELECT md5(coalesce(string_agg(x::text, '|'"
                                       f" ORDER BY x::text), '')) FROM {t} x")
                for t in ("procedures", "structure_surveys", "reports", "offices",
                          "idempotency_keys")}

    @classmethod
    def report(cls, params):
        """(id, content_hash, tables) of a new report with these parameters."""
        s = cls.stack
        r = s.post("/v1/reports", params)
        assert r.status == 202, r
        job = r.json()["id"]
        s.wait_job(job, timeout=60)
        rep = s.get(s.get(f"/v1/jobs/{job}").json()["result"]).json()
        return rep["id"], rep["content_hash"], rep["tables"], rep["watermark"]

    def per_office(self, *due_sets):
        counts = {}
        for kind, due in enumerate(due_sets):
            for office, _ in due:
                counts.setdefault(office, [0, 0])[kind] += 1
        return {o: tuple(n) for o, n in counts.items()}

    def parse(self, out):
        offices = {}
        for line in out.splitlines():
            m = OFFICE_LINE.match(line)
            if m:
                offices[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        return offices

    def retention_entries(self, after=None):
        rows = self.stack.sql(
            "SELECT office_id, actor, role, resource, resource_id, request_id, details::text"
            " FROM audit_log WHERE action = 'retention.delete'"
            f" AND id > {after if after is not None else self.audit_before} ORDER BY id")
        return rows

    def assert_audited(self, entries, expected, actor, role):
        """One entry per office that lost records, with its counts and nothing else."""
        self.assertEqual(sorted(e[0] for e in entries), sorted(expected))
        for office, e_actor, e_role, resource, resource_id, request_id, details in entries:
            self.assertEqual((e_actor, e_role, resource, resource_id, request_id),
                             (actor, role, "office", office, ""))
            cases, topics = expected[office]
            self.assertEqual(json.loads(details), {
                "retention_years": self.years, "horizon": HORIZON,
                "deleted": {"case_analyses": cases, "topics": topics}})
            self.assertIsNone(UUID.search(details))  # counts, never ids

    def assert_rollups_unchanged(self):
        self.quiet()
        self.assertEqual(self.stack.sql("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5"),
                         self.rollups_before)

    def kqe(self, *args):
        return self.stack.kqe(*args, env=self.env)

    def dump(self):
        return subprocess.run(["pg_dump", self.stack.db_url], capture_output=True, text=True,
                              check=True).stdout

    # --- tests -------------------------------------------------------------------------------
    def test_1_off_by_default(self):
        # The set-up is what the rule needs: due records of each kind, and old records held.
        self.assertGreater(len(self.due_cases), 100)
        self.assertGreater(len(self.due_topics), 10)
        self.assertGreater(len(self.held_cases), 100)
        due_ids = {i for _, i in self.due_cases}
        self.assertIn(self.api_case, due_ids)
        for month, due in (("2010-12-01", True), ("2011-01-01", False)):
            ids = {r[0] for r in self.stack.sql(
                f"SELECT id FROM case_analyses WHERE closed_month = DATE '{month}'")}
            self.assertEqual(bool(ids & due_ids), due, month)
        # The aggregator of this stack was started without KQE_RETENTION_YEARS.
        self.assertIn("retention off", [l.get("msg") for l in
                                        self.stack.log_lines("aggregator")])
        r = self.stack.kqe("retention", "run")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("KQE_RETENTION_YEARS", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.ids(DUE_CASES), self.due_cases)
        self.assertEqual(self.ids(DUE_TOPICS), self.due_topics)
        self.assertEqual(self.retention_entries(), [])
        for bad in (["retention"], ["retention", "run", "--now"], ["retention", "purge"]):
            self.assertEqual(self.kqe(*bad).returncode, 2, bad)

    def test_2_dry_run_prints_what_it_would_delete_and_deletes_nothing(self):
        r = self.kqe("retention", "run", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = self.per_office(self.due_cases, self.due_topics)
        self.assertEqual(self.parse(r.stdout), expected)
        self.assertIn(f"would delete: horizon={HORIZON} offices={len(expected)}"
                      f" case_analyses={len(self.due_cases)} topics={len(self.due_topics)}"
                      " skipped=0\n", r.stdout)
        self.assertEqual(self.rows("case_analyses"), self.cases_before)
        self.assertEqual(self.rows("topics"), self.topics_before)
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM rollup_retained"), "0")
        self.assertEqual(int(self.stack.sql_value("SELECT max(id) FROM audit_log")),
                         self.audit_before)
        self.assertEqual(self.other_tables(), self.others_before)

    def test_3_run_deletes_exactly_what_is_due_and_audits_each_office(self):
        type(self).log_mark = len(self.stack.log_lines("aggregator"))
        r = self.kqe("retention", "run")
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = self.per_office(self.due_cases, self.due_topics)
        self.assertEqual(self.parse(r.stdout), expected)
        self.assertIn(f"deleted: horizon={HORIZON} offices={len(expected)}"
                      f" case_analyses={len(self.due_cases)} topics={len(self.due_topics)}"
                      " skipped=0\n", r.stdout)
        # Gone: exactly the due rows. Every other row exactly as it was.
        due_cases = {i for _, i in self.due_cases}
        due_topics = {i for _, i in self.due_topics}
        cases = self.rows("case_analyses")
        topics = self.rows("topics")
        self.assertEqual(set(cases), set(self.cases_before) - due_cases)
        self.assertEqual(set(topics), set(self.topics_before) - due_topics)
        self.assertEqual(cases, {i: h for i, h in self.cases_before.items() if i in cases})
        self.assertEqual(topics, {i: h for i, h in self.topics_before.items() if i in topics})
        self.assertTrue({i for _, i in self.held_cases} <= set(cases))
        self.assertEqual(self.other_tables(), self.others_before)
        # One audit entry per office, by the operator; older entries stay as they were.
        self.assert_audited(self.retention_entries(), expected, self.user, "admin")
        self.assertEqual(self.stack.sql(
            "SELECT action FROM audit_log WHERE resource_id = '" + self.api_case + "'"
            " ORDER BY id"), [["case_analysis.create"], ["case_analysis.read"]])
        verify = self.stack.kqe("audit", "verify")
        self.assertEqual(verify.returncode, 0, verify.stderr)
        # Their encrypted text and pseudonyms are nowhere in the database any more.
        dump = self.dump()
        self.assertGreater(len(self.gone_secrets), 100)
        for secret in self.gone_secrets:
            self.assertNotIn(secret, dump)
        for secret in self.kept_secrets:
            self.assertIn(secret, dump)
        self.assertNotIn(API_FINDINGS, dump)
        self.assertEqual(self.stack.get(f"/v1/case-analyses/{self.api_case}").status, 404)

    def test_4_rollups_and_reports_keep_every_figure(self):
        # Straight after the deletion, before any recompute, the source of the rollups gives
        # what the rollups hold …
        self.assertEqual(self.stack.sql(
            "SELECT o.id, r.* FROM offices o, kqe_rollup_rows(o.id) r ORDER BY 1, 2, 3, 4, 5"),
            self.rollups_before)
        # … the deletion marked its offices dirty, the aggregator recomputed them, and the
        # rollups are row for row what they were; a full rebuild too.
        self.assert_rollups_unchanged()
        recomputed = [l for l in self.stack.log_lines("aggregator")[self.log_mark:]
                      if l.get("msg") == "rollups recomputed"]
        self.assertTrue(recomputed)
        self.stack.kqe("rollups", "rebuild", check=True)
        self.assertEqual(self.stack.sql("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5"),
                         self.rollups_before)
        # Reports of every period built now have the same figures as before the deletion;
        # their watermark counts the case analyses the released figures hold, which the
        # deleted ones still are part of (as counts), not the rows left in the table.
        remaining = int(self.stack.sql_value("SELECT count(*) FROM case_analyses"))
        for key, (old_id, old_hash, old_tables, old_mark) in self.reports_before.items():
            with self.subTest(report=key):
                _, _, tables, mark = self.report(json.loads(key))
                self.assertEqual(tables, old_tables)
                self.assertEqual(mark["case_analyses"], old_mark["case_analyses"])
                self.assertGreater(mark["case_analyses"], remaining)
                # The snapshot published before is unchanged.
                old = self.stack.get(f"/v1/reports/{old_id}").json()
                self.assertEqual((old["content_hash"], old["tables"]), (old_hash, old_tables))
        # The old periods still have data to report.
        periods = {i["kind"]: i for i in self.stack.get("/v1/report-periods").json()["items"]}
        for y in ("2008", "2009", "2010"):
            self.assertIn(y, periods["case_analyses"]["years"])
        self.assertIn("2010", periods["topics"]["years"])

    def test_5_a_second_run_deletes_nothing(self):
        entries = len(self.retention_entries())
        cases, topics = self.rows("case_analyses"), self.rows("topics")
        r = self.kqe("retention", "run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.parse(r.stdout), {})
        self.assertIn(f"deleted: horizon={HORIZON} offices=0 case_analyses=0 topics=0"
                      " skipped=0\n", r.stdout)
        self.assertEqual(len(self.retention_entries()), entries)
        self.assertEqual((self.rows("case_analyses"), self.rows("topics")), (cases, topics))

    def test_6_an_office_another_run_holds_is_skipped_not_waited_for(self):
        s = self.stack
        s.sql("UPDATE procedures SET phase = 'completed' WHERE office_id = '"
              + self.skip_office + "' AND cycle = '2023-2028'")
        due = self.ids(DUE_CASES)
        self.assertTrue(due and all(o == self.skip_office for o, _ in due))
        last = int(s.sql_value("SELECT max(id) FROM audit_log"))
        holder = subprocess.Popen(["psql", "-X", "-q", "-At", s.db_url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("SELECT pg_advisory_lock(hashtext('kqe_retention'), hashtext('"
                               + self.skip_office + "'));\n\\echo held\n")
            holder.stdin.flush()
            while holder.stdout.readline().strip() != "held":
                pass
            r = self.kqe("retention", "run")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"office {self.skip_office}: skipped (another run holds it)\n",
                          r.stdout)
            self.assertIn("skipped=1\n", r.stdout)
            self.assertEqual(self.ids(DUE_CASES), due)
            self.assertEqual(self.retention_entries(after=last), [])
        finally:
            holder.stdin.close()
            holder.wait(10)
        r = self.kqe("retention", "run")
        self.assertEqual(self.parse(r.stdout), {self.skip_office: (len(due), 0)})
        self.assert_audited(self.retention_entries(after=last),
                            {self.skip_office: (len(due), 0)}, self.user, "admin")
        self.assert_rollups_unchanged()

    def test_7_the_aggregator_runs_it_on_its_schedule_two_at_once_without_redis(self):
        s = self.stack
        s.stop_aggregator()
        s.sql("UPDATE procedures SET phase = 'completed' WHERE office_id = '"
              + self.agg_office + "' AND cycle = '2023-2028'")
        due = self.ids(DUE_CASES)
        self.assertTrue(due and all(o == self.agg_office for o, _ in due))
        last = int(s.sql_value("SELECT max(id) FROM audit_log"))
        s.redis.stop()  # retention needs only PostgreSQL
        env = {"KQE_RETENTION_YEARS": self.years, "KQE_RETENTION_INTERVAL_S": 1}
        s.start_aggregator(**env)
        second = Process("aggregator2", [os.path.join(BIN, "kqe-aggregator")],
                         s.env(KQE_JOBS_BLOCK_MS=200, **env),
                         os.path.join(s.logs, "aggregator2.log"))
        try:
            wait_until(lambda: not self.ids(DUE_CASES), timeout=30, what="the schedule")
            # Both run it at start and again every second; the later runs find nothing.
            def runs(name):
                return [l for l in s.log_lines(name) if l.get("msg") == "retention run"]
            for name in ("aggregator", "aggregator2"):
                wait_until(lambda: len(runs(name)) >= 3, timeout=30, what=f"{name}: three runs")
                self.assertEqual(runs(name)[-1]["offices"], 0)
                self.assertIn("retention on", [l.get("msg") for l in s.log_lines(name)])
        finally:
            second.stop()
            s.redis.start()
        self.assert_audited(self.retention_entries(after=last), {self.agg_office: (len(due), 0)},
                            "system:aggregator", "system")
        self.assertEqual(s.kqe("audit", "verify").returncode, 0)
        self.assert_rollups_unchanged()

    def test_8_the_api_role_cannot_run_it(self):
        s = self.stack
        for role in ("admin", "office_lead", "ministry", ""):
            with self.subTest(role=role):
                error = s.sql_error_as_service(
                    f"SELECT set_config('kqe.role', '{role}', false);"
                    f" SELECT * FROM kqe_retention_office('{self.held_office}', 1, 'x', false)")
                self.assertIn("aggregator or the kqe command only", error or "")
        error = s.sql_error_as_service(
            "SELECT set_config('kqe.role', 'system', false);"
            f" SELECT * FROM kqe_retention_office('{self.held_office}', 0, 'x', false)")
        self.assertIn("1 to 100 years", error or "")
        for query in ("SELECT * FROM rollup_retained", "DELETE FROM case_analyses",
                      "DELETE FROM topics", "INSERT INTO rollup_retained VALUES"
                      " ('x', 2000, 'x', 'cases', 'all', 1)"):
            with self.subTest(query=query):
                self.assertIn("permission denied", s.sql_error_as_service(
                    "SELECT set_config('kqe.role', 'system', false); " + query) or "")
        held = {i for o, i in self.held_cases if o not in (self.skip_office, self.agg_office)}
        self.assertTrue(held and held <= set(self.rows("case_analyses")))

    def test_9_what_is_due(self):
        # kqe_retention_due(date, phase, cycle, horizon), the rule in one place. A procedure
        # that is never completed keeps its records until its cycle ended before the horizon
        # (the demo has no such cycle yet: the first one ends in 2028).
        cases = [("2018-12-01", "completed", "2023-2028", "2019-01-01", True),
                 ("2019-01-01", "completed", "2023-2028", "2019-01-01", False),
                 ("2018-12-01", "evaluation", "2023-2028", "2019-01-01", False),
                 ("2018-12-01", "evaluation", "2023-2028", "2028-01-01", False),
                 ("2018-12-01", "evaluation", "2023-2028", "2029-01-01", True),
                 ("2028-06-01", "planned", "2023-2028", "2029-01-01", True),
                 ("2029-01-01", "planned", "2023-2028", "2029-01-01", False)]
        for date, phase, cycle, horizon, due in cases:
            with self.subTest(date=date, phase=phase, horizon=horizon):
                self.assertEqual(self.stack.sql_value(
                    f"SELECT kqe_retention_due(DATE '{date}', '{phase}', '{cycle}',"
                    f" DATE '{horizon}')"), "t" if due else "f")
        # The horizon: 1 January, whole years back, in Berlin's calendar.
        self.assertEqual(self.stack.sql_value(
            f"SELECT kqe_retention_horizon({self.years})"), HORIZON)


if __name__ == "__main__":
    unittest.main()
