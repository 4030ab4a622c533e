"""The API contract: proto/openapi.yaml against the code, the server and every recorded answer.

- SpecTest: the document itself. Every route of `kqe-api --permissions` (the route table)
  is an operation with the same permission and roles, and every operation is a route; every
  example validates against its schema; the files in proto/examples/ are the spec's request
  examples; the error answers every operation must document are there.
- LiveContractTest: GET /openapi.json and GET /docs as the binary serves them; the example
  files accepted by a real server; every code-list enum of the spec equal to what
  GET /v1/codelists serves.
- RecordedResponsesTest: every response the integration tests received (harness.py records
  them into $KQE_TEST_LOG_DIR/contract) is documented for its operation — status, content
  type, headers, body schema (JSON Schema 2020-12, $refs resolved inside the spec) — and every
  operation of the spec was exercised, with at least one success. ctest runs this module
  after all the others (fixture kqe_contract_recording in tests/CMakeLists.txt); an empty or
  partial recording fails.

unittest runs the classes in name order (Live…, Recorded…, Spec…): the live requests of this
module are part of the recording the second class checks.
"""

import base64
import glob
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.parse

import jsonschema

from harness import BIN, CONTRACT_DIR, REPO, StackTestCase

sys.path.insert(0, os.path.join(REPO, "scripts"))
from openapi_docs import deref, load_spec, operations  # noqa: E402

SPEC = load_spec(os.path.join(REPO, "proto/openapi.yaml"))
ROUTER = SPEC["x-kqe-router-answers"]
EXAMPLES_DIR = os.path.join(REPO, "proto/examples")
ROLES = ["office_staff", "office_lead", "institute", "advisor", "ministry", "admin",
         "provider_staff", "programme_team", "professional"]
JSON_TYPES = ("application/json", "application/problem+json")
# Headers with a meaning for clients: if an answer carries one, the spec must document it.
CONTRACT_HEADERS = ("location", "link", "etag", "retry-after", "www-authenticate", "allow",
                    "idempotency-replayed", "content-security-policy")
# Which example file belongs to which operation (and must exist while the route does).
EXAMPLE_FILES = {
    "report.json": "createReport",
    "procedure.json": "createProcedure",
    "case-analysis.json": "createCaseAnalysis",
    "case-analyses-batch.json": "createCaseAnalysesBatch",
    "structure-survey.json": "createStructureSurvey",
    "topic.json": "createTopic",
    "procedure-report.json": "createProcedureReport",
    "procedure-report-patch.json": "updateProcedureReport",
    "report-comment.json": "createReportComment",
    "advice-request.json": "createAdviceRequest",
    "advice-message.json": "createAdviceMessage",
    "provider.json": "createProvider",
    "protection-concept.json": "createProtectionConcept",
    "programme.json": "createProgramme",
    "call.json": "createCall",
    "application.json": "createApplication",
    "cluster.json": "createCluster",
    "event.json": "createEvent",
    "event-registration.json": "createEventRegistration",
    "professional-registration.json": "createProfessionalRegistration",
    "service-request.json": "createServiceRequest",
    "material.json": "createMaterial",
}


# --------------------------------------------------------------------------- schemas

_validators = {}


def validator(schema):
    """A Draft 2020-12 validator for a schema of the spec; "#/components/…" resolves."""
    key = id(schema)
    if key not in _validators:
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "allOf": [schema], "components": SPEC["components"]}
        cls = jsonschema.Draft202012Validator
        kw = {}
        if getattr(cls, "FORMAT_CHECKER", None) is not None:
            kw["format_checker"] = cls.FORMAT_CHECKER
        _validators[key] = (cls(root, **kw), schema)  # keep schema alive: its id is the key
    return _validators[key][0]


