"""GET /v1/offices and /v1/offices/{id} on the demo state: pagination and bad input."""

import base64
import re
import unittest

from harness import StackTestCase


def cursor(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class OfficesTest(StackTestCase):
    seed_demo = True

    def walk(self, first, follow="next_cursor"):
        seen, path, pages = [], first, 0
        while path:
            r = self.stack.get(path)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            seen += [o["id"] for o in body["items"]]
            pages += 1
            if follow == "link":
                link = r.header("Link")
                self.assertEqual(link is None, body["next_cursor"] is None)
                path = re.match(r"<([^>]+)>; rel=\"next\"", link).group(1) if link else None
            else:
                path = (f"{first}&cursor={body['next_cursor']}"
                        if body["next_cursor"] else None)
        return seen, pages

    def test_next_cursor_walk_yields_all_186_exactly_once(self):
        seen, pages = self.walk("/v1/offices?limit=50&state=NW")
        self.assertEqual(len(seen), 186)
        self.assertEqual(len(set(seen)), 186)
        self.assertEqual(pages, 4)
        self.assertEqual(seen, sorted(seen))
        # Without the filter the directory also holds the demo's 30 offices of other Länder
        # (nationwide programmes, docs/programmes.md), in the same id order.
        every, _ = self.walk("/v1/offices?limit=50")
        self.assertEqual(len(every), 216)
        self.assertEqual(every, sorted(every))
        self.assertEqual(set(every) - set(seen), {i for (i,) in self.stack.sql(
            "SELECT id FROM offices_elsewhere")})

    def test_link_header_walk_keeps_filters(self):
        seen, pages = self.walk("/v1/offices?limit=20&region=LWL", follow="link")
        self.assertEqual(len(seen), 91)
        self.assertEqual(len(set(seen)), 91)
        self.assertTrue(all(s.startswith("demo-lwl-") for s in seen))

    def test_default_limit_is_50(self):
        body = self.stack.get("/v1/offices").json()
        self.assertEqual(len(body["items"]), 50)
        self.assertIsNotNone(body["next_cursor"])

    def test_filter_by_kind_and_region(self):
        body = self.stack.get("/v1/offices?region=LVR&kind=kreis&limit=500").json()
        self.assertEqual(len(body["items"]), 12)
        self.assertIsNone(body["next_cursor"])

    def test_get_one_office(self):
        r = self.stack.get("/v1/offices/demo-lvr-001")
        self.assertEqual(r.status, 200)
        o = r.json()
        self.assertEqual(o["id"], "demo-lvr-001")
        self.assertEqual(o["region"], "LVR")
        self.assertEqual(o["kind"], "kreisfreie_stadt")
        self.assertTrue(o["synthetic"])
        self.assertIn("(synthetisch)", o["name"])
        self.assertRegex(o["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    def test_unknown_office_is_404(self):
        for oid in ("demo-lvr-999", "UPPER", "%C3%28", "x" * 65, "a%00b"):
            with self.subTest(oid=oid):
                self.assertProblem(self.stack.get(f"/v1/offices/{oid}"), 404)

    def test_bad_query_parameters_are_400_naming_each(self):
        cases = [
            ("limit=0", [{"parameter": "limit", "code": "range"}]),
            ("limit=501", [{"parameter": "limit", "code": "range"}]),
            ("limit=-1", [{"parameter": "limit", "code": "range"}]),
            ("limit=abc", [{"parameter": "limit", "code": "range"}]),
            ("limit=", [{"parameter": "limit", "code": "range"}]),
            ("limit=10x", [{"parameter": "limit", "code": "range"}]),
            ("cursor=zzz", [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("cursor=" + cursor('["a","b"]'), [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("cursor=" + cursor('{"k":1}'), [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("cursor=" + cursor("[1]"), [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("cursor=" + cursor('["x"'), [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("cursor=%21%21", [{"parameter": "cursor", "code": "invalid_cursor"}]),
            ("region=NRW", [{"parameter": "region", "code": "enum"}]),
            ("kind=dorf", [{"parameter": "kind", "code": "enum"}]),
            ("foo=1", [{"parameter": "foo", "code": "unknown_parameter"}]),
            ("limit=5&limit=6", [{"parameter": "limit", "code": "duplicate_parameter"}]),
            ("foo=1&limit=0&cursor=zzz", [{"parameter": "foo", "code": "unknown_parameter"},
                                          {"parameter": "limit", "code": "range"},
                                          {"parameter": "cursor", "code": "invalid_cursor"}]),
        ]
        for query, errors in cases:
            with self.subTest(query=query):
                self.assertProblem(self.stack.get("/v1/offices?" + query), 400, errors=errors)

    def test_boundary_limits_are_accepted(self):
        self.assertEqual(len(self.stack.get("/v1/offices?limit=1").json()["items"]), 1)
        self.assertEqual(len(self.stack.get("/v1/offices?limit=500&state=NW").json()["items"]),
                         186)


if __name__ == "__main__":
    unittest.main()
