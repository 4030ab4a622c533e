"""HTTP edge of kqe-api: routing, methods, limits, request ids, health, metrics."""

import http.client
import json
import os
import socket
import subprocess
import unittest

from harness import BIN, TEST_KEYS, Stack, StackTestCase, wait_until


class HttpEdgeTest(StackTestCase):
    api_env = {"KQE_MAX_BODY_BYTES": 2048, "KQE_MAX_HEADER_BYTES": 2048, "KQE_API_THREADS": 2}

    def test_unknown_route_is_404_problem(self):
        for path in ("/", "/v1", "/v1/nothing", "/v1/offices/a/b", "/healthz/x", "/healthz%00",
                     "/healthz%00x"):
            with self.subTest(path=path):
                self.assertProblem(self.stack.get(path), 404,
                                   detail="There is no resource at this path.")

    def test_wrong_method_is_405_with_allow(self):
        cases = [("DELETE", "/v1/offices", "GET, HEAD"), ("POST", "/v1/offices/x", "GET, HEAD"),
                 ("DELETE", "/v1/reports", "GET, HEAD, POST"), ("PUT", "/v1/jobs/x", "GET, HEAD"),
                 ("GET", "/v1/ministry-batches", "POST"),
                 ("PATCH", "/healthz", "GET, HEAD")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.stack.request(method, path)
                self.assertProblem(r, 405)
                self.assertEqual(r.header("Allow"), allow)

    def test_plain_options_lists_allowed_methods(self):
        r = self.stack.request("OPTIONS", "/v1/ministry-batches", token=None)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "POST")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_answers_are_never_cached(self):
        for path in ("/healthz", "/v1/offices", "/nope"):
            self.assertEqual(self.stack.get(path).header("Cache-Control"), "no-store")

    def test_head_is_answered_like_get_without_body(self):
        r = self.stack.request("HEAD", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_request_id_is_echoed_or_generated(self):
        r = self.stack.get("/healthz", headers={"X-Request-Id": "abc-123.X_y"})
        self.assertEqual(r.header("X-Request-Id"), "abc-123.X_y")
        generated = self.stack.get("/healthz").header("X-Request-Id")
        self.assertRegex(generated, r"^[0-9a-f]{24}$")
        # An id that could inject into logs or headers is replaced, not echoed.
        r = self.stack.get("/healthz", headers={"X-Request-Id": "bad id<script>"})
        self.assertRegex(r.header("X-Request-Id"), r"^[0-9a-f]{24}$")
        lines = [l for l in self.stack.log_lines() if l.get("request_id") == "abc-123.X_y"]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["route"], "/healthz")
        self.assertEqual(lines[0]["status"], 200)

    def test_oversized_body_is_413_problem(self):
        before = self.stack.sql_value("SELECT count(*) FROM jobs")
        body = b'{"scope":"state","period":"2024","pad":"' + b"x" * 3000 + b'"}'
        r = self.stack.post("/v1/reports", raw=body, headers={"Content-Type": "application/json"})
        self.assertProblem(r, 413, detail="The body is larger than 2048 bytes.")
        self.assertEqual(self.stack.sql_value("SELECT count(*) FROM jobs"), before)

    def test_far_oversized_body_is_refused_by_the_hard_ceiling(self):
        # Beyond 2x the limit libevent itself answers 413 (its own page) without
        # buffering the body; the server stays healthy.
        body = b"x" * 100000
        r = self.stack.post("/v1/reports", raw=body, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 413)
        self.assertEqual(self.stack.get("/healthz").status, 200)

    def test_oversized_headers_are_431_problem(self):
        r = self.stack.get("/healthz", headers={"X-Padding": "y" * 3000})
        self.assertProblem(r, 431, detail="The request headers are too large.")

    def test_query_parameters_are_checked_on_every_route(self):
        r = self.stack.get("/healthz?verbose=1")
        self.assertProblem(r, 400, errors=[{"parameter": "verbose", "code": "unknown_parameter"}])

    def test_healthz_and_readyz(self):
        self.assertEqual(self.stack.get("/healthz").json(), {"status": "ok"})
        r = self.stack.get("/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ready")

    def test_metrics_count_requests_by_route_and_status(self):
        self.stack.get("/v1/offices/does-not-exist")
        text = self.stack.get("/metrics").body.decode()
        self.assertIn('kqe_http_requests_total{method="GET",route="/v1/offices/{id}",status="404"}',
                      text)
        self.assertIn("kqe_http_request_duration_seconds_bucket", text)
        self.assertIn("kqe_redis_up 1", text)
        self.assertIn("kqe_jobs_stream_length", text)
        self.assertIn("kqe_jobs_backlog", text)
        self.assertIn("kqe_pool_threads", text)

    def test_default_content_type_is_json(self):
        r = self.stack.get("/healthz")
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")

    def test_malformed_request_line_does_not_hurt_the_server(self):
        with socket.create_connection(("127.0.0.1", self.stack.api_port), timeout=5) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            s.recv(4096)
        self.assertEqual(self.stack.get("/healthz").status, 200)