def schema_errors(schema, instance):
    errors = list(validator(schema).iter_errors(instance))
    # A failing allOf member leaves every member "unevaluated": name the real error only.
    real = [e for e in errors if e.validator != "unevaluatedProperties"]
    out = []
    for e in sorted(real or errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/" + "/".join(str(p) for p in e.absolute_path)
        out.append(f"{where}: {e.message[:300]}")
    return out


def operation_by_id():
    return {op["operationId"]: (path, method, op) for path, method, op in operations(SPEC)}


def request_schema(op):
    """The JSON body's schema, or None for a body of raw bytes (a material's file)."""
    media = op["requestBody"]["content"].get("application/json")
    return media["schema"] if media is not None else None


def media_examples(media):
    """(name, value) of a media type's example/examples."""
    if "example" in media:
        yield "example", media["example"]
    for name, ex in media.get("examples", {}).items():
        ex = deref(SPEC, ex)
        if "value" in ex:
            yield name, ex["value"]


# --------------------------------------------------------------------------- matching

def _template_regex(template):
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                    for p in parts) + "$")


# As in router.c, a parameter with a literal suffix ("{id}.html") is tried before the bare one.
PATH_PATTERNS = sorted(((t, _template_regex(t)) for t in SPEC["paths"]),
                       key=lambda p: 0 if re.search(r"\}[^/]", p[0]) else 1)


def match_template(raw_path):
    """The spec path a request path is routed to, as router.c decides it, or None."""
    decoded = urllib.parse.unquote(raw_path.split("?", 1)[0], errors="surrogateescape")
    if "\x00" in decoded:  # the router refuses a NUL in the path: no resource has one
        return None
    for template, rx in PATH_PATTERNS:
        if rx.match(decoded):
            return template
    return None


def query_parameters(template, method):
    """Names of the documented query parameters of an operation."""
    item = SPEC["paths"][template]
    params = item.get("parameters", []) + item[method].get("parameters", [])
    return {p["name"] for p in (deref(SPEC, x) for x in params) if p["in"] == "query"}


def documented(record):
    """(label, responses, operation key or None) that apply to a recorded request."""
    method = record["method"].upper()
    template = match_template(record["path"])
    if template is None:
        return "(unknown path)", ROUTER["unknown_path"], None
    if method == "OPTIONS":
        return f"OPTIONS {template}", ROUTER["options"], None
    op_method = "get" if method == "HEAD" else method.lower()
    item = SPEC["paths"][template]
    if op_method not in item:
        return f"{method} {template} (no such route)", ROUTER["other_method"], None
    return f"{op_method.upper()} {template}", item[op_method]["responses"], (op_method, template)


def body_bytes(record):
    if record.get("body_encoding") == "base64":
        return base64.b64decode(record["body"])
    return record["body"].encode("utf-8")


def check_record(record):
    """Every way a recorded answer disagrees with the spec, as short messages."""
    label, responses, op = documented(record)
    status = str(record["status"])
    if status not in responses:
        return label, [f"status {status} is not documented"]
    resp = deref(SPEC, responses[status])
    headers = {}
    for k, v in record["headers"]:
        headers.setdefault(k.lower(), v)
    problems = []
    if op is not None and status[0] in "23":
        # The server accepted these (unknown parameters are 400): the spec must name them.
        query = urllib.parse.urlsplit(record["path"]).query
        names = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        for name in sorted(names - query_parameters(op[1], op[0])):
            problems.append(f"query parameter {name!r} is accepted but not documented")
    documented_headers = {n.lower() for n in resp.get("headers", {})}
    for name, h in resp.get("headers", {}).items():
        h = deref(SPEC, h)
        value = headers.get(name.lower())
        if value is None:
            if h.get("required"):
                problems.append(f"header {name} is missing")
            continue
        schema = h.get("schema", {})
        instance = value
        if deref(SPEC, schema).get("type") == "integer":
            try:
                instance = int(value)
            except ValueError:
                problems.append(f"header {name}: {value!r} is not an integer")
                continue
        problems += [f"header {name}{e.split(':', 1)[1]}" for e in schema_errors(schema, instance)]
    for name in CONTRACT_HEADERS:
        if name in headers and name not in documented_headers:
            problems.append(f"header {name} is sent but not documented")

    body = body_bytes(record)
    content = resp.get("content")
    if not content:
        if body:
            problems.append("a body where the spec documents none")
        return label, problems
    ctype = headers.get("content-type", "")
    media = ctype.split(";")[0].strip().lower()
    if media not in content:
        return label, problems + [f"content type {ctype!r} is not documented"]
    if media in JSON_TYPES and "charset=utf-8" not in ctype.lower().replace(" ", ""):
        problems.append(f"content type {ctype!r} does not say charset=utf-8")
    if record["method"].upper() == "HEAD":
        if body:
            problems.append("HEAD answered with a body")
        return label, problems
    schema = content[media].get("schema", {})
    if deref(SPEC, schema).get("format") == "binary":
        return label, problems  # a file's bytes, as they were stored: any bytes
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return label, problems + ["the body is not UTF-8"]
    if media in JSON_TYPES:
        try:
            instance = json.loads(text)
        except ValueError:
            return label, problems + ["the body is not JSON"]
        if media == "application/problem+json" and isinstance(instance, dict):
            if instance.get("status") != record["status"]:
                problems.append("problem status differs from the HTTP status")
            if instance.get("request_id") != headers.get("x-request-id"):
                problems.append("problem request_id differs from X-Request-Id")
    else:
        instance = text
    problems += schema_errors(schema, instance)
    return label, problems


