"""Releases (docs/disclosure.md, "Releases"): reports outside the office come from releases;
a source's figures change only when at least KQE_RELEASE_MIN_CHANGES records of that source
changed, so two reports around one new case analysis are identical (A0), also when many
records of other sources came with it; a closed year or cycle is final and never changes;
reports name their release, its cut-off and the method in the CSV and the HTML; no record
key ever leaves the database; releases are immutable and made only by the aggregator or the
kqe command; `kqe sdc evaluate` prints what the noise costs."""

import csv
import io
import os
import re
import unittest

from harness import REPO, StackTestCase, published
from test_case_analyses import valid
from test_programme_figures import FUTURE, PAST
from test_programmes import event, person, programme
from test_surveys_topics import topic

CYCLE = "2023-2028"
MIN_CHANGES = 30


class ReleaseStack(StackTestCase):
    """The demo state, and reports asked for the way a reader does."""
    seed_demo = True
    start_aggregator = True
    # Production rules, but a release looked at before every report job (not monthly).
    aggregator_env = {"KQE_RELEASE_INTERVAL_S": 0, "KQE_RELEASE_MIN_CHANGES": MIN_CHANGES,
                      "KQE_RELEASE_FINAL": 1}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
            f" AND cycle = '{CYCLE}' AND NOT out_of_cycle ORDER BY id LIMIT 1")[0]
        cls.token = s.token("office_staff", office=cls.office)[0]

    def report(self, period, region=None):
        body = {"scope": "region", "region": region} if region else {"scope": "state"}
        r = self.stack.post("/v1/reports", {**body, "period": period})
        self.assertEqual(r.status, 202, r)
        job = r.json()["id"]
        self.stack.wait_job(job, timeout=60)
        return self.stack.get(self.stack.get(f"/v1/jobs/{job}").json()["result"]).json()

    def submit(self, n, prefix, closed_month):
        items = [valid(self.proc, reference=f"{prefix}-{i}", findings=None,
                       closed_month=closed_month) for i in range(n)]
        r = self.stack.post("/v1/case-analyses:batch", {"items": items}, token=self.token,
                            timeout=60)
        self.assertEqual(r.status, 201, r)

    def published_cases(self, year):
        """How many case analyses of the office's year the latest release publishes."""
        return self.stack.sql_value(
            "SELECT coalesce(sum(r.n), 0) FROM release_buckets b"
            " JOIN release_rollups r ON r.release_id = b.state_release AND r.year = b.year"
            " AND r.cycle = b.cycle JOIN offices o ON o.id = r.office_id"
            " AND o.region = b.region AND o.kind = b.kind"
            f" WHERE b.release_id = (SELECT max(id) FROM releases) AND b.year = {year}"
            f" AND r.office_id = '{self.office}' AND r.dimension = 'cases'")

    def tables(self, report, prefix):
        return {t["id"]: t for t in report["tables"] if t["id"].startswith(prefix)}

    def assertShowsReleaseAndMethod(self, report, state):
        """The CSV names the release, its cut-off and the method with its parameters on every
        row; the HTML names the release, its cut-off, whether it is final, and explains the
        method with the same parameters."""
        release = report["watermark"]["release"]
        d = report["watermark"]["disclosure"]
        self.assertEqual((d["method"], d["max_deviation"], d["variance"], d["js"]),
                         ("cell_key", 5, 3, 2))
        method = ("cell_key D=5 V=3 V_large=3 js=2; medians and quartiles: min_offices=5"
                  " min_count=3 dominance=0.85")
        body = self.stack.get(f"/v1/reports/{report['id']}.csv").body.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        self.assertEqual(list(rows[0])[-3:], ["release", "release_cut_off", "method"])
        self.assertEqual(len(rows), sum(len(t["cells"]) for t in report["tables"]))
        self.assertEqual({(r["release"], r["release_cut_off"], r["method"]) for r in rows},
                         {(str(release["id"]), release["cut_off"], method)})
        html = self.stack.get(f"/v1/reports/{report['id']}.html").body.decode()
        self.assertIn(f"Veröffentlichung Nr. {release['id']} mit Stichtag {release['cut_off']}",
                      html)
        self.assertIn(state, html)
        for text in ("mit der Cell-Key-Methode geheim gehalten",
                     "höchstens um 5 nach oben oder unten (Varianz 3.00, ab 8 Fällen 3.00)",
                     "Fallzahlen von 1 bis 2 werden nie ausgewiesen",
                     "eine Zahl aus vielen Einzelwerten kann dafür um mehr als den genannten"
                     " Höchstwert vom wahren Wert abweichen",
                     "mindestens 5 Jugendämter beitragen"):
            self.assertIn(text, html)


