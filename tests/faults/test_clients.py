"""Slow clients and clients that vanish mid-answer (docs/reliability.md "Fault drills").

The bad clients come from other loopback addresses (127.0.0.2 and up) than the load
(127.0.0.1), as they would from other hosts: what the connection guard allows one client
(KQE_MAX_CONNECTIONS_PER_CLIENT) is not the question here, whether they cost the others
anything is. Throughout, every request of the load must be answered 2xx in time.
"""

import json
import random
import socket
import struct
import threading
import time
import unittest
import uuid

from drill import Drill, wait_until

# How long the bad clients keep at it.
BAD_S = 8.0
# The guard's deadline for reading a request in these drills (KQE_HTTP_REQUEST_READ_MS).
READ_MS = 2000


def connect(port, source, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Set before connecting, so the window the server sees is small from the start.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def request_bytes(method, path, token, body=None, key=None):
    head = [f"{method} {path} HTTP/1.1", "Host: kqe", f"Authorization: Bearer {token}",
            "Connection: close"]
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    if key:
        head.append(f"Idempotency-Key: {key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


class BadClients:
    """Threads that each run one bad client until stopped; self.outcomes keeps what each saw."""

    def __init__(self):
        self.stop = threading.Event()
        self.threads = []
        self.outcomes = []

    def start(self, target, *args):
        t = threading.Thread(target=self._run, args=(target, args), daemon=True)
        t.start()
        self.threads.append(t)

    def _run(self, target, args):
        try:
            self.outcomes.append(target(self.stop, *args))
        except OSError as e:
            self.outcomes.append(("error", repr(e)))

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


class ClientDrills(Drill):
    api_env = {"KQE_HTTP_REQUEST_READ_MS": READ_MS}

    def served_throughout(self, outage):
        """The load's own requests were all answered 2xx while the bad clients were at it."""
        self.assertEqual([c.describe(self.t_fault) for c in outage
                          if not c.ok and not c.vanished], [])

    # --- slow clients ---------------------------------------------------------------
    def trickle(self, stop, source, head, unit):
        """Sends head, then unit every half second: the server must cut it at its deadline."""
        s = connect(self.stack.api_port, source)
        t0 = time.monotonic()
        try:
            s.sendall(head)
            s.settimeout(0.5)
            while not stop.is_set():
                try:
                    s.sendall(unit)
                    if s.recv(4096) == b"":
                        return ("cut", time.monotonic() - t0)
                except socket.timeout:
                    continue
                except OSError:
                    return ("cut", time.monotonic() - t0)
            return ("not cut", time.monotonic() - t0)
        finally:
            s.close()

    def read_slowly(self, stop, source, path):
        """Asks for a large answer through a 4 KiB window and reads 1 KiB every 0.1 s."""
        s = connect(self.stack.api_port, source, rcvbuf=4096)
        got = 0
        try:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: kqe\r\nConnection: close\r\n\r\n"
                      .encode())
            while not stop.is_set():
                chunk = s.recv(1024)
                if not chunk:
                    break
                got += len(chunk)
                time.sleep(0.1)
            return ("read", got)
        finally:
            s.close()

    def test_slow_clients(self):
        """For BAD_S: 30 clients trickle a request's header lines and 10 its body (a byte
        every half second, each from an address of its own), 10 read the API contract
        (/openapi.json, a large answer that costs the server next to nothing to make) through
        a 4 KiB window at 10 KiB/s. The guard must cut the tricklers at their deadline
        (KQE_HTTP_REQUEST_READ_MS); nobody else may notice any of them."""
        bad = BadClients()
        port_head = b"GET /healthz HTTP/1.1\r\nHost: kqe\r\n"
        body_head = (b"POST /v1/reports HTTP/1.1\r\nHost: kqe\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000\r\n\r\n{")

        def inject():
            for i in range(30):
                bad.start(self.trickle, f"127.0.0.{2 + i}", port_head, b"X-Slow: 1\r\n")
            for i in range(10):
                bad.start(self.trickle, f"127.0.0.{40 + i}", body_head, b" ")
            for i in range(10):
                bad.start(self.read_slowly, f"127.0.0.{60 + i}", "/openapi.json")

        def felt(outage):
            self.served_throughout(outage)
            kinds = [o[0] for o in bad.outcomes]
            self.figures["slow_clients"] = {k: kinds.count(k) for k in set(kinds)}
            self.assertEqual(kinds.count("cut"), 40, bad.outcomes)
            cut_after = [o[1] for o in bad.outcomes if o[0] == "cut"]
            self.figures["slow_clients_cut_after_s"] = [round(min(cut_after), 1),
                                                        round(max(cut_after), 1)]
            self.assertTrue(all(o[1] > 0 for o in bad.outcomes if o[0] == "read"),
                            bad.outcomes)
        self.run_drill(inject=inject, undo=bad.end, hold=BAD_S, felt=felt)

    # --- clients that vanish ----------------------------------------------------------
    def vanish(self, stop, source, report):
        """Asks for large answers and leaves while they are written: after reading a few
        bytes or none, half the time with a reset (SO_LINGER 0), half with a plain close.
        Every fourth is a batch of 100 case analyses (the import summary is the large
        answer), kept as a write of the load whose outcome the client never learnt."""
        n = 0
        rng = random.Random(source)
        while not stop.is_set():
            n += 1
            call = None
            if n % 4 == 0:
                call = self.load.batch_call(atomic=True)
                items = call.body["items"]
                while len(items) < 100:
                    ref = self.load.reference("v")
                    call.refs.append((call.refs[0][0], ref))
                    items.append(dict(items[0], case_reference=ref))
                call.vanished, call.key = True, str(uuid.uuid4())
                data = request_bytes("POST", call.path, call.token, call.body, call.key)
            else:
                path = ("/v1/case-analyses.csv?limit=500" if n % 2 else
                        f"/v1/reports/{report}.html")
                data = request_bytes("GET", path, self.stack.default_token)
            s = connect(self.stack.api_port, source, rcvbuf=4096)
            if call is not None:
                call.t0 = time.monotonic()
                self.load.calls.append(call)
            try:
                s.sendall(data)
                if call is not None:
                    time.sleep(rng.uniform(0, 0.3))  # the batch is being written meanwhile
                s.recv(rng.choice([0, 1, 100, 3000]) or 1)
            except OSError:
                pass
            finally:
                if n % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                if call is not None:
                    call.t1, call.error = time.monotonic(), "reset"
            stop.wait(0.2)  # a client that leaves, not one that floods
        return ("vanished", n)

    def test_vanishing_clients(self):
        """For BAD_S, 3 clients ask for a 500-row CSV, a report's HTML page or a 100-item
        batch's summary and close (or reset) the connection while it is being written. The
        API must answer everybody else, leak nothing (the sanitizers watch), and a batch whose
        client left is either stored whole or not at all: its retry settles which."""
        bad = BadClients()
        report = []

        def when():
            report.append(wait_until(lambda: self.stack.sql_value(
                "SELECT id FROM reports LIMIT 1"), timeout=60, what="a report built"))

        def inject():
            for i in range(3):
                bad.start(self.vanish, f"127.0.0.{100 + i}", report[0])

        def felt(outage):
            self.served_throughout(outage)
            left = sum(o[1] for o in bad.outcomes if o[0] == "vanished")
            self.figures["requests_abandoned"] = left
            self.assertGreater(left, 0, bad.outcomes)
        self.run_drill(when=when, inject=inject, undo=bad.end, hold=BAD_S, felt=felt)


if __name__ == "__main__":
    unittest.main()