def load_recording():
    records = []
    for path in sorted(glob.glob(os.path.join(CONTRACT_DIR or "/nonexistent", "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    records.append(json.loads(line))
    return records


# --------------------------------------------------------------------------- live server

class LiveContractTest(StackTestCase):
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.proc, cls.office = s.sql(
            "SELECT id, office_id FROM procedures WHERE phase <> 'completed'"
            " AND NOT out_of_cycle ORDER BY id LIMIT 1")[0]
        cls.office_token = s.token("office_staff", office=cls.office)[0]
        cls.tokens = {"office_staff": cls.office_token}

    def role_token(self, role):
        """A token of role, bound to the test's office (region, institute) where it needs one."""
        if role not in self.tokens:
            bind = {"office": self.office} if role.startswith("office") else \
                {"region": "LVR"} if role == "advisor" else \
                {"institute": "demo-institut-1"} if role == "institute" else \
                {"provider": "demo-traeger-lvr-01"} if role == "provider_staff" else \
                {"programme": self.programme()} if role == "programme_team" else {}
            self.tokens[role] = (self.stack.professional_token(self.programme())[0]
                                 if role == "professional" else self.stack.token(role, **bind)[0])
        return self.tokens[role]

    def programme(self):
        """A programme for the programme_team's token: the demo's first, or a new one."""
        found = self.stack.sql_value("SELECT id FROM programmes ORDER BY id LIMIT 1")
        if found:
            return found
        r = self.stack.post("/v1/programmes", self.example("programme.json"))
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def example(self, name):
        with open(os.path.join(EXAMPLES_DIR, name), encoding="utf-8") as f:
            return json.load(f)

    def test_openapi_json_is_the_spec(self):
        r = self.stack.get("/openapi.json", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.json(), SPEC)
        etag = r.header("ETag")
        self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
        again = self.stack.get("/openapi.json", token=None, headers={"If-None-Match": etag})
        self.assertEqual((again.status, again.body, again.header("ETag")), (304, b"", etag))
        head = self.stack.request("HEAD", "/openapi.json", token=None)
        self.assertEqual((head.status, head.body), (200, b""))
        # Public, but still strict about its query.
        self.assertProblem(self.stack.get("/openapi.json?format=yaml", token=None), 400,
                           errors=[{"parameter": "format", "code": "unknown_parameter"}])

    def test_docs_page_is_self_contained_html(self):
        r = self.stack.get("/docs", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertTrue(r.header("Content-Security-Policy").startswith("default-src 'none'"))
        page = r.body.decode("utf-8")
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", page.lower())
        for url in re.findall(r'(?:src|href)="([^"]*)"', page):
            self.assertTrue(url.startswith("#") or url.startswith("/"), url)  # nothing external
        anchors = set(re.findall(r'id="([^"]+)"', page))
        for url in re.findall(r'href="#([^"]*)"', page):
            self.assertIn(url, anchors)  # every internal link lands
        for path, method, op in operations(SPEC):
            with self.subTest(operation=op["operationId"]):
                self.assertIn(f'id="op-{op["operationId"]}"', page)
                self.assertIn(f"{path}</span>", page.replace("&#x27;", "'"))
        for name in SPEC["components"]["schemas"]:
            self.assertIn(f'id="schema-{name}"', page)
        self.assertIn("Fallanalyse", page)
        self.assertIn("@media print", page)
        nm = self.stack.get("/docs", token=None, headers={"If-None-Match": r.header("ETag")})
        self.assertEqual((nm.status, nm.body), (304, b""))

    def test_example_files_are_accepted_by_the_server(self):
        case = self.example("case-analysis.json")
        case["procedure_id"] = self.proc
        r = self.stack.post("/v1/case-analyses", case, token=self.office_token)
        self.assertEqual(r.status, 201, r)
        got = r.json()
        self.assertEqual(got["child"]["sex"], case["child"]["sex"])
        self.assertEqual(got["findings"], case["findings"])
        self.assertNotIn("case_reference", got)

        batch = self.example("case-analyses-batch.json")
        for item in batch["items"]:
            item["procedure_id"] = self.proc
        r = self.stack.post("/v1/case-analyses:batch", batch, token=self.office_token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["created"], len(batch["items"]))

        r = self.stack.post("/v1/procedures", self.example("procedure.json"),
                            token=self.office_token)
        self.assertEqual(r.status, 201, r)
        fresh = r.json()["id"]  # no survey yet (the demo procedures have theirs)
        r = self.stack.post("/v1/reports", self.example("report.json"))
        self.assertEqual(r.status, 202, r)

        ops = operation_by_id()
        if "createStructureSurvey" in ops:
            survey = self.example("structure-survey.json")
            survey["procedure_id"] = fresh
            r = self.stack.post("/v1/structure-surveys", survey, token=self.office_token)
            self.assertEqual(r.status, 201, r)
        if "createTopic" in ops:
            topic = self.example("topic.json")
            topic["procedure_id"] = fresh
            r = self.stack.post("/v1/topics", topic, token=self.office_token)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["description"], topic["description"])

    def test_documented_query_parameters_are_accepted(self):
        """Each documented query parameter is one the route knows (else: unknown_parameter)."""
        dummy = "00000000-0000-4000-8000-000000000000"
        checked = 0
        for path, method, op in operations(SPEC):
            # A path parameter of the right shape, or the router answers 404 before it reads
            # the query: the parameter's example, else its schema's first enum value (a code
            # list id), else a UUID (also a valid office id).
            values = {}
            for p in SPEC["paths"][path].get("parameters", []):
                p = deref(SPEC, p)
                if p["in"] == "path":
                    schema = deref(SPEC, p.get("schema", {}))
                    values[p["name"]] = p.get("example", schema.get("enum", [dummy])[0])
            url = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)
            # A role that passes the permission check, so the route reads its query: admin
            # where it may, else the first role the operation names.
            roles = op.get("x-kqe-roles", ["admin"])
            token = "default" if "admin" in roles or not roles \
                else self.role_token(roles[0])
            for name in sorted(query_parameters(path, method)):
                with self.subTest(operation=op["operationId"], parameter=name):
                    # A download link replaces the token: it is a parameter only without one
                    # (a bad link is then 401, not an unknown parameter).
                    r = self.stack.request(method.upper(), f"{url}?{name}=1",
                                           token=None if name == "link" else token)
                    errors = r.json().get("errors", []) if r.status == 400 else []
                    self.assertNotIn({"parameter": name, "code": "unknown_parameter"},
                                     [{k: e.get(k) for k in ("parameter", "code")}
                                      for e in errors])
                    checked += 1
            with self.subTest(operation=op["operationId"], parameter="(undocumented)"):
                r = self.stack.request(method.upper(), f"{url}?no_such_parameter=1", token=token)
                self.assertEqual(r.status, 400, r)
        self.assertGreater(checked, 20)

    def test_codelist_enums_of_the_spec_are_the_servers(self):
        served = {l["id"]: l for l in self.stack.get("/v1/codelists").json()["items"]}
        schemas = SPEC["components"]["schemas"]
        self.assertEqual(schemas["CodelistId"]["enum"], list(served))
        checked = 0
        for name, schema in schemas.items():
            codelist = schema.get("x-kqe-codelist")
            if codelist:
                with self.subTest(schema=name, codelist=codelist):
                    self.assertEqual(schema["enum"], [c["code"] for c in served[codelist]["codes"]])
                    checked += 1
            keys = schema.get("x-kqe-codelist-keys")
            if keys:
                with self.subTest(schema=name, codelist_keys=keys):
                    self.assertEqual(list(schema["properties"]),
                                     [c["code"] for c in served[keys]["codes"]])
        self.assertGreaterEqual(checked, 10)
        rating = schemas["Rating"]
        self.assertEqual([str(v) for v in range(rating["minimum"], rating["maximum"] + 1)],
                         [c["code"] for c in served["rating"]["codes"]])


# --------------------------------------------------------------------------- recording

class RecordedResponsesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.records = load_recording()

    def test_recording_is_there(self):
        self.assertIsNotNone(CONTRACT_DIR, "KQE_TEST_LOG_DIR is not set: run ./scripts/test")
        self.assertGreater(len(self.records), 0,
                           f"no responses recorded under {CONTRACT_DIR}: the contract test runs"
                           " after the other integration tests (ctest fixture)")
        stacks = {r["stack"] for r in self.records}
        self.assertGreater(len(stacks), 5, f"only {sorted(stacks)} recorded: a partial run?")

    def test_every_recorded_response_is_documented(self):
        failures = {}
        for record in self.records:
            label, problems = check_record(record)
            for p in problems:
                key = (label, record["status"], p)
                entry = failures.setdefault(key, [0, record])
                entry[0] += 1
        if failures:
            lines = [f"{len(failures)} kinds of disagreement between the server and the spec:"]
            for (label, status, p), (n, rec) in sorted(failures.items(),
                                                        key=lambda kv: (kv[0][0], kv[0][1]))[:60]:
                lines.append(f"  {label} → {status}: {p}  ({n}×, e.g. {rec['stack']}: "
                             f"{rec['method']} {rec['path'][:120]})")
            self.fail("\n".join(lines))

    def test_every_operation_was_exercised(self):
        seen = {}
        for record in self.records:
            _, _, key = documented(record)
            if key is not None:
                seen.setdefault(key, set()).add(str(record["status"]))
        missing, no_success, lines = [], [], []
        documented_total = seen_total = 0
        for path, method, op in operations(SPEC):
            statuses = seen.get((method, path), set())
            listed = set(op["responses"])
            documented_total += len(listed)
            seen_total += len(listed & statuses)
            if not statuses:
                missing.append(f"{method.upper()} {path} ({op['operationId']})")
            elif not any(s.startswith("2") for s in statuses):
                no_success.append(f"{method.upper()} {path} ({op['operationId']}): "
                                  f"only {sorted(statuses)}")
            never = sorted(listed - statuses)
            lines.append(f"  {method.upper():6} {path:32} seen {','.join(sorted(statuses)) or '-'}"
                         f"   never {','.join(never) or '-'}")
        ops = len(list(operations(SPEC)))
        report = (f"contract coverage: {ops - len(missing)}/{ops} operations exercised,"
                  f" {seen_total}/{documented_total} documented (operation, status) pairs seen,"
                  f" {len(self.records)} responses checked\n" + "\n".join(lines) + "\n")
        sys.stderr.write(report)
        # Kept next to the binaries (build/asan/contract-coverage.txt) after the run.
        with open(os.path.join(BIN, "..", "contract-coverage.txt"), "w", encoding="utf-8") as f:
            f.write(report)
        self.assertEqual(missing, [], "operations of the spec no test called")
        self.assertEqual(no_success, [], "operations no test called successfully")


# --------------------------------------------------------------------------- the document

def permission_table():
    """{(METHOD, pattern): (permission, [roles])} from `kqe-api --permissions`."""
    out = subprocess.run([os.path.join(BIN, "kqe-api"), "--permissions"], capture_output=True,
                         text=True, check=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("|")]
    roles = [c.strip() for c in lines[0].strip("|").split("|")][2:]
    table = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        method, pattern = cells[0].strip("`").split(" ", 1)
        table[(method, pattern)] = (cells[1], [r for r, c in zip(roles, cells[2:]) if c == "yes"])
    return table


class SpecTest(unittest.TestCase):
    def test_every_route_is_an_operation_and_every_operation_a_route(self):
        table = permission_table()
        # The same templates, parameter names included ("{id}", "{cycle}").
        spec = {(m.upper(), p): op for p, m, op in operations(SPEC)}
        self.assertEqual(sorted(set(table) - set(spec)), [], "routes missing from the spec")
        self.assertEqual(sorted(set(spec) - set(table)), [], "operations that are no route")
        for key, (permission, roles) in table.items():
            with self.subTest(route=key):
                op = spec[key]
                self.assertEqual(op["x-kqe-permission"], permission)
                self.assertEqual(op["x-kqe-roles"], roles)
                self.assertEqual(op.get("security") == [], permission == "public")

    def test_version_is_the_binarys(self):
        out = subprocess.run([os.path.join(BIN, "kqe-api"), "--version"], capture_output=True,
                             text=True, check=True).stdout
        self.assertEqual(out.split()[1], SPEC["info"]["version"])

    def test_operations_are_complete_and_consistent(self):
        ids = [op["operationId"] for _, _, op in operations(SPEC)]
        self.assertEqual(len(ids), len(set(ids)))
        for path, method, op in operations(SPEC):
            with self.subTest(operation=op["operationId"]):
                statuses = set(op["responses"])
                need = {"400", "431", "503"}
                if op.get("security") != []:
                    need |= {"429", "500"}
                    # Operations open without a token (registering) never answer 401.
                    if {} not in op.get("security", SPEC["security"]):
                        need.add("401")
                if "requestBody" in op:
                    need |= {"413", "415", "422"}
                if "{" in path:
                    need.add("404")
                if method == "patch":
                    need |= {"412", "428"}
                if any(p.get("$ref", "").endswith("/IfNoneMatch") for p in op.get("parameters", [])):
                    need.add("304")
                if any(p.get("$ref", "").endswith("/IdempotencyKey")
                       for p in op.get("parameters", [])):
                    need.add("409")
                if op.get("x-kqe-roles") and set(op["x-kqe-roles"]) != set(ROLES):
                    need.add("403")
                self.assertEqual(sorted(need - statuses), [])
                self.assertTrue(any(s.startswith("2") for s in statuses))
                for status, resp in op["responses"].items():
                    resp = deref(SPEC, resp)
                    hdrs = resp.get("headers", {})
                    self.assertIn("X-Request-Id", hdrs, status)
                    self.assertIn("Cache-Control", hdrs, status)
                    # A page for people (the confirmation link) answers its errors as pages.
                    html_op = "text/html" in deref(
                        SPEC, op["responses"].get("200", {})).get("content", {})
                    if status[0] in "45" and not (html_op and "text/html" in resp["content"]):
                        self.assertIn("application/problem+json", resp["content"], status)
                    if status in ("429",) or (status == "503"):
                        self.assertIn("Retry-After", hdrs, status)
                    if status == "401":
                        self.assertIn("WWW-Authenticate", hdrs)
                    for media in resp.get("content", {}).values():
                        schema = deref(SPEC, media.get("schema", {}))
                        if "next_cursor" in schema.get("properties", {}) and status == "200":
                            self.assertIn("Link", hdrs)
                for name in re.findall(r"\{([^}]+)\}", path):
                    params = [deref(SPEC, p) for p in SPEC["paths"][path].get("parameters", [])]
                    self.assertIn(name, [p["name"] for p in params if p["in"] == "path"])

    def test_request_bodies_refuse_unknown_members(self):
        """Like validate.c (unknown_field): every object a client sends is closed."""
        def walk(schema, where, seen, closed_above=False):
            name = schema.get("$ref") if isinstance(schema, dict) else None
            if name:
                if name in seen:
                    return
                seen = seen | {name}
            s = deref(SPEC, schema)
            closed = (s.get("additionalProperties") is False
                      or s.get("unevaluatedProperties") is False)
            if (s.get("type") == "object" or "properties" in s) and not closed_above:
                self.assertTrue(closed, f"{where}: {name or s} is open")
            for sub in s.get("properties", {}).values():
                walk(sub, where, seen)
            if isinstance(s.get("items"), dict):
                walk(s["items"], where, seen)
            for sub in s.get("allOf", []):  # members of a closed allOf may be open
                walk(sub, where, seen, closed_above=closed)
            for key in ("oneOf", "anyOf"):
                for sub in s.get(key, []):
                    walk(sub, where, seen)
        for path, method, op in operations(SPEC):
            if "requestBody" in op and request_schema(op) is not None:
                walk(request_schema(op), op["operationId"], frozenset())

    def test_every_example_is_valid(self):
        count = 0

        def check(media, where):
            nonlocal count
            for name, value in media_examples(media):
                with self.subTest(where=where, example=name):
                    if isinstance(value, (dict, list)) or "schema" in media:
                        self.assertEqual(schema_errors(media.get("schema", {}), value), [])
                        count += 1
        for path, method, op in operations(SPEC):
            body = op.get("requestBody")
            if body:
                for ctype, media in deref(SPEC, body)["content"].items():
                    check(media, f"{op['operationId']} request {ctype}")
            for status, resp in op["responses"].items():
                for ctype, media in deref(SPEC, resp).get("content", {}).items():
                    check(media, f"{op['operationId']} {status} {ctype}")
        for name, resp in SPEC["components"]["responses"].items():
            for ctype, media in resp.get("content", {}).items():
                check(media, f"components/responses/{name} {ctype}")
        self.assertGreater(count, 20)

    def test_example_files_are_the_specs_request_examples(self):
        ops = operation_by_id()
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES_DIR, "*.json")))
        self.assertTrue(set(files) <= set(EXAMPLE_FILES), files)
        for name, op_id in EXAMPLE_FILES.items():
            if op_id not in ops:  # that route does not exist (yet)
                self.assertNotIn(name, files)
                continue
            with self.subTest(file=name):
                self.assertIn(name, files, f"{op_id} exists: add proto/examples/{name}")
                with open(os.path.join(EXAMPLES_DIR, name), encoding="utf-8") as f:
                    value = json.load(f)
                op = ops[op_id][2]
                self.assertEqual(schema_errors(request_schema(op), value), [])
                media = op["requestBody"]["content"]["application/json"]
                tagged = [ex["value"] for ex in media.get("examples", {}).values()
                          if f"proto/examples/{name}" in ex.get("summary", "")]
                self.assertEqual(tagged, [value], "the spec's example must be the file")
        with open(os.path.join(EXAMPLES_DIR, "case-analysis.json"), encoding="utf-8") as f:
            case = json.load(f)
        for field in ("procedure_id", "case_reference", "findings"):
            self.assertIn(field, case)
        self.assertIn("sex", case["child"])

    def test_the_checker_notices_drift(self):
        """The recording check is not vacuous: each kind of disagreement is caught."""
        ok = {"stack": "t", "method": "GET", "path": "/healthz", "status": 200,
              "headers": [["Content-Type", "application/json; charset=utf-8"],
                          ["X-Request-Id", "abc"], ["Cache-Control", "no-store"]],
              "body": '{"status":"ok"}', "body_encoding": "utf-8"}
        self.assertEqual(check_record(ok), ("GET /healthz", []))
        cases = [
            ({"status": 418}, "status 418 is not documented"),
            ({"body": '{"status":"ok","extra":1}'}, "Additional properties"),
            ({"body": '{"status":"fine"}'}, "'ok' was expected"),
            ({"headers": ok["headers"][:2]}, "header Cache-Control is missing"),
            ({"headers": ok["headers"] + [["ETag", '"x"']]}, "header etag is sent but not"),
            ({"headers": [["Content-Type", "text/plain"]] + ok["headers"][1:]},
             "content type 'text/plain' is not documented"),
            ({"path": "/v1/offices/x/y", "status": 200}, "status 200 is not documented"),
            ({"method": "DELETE", "status": 200}, "status 200 is not documented"),
        ]
        for change, expected in cases:
            with self.subTest(change=change):
                _, problems = check_record({**ok, **change})
                self.assertTrue(any(expected in p for p in problems), problems)


if __name__ == "__main__":
    unittest.main()