class AnyPortTest(unittest.TestCase):
    def test_port_0_listens_on_a_free_port_and_logs_it(self):
        env = dict(os.environ, KQE_HTTP_PORT="0", KQE_DATABASE_URL="postgresql://x@127.0.0.1:1/x",
                   **TEST_KEYS)
        proc = subprocess.Popen([os.path.join(BIN, "kqe-api")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            line = json.loads(proc.stdout.readline())
            self.assertEqual(line["msg"], "listening")
            self.assertGreater(line["port"], 0)
            conn = http.client.HTTPConnection("127.0.0.1", line["port"], timeout=5)
            conn.request("GET", "/healthz")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0)


class ReadinessTest(unittest.TestCase):
    """readyz says 503 until the schema is current (or newer) and when the database is gone."""

    def test_readyz_503_until_migrated(self):
        stack = Stack("readyz")
        try:
            stack.setup(migrate=False)
            stack.start_api(wait_ready=False)
            r = stack.get("/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.header("Retry-After"), "5")
            self.assertIn("run kqe migrate", r.json()["detail"])
            stack.kqe("migrate", check=True)
            wait_until(lambda: stack.get("/readyz").status == 200, what="ready after migrate")
        finally:
            stack.teardown()

    def test_readyz_200_on_a_newer_schema(self):
        # A rolling update: the new version migrated, this (older) build keeps serving.
        stack = Stack("newer")
        try:
            stack.setup()
            latest = int(stack.sql_value("SELECT max(version) FROM schema_migrations"))
            stack.sql("INSERT INTO schema_migrations (version, name, checksum) VALUES"
                      f" ({latest + 1}, 'from_a_newer_release', 'x')")
            stack.start_api()
            r = stack.get("/readyz")
            self.assertEqual((r.status, r.json()["schema_version"],
                              r.json()["build_schema_version"]), (200, latest + 1, latest), r)
            stack.kqe("migrate", check=True)  # this build's migrate leaves the newer one be
            self.assertEqual(stack.sql_value("SELECT count(*) FROM schema_migrations WHERE"
                                             f" version = {latest + 1}"), "1")
        finally:
            stack.teardown()

    def test_readyz_503_when_database_unreachable(self):
        stack = Stack("nodb")
        try:
            stack.setup()
            stack.db_url = "postgresql://postgres@127.0.0.1:1/none"
            stack.start_api(wait_ready=False)
            r = stack.get("/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["detail"], "The database is not reachable.")
            # A well-formed token cannot be checked without the database: 503, not 401.
            r = stack.get("/v1/offices", token="kqe_" + "A" * 43)
            self.assertEqual(r.status, 503)
            self.assertEqual(r.header("Retry-After"), "5")
        finally:
            stack.teardown()


if __name__ == "__main__":
    unittest.main()
