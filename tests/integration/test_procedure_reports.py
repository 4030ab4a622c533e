"""§ 8 procedure reports: an institute drafts, edits and finalises, the office comments and
its lead accepts; figures from the procedure's own data, frozen when finalised; who sees
what; the committee version gives no hidden count away and holds no free text; bad input and
illegal moves change nothing."""

import base64
import html as htmllib
import json
import re
import unittest

from harness import StackTestCase, psql, render_in_chromium

ASSESSMENT = "Die Gefährdungseinschätzung wird überwiegend fachgerecht umgesetzt; Fall Kowalski."
UNKNOWN = "00000000-0000-4000-8000-000000000000"
MIN_COUNT = 3  # KQE_SDC_MIN_COUNT's default, which the tests' kqe-api runs with
# Distinctive free text, each where a person's name could stand.
FINDINGS = "Befund Zebra-4711: Familie Nowak"
SECTION = "Abschnitt Quokka-0815: Frau Lindqvist"
COMMENT = "Anmerkung Okapi-2222: Herr Brandt"
TOPIC = "Thema Axolotl-9090: Team Süd"
# Lines where a case analysis may count several times: they have no total.
MULTI = {"Art der Gefährdung (bei Kindeswohlgefährdung)", "Lernthemen der Fallanalysen"}
FACTS = {"Unmittelbarer Eindruck vom Kind": "direct_impression",
         "Mehrere Fachkräfte beteiligt": "several_professionals",
         "Kind oder Jugendliche(r) beteiligt": "child_involved"}
# The structure's own figures that are a fact's share (by label, and by code as printed
# before they had labels).
FACT_SHARES = {"Fallanalysen mit unmittelbarem Eindruck vom Kind (%)": "direct_impression",
               "Fallanalysen mit mehreren Fachkräften (%)": "several_professionals",
               "Fallanalysen mit Beteiligung des Kindes (%)": "child_involved",
               "direct_impression_percent": "direct_impression",
               "several_professionals_percent": "several_professionals",
               "child_involved_percent": "child_involved"}


def value(text):
    """A printed figure: None where hidden (.), "x" where none makes sense, else a number."""
    if text == ".":
        return None
    if text == "x":
        return "x"
    if text == "\u2013":
        return 0
    return float(text.replace(".", "").replace(",", "."))


def figures(html):
    """The figures of sections 1 and 2 as (caption, rows, median): rows as (label, [cells]),
    median the rating median printed after the figure (None if there is none)."""
    part = html[html.index('id="fallanalysen"'):html.index('id="struktur"')]
    out = []
    for m in re.finditer(r"<figure><figcaption>(.*?)</figcaption>(.*?)</figure>"
                         r"(?:<p>Median der Bewertungen: <b>([^<]*)</b></p>)?", part):
        caption, body, median = m.groups()
        rows = [(htmllib.unescape(label), re.findall(r"<td>([^<]*)</td>", cells))
                for label, cells in re.findall(
                    r"<tr><th>([^<]*)</th>((?:<td>[^<]*</td>)+)</tr>", body)]
        out.append((htmllib.unescape(caption), rows, median))
    return out


def structure(html):
    """The structure section's rows as (indicator label, own value as printed)."""
    part = html[html.index('id="struktur"'):html.index('id="themen"')]
    return [(htmllib.unescape(label), own) for label, own in re.findall(
        r"<tr><th>([^<]*)</th><td>[^<]*</td><td>([^<]*)</td>", part)]


def derivable(html):
    """Everything an outsider can work out of a hidden count from one rendering, with the
    number of case analyses, the printed counts, shares, medians and the structure's own
    figures: a list of findings, empty when nothing can be."""
    found = []
    n = value(re.search(r"Im Verfahren wurden <b>([^<]*)</b>", html).group(1))
    if n is not None and 0 < n < MIN_COUNT:
        found.append(f"{n:g} case analyses printed")
    lines = []  # (name, counts, whether the line adds up to n)
    for caption, rows, median in figures(html):
        if caption == "Fachliches Vorgehen":
            for label, cells in rows:
                counts = [value(c) for c in cells[:-1]]
                lines.append((label, counts, True))
                if None in counts and value(cells[-1]) not in (None, "x"):
                    found.append(f"{label}: the share {cells[-1]} beside a hidden count")
            continue
        counts = [value(cells[0]) for _, cells in rows]
        lines.append((caption, counts, caption not in MULTI))
        for (label, cells), count in zip(rows, counts):
            share = value(cells[1]) if len(cells) > 1 else None
            if count is None and share not in (None, "x") and n is not None:
                found.append(f"{caption}/{label}: the share {cells[1]} gives the count "
                             f"{share * n / 100:g}")
        if median is not None and value(median) is not None and None in counts:
            found.append(f"{caption}: the median {median} beside a hidden count")
    for name, counts, adds_up in lines:
        if n is not None:
            found += [f"{name}: a count of {c:g} printed" for c in counts
                      if c is not None and 0 < c < MIN_COUNT]
        if not adds_up or n is None:
            continue
        hidden = counts.count(None)
        rest = n - sum(c for c in counts if c is not None)
        if hidden == 1:
            found.append(f"{name}: the hidden count is {rest:g}")
        elif hidden > 1 and rest < MIN_COUNT:
            found.append(f"{name}: the hidden counts add up to {rest:g}")
        elif hidden == 0 and 0 < rest < MIN_COUNT:
            found.append(f"{name}: {rest:g} case analyses in no printed category")
    fact_hidden = {FACTS[name]: None in counts for name, counts, _ in lines if name in FACTS}
    for label, own in structure(html):
        fact = FACT_SHARES.get(label)
        if fact is not None and value(own) not in (None, "x") and fact_hidden.get(fact, True):
            found.append(f"{label}: the office's own share {own} beside hidden counts")
    days = value(re.search(r"\(Median\): <b>([^<]*)</b>", html).group(1))
    if days is not None and (n is None or n < MIN_COUNT):
        found.append(f"the median days {days:g} of fewer than {MIN_COUNT} case analyses")
    return found


