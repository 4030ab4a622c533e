"""Hostile clients at the HTTP edge: slow requests, too many connections, request smuggling.

What an unauthenticated client could do to the API before the connection guard
(services/api/conn.c) and the framing checks (http.c http_framing_problem): keep thousands of
connections open by trickling one header line every few seconds, run the process out of
descriptors, or desynchronise a proxy in front with ambiguous framing. Every test ends by
showing that a normal request is still answered.
"""

import json
import os
import re
import resource
import socket
import subprocess
import time
import unittest

from harness import BIN, StackTestCase, wait_until


def raw(port, data, timeout=10):
    """Sends bytes, reads until the server closes; returns everything read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def answers(data):
    """The status codes of the HTTP answers in data, in order."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def body_of(data):
    return json.loads(data.split(b"\r\n\r\n", 1)[1].split(b"\r\n\r\n")[0])


def closed_by_server(sock, trickle, bound=60):
    """Trickles bytes into sock until the server closes it; True if it did within bound s."""
    deadline = time.monotonic() + bound
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            sock.sendall(trickle)
        except (BrokenPipeError, ConnectionResetError):
            return True
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            pass
        except ConnectionResetError:
            return True
    return False


class SlowClientTest(StackTestCase):
    api_env = {"KQE_HTTP_REQUEST_READ_MS": 1500}

    def test_a_request_trickling_in_is_cut_at_its_deadline_while_others_are_served(self):
        sockets = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.stack.api_port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n")
            sockets.append(s)
        try:
            # Each byte restarts libevent's own timeout; the guard's deadline does not move.
            self.assertTrue(closed_by_server(sockets[0], b"X-Slow: 1\r\n"),
                            "the slow request was never cut")
            self.assertEqual(self.stack.get("/healthz").status, 200)
            for s in sockets[1:]:
                self.assertTrue(closed_by_server(s, b"X-Slow: 1\r\n"))
        finally:
            for s in sockets:
                s.close()
        # A slow body is cut the same way.
        with socket.create_connection(("127.0.0.1", self.stack.api_port)) as s:
            s.sendall(b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 100000\r\n\r\n{")
            self.assertTrue(closed_by_server(s, b" "))
        self.assertEqual(self.stack.get("/healthz").status, 200)

    def test_idle_keep_alive_is_not_a_slow_request(self):
        # A connection that finished a request and sends nothing more is idle, not slow: the
        # next request on it, after the read deadline, is still answered.
        with socket.create_connection(("127.0.0.1", self.stack.api_port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n\r\n")
            first = s.recv(4096)
            self.assertEqual(answers(first), [200])
            time.sleep(2.5)  # past KQE_HTTP_REQUEST_READ_MS, below the idle timeout
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n\r\n")
            self.assertEqual(answers(s.recv(4096)), [200])


def assert_cap_refuses(test, held_count):
    """With held_count connections open and never finished, the next one is answered 503
    problem+json with Retry-After and closed, a trickling one is cut, and once they are gone
    the API serves again."""
    port = test.stack.api_port
    held = []
    try:
        for _ in range(held_count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # open, never finished
            held.append(s)
        probe = b"GET /healthz HTTP/1.1\r\nHost: kqe\r\nConnection: close\r\n\r\n"
        out = wait_until(lambda: (o := raw(port, probe)) and answers(o) == [503] and o,
                         what="the connection over the cap refused")
        test.assertEqual(answers(out), [503], out)
        test.assertIn(b"Retry-After: 1", out)
        test.assertIn(b"Connection: close", out)
        test.assertEqual(body_of(out)["status"], 503)
        # An over-cap connection that trickles is cut within its short deadline.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            test.assertTrue(closed_by_server(s, b"X: 1\r\n", bound=30))
    finally:
        for s in held:
            s.close()
    wait_until(lambda: test.stack.get("/healthz").status == 200, what="served again")


class ConnectionCapTest(StackTestCase):
    api_env = {"KQE_MAX_CONNECTIONS_PER_CLIENT": 5, "KQE_HTTP_REQUEST_READ_MS": 60000}

    def test_beyond_the_per_client_cap_a_request_is_503_and_closed(self):
        assert_cap_refuses(self, 5)


class ShortConnectionsTest(StackTestCase):
    """One connection after the other (a client without keep-alive): each has left the counts
    once closed, so a cap far below their number refuses none. The guard once counted them
    until its sweep (every 250 ms) and refused a client making more than the cap in that
    time, though at most one of its connections was open."""

    api_env = {"KQE_MAX_CONNECTIONS_PER_CLIENT": 16, "KQE_MAX_CONNECTIONS": 16}

    def test_closed_connections_do_not_count_against_the_caps(self):
        probe = b"GET /healthz HTTP/1.1\r\nHost: kqe\r\nConnection: close\r\n\r\n"
        statuses = [answers(raw(self.stack.api_port, probe)) for _ in range(200)]
        self.assertEqual(statuses, [[200]] * 200)
        statuses = [self.stack.get("/v1/me").status for _ in range(100)]
        self.assertEqual(statuses, [200] * 100)


class ProcessCapTest(StackTestCase):
    """The cap on the whole process (KQE_MAX_CONNECTIONS, at least 16), with no cap per client:
    behind a proxy every client has its address."""

    api_env = {"KQE_MAX_CONNECTIONS": 16, "KQE_MAX_CONNECTIONS_PER_CLIENT": 0,
               "KQE_HTTP_REQUEST_READ_MS": 60000}

    def test_beyond_the_process_cap_a_request_is_503_and_closed(self):
        assert_cap_refuses(self, 16)


class DescriptorsTest(StackTestCase):
    """Far more connections than descriptors: the process refuses, pauses, recovers."""

    start_api = False

    def test_running_out_of_descriptors_neither_spins_nor_floods_the_log(self):
        limit = 96

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        env = self.stack.env(KQE_HTTP_PORT=self.port(), KQE_MAX_CONNECTIONS_PER_CLIENT=0,
                             KQE_HTTP_REQUEST_READ_MS=60000)
        log_path = os.path.join(self.stack.logs, "api-lowfd.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([os.path.join(BIN, "kqe-api")], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=low_limit)
        port = int(env["KQE_HTTP_PORT"])
        held = []
        try:
            wait_until(lambda: self.status(port) == 200, what="kqe-api up")
            for _ in range(3 * limit):
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"GET /healthz HTTP/1.1\r\n")
                    held.append(s)
                except OSError:
                    break
            time.sleep(2)
            self.assertIsNone(proc.poll(), "kqe-api died")
        finally:
            for s in held:
                s.close()
        try:
            wait_until(lambda: self.status(port) == 200, timeout=30, what="served again")
        finally:
            proc.terminate()
            proc.wait(15)
        with open(log_path) as f:
            lines = [json.loads(l) for l in f if l.startswith("{")]
        failures = [l for l in lines if l["msg"] == "accept failed; pausing"]
        self.assertLessEqual(len(failures), 3, failures)
        self.assertTrue(any(l["msg"] == "connection cap lowered to fit the descriptor limit"
                            for l in lines))

    def port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def status(self, port):
        try:
            out = raw(port, b"GET /healthz HTTP/1.1\r\nHost: kqe\r\nConnection: close\r\n\r\n",
                      timeout=2)
            return answers(out)[0] if answers(out) else None
        except OSError:
            return None


class SmugglingTest(StackTestCase):
    """RFC 9112: ambiguous framing is a 400 and the connection ends: nothing after it is read."""

    SMUGGLED = b"GET /v1/audit HTTP/1.1\r\nHost: kqe\r\n\r\n"

    def assertRefused(self, request, detail):
        out = raw(self.stack.api_port, request)
        self.assertEqual(answers(out), [400], out)  # one answer: the smuggled one never is
        self.assertIn(b"Connection: close", out)
        self.assertIn(b"Content-Type: application/problem+json; charset=utf-8", out)
        problem = body_of(out)
        self.assertEqual((problem["status"], problem["detail"]), (400, detail))

    def test_two_content_lengths_that_differ(self):
        body = b'{"scope":"state","period":"2024"}'
        self.assertRefused(b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nContent-Type: "
                           b"application/json\r\nContent-Length: 0\r\nContent-Length: "
                           + str(len(body) + len(self.SMUGGLED)).encode() + b"\r\n\r\n"
                           + body + self.SMUGGLED,
                           "The request has two different Content-Length headers.")

    def test_space_before_the_colon_of_transfer_encoding(self):
        self.assertRefused(b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nTransfer-Encoding : "
                           b"chunked\r\n\r\n0\r\n\r\n" + self.SMUGGLED,
                           "A header name is malformed.")

    def test_unknown_and_doubled_transfer_codings(self):
        for coding in (b"xchunked", b"gzip, chunked", b"chunked, chunked", b"identity"):
            with self.subTest(coding=coding):
                self.assertRefused(b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nTransfer-Encoding: "
                                   + coding + b"\r\n\r\n0\r\n\r\n" + self.SMUGGLED,
                                   "Only Transfer-Encoding: chunked is understood.")

    def test_content_length_with_transfer_encoding(self):
        self.assertRefused(b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nContent-Length: 5\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + self.SMUGGLED,
                           "A request may not have both Content-Length and Transfer-Encoding.")

    def test_folded_header_lines(self):
        self.assertRefused(b"GET /healthz HTTP/1.1\r\nHost: kqe\r\nX-A: 1\r\n  folded\r\n\r\n",
                           "A header line is folded (obs-fold).")

    def test_two_authorization_headers(self):
        self.assertRefused(b"GET /v1/offices HTTP/1.1\r\nHost: kqe\r\nAuthorization: Bearer "
                           b"kqe_a\r\nAuthorization: Bearer kqe_b\r\n\r\n",
                           "The request has more than one Authorization header.")

    def test_http_1_1_needs_host_and_1_0_does_not(self):
        self.assertRefused(b"GET /healthz HTTP/1.1\r\n\r\n",
                           "An HTTP/1.1 request needs a Host header.")
        out = raw(self.stack.api_port, b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual(answers(out), [200], out)

    def test_headers_far_over_the_limit_are_431_problem_json(self):
        big = b"X-Padding: " + b"y" * 70000 + b"\r\n"
        out = raw(self.stack.api_port, b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n" + big + b"\r\n")
        self.assertEqual(answers(out), [431], out[:300])
        self.assertIn(b"Content-Type: application/problem+json; charset=utf-8", out)
        problem = body_of(out)
        self.assertEqual((problem["status"], problem["detail"]),
                         (431, "The request headers are too large."))
        self.assertRegex(problem["request_id"], r"^[0-9a-f]{24}$")

    def test_a_clean_request_on_the_same_connection_still_works(self):
        out = raw(self.stack.api_port, b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: kqe\r\nConnection: close\r\n\r\n")
        self.assertEqual(answers(out), [200, 200], out)


if __name__ == "__main__":
    unittest.main()
