"""CSV exports at <list>.csv: RFC 4180 and the Excel dialect, fixed columns, pages that join."""

import csv
import io
import unittest

from harness import StackTestCase

CSV_TYPE = "text/csv; charset=utf-8; header=present"


def rows_of(r, excel=False):
    text = r.body[3:].decode("utf-8") if excel else r.body.decode("utf-8")
    return list(csv.reader(io.StringIO(text), delimiter=";" if excel else ","))


class CsvExportTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office = s.sql("SELECT id, office_id FROM procedures WHERE phase <>"
                                     " 'completed' ORDER BY id LIMIT 1")[0]
        cls.token = s.token("office_staff", office=cls.office)[0]

    def test_offices_as_rfc4180_csv(self):
        r = self.stack.get("/v1/offices.csv?limit=500&region=LVR")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), CSV_TYPE)
        self.assertEqual(r.header("Content-Disposition"), 'attachment; filename="offices.csv"')
        text = r.body.decode("utf-8")
        self.assertIn("\r\n", text)
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(len(rows), 95)
        self.assertEqual(list(rows[0])[:5], ["id", "name", "kind", "state", "region"])
        self.assertEqual(rows[0]["id"], "demo-lvr-001")
        self.assertEqual({row["synthetic"] for row in rows}, {"true"})
        # Same data as the JSON list.
        js = self.stack.get("/v1/offices?limit=500&region=LVR").json()["items"]
        self.assertEqual([row["name"] for row in rows], [o["name"] for o in js])

    def test_paging_links_stay_on_the_csv_path(self):
        r = self.stack.get("/v1/offices.csv?limit=10&region=LWL")
        self.assertEqual(len(rows_of(r)), 11)
        link = r.header("Link")
        self.assertRegex(link, r'^</v1/offices\.csv\?limit=10&region=LWL&cursor=[^>]+>; rel="next"$')
        nxt = self.stack.get(link[1:link.index(">")])
        self.assertEqual(nxt.status, 200, nxt)
        self.assertEqual(rows_of(nxt)[0], rows_of(r)[0])  # the same header row

    def test_columns_do_not_depend_on_the_rows_so_pages_concatenate(self):
        """Defect d: limit=1 gave 38 columns, the next page 39; findings moved about."""
        from test_case_analyses import valid
        sparse = valid(self.proc, reference="CSV-cols-1", findings=None, ratings={})
        full = valid(self.proc, reference="CSV-cols-2",
                     ratings={"help_planning": 2, "intake": 1, "case_transfer": 4})
        for body in (sparse, full):
            self.assertEqual(self.stack.post("/v1/case-analyses", body, token=self.token).status,
                             201)
        pages, cursor = [], None
        while True:
            q = f"/v1/case-analyses.csv?procedure_id={self.proc}&limit=1"
            r = self.stack.get(q + (f"&cursor={cursor}" if cursor else ""), token=self.token)
            self.assertEqual(r.status, 200, r)
            pages.append(rows_of(r))
            link = r.header("Link")
            if not link:
                break
            cursor = link.split("cursor=")[1].split(">")[0]
        headers = {tuple(p[0]) for p in pages}
        self.assertEqual(len(headers), 1, "every page has the same columns")
        header = pages[0][0]
        self.assertEqual(len(header), 40)
        self.assertEqual(header.index("findings"), len(header) - 5)
        self.assertLess(header.index("ratings.intake"), header.index("ratings.help_planning"))
        self.assertTrue(all(len(row) == len(header) for p in pages for row in p))

    def test_excel_dialect(self):
        r = self.stack.get("/v1/offices.csv?dialect=excel&limit=3")
        body = r.body
        self.assertTrue(body.startswith(b"\xef\xbb\xbf"))
        rows = rows_of(r, excel=True)
        self.assertEqual(rows[0][:2], ["id", "name"])
        self.assertEqual(len(rows), 4)

    def test_nested_objects_and_arrays_flatten_and_formulas_are_defused(self):
        from test_case_analyses import valid
        body = valid(self.proc, reference="CSV-1", findings="=HYPERLINK(\"x\"); Komma, \"Zitat\"",
                     learning_themes=["documentation", "childs_voice"])
        created = self.stack.post("/v1/case-analyses", body, token=self.token)
        self.assertEqual(created.status, 201, created)
        cid = created.json()["id"]
        plain = self.stack.get(f"/v1/case-analyses.csv?procedure_id={self.proc}&limit=500",
                               token=self.token)
        self.assertEqual(plain.header("Content-Disposition"),
                         'attachment; filename="case-analyses.csv"')
        row = next(r for r in csv.DictReader(io.StringIO(plain.body.decode())) if r["id"] == cid)
        self.assertEqual(row["child.sex"], "weiblich")
        self.assertEqual(row["learning_themes"], "documentation|childs_voice")
        self.assertEqual(row["findings"], "'" + body["findings"])  # not run as a formula
        excel = self.stack.get(f"/v1/case-analyses.csv?procedure_id={self.proc}&dialect=excel"
                               "&limit=500", token=self.token)
        row = next(r for r in csv.DictReader(io.StringIO(excel.body[3:].decode()), delimiter=";")
                   if r["id"] == cid)
        self.assertEqual(row["findings"], "'" + body["findings"])

    def test_formula_cells_are_defused_in_both_dialects(self):
        # Every text cell a spreadsheet would run as a formula starts with ' in plain
        # RFC 4180 as in the excel dialect; other text and numbers stay as they are.
        from test_case_analyses import valid
        payloads = {"=1+1": True, "+1+1": True, "-1+1": True, "@SUM(A1:A2)": True,
                    "\t=1+1": True, "\r=1+1": True, "=cmd|' /C calc'!A0": True,
                    "Befund 1": False, "1+1": False, "'=quoted": False}
        ids = {}
        for n, (text, _) in enumerate(payloads.items()):
            created = self.stack.post("/v1/case-analyses",
                                      valid(self.proc, reference=f"CSV-F{n}", findings=text),
                                      token=self.token)
            self.assertEqual(created.status, 201, created)
            ids[created.json()["id"]] = text
        for dialect in ("rfc4180", "excel"):
            r = self.stack.get(f"/v1/case-analyses.csv?procedure_id={self.proc}"
                               f"&dialect={dialect}&limit=500", token=self.token)
            self.assertEqual(r.status, 200, r)
            text = r.body.decode("utf-8-sig")
            rows = {row["id"]: row for row in csv.DictReader(
                io.StringIO(text, newline=""), delimiter=";" if dialect == "excel" else ",")}
            for cid, payload in ids.items():
                with self.subTest(dialect=dialect, payload=payload):
                    expected = "'" + payload if payloads[payload] else payload
                    self.assertEqual(rows[cid]["findings"], expected)
            # Days to first contact (a number) is never prefixed.
            self.assertTrue(all(row["process.days_to_first_contact"].isdigit()
                                for row in rows.values()))

    def test_every_list_has_its_csv(self):
        for path, first in [("/v1/procedures.csv", "id"), ("/v1/structure-surveys.csv", "id"),
                            ("/v1/topics.csv", "id"), ("/v1/reports.csv", "id"),
                            ("/v1/audit.csv", "id")]:
            with self.subTest(path=path):
                r = self.stack.get(path + "?limit=5")
                self.assertEqual((r.status, r.header("Content-Type")), (200, CSV_TYPE), r)
                self.assertEqual(rows_of(r)[0][0], first)
        audit = list(csv.DictReader(io.StringIO(self.stack.get("/v1/audit.csv?limit=5")
                                                .body.decode())))
        self.assertTrue(all(row["details"].startswith("{") for row in audit))

    def test_content_negotiation(self):
        # The JSON list answers JSON; asking it for CSV only is 406, naming what it has.
        r = self.stack.get("/v1/offices?limit=1", headers={"Accept": "text/csv"})
        self.assertProblem(r, 406, detail="This resource is available as application/json only.")
        for accept in ("application/json", "*/*", "application/*", "text/csv;q=0.1, application/json",
                       "text/html, application/json;q=0.5"):
            with self.subTest(accept=accept):
                r = self.stack.get("/v1/offices?limit=1", headers={"Accept": accept})
                self.assertEqual((r.status, r.header("Content-Type")),
                                 (200, "application/json; charset=utf-8"), r)
        self.assertProblem(self.stack.get("/v1/offices?limit=1",
                                          headers={"Accept": "application/json;q=0"}), 406)
        self.assertProblem(self.stack.get("/v1/offices.csv?limit=1",
                                          headers={"Accept": "application/json"}), 406)
        r = self.stack.get("/v1/offices.csv?limit=1", headers={"Accept": "text/*"})
        self.assertEqual(r.status, 200, r)

    def test_bad_format_parameters(self):
        for path, errors in [("/v1/offices?format=csv",
                              [{"parameter": "format", "code": "unknown_parameter"}]),
                             ("/v1/offices.csv?dialect=libre",
                              [{"parameter": "dialect", "code": "enum"}]),
                             ("/v1/offices?dialect=excel",
                              [{"parameter": "dialect", "code": "unknown_parameter"}])]:
            with self.subTest(path=path):
                self.assertProblem(self.stack.get(path), 400, errors=errors)


if __name__ == "__main__":
    unittest.main()