def case(procedure, i, **kw):
    """A case analysis of the fixtures, with kw replacing its parts."""
    body = {"procedure_id": procedure, "case_reference": f"FIX-{procedure[:8]}-{i}",
            "selection": "random", "closed_month": "2024-03",
            "child": {"sex": "weiblich", "birth_month": "2015-03"},
            "parents_age_group": "27_und_aelter", "reported_by": "schule",
            "result": "latente_gefaehrdung", "endangerment_forms": ["vernachlaessigung"],
            "process": {"days_to_first_contact": i + 1, "direct_impression": True,
                        "several_professionals": True, "child_involved": True},
            "ratings": {"first_assessment": 2}, "learning_themes": []}
    for key, v in kw.items():
        if key in ("child", "process"):
            body[key] = {**body[key], **v}
        else:
            body[key] = v
    return body


class ProcedureReportTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        # Two open demo procedures with an institute, of offices in one region: one for the
        # institute's report, one for an advisor's; moved to the phases a report is written in.
        rows = s.sql(
            "SELECT p.id, p.office_id, p.institute_id, o.region FROM procedures p"
            " JOIN offices o ON o.id = p.office_id WHERE p.phase <> 'completed'"
            " AND p.institute_id IS NOT NULL AND NOT p.out_of_cycle"
            " AND EXISTS (SELECT FROM case_analyses c WHERE c.procedure_id = p.id)"
            " ORDER BY o.region, p.id LIMIT 2")
        (cls.proc, cls.office, cls.institute, cls.region), (cls.proc2, cls.office2, _, reg2) = rows
        assert reg2 == cls.region, "two procedures of one region"
        s.sql(f"UPDATE procedures SET phase = 'evaluation' WHERE id IN ('{cls.proc}', '{cls.proc2}')")
        cls.inst = s.token("institute", institute=cls.institute)[0]
        cls.staff = s.token("office_staff", office=cls.office)[0]
        cls.lead = s.token("office_lead", office=cls.office)[0]
        cls.advisor = s.token("advisor", region=cls.region)[0]
        other_region = "LWL" if cls.region == "LVR" else "LVR"
        cls.other_advisor = s.token("advisor", region=other_region)[0]
        cls.ministry = s.token("ministry")[0]
        cls.staff2 = s.token("office_staff", office=cls.office2)[0]
        cls.lead2 = s.token("office_lead", office=cls.office2)[0]
        cls.cycle = s.sql_value(f"SELECT cycle FROM procedures WHERE id = '{cls.proc}'")
        cls.other_office = s.token("office_staff", office=s.sql_value(
            f"SELECT id FROM offices WHERE id NOT IN ('{cls.office}', '{cls.office2}')"
            " ORDER BY id LIMIT 1"))[0]

    def ministry_sees(self, office, query=""):
        """The ministry's list of an office's reports."""
        r = self.stack.get(f"/v1/procedure-reports?office_id={office}&{query}",
                           token=self.ministry)
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def path(self, proc=None):
        return f"/v1/procedures/{proc or self.proc}/report"

    def rows(self):
        return self.stack.sql("SELECT procedure_id, status, version FROM procedure_reports"
                              " ORDER BY 1")

    def check_figures(self, gen, n):
        """The draft's figures against SQL: ratings, learning themes, medians, shares, topics
        with status and follow-up date; the structure's own case figures the procedure's,
        its quartiles the benchmark's of the latest release."""
        s = self.stack
        where = f"c.procedure_id = '{self.proc}'"
        ratings = {}
        for dim, category, count in s.sql(
                "SELECT 'rating:' || r.key, r.value, count(*) FROM case_analyses c,"
                f" jsonb_each_text(c.ratings) r WHERE {where} GROUP BY 1, 2"):
            ratings.setdefault(dim, {})[category] = int(count)
        self.assertGreater(len(ratings), 0)
        self.assertEqual({k: v for k, v in gen["counts"].items() if k.startswith("rating:")},
                         ratings)
        themes = {t: int(count) for t, count in s.sql(
            "SELECT t, count(*) FROM case_analyses c, unnest(c.learning_themes) t"
            f" WHERE {where} GROUP BY 1")}
        self.assertGreater(len(themes), 0)
        self.assertEqual(gen["counts"]["learning_theme"], themes)
        medians = {dim: float(m) for dim, m in s.sql(
            "SELECT 'days_to_first_contact', round(percentile_cont(0.5) WITHIN GROUP"
            f" (ORDER BY c.days_to_first_contact)::numeric, 1) FROM case_analyses c WHERE {where}"
            " UNION ALL SELECT 'rating:' || r.key, round(percentile_cont(0.5) WITHIN GROUP"
            " (ORDER BY r.value::numeric)::numeric, 1) FROM case_analyses c,"
            f" jsonb_each_text(c.ratings) r WHERE {where} GROUP BY r.key")}
        self.assertEqual(gen["medians"], medians)
        # Shares: every count as a share of the procedure's case analyses.
        self.assertEqual(set(gen["shares"]), set(gen["counts"]))
        for dim, categories in gen["counts"].items():
            self.assertEqual(set(gen["shares"][dim]), set(categories))
            for category, count in categories.items():
                self.assertLessEqual(abs(gen["shares"][dim][category] - 100 * count / n),
                                     0.05 + 1e-9, (dim, category))
        topics = s.sql("SELECT theme, priority, status, coalesce(follow_up_date::text, '')"
                       f" FROM topics c WHERE {where} ORDER BY created_at, id")
        self.assertEqual([[t["theme"], t["priority"], t["status"], t["follow_up_date"] or ""]
                          for t in gen["topics"]], topics)
        self.assertIn("2027-03-31", [t["follow_up_date"] for t in gen["topics"]])
        # The own case figures are the procedure's, not the office's over every procedure.
        own = {i: (None if v == "" else float(v)) for i, v in s.sql(
            "SELECT v.i, coalesce(round(v.x, 2)::text, '') FROM (SELECT"
            " 100.0 * avg(direct_impression::int) AS d, 100.0 * avg(several_professionals::int)"
            " AS p, 100.0 * avg(child_involved::int) AS k, percentile_cont(0.5) WITHIN GROUP"
            f" (ORDER BY days_to_first_contact) AS m FROM case_analyses c WHERE {where}) c,"
            " LATERAL (VALUES ('direct_impression_percent', c.d), ('several_professionals_percent',"
            " c.p), ('child_involved_percent', c.k), ('median_days_to_first_contact',"
            " c.m::numeric)) AS v (i, x)")}
        bench = s.get(f"/v1/offices/{self.office}/benchmark", token=self.lead).json()
        peers = {(i["indicator"], group): figures for i in bench["indicators"]
                 for group, figures in i["peers"].items()}
        quartiles = 0
        for row in gen["structure"]:
            with self.subTest(indicator=row["indicator"], group=row["peer_group"]):
                if row["indicator"] in own:
                    self.assertEqual(row["own"], own[row["indicator"]])
                want = peers[(row["indicator"], row["peer_group"])]
                self.assertEqual(row["peers"], want["offices"])
                self.assertEqual([row["q1"], row["median"], row["q3"]],
                                 [want["q1"], want["median"], want["q3"]])
                quartiles += row["median"] is not None
        self.assertEqual({row["indicator"] for row in gen["structure"]} & set(own), set(own))
        self.assertGreater(quartiles, 0, "the release should give some peer group quartiles")

    def test_1_bad_input_is_422_naming_every_field_and_stores_nothing(self):
        before = self.rows()
        r = self.stack.post("/v1/procedure-reports",
                            {"procedure_id": "not-a-uuid", "assessment": "",
                             "strengths": "x" * 20001, "status": "finalised", "colour": "red"},
                            token=self.inst)
        self.assertEqual(r.status, 422, r)
        pointers = {e["pointer"] for e in r.json()["errors"]}
        self.assertEqual(pointers, {"/procedure_id", "/assessment", "/strengths", "/status",
                                    "/colour"})
        # A procedure the institute does not run is a 422 like one that does not exist.
        for proc in (UNKNOWN, self.stack.sql_value(
                "SELECT id FROM procedures WHERE institute_id IS DISTINCT FROM"
                f" '{self.institute}' ORDER BY id LIMIT 1")):
            r = self.stack.post("/v1/procedure-reports", {"procedure_id": proc},
                                token=self.inst)
            self.assertEqual(r.status, 422, r)
            self.assertEqual([e["pointer"] for e in r.json()["errors"]], ["/procedure_id"])
        # The office and the ministry do not write reports.
        for token in (self.lead, self.ministry):
            self.assertProblem(self.stack.post("/v1/procedure-reports",
                                               {"procedure_id": self.proc}, token=token), 403)
        self.assertEqual(self.rows(), before)

    def test_2_the_whole_course_of_a_report(self):
        s = self.stack
        # A topic with a follow-up date, and a release: the peers' quartiles come from it.
        r = s.post("/v1/topics", {"procedure_id": self.proc, "theme": "information_sharing",
                                  "priority": "high", "description": TOPIC,
                                  "follow_up_date": "2027-03-31"}, token=self.inst)
        self.assertEqual(r.status, 201, r)
        topic = r.json()
        s.kqe("release", "make", "--min-changes", "1", check=True,
              env=s.env(KQE_RELEASE_FINAL=0))
        # Drafted by the institute; a second one is a conflict naming the first.
        r = s.post("/v1/procedure-reports", {"procedure_id": self.proc, "assessment": ASSESSMENT},
                   token=self.inst)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Location"), self.path())
        report = r.json()
        self.assertEqual((report["status"], report["version"]), ("draft", 1))
        self.assertEqual(report["assessment"], ASSESSMENT)
        r = s.post("/v1/procedure-reports", {"procedure_id": self.proc}, token=self.inst)
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.header("Location"), self.path())
        # Encrypted at rest.
        self.assertNotIn("Kowalski", s.sql_value(
            f"SELECT assessment_enc FROM procedure_reports WHERE procedure_id = '{self.proc}'"))
        # The figures are the procedure's own, from its case analyses.
        gen = report["generated"]
        n = int(s.sql_value(f"SELECT count(*) FROM case_analyses WHERE procedure_id = '{self.proc}'"))
        self.assertEqual(gen["case_analyses"], n)
        results = dict(s.sql("SELECT result, count(*) FROM case_analyses"
                             f" WHERE procedure_id = '{self.proc}' GROUP BY 1"))
        self.assertEqual(gen["counts"]["result"], {k: int(v) for k, v in results.items()})
        self.assertTrue(any(row["peer_group"] == "kind" for row in gen["structure"]))
        self.check_figures(gen, n)
        # While a draft, the figures follow the data: the topic's next status shows.
        r = s.request("PATCH", f"/v1/topics/{topic['id']}", {"status": "in_progress"},
                      token=self.inst, headers={"If-Match": f'"v{topic["version"]}"'})
        self.assertEqual(r.status, 200, r)
        gen = s.get(self.path(), token=self.inst).json()["generated"]
        self.assertIn({"theme": "information_sharing", "priority": "high",
                       "status": "in_progress", "follow_up_date": "2027-03-31"}, gen["topics"])
        self.check_figures(gen, n)

        # Edited with If-Match; a stale version is 412.
        r = s.request("PATCH", self.path(), {"strengths": "Verbindliche Checklisten."}, token=self.inst,
                    headers={"If-Match": '"v1"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 2)
        self.assertEqual(s.request("PATCH", self.path(), {"strengths": "x"}, token=self.inst,
                                 headers={"If-Match": '"v1"'}).status, 412)
        self.assertEqual(s.request("PATCH", self.path(), {"strengths": "x"}, token=self.inst).status, 428)

        # The office reads it and comments; the lead cannot edit the text.
        r = s.get(self.path(), token=self.staff)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["strengths"], "Verbindliche Checklisten.")
        r = s.post("/v1/report-comments", {"procedure_id": self.proc,
                                           "text": "Die Empfehlungen tragen wir mit."},
                   token=self.staff)
        self.assertEqual(r.status, 201, r)
        comment = s.get(r.header("Location"), token=self.lead)
        self.assertEqual(comment.status, 200, comment)
        self.assertEqual((comment.json()["text"], comment.json()["author_role"]),
                         ("Die Empfehlungen tragen wir mit.", "office_staff"))
        self.assertNotIn("mittragen", s.sql_value("SELECT string_agg(text_enc, '')"
                                                  " FROM procedure_report_comments"))
        self.assertEqual(s.get(self.path(), token=self.inst).json()["comments"][0]["text"],
                         "Die Empfehlungen tragen wir mit.")
        self.assertProblem(s.request("PATCH", self.path(), {"assessment": "anders"}, token=self.lead,
                                   headers={"If-Match": '"v2"'}), 403)

        # Finalised only in phase report; the lead cannot finalise, nor accept a draft.
        r = s.request("PATCH", self.path(), {"status": "finalised"}, token=self.inst,
                    headers={"If-Match": '"v2"'})
        self.assertEqual(r.status, 409, r)
        self.assertIn("phase report", r.json()["detail"])
        s.sql(f"UPDATE procedures SET phase = 'report' WHERE id = '{self.proc}'")
        self.assertProblem(s.request("PATCH", self.path(), {"status": "finalised"}, token=self.lead,
                                   headers={"If-Match": '"v2"'}), 403)
        r = s.request("PATCH", self.path(), {"status": "accepted"}, token=self.lead,
                    headers={"If-Match": '"v2"'})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["allowed_next"], ["finalised"])
        # Finalised together with a last edit, which is kept.
        r = s.request("PATCH", self.path(), {"status": "finalised",
                                             "recommendations": "Kollegiale Beratung."},
                      token=self.inst, headers={"If-Match": '"v2"'})
        self.assertEqual(r.status, 200, r)
        final = r.json()
        self.assertEqual(final["recommendations"], "Kollegiale Beratung.")
        self.assertEqual((final["status"], final["version"]), ("finalised", 3))
        self.assertIsNotNone(final["finalised_at"])
        # The procedure is completed; the figures are frozen in the row.
        self.assertEqual(s.sql_value(f"SELECT phase FROM procedures WHERE id = '{self.proc}'"),
                         "completed")
        self.assertEqual(s.sql_value("SELECT generated->>'as_of' FROM procedure_reports"
                                     f" WHERE procedure_id = '{self.proc}'"),
                         final["generated"]["as_of"])
        self.assertEqual(s.get(self.path(), token=self.inst).json()["generated"],
                         final["generated"])
        audit = s.sql("SELECT details->>'from', details->>'to',"
                      " details->'procedure_phase'->>'to' FROM audit_log"
                      " WHERE action = 'procedure_report.finalise'"
                      f" AND resource_id = '{self.proc}'")
        self.assertEqual(audit, [["draft", "finalised", "completed"]])

        # A finalised report cannot change, through the API or in SQL.
        before = self.rows()
        r = s.request("PATCH", self.path(), {"assessment": "neu"}, token=self.inst,
                    headers={"If-Match": '"v3"'})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.rows(), before)
        error = s.sql_error_as_service(
            "SELECT set_config('kqe.role', 'institute', false),"
            f" set_config('kqe.institute_id', '{self.institute}', false);"
            f" UPDATE procedure_reports SET assessment_enc = 'x' WHERE procedure_id = '{self.proc}'")
        self.assertIn("cannot change", error or "")

        # The office lead accepts it; then it is final.
        r = s.request("PATCH", self.path(), {"status": "accepted"}, token=self.lead,
                    headers={"If-Match": '"v3"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "accepted")
        r = s.request("PATCH", self.path(), {"status": "draft"}, token=self.inst,
                    headers={"If-Match": '"v4"'})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["allowed_next"], [])
        self.assertEqual(int(s.sql_value("SELECT count(*) FROM procedure_report_versions"
                                         f" WHERE procedure_id = '{self.proc}'")), 4)

    def test_3_who_sees_what(self):
        s = self.stack
        # An advisor of the office's region drafts the other procedure's report.
        r = s.post("/v1/procedure-reports", {"procedure_id": self.proc2,
                                             "recommendations": "Kollegiale Beratung stärken."},
                   token=self.advisor)
        self.assertEqual(r.status, 201, r)
        # … which the other region's advisor and another office cannot tell from none.
        for token in (self.other_advisor, self.other_office):
            with self.subTest(token=token[:8]):
                self.assertProblem(s.get(self.path(self.proc2), token=token), 404)
                self.assertProblem(s.get(self.path(UNKNOWN), token=token), 404)
                r = s.post("/v1/report-comments", {"procedure_id": self.proc2, "text": "x"},
                           token=token)
                self.assertEqual(r.status, 422, r)
        self.assertEqual(s.post("/v1/procedure-reports", {"procedure_id": self.proc2},
                                token=self.other_advisor).status, 422)
        # The ministry cannot read it, nor tell the draft from none.
        self.assertProblem(s.get(self.path(self.proc2), token=self.ministry), 403)
        self.assertEqual(self.ministry_sees(self.office2), [])
        self.assertEqual([i["procedure_id"] for i in s.get(
            f"/v1/procedure-reports?office_id={self.office2}", token=self.advisor).json()[
            "items"]], [self.proc2])
        # Of test 2's report (finalised, then accepted), that it exists and when it was
        # finalised: not its status, version, acceptance or other times.
        final = s.get(self.path(), token=self.inst).json()
        self.assertEqual(self.ministry_sees(self.office), [
            {"procedure_id": self.proc, "office_id": self.office, "cycle": self.cycle,
             "finalised_at": final["finalised_at"]}])
        # Its filters see every report it sees as finalised, and go by that time.
        for query, found in (("status=finalised", True), ("status=accepted", False),
                             ("status=draft", False),
                             (f"updated_since={final['finalised_at']}", True),
                             (f"updated_since={final['accepted_at']}", False)):
            with self.subTest(query=query):
                self.assertEqual(len(self.ministry_sees(self.office, query)), int(found))
        # A cursor holds the time of finalisation, no other.
        page = s.get("/v1/procedure-reports?limit=1", token=self.ministry).json()
        key = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=="))
        self.assertEqual(key, [page["items"][0]["finalised_at"], page["items"][0]["procedure_id"]])
        csv = s.get(f"/v1/procedure-reports.csv?office_id={self.office}", token=self.ministry)
        self.assertEqual(csv.status, 200, csv)
        self.assertEqual(csv.body.decode().splitlines()[1],
                         f"{self.proc},{self.office},{self.cycle},,{final['finalised_at']},,,,")
        # The database shows it no draft either, whatever the API asks.
        drafts = psql(s.service_url, "SELECT set_config('kqe.role', 'ministry', false);"
                      " SELECT count(*) FROM procedure_reports WHERE status = 'draft'")
        self.assertEqual(drafts[-1], ["0"])
        self.assertGreater(int(s.sql_value(
            "SELECT count(*) FROM procedure_reports WHERE status = 'draft'")), 0)
        # Admin reads the figures, not the text.
        r = s.get(self.path(self.proc2))
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["recommendations"])
        self.assertIsNotNone(r.json()["generated"])
        self.assertEqual(s.get(self.path(self.proc2), token=self.advisor).json()[
            "recommendations"], "Kollegiale Beratung stärken.")


    def test_4_both_renderings(self):
        s = self.stack
        # The report of test 2 (finalised and accepted), as the office and its committee see it.
        full = s.get(self.path() + ".html", token=self.staff)
        self.assertEqual(full.status, 200, full)
        self.assertTrue(full.header("Content-Type").startswith("text/html"))
        committee = s.get(self.path() + ".html?version=committee", token=self.staff)
        self.assertEqual(committee.status, 200, committee)
        full, committee = full.body.decode(), committee.body.decode()
        sections = ["titel", "inhalt", "fallanalysen", "bewertungen", "struktur", "themen",
                    "bewertung", "staerken", "entwicklungsbedarfe", "empfehlungen", "methodik"]
        for html in (full, committee):
            for section in sections:
                self.assertIn(f'id="{section}"', html)
            # German, charts as inline SVG, laid out for A4 in print, no JavaScript.
            self.assertTrue(html.startswith('<!DOCTYPE html><html lang="de">'), html[:60])
            self.assertIn("<svg ", html)
            self.assertIn("@page{size:A4", html)
            self.assertNotIn("<script", html.lower())
        # The authors' sections and the office's comments are for the office only: the
        # committee version holds no free text.
        for text in (ASSESSMENT, "Verbindliche Checklisten.", "Kollegiale Beratung.",
                     "Die Empfehlungen tragen wir mit."):
            self.assertIn(text, full)
            self.assertNotIn(text, committee)
        self.assertNotIn("Kowalski", committee)
        self.assertIn('id="kommentare"', full)
        self.assertNotIn('id="kommentare"', committee)
        # No free text of a case analysis or a topic in either (the demo's findings are not
        # decrypted for reports; their pseudonyms never appear).
        for html in (full, committee):
            self.assertNotIn("case_reference", html)
            self.assertNotIn(TOPIC, html)
        # Shares beside the counts, and the ratings' medians.
        self.assertIn("<th>Anteil (%)</th>", full)
        self.assertRegex(full, r"Median der Bewertungen: <b>[1-4](,\d)?</b>")
        # The committee version prints no count of 1 or 2, nor anything that gives one
        # back; the full one does where there are.
        def counts(html):
            return [value(cells[0]) for _, rows, _ in figures(html) for _, cells in rows]
        small = [c for c in counts(full) if c in (1, 2)]
        self.assertGreater(len(small), 0, "the procedure should have rare categories")
        self.assertEqual([c for c in counts(committee) if c in (1, 2)], [])
        self.assertIn(None, counts(committee))
        self.assertEqual(derivable(committee), [])
        self.assertNotEqual(derivable(full), [])
        # Nor does a chart give a hidden count away: its bar has no length.
        bars = re.findall(r'<rect class="bar" [^>]*width="([\d.]+)"[^>]*/><text [^>]*>([^<]*)'
                          r'</text>', committee)
        self.assertGreater(len(bars), 0)
        self.assertEqual([w for w, f in bars if f == "." and float(w) > 0], [])
        # Both render in headless Chromium with every section.
        for name, html in (("procedure-report", full), ("committee-report", committee)):
            dom = render_in_chromium(self, html.encode(), name)
            for section in sections:
                self.assertIn(f'id="{section}"', dom)
        # Bad query: 400 naming it; the ministry may not read it; another office not find it.
        self.assertProblem(s.get(self.path() + ".html?version=public", token=self.staff), 400)
        self.assertProblem(s.get(self.path() + ".html", token=self.ministry), 403)
        self.assertProblem(s.get(self.path() + ".html", token=self.other_office), 404)

    def test_5_the_demo_has_accepted_reports_of_its_completed_procedures(self):
        s = self.stack
        completed = int(s.sql_value(
            "SELECT count(*) FROM procedures WHERE phase = 'completed' AND id IN"
            " (SELECT procedure_id FROM procedure_reports WHERE status = 'accepted')"))
        self.assertGreater(completed, 10)
        proc, office = s.sql("SELECT procedure_id, office_id FROM procedure_reports"
                             " WHERE status = 'accepted' ORDER BY 1 LIMIT 1")[0]
        lead = s.token("office_lead", office=office)[0]
        r = s.get(f"/v1/procedures/{proc}/report", token=lead)
        self.assertEqual(r.status, 200, r)
        report = r.json()
        self.assertTrue(report["assessment"].endswith("(synthetisch)"), report["assessment"])
        self.assertEqual(report["generated"]["case_analyses"], int(s.sql_value(
            f"SELECT count(*) FROM case_analyses WHERE procedure_id = '{proc}'")))
        html = s.get(f"/v1/procedures/{proc}/report.html?version=committee", token=lead)
        self.assertEqual(html.status, 200, html)
        self.assertIn("Fassung für den Jugendhilfeausschuss", html.body.decode())

    def test_6_bad_edits_and_comments_change_nothing(self):
        s = self.stack
        # The advisor's draft of test 3.
        version = s.get(self.path(self.proc2), token=self.advisor).json()["version"]
        etag = {"If-Match": f'"v{version}"'}
        before = (self.rows(), s.sql("SELECT * FROM procedure_report_comments ORDER BY id"))
        patches = [
            ({"status": "nonsense"}, 422, ["/status"]),
            ({"assessment": 5}, 422, ["/assessment"]),
            ({"strengths": "x" * 20001}, 422, ["/strengths"]),
            ({"recommendations": ""}, 422, ["/recommendations"]),
            ({"procedure_id": self.proc}, 422, ["/procedure_id"]),
            ({"colour": "red"}, 422, ["/colour"]),
            ({"status": "accepted"}, 409, None),
            ({"status": "finalised"}, 409, None),  # the procedure is not in phase report
        ]
        for body, status, pointers in patches:
            with self.subTest(body=str(body)[:40]):
                r = s.request("PATCH", self.path(self.proc2), body, token=self.advisor,
                              headers=etag)
                self.assertEqual(r.status, status, r)
                if pointers:
                    self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]), pointers)
        comments = [
            ({"procedure_id": self.proc2}, ["/text"]),
            ({"procedure_id": self.proc2, "text": ""}, ["/text"]),
            ({"procedure_id": self.proc2, "text": "x" * 5001}, ["/text"]),
            ({"text": "ohne Verfahren"}, ["/procedure_id"]),
            ({"procedure_id": UNKNOWN, "text": "x"}, ["/procedure_id"]),
            ({"procedure_id": self.proc2, "text": "x", "extra": 1}, ["/extra"]),
        ]
        for body, pointers in comments:
            with self.subTest(comment=str(body)[:40]):
                r = s.post("/v1/report-comments", body, token=self.advisor)
                self.assertEqual(r.status, 422, r)
                self.assertEqual(sorted(e["pointer"] for e in r.json()["errors"]), pointers)
        self.assertEqual((self.rows(), s.sql("SELECT * FROM procedure_report_comments"
                                              " ORDER BY id")), before)

    def test_7_an_advisor_finalises_and_only_the_office_lead_accepts(self):
        s = self.stack
        # The advisor's draft of test 3, its procedure now in phase report.
        s.sql(f"UPDATE procedures SET phase = 'report' WHERE id = '{self.proc2}'")
        version = s.get(self.path(self.proc2), token=self.advisor).json()["version"]
        r = s.request("PATCH", self.path(self.proc2), {"status": "finalised"},
                      token=self.advisor, headers={"If-Match": f'"v{version}"'})
        self.assertEqual(r.status, 200, r)
        final = r.json()
        self.assertEqual((final["status"], final["version"]), ("finalised", version + 1))
        self.assertEqual(s.sql_value(f"SELECT phase FROM procedures WHERE id = '{self.proc2}'"),
                         "completed")
        self.assertEqual(s.sql("SELECT role, details->>'from', details->>'to'"
                               " FROM audit_log WHERE action = 'procedure_report.finalise'"
                               f" AND resource_id = '{self.proc2}'"),
                         [["advisor", "draft", "finalised"]])
        # Now the ministry sees that it exists, and when it was finalised.
        self.assertEqual(self.ministry_sees(self.office2), [
            {"procedure_id": self.proc2, "office_id": self.office2, "cycle": self.cycle,
             "finalised_at": final["finalised_at"]}])
        # The office's staff may not accept it: 403, and nothing changes.
        before = self.rows()
        etag = {"If-Match": f'"v{final["version"]}"'}
        self.assertProblem(s.request("PATCH", self.path(self.proc2), {"status": "accepted"},
                                     token=self.staff2, headers=etag), 403)
        self.assertEqual(self.rows(), before)
        self.assertEqual(s.sql_value("SELECT count(*) FROM audit_log WHERE action ="
                                     f" 'procedure_report.accept' AND resource_id = '{self.proc2}'"),
                         "0")
        # Its lead does; the ministry's view of it stays as it was.
        r = s.request("PATCH", self.path(self.proc2), {"status": "accepted"}, token=self.lead2,
                      headers=etag)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "accepted")
        self.assertEqual(self.ministry_sees(self.office2), [
            {"procedure_id": self.proc2, "office_id": self.office2, "cycle": self.cycle,
             "finalised_at": final["finalised_at"]}])

    def fixture(self, cases):
        """A procedure of the office with the class's institute (out of cycle, so that the
        office may have several; in phase evaluation) and these case analyses, posted by the
        institute; its id."""
        s = self.stack
        proc = s.sql_value(
            "INSERT INTO procedures (office_id, cycle, out_of_cycle, institute_id, phase)"
            f" VALUES ('{self.office}', '{self.cycle}', true, '{self.institute}', 'evaluation')"
            " RETURNING id")
        for i, kw in enumerate(cases):
            r = s.post("/v1/case-analyses", case(proc, i, **kw), token=self.inst)
            self.assertEqual(r.status, 201, r)
        return proc

    def test_8_the_committee_version_gives_no_hidden_count_away(self):
        s = self.stack
        # Ten case analyses with small counts where a careless table would give them away:
        # results 8, 1, 1 (two hidden 1s are 10 - 8); facts 8 yes, 2 no (no is 10 - 8);
        # 9 yes and 1 not stated; 4 and 5 ratings of intake and 1 case unrated; an own
        # share of 80 % (8 of 10).
        cases = []
        for i in range(10):
            kw = {"child": {"sex": "weiblich" if i < 5 else "maennlich"},
                  "reported_by": ("schule", "polizei_gericht_staatsanwaltschaft", "eltern")[
                      0 if i < 4 else 1 if i < 8 else 2],
                  "process": {"direct_impression": i < 8, "several_professionals":
                              True if i < 9 else None, "child_involved": i < 5},
                  "ratings": {"first_assessment": 2, "child_participation": 3 if i < 2 else 1,
                              **({"intake": 1 if i < 4 else 2} if i < 9 else {})},
                  "learning_themes": ["documentation"] if i == 0 else []}
            if i == 8:
                kw.update(result="akute_gefaehrdung",
                          endangerment_forms=["vernachlaessigung", "sexuelle_gewalt"])
            if i == 9:
                kw.update(result="hilfebedarf_ohne_gefaehrdung", endangerment_forms=[])
                kw["child"]["birth_month"] = "2020-01"
            if i == 0:
                kw["findings"] = FINDINGS
            cases.append(kw)
        proc = self.fixture(cases)
        r = s.post("/v1/procedure-reports", {"procedure_id": proc, "assessment": SECTION,
                                             "strengths": SECTION, "development_needs": SECTION,
                                             "recommendations": SECTION}, token=self.inst)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(s.post("/v1/topics", {"procedure_id": proc, "theme": "documentation",
                                               "priority": "medium", "description": TOPIC},
                                token=self.inst).status, 201)
        self.assertEqual(s.post("/v1/report-comments", {"procedure_id": proc, "text": COMMENT},
                                token=self.staff).status, 201)
        report = s.get(self.path(proc), token=self.staff)
        full = s.get(self.path(proc) + ".html", token=self.staff).body.decode()
        committee = s.get(self.path(proc) + ".html?version=committee",
                          token=self.staff).body.decode()

        # The fixture has the small counts, and the full version prints them.
        self.assertIn(1, [value(c[0]) for _, rows, _ in figures(full) for _, c in rows])
        self.assertNotEqual(derivable(full), [])
        # From the committee version nothing can be worked out: no hidden count, no small sum
        # of hidden counts from the total, no count from a share, a median or an own figure.
        self.assertEqual(derivable(committee), [])
        # What it does print is true.
        self.assertIn("Im Verfahren wurden <b>10</b>", committee)
        lines = {caption: rows for caption, rows, _ in figures(committee)}
        self.assertEqual(lines["Geschlecht des Kindes"],
                         [("männlich", ["5", "50"]), ("weiblich", ["5", "50"])])
        self.assertEqual([c for _, c in lines["Ergebnis der Gefährdungseinschätzung"]],
                         [[".", "."]] * 3)
        self.assertEqual(dict(lines["Fachliches Vorgehen"])["Kind oder Jugendliche(r) beteiligt"],
                         ["5", "5", "\u2013", "50"])
        self.assertIn("(Median): <b>5,5</b>", committee)
        self.assertIn(("Fallanalysen mit Beteiligung des Kindes (%)", "50"), structure(committee))
        self.assertIn(("Fallanalysen mit unmittelbarem Eindruck vom Kind (%)", "."),
                      structure(committee))
        # The own case figures are the procedure's (its JSON, as the office reads it).
        own = {row["indicator"]: row["own"] for row in report.json()["generated"]["structure"]}
        self.assertEqual((own["direct_impression_percent"], own["several_professionals_percent"],
                          own["child_involved_percent"], own["median_days_to_first_contact"]),
                         (80, 100, 50, 5.5))
        self.assertIn(("Fallanalysen mit unmittelbarem Eindruck vom Kind (%)", "80"),
                      structure(full))

        # Free text: findings and topic descriptions in neither rendering nor the report;
        # the authors' sections and the comments in the office's version only.
        for html in (full, committee):
            self.assertNotIn(FINDINGS.split(":")[0], html)
            self.assertNotIn(TOPIC.split(":")[0], html)
            self.assertNotIn(f"FIX-{proc[:8]}", html)
        self.assertNotIn(FINDINGS.split(":")[0], report.body.decode())
        self.assertNotIn(TOPIC.split(":")[0], report.body.decode())
        for text in (SECTION, COMMENT):
            self.assertIn(text, full)
            self.assertNotIn(text.split(":")[0], committee)

        # Two case analyses: their number is hidden too, and with it every count and median.
        few = self.fixture([{}, {"result": "akute_gefaehrdung"}])
        self.assertEqual(s.post("/v1/procedure-reports", {"procedure_id": few},
                                token=self.inst).status, 201)
        committee = s.get(self.path(few) + ".html?version=committee",
                          token=self.staff).body.decode()
        self.assertEqual(derivable(committee), [])
        self.assertIn("Im Verfahren wurden <b>.</b>", committee)
        self.assertIn("(Median): <b>.</b>", committee)
        self.assertEqual({c for _, rows, _ in figures(committee) for _, cells in rows
                          for c in cells if c not in ("\u2013", "x")}, {"."})


if __name__ == "__main__":
    unittest.main()
