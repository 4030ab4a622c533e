"""CSV export of lists: RFC 4180 and the Excel dialect for German spreadsheets."""

import csv
import io
import unittest

from harness import StackTestCase


class CsvExportTest(StackTestCase):
    seed_demo = True

    def test_offices_as_rfc4180_csv(self):
        r = self.stack.get("/v1/offices?format=csv&limit=500&region=LVR")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "text/csv; charset=utf-8; header=present")
        text = r.body.decode("utf-8")
        self.assertIn("\r\n", text)
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(len(rows), 95)
        self.assertEqual(list(rows[0])[:4], ["id", "name", "kind", "region"])
        self.assertEqual(rows[0]["id"], "demo-lvr-001")
        self.assertEqual({row["synthetic"] for row in rows}, {"true"})
        # Same data as the JSON list.
        js = self.stack.get("/v1/offices?limit=500&region=LVR").json()["items"]
        self.assertEqual([row["name"] for row in rows], [o["name"] for o in js])

    def test_accept_header_and_paging_links(self):
        r = self.stack.get("/v1/offices?limit=10", headers={"Accept": "text/csv"})
        self.assertTrue(r.header("Content-Type").startswith("text/csv"))
        self.assertEqual(len(list(csv.reader(io.StringIO(r.body.decode())))), 11)
        self.assertIsNotNone(r.header("Link"))

    def test_excel_dialect(self):
        r = self.stack.get("/v1/offices?format=csv&dialect=excel&limit=3")
        body = r.body
        self.assertTrue(body.startswith(b"\xef\xbb\xbf"))
        rows = list(csv.reader(io.StringIO(body[3:].decode("utf-8")), delimiter=";"))
        self.assertEqual(rows[0][:2], ["id", "name"])
        self.assertEqual(len(rows), 4)

    def test_nested_objects_and_arrays_flatten_and_formulas_are_defused(self):
        proc, office = self.stack.sql("SELECT id, office_id FROM procedures WHERE phase <>"
                                      " 'completed' ORDER BY id LIMIT 1")[0]
        token = self.stack.token("office_staff", office=office)[0]
        from test_case_analyses import valid
        body = valid(proc, reference="CSV-1", findings="=HYPERLINK(\"x\"); Komma, \"Zitat\"",
                     learning_themes=["documentation", "childs_voice"])
        created = self.stack.post("/v1/case-analyses", body, token=token)
        self.assertEqual(created.status, 201, created)
        cid = created.json()["id"]
        plain = self.stack.get(f"/v1/case-analyses?procedure={proc}&format=csv&limit=500",
                               token=token)
        row = next(r for r in csv.DictReader(io.StringIO(plain.body.decode())) if r["id"] == cid)
        self.assertEqual(row["child.sex"], "weiblich")
        self.assertEqual(row["learning_themes"], "documentation|childs_voice")
        self.assertEqual(row["findings"], body["findings"])  # RFC 4180 keeps text as is
        excel = self.stack.get(f"/v1/case-analyses?procedure={proc}&format=csv&dialect=excel"
                               "&limit=500", token=token)
        row = next(r for r in csv.DictReader(io.StringIO(excel.body[3:].decode()), delimiter=";")
                   if r["id"] == cid)
        self.assertEqual(row["findings"], "'" + body["findings"])  # not run as a formula

    def test_bad_format_parameters(self):
        for query, errors in [("format=xml", [{"parameter": "format", "code": "enum"}]),
                              ("format=csv&dialect=libre",
                               [{"parameter": "dialect", "code": "enum"}]),
                              ("dialect=excel", [{"parameter": "dialect", "code": "forbidden"}])]:
            with self.subTest(query=query):
                self.assertProblem(self.stack.get("/v1/offices?" + query), 400, errors=errors)


if __name__ == "__main__":
    unittest.main()
