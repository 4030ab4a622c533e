"""Case analyses: validation, pseudonymisation, encryption at rest, conflicts, isolation."""

import copy
import json
import subprocess
import unittest

from harness import StackTestCase

FINDINGS = "Hausbesuch erst nach drei Wochen; Dokumentation lückenhaft (Fall Müller)."


def valid(procedure, reference="AZ 51-2022/0815", **over):
    body = {
        "procedure_id": procedure, "case_reference": reference, "selection": "random",
        "closed_month": "2022-05",
        "child": {"sex": "weiblich", "birth_month": "2015-03"},
        "parents_age_group": "27_und_aelter", "reported_by": "schule",
        "result": "latente_gefaehrdung", "endangerment_forms": ["vernachlaessigung"],
        "process": {"days_to_first_contact": 2, "direct_impression": True,
                    "several_professionals": True},
        "ratings": {"intake": 2, "documentation": 3},
        "learning_themes": ["documentation", "childs_voice"],
        "findings": FINDINGS,
    }
    body.update(over)
    return body


class CaseAnalysesTest(StackTestCase):
    seed_demo = True
    default_role = "admin"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        # An office whose procedure is open and assigned to an institute, and another office.
        cls.proc, cls.office, cls.institute = s.open_procedure()
        cls.other_proc, cls.other_office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
            f" AND office_id <> '{cls.office}' AND institute_id IS DISTINCT FROM '{cls.institute}'"
            " ORDER BY id LIMIT 1")[0]
        cls.tok = {
            "office": s.token("office_staff", office=cls.office)[0],
            "lead": s.token("office_lead", office=cls.office)[0],
            "other_office": s.token("office_staff", office=cls.other_office)[0],
            "institute": s.token("institute", institute=cls.institute)[0],
            "advisor": s.token("advisor", region="LVR")[0],
            "ministry": s.token("ministry")[0],
            "admin": s.default_token,
        }

    def create(self, body, token="office", expect=201):
        r = self.stack.post("/v1/case-analyses", body, token=self.tok[token])
        self.assertEqual(r.status, expect, r)
        return r

    def state(self):
        return [self.stack.sql_value(f"SELECT count(*) FROM {t}")
                for t in ("case_analyses", "audit_log", "outbox")]

    def test_create_read_back_pseudonymised_and_decrypted(self):
        r = self.create(valid(self.proc, reference="AZ-read-back"))
        c = r.json()
        self.assertEqual(r.header("Location"), f"/v1/case-analyses/{c['id']}")
        self.assertNotIn("case_reference", c)
        self.assertRegex(c["case_pseudonym"], r"^[0-9a-f]{64}$")
        self.assertEqual(c["findings"], FINDINGS)
        self.assertEqual(c["office_id"], self.office)
        self.assertEqual(c["child"], {"sex": "weiblich", "birth_month": "2015-03",
                                      "age_group": "6_bis_unter_9"})
        self.assertEqual(c["closed_month"], "2022-05")
        self.assertEqual(c["endangerment_forms"], ["vernachlaessigung"])
        self.assertEqual(c["ratings"], {"intake": 2, "documentation": 3})
        self.assertEqual(c["process"]["days_to_first_contact"], 2)
        self.assertIsNone(c["process"]["child_involved"])
        self.assertEqual(self.stack.get(r.header("Location"), token=self.tok["office"]).json(), c)
        # The procedure's institute reads the findings; admin reads the record without them.
        self.assertEqual(self.stack.get(r.header("Location"),
                                        token=self.tok["institute"]).json()["findings"], FINDINGS)
        self.assertIsNone(self.stack.get(r.header("Location")).json()["findings"])

    def test_database_dump_holds_neither_reference_nor_findings(self):
        reference = "Geheim-Az-7781/2022"
        findings = "Einzigartiger Befundtext 4f9a2c mit Namen Schmidt"
        self.create(valid(self.proc, reference=reference, findings=findings))
        dump = subprocess.run(["pg_dump", self.stack.db_url], capture_output=True, text=True,
                              check=True).stdout
        self.assertNotIn(reference, dump)
        self.assertNotIn(findings, dump)
        self.assertNotIn("4f9a2c", dump)
        with open(self.stack.logs + "/api.log") as f:
            log = f.read()
        self.assertNotIn(reference, log)
        self.assertNotIn("4f9a2c", log)

    def test_same_reference_twice_in_one_procedure_is_409_naming_the_first(self):
        first = self.create(valid(self.proc, reference="AZ-dup-1")).json()
        before = self.state()
        r = self.create(valid(self.proc, reference="AZ-dup-1", selection="added_by_office"),
                        token="lead", expect=409)
        self.assertEqual(r.json()["existing_id"], first["id"])
        self.assertEqual(r.header("Location"), f"/v1/case-analyses/{first['id']}")
        self.assertEqual(self.state(), before)
        # The same reference in another office is another case.
        self.create(valid(self.other_proc, reference="AZ-dup-1"), token="other_office")

    def test_uniqueness_is_per_procedure_so_no_caller_learns_of_a_record_it_cannot_read(self):
        # The office analyses a case in its out-of-cycle procedure, which no institute sees.
        side = self.stack.sql_value(
            "INSERT INTO procedures (office_id, cycle, out_of_cycle, phase) SELECT office_id,"
            f" cycle, true, 'case_analysis' FROM procedures WHERE id = '{self.proc}' RETURNING id")
        hidden = self.create(valid(side, reference="AZ-probe")).json()
        before = self.state()
        # The institute sends the same file number into the procedure assigned to it: a dry
        # run answers as for any unknown file number, naming nothing.
        dry = self.stack.post("/v1/case-analyses?dry_run=true",
                              valid(self.proc, reference="AZ-probe"), token=self.tok["institute"])
        self.assertEqual(dry.status, 200, dry)
        self.assertNotIn(hidden["id"], dry.body.decode())
        self.assertIsNone(dry.header("Location"))
        self.assertEqual(self.state(), before)
        # Stored, it is another analysis of the same case (same pseudonym, for the office).
        mine = self.create(valid(self.proc, reference="AZ-probe"), token="institute").json()
        self.assertEqual(mine["case_pseudonym"], hidden["case_pseudonym"])
        self.assertNotEqual(mine["id"], hidden["id"])
        # Within its procedure a second one is 409, naming a record the caller can read.
        dup = self.create(valid(self.proc, reference="AZ-probe"), token="institute", expect=409)
        self.assertEqual(dup.json()["existing_id"], mine["id"])
        self.assertEqual(self.stack.get(dup.header("Location"),
                                        token=self.tok["institute"]).status, 200)
        self.assertEqual(self.stack.get(f"/v1/case-analyses/{hidden['id']}",
                                        token=self.tok["institute"]).status, 404)

    def test_dry_run_validates_and_stores_nothing(self):
        before = self.state()
        r = self.stack.post("/v1/case-analyses?dry_run=true", valid(self.proc, reference="AZ-dry"),
                            token=self.tok["office"])
        self.assertEqual(r.status, 200, r)
        would = r.json()  # the record as it would be stored; nothing is kept
        self.assertNotIn("case_reference", would)
        self.assertRegex(would["case_pseudonym"], r"^[0-9a-f]{64}$")
        self.assertEqual((would["findings"], would["version"]), (FINDINGS, 1))
        self.assertIsNone(r.header("Location"))
        self.assertIsNone(r.header("ETag"))
        self.assertEqual(self.state(), before)
        self.assertProblem(self.stack.get(f"/v1/case-analyses/{would['id']}",
                                          token=self.tok["office"]), 404)

    def test_isolation_between_offices_and_roles(self):
        c = self.create(valid(self.proc, reference="AZ-iso")).json()
        path = f"/v1/case-analyses/{c['id']}"
        self.assertProblem(self.stack.get(path, token=self.tok["other_office"]), 404)
        self.assertProblem(self.stack.get(path, token=self.tok["advisor"]), 403)
        self.assertProblem(self.stack.get(path, token=self.tok["ministry"]), 403)
        # Writing into another office's procedure: as if it did not exist.
        before = self.state()
        r = self.stack.post("/v1/case-analyses", valid(self.proc, reference="AZ-foreign"),
                            token=self.tok["other_office"])
        self.assertProblem(r, 422, errors=[{"pointer": "/procedure_id", "code": "not_found"}])
        self.assertEqual(self.state(), before)
        for role in ("advisor", "ministry", "admin"):
            with self.subTest(role=role):
                r = self.stack.post("/v1/case-analyses", valid(self.proc, reference="AZ-x"),
                                    token=self.tok[role])
                self.assertProblem(r, 403)
        listed = self.stack.get("/v1/case-analyses?limit=500",
                                token=self.tok["other_office"]).json()["items"]
        self.assertTrue(all(i["office_id"] == self.other_office for i in listed))

    def test_outside_reads_are_audited(self):
        c = self.create(valid(self.proc, reference="AZ-audit")).json()
        self.stack.get(f"/v1/case-analyses/{c['id']}", token=self.tok["institute"])
        rows = self.stack.sql("SELECT role, office_id FROM audit_log WHERE action ="
                              f" 'case_analysis.read' AND resource_id = '{c['id']}'")
        self.assertEqual(rows, [["institute", self.office]])
        created = self.stack.sql_value("SELECT count(*) FROM audit_log WHERE action ="
                                       f" 'case_analysis.create' AND resource_id = '{c['id']}'")
        self.assertEqual(created, "1")
        self.assertEqual(self.stack.sql_value(
            "SELECT count(*) FROM outbox WHERE kind = 'office_changed'"
            f" AND payload->>'office_id' = '{self.office}'") != "0", True)

    def test_list_filters_and_pages_by_update_time(self):
        ids = [self.create(valid(self.proc, reference=f"AZ-list-{i}")).json()["id"]
               for i in range(5)]
        seen, cursor = [], None
        while True:
            q = f"/v1/case-analyses?procedure_id={self.proc}&limit=2"
            r = self.stack.get(q + (f"&cursor={cursor}" if cursor else ""), token=self.tok["office"])
            self.assertEqual(r.status, 200, r)
            seen += [c["id"] for c in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        self.assertTrue(set(ids) <= set(seen))
        self.assertEqual(len(seen), len(set(seen)))
        future = self.stack.get("/v1/case-analyses?updated_since=2099-01-01T00:00:00Z",
                                token=self.tok["office"]).json()
        self.assertEqual(future["items"], [])

    def test_bad_inputs_answer_422_with_pointer_and_code_and_store_nothing(self):
        p = self.proc
        child = {"sex": "weiblich", "birth_month": "2015-03"}
        cases = [
            ({k: v for k, v in valid(p).items() if k != "procedure_id"},
             [("/procedure_id", "required")]),
            (valid("not-a-uuid"), [("/procedure_id", "format")]),
            (valid("00000000-0000-4000-8000-000000000000"), [("/procedure_id", "not_found")]),
            (valid(p, case_reference=""), [("/case_reference", "length")]),
            (valid(p, case_reference="x" * 101), [("/case_reference", "length")]),
            (valid(p, case_reference=17), [("/case_reference", "type")]),
            (valid(p, selection="gezielt"), [("/selection", "enum")]),
            (valid(p, closed_month="2022-13"), [("/closed_month", "format")]),
            (valid(p, closed_month="2022/05"), [("/closed_month", "format")]),
            (valid(p, closed_month="2010-01", child={"sex": "weiblich", "birth_month": "2005-01"}),
             [("/closed_month", "range")]),  # before the procedure's window
            (valid(p, closed_month="2028-07"), [("/closed_month", "range")]),  # after the cycle
            (valid(p, closed_month="2027-01"), [("/closed_month", "range")]),  # in the future
            (valid(p, child={"sex": "x", "birth_month": "2015-03"}), [("/child/sex", "enum")]),
            (valid(p, child={"birth_month": "2015-03"}), [("/child/sex", "required")]),
            (valid(p, child={**child, "name": "Lea"}), [("/child/name", "unknown_field")]),
            (valid(p, child={"sex": "weiblich", "birth_month": "2003-01"}),
             [("/child/birth_month", "range")]),
            (valid(p, child={"sex": "weiblich", "birth_month": "2023-01"}),
             [("/child/birth_month", "range")]),
            (valid(p, child="weiblich"), [("/child", "type")]),
            (valid(p, parents_age_group="alt"), [("/parents_age_group", "enum")]),
            (valid(p, reported_by="nachbar"), [("/reported_by", "enum")]),
            (valid(p, result="gefaehrdet"), [("/result", "enum")]),
            (valid(p, result="akute_gefaehrdung", endangerment_forms=[]),
             [("/endangerment_forms", "required")]),
            ({k: v for k, v in valid(p).items() if k != "endangerment_forms"},
             [("/endangerment_forms", "required")]),
            (valid(p, result="hilfebedarf_ohne_gefaehrdung"),
             [("/endangerment_forms", "forbidden")]),
            (valid(p, endangerment_forms=["vernachlaessigung", "vernachlaessigung"]),
             [("/endangerment_forms/1", "duplicate")]),
            (valid(p, endangerment_forms=["schlagen"]), [("/endangerment_forms/0", "enum")]),
            (valid(p, process={"direct_impression": True}),
             [("/process/days_to_first_contact", "required")]),
            (valid(p, process={"days_to_first_contact": -1, "direct_impression": True}),
             [("/process/days_to_first_contact", "range")]),
            (valid(p, process={"days_to_first_contact": 1.5, "direct_impression": True}),
             [("/process/days_to_first_contact", "type")]),
            (valid(p, process={"days_to_first_contact": 1, "direct_impression": "ja"}),
             [("/process/direct_impression", "type")]),
            (valid(p, ratings={"intake": 5}), [("/ratings/intake", "range")]),
            (valid(p, ratings={"intake": 0}), [("/ratings/intake", "range")]),
            (valid(p, ratings={"vibes": 2}), [("/ratings/vibes", "unknown_field")]),
            (valid(p, learning_themes=["astrology"]), [("/learning_themes/0", "enum")]),
            (valid(p, findings="x" * 20001), [("/findings", "length")]),
            (valid(p, extra=True), [("/extra", "unknown_field")]),
            # Every bad field at once, not only the first.
            (valid(p, selection="x", result="y", ratings={"intake": 9}),
             [("/selection", "enum"), ("/result", "enum"), ("/ratings/intake", "range")]),
        ]
        before = self.state()
        for body, expected in cases:
            with self.subTest(body={k: v for k, v in body.items() if k != "findings"}):
                r = self.stack.post("/v1/case-analyses", body, token=self.tok["office"])
                self.assertProblem(r, 422, errors=[{"pointer": ptr, "code": code}
                                                   for ptr, code in expected])
                self.assertEqual(self.state(), before)


class CaseAnalysisUpdateTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office, cls.institute = s.open_procedure()
        cls.staff = s.token("office_staff", office=cls.office)[0]
        cls.lead = s.token("office_lead", office=cls.office)[0]
        cls.institute_token = s.token("institute", institute=cls.institute)[0]

    def create(self, ref):
        r = self.stack.post("/v1/case-analyses", valid(self.proc, reference=ref), token=self.staff)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("ETag"), '"v1"')
        return r.header("Location")

    def patch(self, path, body, etag, token=None):
        headers = {"If-Match": etag} if etag else {}
        return self.stack.request("PATCH", path, body=body, headers=headers,
                                  token=token or self.staff)

    def row(self, path):
        return self.stack.sql(f"SELECT version, locked, result, findings_enc FROM case_analyses"
                              f" WHERE id = '{path.rsplit('/', 1)[1]}'")

    def test_merge_patch_updates_fields_and_reencrypts_findings(self):
        path = self.create("UPD-1")
        r = self.patch(path, {"result": "akute_gefaehrdung",
                              "endangerment_forms": ["sexuelle_gewalt"],
                              "process": {"child_involved": True},
                              "ratings": {"intake": None, "cooperation": 1},
                              "findings": "Neuer Befund (geändert)."}, '"v1"')
        self.assertEqual(r.status, 200, r)
        c = r.json()
        self.assertEqual(r.header("ETag"), '"v2"')
        self.assertEqual((c["result"], c["endangerment_forms"]),
                         ("akute_gefaehrdung", ["sexuelle_gewalt"]))
        self.assertEqual(c["process"]["child_involved"], True)
        self.assertEqual(c["process"]["days_to_first_contact"], 2)  # untouched
        self.assertEqual(c["ratings"], {"documentation": 3, "cooperation": 1})
        self.assertEqual(c["findings"], "Neuer Befund (geändert).")
        self.assertEqual(self.stack.get(path, token=self.institute_token).json()["findings"],
                         "Neuer Befund (geändert).")

    def test_update_rules_and_preconditions_change_nothing(self):
        path = self.create("UPD-2")
        self.other_proc = self.stack.sql_value(
            f"SELECT id FROM procedures WHERE office_id = '{self.office}' AND id <> '{self.proc}'"
            " LIMIT 1") or "00000000-0000-4000-8000-000000000000"
        before = self.row(path)
        cases = [
            ({"result": "hilfebedarf_ohne_gefaehrdung"}, '"v1"', 422,
             [{"pointer": "/endangerment_forms", "code": "forbidden"}]),
            ({"case_reference": "other"}, '"v1"', 422,
             [{"pointer": "/case_reference", "code": "immutable"}]),
            ({"procedure_id": self.other_proc}, '"v1"', 422,
             [{"pointer": "/procedure_id", "code": "immutable"}]),
            ({"procedure_id": "not-a-uuid"}, '"v1"', 422,
             [{"pointer": "/procedure_id", "code": "immutable"}]),
            ({"child": {"birth_month": "1990-01"}}, '"v1"', 422,
             [{"pointer": "/child/birth_month", "code": "range"}]),
            # A merge patch's null removes a member: only where the field may be null.
            ({"selection": None}, '"v1"', 422, [{"pointer": "/selection", "code": "type"}]),
            ({"closed_month": None}, '"v1"', 422, [{"pointer": "/closed_month", "code": "type"}]),
            ({"closed_month": [1.5]}, '"v1"', 422,
             [{"pointer": "/closed_month", "code": "type"}]),
            ({"child": None}, '"v1"', 422, [{"pointer": "/child", "code": "type"}]),
            ({"child": {"sex": None, "name": None}}, '"v1"', 422,
             [{"pointer": "/child/sex", "code": "type"},
              {"pointer": "/child/name", "code": "unknown_field"}]),
            ({"nickname": None}, '"v1"', 422, [{"pointer": "/nickname", "code": "unknown_field"}]),
            ({"process": 7}, '"v1"', 422, [{"pointer": "/process", "code": "type"}]),
            ({"learning_themes": "documentation"}, '"v1"', 422,
             [{"pointer": "/learning_themes", "code": "type"}]),
            # Only the office lead locks (a role that may not: 403, not 422).
            ({"locked": True}, '"v1"', 403, None),
            ({"result": "latente_gefaehrdung"}, None, 428, None),
            ({"result": "latente_gefaehrdung"}, '"v7"', 412, None),
        ]
        for body, etag, status, errors in cases:
            with self.subTest(body=body, etag=etag):
                self.assertProblem(self.patch(path, body, etag), status, errors=errors)
        self.assertEqual(self.row(path), before)

    def test_office_lead_locks_and_a_locked_analysis_is_read_only(self):
        path = self.create("UPD-3")
        # Nothing to change: answered with the record as it is, version unchanged.
        same = self.patch(path, {"locked": False}, '"v1"', token=self.lead)
        self.assertEqual((same.status, same.header("ETag")), (200, '"v1"'), same)
        r = self.patch(path, {"locked": True}, '"v1"', token=self.lead)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["locked"])
        for token in (self.staff, self.lead, self.institute_token):
            self.assertProblem(self.patch(path, {"result": "akute_gefaehrdung",
                                                 "endangerment_forms": ["vernachlaessigung"]},
                                          '"v2"', token=token), 409)
        self.assertEqual(self.row(path)[0][:2], ["2", "t"])
        actions = self.stack.sql("SELECT action FROM audit_log WHERE resource_id ="
                                 f" '{path.rsplit('/', 1)[1]}' ORDER BY id")
        self.assertEqual([a for (a,) in actions], ["case_analysis.create", "case_analysis.lock"])


class CaseAnalysesBatchTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proc, cls.office = cls.stack.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed' ORDER BY id LIMIT 1")[0]
        cls.token = cls.stack.token("office_staff", office=cls.office)[0]

    def batch(self, prefix, n=1000, bad=(17, 500, 999)):
        items = [valid(self.proc, reference=f"{prefix}-{i}", findings=None) for i in range(n)]
        if 17 in bad:
            items[17]["result"] = "vielleicht"
        if 500 in bad:
            items[500]["child"] = {"sex": "divers", "birth_month": "2001-01"}
        if 999 in bad:
            items[999]["hobby"] = "x"
        return items

    def count(self):
        return int(self.stack.sql_value(f"SELECT count(*) FROM case_analyses"
                                        f" WHERE office_id = '{self.office}'"))

    def post(self, items, query=""):
        return self.stack.post(f"/v1/case-analyses:batch{query}", {"items": items},
                               token=self.token, timeout=120)

    def test_batch_of_1000_with_3_bad_is_rejected_whole(self):
        before = self.count()
        r = self.post(self.batch("ATOM"))
        body = self.assertProblem(r, 422)
        self.assertEqual((body["received"], body["created"], body["rejected"]), (1000, 0, 3))
        got = [(e["index"], [(x["pointer"], x["code"]) for x in e["errors"]])
               for e in body["rejected_items"]]
        self.assertEqual(got, [(17, [("/items/17/result", "enum")]),
                               (500, [("/items/500/child/birth_month", "range")]),
                               (999, [("/items/999/hobby", "unknown_field")])])
        self.assertEqual(self.count(), before)

    def test_batch_best_effort_creates_997_and_reports_3(self):
        before = self.count()
        r = self.post(self.batch("BEST"), "?atomic=false")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual((body["created"], body["rejected"]), (997, 3))
        self.assertEqual([e["index"] for e in body["rejected_items"]], [17, 500, 999])
        self.assertEqual(len(body["created_ids"]), 997)
        self.assertEqual(self.count(), before + 997)
        # One office_changed event for the whole batch, one audit entry for its office,
        # carrying the office and every id, so the office's audit trail finds them.
        row = self.stack.sql(
            "SELECT office_id, details->'ids' FROM audit_log"
            " WHERE action = 'case_analysis.batch_create' ORDER BY id DESC LIMIT 1")[0]
        self.assertEqual(row[0], self.office)
        self.assertEqual(sorted(json.loads(row[1])), sorted(body["created_ids"]))
        trail = self.stack.get(f"/v1/audit?office_id={self.office}"
                               "&action=case_analysis.batch_create&limit=100")
        self.assertEqual(trail.status, 200, trail)
        self.assertIn(sorted(body["created_ids"]),
                      [sorted(e["details"]["ids"]) for e in trail.json()["items"]])

    def test_clean_batch_is_201_and_duplicates_within_a_batch_conflict(self):
        items = self.batch("CLEAN", n=3, bad=())
        r = self.post(items)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["created"], 3)
        again = self.batch("CLEAN2", n=2, bad=())
        again[1]["case_reference"] = again[0]["case_reference"]
        body = self.assertProblem(self.post(again), 422)
        self.assertEqual(body["rejected_items"][0]["index"], 1)
        self.assertEqual(body["rejected_items"][0]["errors"][0]["code"], "conflict")

    def test_malformed_batches(self):
        before = self.count()
        cases = [({}, [{"pointer": "/items", "code": "required"}]),
                 ({"items": {}}, [{"pointer": "/items", "code": "type"}]),
                 ({"items": []}, [{"pointer": "/items", "code": "length"}]),
                 ({"items": [valid(self.proc)] * 1001}, [{"pointer": "/items", "code": "length"}]),
                 ({"items": [valid(self.proc)], "mode": "x"},
                  [{"pointer": "/mode", "code": "unknown_field"}])]
        for body, errors in cases:
            with self.subTest(errors=errors):
                r = self.stack.post("/v1/case-analyses:batch", body, token=self.token)
                self.assertProblem(r, 422, errors=errors)
        self.assertProblem(self.stack.post("/v1/case-analyses:batch?atomic=yes",
                                           {"items": [valid(self.proc)]}, token=self.token),
                           400, errors=[{"parameter": "atomic", "code": "enum"}])
        r = self.stack.post("/v1/case-analyses:batch", {"items": [1]}, token=self.token)
        body = self.assertProblem(r, 422)
        self.assertEqual(body["rejected_items"][0]["errors"][0],
                         {"pointer": "/items/0", "code": "type", "message": "must be an object"})
        self.assertEqual(self.count(), before)


if __name__ == "__main__":
    unittest.main()