class ReleasesTest(ReleaseStack):
    def test_a_case_table_waits_for_case_analyses_whatever_else_changed(self):
        # A0 with a mixed refresh: one new case analysis beside MIN_CHANGES new topics of the
        # same group. The release counts per source (migration 0032): the topics are due and
        # their tables change, the one case analysis is not, so no case table changes at all.
        # Counted together (0016, 0020), the bucket was due and the case tables differed in
        # that one case's atoms only, which kept no other noise than their own.
        # First the group's case analyses of 2026 are published, MIN_CHANGES of them, of
        # several categories: the new case then lands in atoms that already hold records.
        sexes, results = ("weiblich", "maennlich"), ("akute_gefaehrdung", "latente_gefaehrdung")
        reporters = ("schule", "verwandte", "gesundheitswesen", "kita_kindertagespflege")
        items = [valid(self.proc, reference=f"MIX-BASE-{i}", findings=None,
                       closed_month="2026-05", child={"sex": sexes[i % 2],
                                                      "birth_month": f"{2010 + i % 6}-03"},
                       result=results[i // 2 % 2], reported_by=reporters[i % 4])
                 for i in range(MIN_CHANGES)]
        r = self.stack.post("/v1/case-analyses:batch", {"items": items}, token=self.token,
                            timeout=60)
        self.assertEqual(r.status, 201, r)
        before = self.report("2026")
        published_cases = self.published_cases(2026)
        self.submit(1, "MIX-CASE", "2026-05")
        for i in range(MIN_CHANGES):
            r = self.stack.post("/v1/topics", topic(self.proc, theme="documentation"),
                                token=self.token)
            self.assertEqual(r.status, 201, r)
        after = self.report("2026")
        self.assertGreater(after["watermark"]["release"]["id"],
                           before["watermark"]["release"]["id"])
        # The release took the topics in but left the group's case analyses as published.
        self.assertEqual(self.published_cases(2026), published_cases)
        self.assertEqual(self.tables(after, "case_"), self.tables(before, "case_"))
        self.assertNotEqual(self.tables(after, "topic_"), self.tables(before, "topic_"))
        # The topics of the office's group (its region and kind) are in, all of them,
        # perturbed as their records give them.
        region, kind = self.stack.sql(
            f"SELECT region, kind FROM offices WHERE id = '{self.office}'")[0]
        atoms = [(int(n), int(k)) for n, k in self.stack.sql(
            "SELECT count(*), sum(t.record_key) FROM topics t"
            " JOIN offices o ON o.id = t.office_id JOIN procedures p ON p.id = t.procedure_id"
            " WHERE extract(year FROM t.created_at AT TIME ZONE 'Europe/Berlin') = 2026"
            f" AND o.region = '{region}' AND o.kind = '{kind}' GROUP BY p.cycle, t.theme")]
        cell = next(c for c in self.tables(self.report("2026", region), "topic_themes_by_kind")[
            "topic_themes_by_kind"]["cells"] if c["kind"] == kind and c["theme"] is None)
        self.assertEqual(cell["value"], published(self.stack, atoms))

    def test_a_period_changes_only_once_enough_of_its_records_did(self):
        # 2026 is open (its case analyses come in until 30 June 2027).
        before = self.report("2026")
        release = before["watermark"]["release"]
        self.assertIsNotNone(release)
        self.assertFalse(release["final"])
        self.submit(1, "A0-ONE", "2026-05")
        after_one = self.report("2026")
        # A0: one new case changes nothing anyone outside the office can see.
        self.assertEqual(after_one["tables"], before["tables"])
        self.assertEqual(after_one["watermark"]["release"]["id"], release["id"])
        self.submit(MIN_CHANGES - 1, "A0-MORE", "2026-05")
        after_all = self.report("2026")
        self.assertGreater(after_all["watermark"]["release"]["id"], release["id"])
        # Now the released figures are the true ones perturbed, new cases included.
        atoms = [(int(n), int(k)) for n, k in self.stack.sql(
            "SELECT count(*), sum(c.record_key) FROM case_analyses c"
            " JOIN offices o ON o.id = c.office_id JOIN procedures p ON p.id = c.procedure_id"
            " WHERE extract(year FROM c.closed_month) = 2026"
            " GROUP BY o.region, o.kind, p.cycle, c.result")]
        grand = next(c for t in after_all["tables"] if t["id"] == "case_results_by_region"
                     for c in t["cells"] if c["region"] is None and c["result"] is None)
        self.assertEqual(grand["value"], published(self.stack, atoms))
        self.assertShowsReleaseAndMethod(after_all, "vorläufig")

    def test_a_closed_period_is_final_and_never_changes(self):
        before = self.report("2022")
        self.assertTrue(before["watermark"]["release"]["final"])
        self.submit(MIN_CHANGES + 5, "FINAL", "2022-03")
        after = self.report("2022")
        self.assertEqual(after["tables"], before["tables"])
        self.assertTrue(after["watermark"]["release"]["final"])
        self.assertShowsReleaseAndMethod(after, "endgültig")
        # Asking twice gives byte-identical tables.
        again = self.report("2022")
        self.assertEqual(again["tables"], after["tables"])

    def test_figures_about_persons_wait_for_their_own_source(self):
        # A0 on the programme figures: registrations for events held, their attendance and
        # their feedback are released like case analyses, each a source of its own (migration
        # 0032). One rating and one attendance change nothing a reader sees; once
        # MIN_CHANGES people rated, the ratings are in.
        s = self.stack
        r = s.post("/v1/programmes", programme(title="Veröffentlichte Kennzahlen (Test)"))
        self.assertEqual(r.status, 201, r)
        prog = r.json()["id"]
        team = s.token("programme_team", programme=prog)[0]
        lead = s.token("office_lead", office=self.office)[0]

        def send(method, path, body, token, table=None):
            headers = {}
            if table is not None:
                version = s.sql_value(
                    f"SELECT version FROM {table} WHERE id = '{path.rsplit('/', 1)[1]}'")
                headers["If-Match"] = f'"v{version}"'
            r = s.request(method, path, body=body, headers=headers, token=token)
            self.assertIn(r.status, (200, 201), r)
            return r.json()

        e = send("POST", "/v1/events", event(prog, dates=FUTURE, capacity=MIN_CHANGES,
                                             per_office_limit=MIN_CHANGES), team)
        regs = [send("POST", "/v1/event-registrations",
                     {"event_id": e["id"], "person": person(f"Person{i}")}, lead)
                for i in range(MIN_CHANGES)]
        send("PATCH", f"/v1/events/{e['id']}", {"dates": PAST}, team, "events")

        def figures(report, table, column, code):
            return next(c["value"] for c in self.tables(report, table)[table]["cells"]
                        if c["programme"] == prog and c[column] == code)

        def keysum():
            return [(MIN_CHANGES, int(s.sql_value(
                f"SELECT sum(record_key) FROM event_registrations WHERE event_id = '{e['id']}'"
                )))]

        before = self.report("2026")
        self.assertEqual(figures(before, "programme_registrations_by_programme",
                                 "registration_status", "registered"), published(s, keysum()))
        send("PATCH", f"/v1/event-registrations/{regs[0]['id']}", {"feedback_rating": 4}, lead,
             "event_registrations")
        send("PATCH", f"/v1/event-registrations/{regs[1]['id']}", {"attended": [True, False]},
             team, "event_registrations")
        after = self.report("2026")
        self.assertEqual(self.tables(after, "programme_"), self.tables(before, "programme_"))
        for reg in regs[1:]:
            send("PATCH", f"/v1/event-registrations/{reg['id']}", {"feedback_rating": 4}, lead,
                 "event_registrations")
        rated = self.report("2026")
        self.assertEqual(figures(rated, "programme_feedback_by_programme", "feedback_rating",
                                 "4"), published(s, keysum()))

    def test_kqe_sdc_evaluate_prints_what_the_noise_costs(self):
        for args in (("--period", "2026"), ("--period", "2023-2028", "--region", "LVR")):
            with self.subTest(args=args):
                r = self.stack.kqe("sdc", "evaluate", *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                release = self.stack.sql_value("SELECT max(id) FROM releases")
                self.assertIn(f", release {release}\n", r.stdout)
                self.assertIn("method: cell key, D = 5, V = 3 (large counts 3), js = 2\n",
                              r.stdout)
                cells = int(re.search(r"^count cells: (\d+)$", r.stdout, re.M).group(1))
                changed, share = re.search(r"^changed by the noise: (\d+) \(([\d.]+) %\)$",
                                           r.stdout, re.M).groups()
                self.assertGreater(cells, 100)
                self.assertTrue(0 <= int(changed) <= cells, r.stdout)
                if args[1] == "2023-2028":  # thousands of cases: noise moves most cells
                    self.assertGreater(int(changed), cells / 2, r.stdout)
                self.assertAlmostEqual(float(share), 100 * int(changed) / cells, places=1)
                mean, top = re.search(r"^absolute deviation: mean ([\d.]+), maximum (\d+)$",
                                      r.stdout, re.M).groups()
                self.assertTrue(0 <= float(mean) <= int(top), r.stdout)
                self.assertRegex(r.stdout, r"the minimum-count rule \(1 to 2\) would hide"
                                           r" instead: \d+ \([\d.]+ %\), before secondary")
        bad = self.stack.kqe("sdc", "evaluate", "--period", "2024-2029")
        self.assertEqual((bad.returncode, bad.stdout), (2, ""))
        self.assertIn("usage: kqe sdc", bad.stderr)

    def test_record_keys_never_leave_the_database(self):
        # Every record key, and every cell key the rollups and releases hold, read from SQL;
        # then every answer a reader can get — each list (its first page), one item of each,
        # every report as JSON, CSV and HTML, as admin, ministry and an office — is searched
        # for any of them as a number of its own.
        self.report("2026")
        tables = [t for (t,) in self.stack.sql(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'record_key'"
            " AND table_schema = 'public'")]
        self.assertTrue({"case_analyses", "topics", "structure_surveys", "offices",
                         "advice_requests", "event_registrations"} <= set(tables), tables)
        query = " UNION ".join([f"SELECT record_key FROM {t}" for t in tables] + [
            "SELECT keysum FROM rollups", "SELECT keysum FROM release_rollups",
            "SELECT keysum FROM release_figures"])
        # Keys of fewer than seven digits could be any number; there are few of them.
        keys = {k for (k,) in self.stack.sql(query) if len(k) >= 7}
        self.assertGreater(len(keys), 1000)
        routes = sorted(set(re.findall(r'ROUTE\(GET, "(/v1/[^"{]*)"', open(
            os.path.join(REPO, "services/api/router.c")).read())))
        self.assertIn("/v1/case-analyses", routes)
        readers = ["default", None, self.stack.token("ministry")[0], self.token]
        reports = self.stack.get("/v1/reports?limit=500").json()["items"]
        self.assertTrue(reports)
        paths = list(routes)
        for rep in reports:
            paths += [rep["href"], rep["href"] + ".csv", rep["href"] + ".html"]
        paths += [f"/v1/offices/{self.office}/benchmark", f"/v1/cycles/{CYCLE}/offices"]
        number = re.compile(r"(?<![0-9A-Za-z-])[0-9]{7,10}(?![0-9A-Za-z-])")
        scanned = numbers = 0
        for token in readers:
            todo = list(paths)
            while todo:
                path = todo.pop()
                r = self.stack.get(path + "?limit=500", token=token, timeout=60)
                if r.status == 400:  # no list: no limit
                    r = self.stack.get(path, token=token, timeout=60)
                body = r.body.decode("utf-8", "replace")
                scanned += r.status == 200
                found = set(number.findall(body))
                numbers += len(found)
                self.assertFalse(keys & found, f"{path} as {token and token[:12]}")
                if r.status == 200 and path in routes and \
                        (r.header("Content-Type") or "").startswith("application/json"):
                    items = r.json().get("items") or []
                    if items and isinstance(items[0], dict) and "id" in items[0]:
                        todo.append(f"{path}/{items[0]['id']}")
        print(f"record keys: {len(keys)} keys, {scanned} answers, {numbers} numbers")
        self.assertGreater(scanned, 60)

    def test_releases_are_immutable(self):
        for sql in ("UPDATE releases SET actor = 'x'", "DELETE FROM release_buckets",
                    "UPDATE release_rollups SET n = n + 1"):
            with self.subTest(sql=sql):
                with self.assertRaises(AssertionError) as e:
                    self.stack.sql(sql)
                self.assertIn("immutable", str(e.exception))

    def test_only_the_aggregator_and_the_kqe_command_make_releases(self):
        r = self.stack.kqe("release", "make")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^release \d+ made\n$")
        self.assertEqual(self.stack.kqe("release", "make", "--min-changes", "0").returncode, 2)
        # The API's role, whatever principal it sets, may not.
        error = self.stack.sql_error_as_service(
            "SELECT set_config('kqe.role', 'office_staff', false);"
            " SELECT kqe_release_make(1, true, 'x')")
        self.assertIn("made by the aggregator or the kqe command only", error or "")


class FinalCycleTest(ReleaseStack):
    """A § 8 cycle's final release. Cycles start in 2023, so none has ended yet (the first
    ends on 30 June 2028): in its own database the test moves the releases' clock —
    kqe_bucket_closed, the one place a release asks whether a period is closed — to
    1 July 2028."""

    def test_a_closed_cycle_is_final_and_never_changes(self):
        before = self.report(CYCLE)
        self.assertFalse(before["watermark"]["release"]["final"])
        self.stack.sql(
            "CREATE OR REPLACE FUNCTION kqe_bucket_closed(p_year integer, p_cycle text,"
            " p_at timestamptz) RETURNS boolean LANGUAGE sql STABLE"
            " RETURN date '2028-07-01' >= make_date(p_year + 1, 7, 1)"
            " OR date '2028-07-01' > make_date(split_part(p_cycle, '-', 2)::int, 6, 30)")
        final = self.report(CYCLE)
        self.assertTrue(final["watermark"]["release"]["final"])
        self.assertEqual(self.stack.sql_value(
            f"SELECT count(*) FILTER (WHERE NOT final) FROM release_buckets"
            f" WHERE cycle = '{CYCLE}' AND release_id = (SELECT max(id) FROM releases)"), "0")
        self.assertShowsReleaseAndMethod(final, "endgültig")
        # Late records, more than a refresh needs, of a year of the cycle and of its topics:
        # the cycle's figures and its years' never change again.
        year = self.report("2026")
        self.submit(MIN_CHANGES + 5, "LATE", "2026-05")
        for i in range(MIN_CHANGES):
            self.assertEqual(self.stack.post("/v1/topics", topic(self.proc),
                                             token=self.token).status, 201)
        after = self.report(CYCLE)
        self.assertEqual(after["tables"], final["tables"])
        self.assertTrue(after["watermark"]["release"]["final"])
        self.assertEqual(self.report("2026")["tables"], year["tables"])
        self.assertEqual(self.report(CYCLE)["tables"], final["tables"])


if __name__ == "__main__":
    unittest.main()
