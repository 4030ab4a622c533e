"""Integration-test harness: real kqe binaries against real servers.

scripts/test starts one throw-away PostgreSQL cluster and exports
KQE_TEST_PG_URL (a superuser URL). Each test module gets its own database and
its own redis-server on a free loopback port, so modules run in parallel and
any test may stop or restart "its" Redis. Processes' stdout (the JSON log) is
kept under KQE_TEST_LOG_DIR for inspection after a failure.

`./scripts/test --valgrind` (scripts/lib/valgrind.sh) sets two more variables:
KQE_TEST_WRAPPER, a command line put in front of every kqe-api and
kqe-aggregator a Process starts ("{log}" in it becomes a log file of that
process), and KQE_TEST_TIMEOUT_SCALE, a factor for every wait of the harness
(the services run 20-50x slower under valgrind). See Process.
"""

import base64
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest
import uuid
import zlib

BIN = os.environ.get("KQE_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
PG_URL = os.environ.get("KQE_TEST_PG_URL")
LOG_DIR = os.environ.get("KQE_TEST_LOG_DIR", tempfile.gettempdir())
# Fixed test keys (never used outside tests): 32 bytes each, base64.
TEST_KEYS = {
    "KQE_PSEUDONYM_KEY": "dGVzdC1wc2V1ZG9ueW0ta2V5LTMyLWJ5dGVzLWxvbmchIQ==",
    "KQE_DATA_KEYS": "k1:dGVzdC1kYXRhLWtleS1udW1iZXItb25lLTMyLWJ5dGU=",
    "KQE_AUDIT_SIGNING_KEY": "dGVzdC1hdWRpdC1zaWduaW5nLWtleS0zMi1ieXRlcyE=",
}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
# A command line in front of kqe-api and kqe-aggregator (valgrind); "{log}" is its log file.
WRAPPER = shlex.split(os.environ.get("KQE_TEST_WRAPPER", ""))
# Every wait of the harness is this many times longer: a wrapped service is slower, and a
# wait is only a bound, never what a test asserts.
TIMEOUT_SCALE = float(os.environ.get("KQE_TEST_TIMEOUT_SCALE") or 1)
# The services' own bounds on a request's work (config.c defaults, ms), scaled the same way
# under the wrapper unless a test sets them: a batch of 1000 under valgrind takes longer than
# the 10 s a request may take natively, and would be answered 503.
SERVICE_TIMEOUTS_MS = {"KQE_REQUEST_TIMEOUT_MS": 10000, "KQE_STATEMENT_TIMEOUT_MS": 5000,
                       "KQE_REDIS_TIMEOUT_MS": 1000, "KQE_HTTP_REQUEST_READ_MS": 10000,
                       "KQE_HTTP_TIMEOUT_MS": 30000}


def timing_dependent(reason):
    """Skips a test under KQE_TEST_WRAPPER: it asserts what the service does within a fixed
    time (a deadline it is given, a timeout built in), which a process running 20-50x slower
    under valgrind cannot keep. The ASan run (./scripts/test) runs it."""
    return unittest.skipIf(bool(WRAPPER), f"timing-dependent under {WRAPPER[:1]}: {reason}")


# --- the contract recording -----------------------------------------------------
# Every response a test receives through Stack.request is appended, one JSON object per
# line, to $KQE_TEST_LOG_DIR/contract/<pid>.jsonl (one file per process: ctest runs the
# modules in parallel). test_contract.py validates them all against proto/openapi.yaml.
# Only when KQE_TEST_LOG_DIR is set (scripts/test sets it); never into a shared /tmp.
CONTRACT_DIR = (os.path.join(os.environ["KQE_TEST_LOG_DIR"], "contract")
                if os.environ.get("KQE_TEST_LOG_DIR") else None)
# Request headers worth keeping: they decide which documented answer applies.
_RECORDED_REQUEST_HEADERS = ("content-type", "if-match", "if-none-match", "idempotency-key",
                             "origin", "access-control-request-method")


def record_response(stack, method, path, request_headers, response):
    if CONTRACT_DIR is None:
        return
    try:
        body = response.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body = base64.b64encode(response.body).decode("ascii")
        encoding = "base64"
    entry = {
        "stack": stack, "method": method, "path": path,
        "request_headers": {k.lower(): v for k, v in request_headers.items()
                            if k.lower() in _RECORDED_REQUEST_HEADERS},
        "authorized": any(k.lower() == "authorization" for k in request_headers),
        "status": response.status, "headers": response.headers,
        "body": body, "body_encoding": encoding,
    }
    os.makedirs(CONTRACT_DIR, exist_ok=True)
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with open(os.path.join(CONTRACT_DIR, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
        f.write(line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailSink:
    """A local SMTP server (Debian's python3-aiosmtpd) that keeps every mail it takes in a
    maildir, where the tests read them: what ./scripts/run starts for people to read too."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, timeout=15, what="the mail sink")
        return self

    def _listening(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def messages(self):
        """Every mail taken so far: (message, decoded subject, decoded text)."""
        import email.header
        import mailbox
        if not os.path.isdir(self.directory):
            return []
        out = []
        for m in mailbox.Maildir(self.directory, create=False):
            subject = str(email.header.make_header(email.header.decode_header(m["Subject"])))
            out.append((m, subject, m.get_payload(decode=True).decode("utf-8")))
        return out

    def wait_for(self, count, timeout=20):
        wait_until(lambda: len(self.messages()) >= count, timeout=timeout,
                   what=f"{count} mails in the sink")
        return self.messages()


def metric(stack, name):
    """A value from GET /metrics (which must answer at once: it runs on the event loop)."""
    text = stack.get("/metrics", token=None, timeout=5).body.decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_until(predicate, timeout=15.0, interval=0.05, what="condition"):
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Redis:
    """One redis-server owned by a test module; with persist, an append-only file keeps the
    stream across a stop and start (as in production, docs/operations.md)."""

    def __init__(self, workdir, persist=False):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.persist = persist
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self):
        """The services' settings to reach this Redis."""
        return {"KQE_REDIS_URL": self.url}

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli("PING") == "PONG", what="redis")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def group_info(self, stream="kqe:jobs", group="kqe-aggregators"):
        """XINFO GROUPS of the job stream as a dict for our group ({} if none)."""
        out = self.cli("XINFO", "GROUPS", stream) or ""
        lines = out.split("\n")
        info = dict(zip(lines[0::2], lines[1::2]))
        return info if info.get("name") == group else {}

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True)
        return r.stdout.strip() if r.returncode == 0 else None


class Process:
    """A kqe-api or kqe-aggregator (or whatever argv names), its output appended to log_path.

    Under KQE_TEST_WRAPPER the process runs inside the wrapper, whose own report goes to
    <log_path without .log>.<n>.wrapper.log (n counts the processes of that name). stop()
    then fails (AssertionError, with the report) if valgrind found errors or definite or
    indirect leaks: a process stopped with SIGTERM exits through its own cleanup, so memcheck
    ends with a leak check and an ERROR SUMMARY, and exits 99 when it counted any. A process
    killed on purpose (SIGKILL) gets no leak check; what memcheck reported before still fails.
    """

    _counts = {}

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.wrapper_log = None
        if WRAPPER:
            n = Process._counts[log_path] = Process._counts.get(log_path, 0) + 1
            self.wrapper_log = f"{log_path.removesuffix('.log')}.{n}.wrapper.log"
            argv = [a.replace("{log}", self.wrapper_log) for a in WRAPPER] + list(argv)
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        how = "killed" if sig == signal.SIGKILL else "stopped"
        timeout *= TIMEOUT_SCALE
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                how = f"did not exit within {timeout:.0f} s of the signal, so no leak check"
        self.log.close()
        if self.wrapper_log is not None:
            self.check_wrapper(how)
        return self.proc.returncode

    def check_wrapper(self, how):
        """Fails with the report if valgrind counted errors or definite/indirect leaks.
        how: "stopped" (it exited: a summary), "killed" (SIGKILL: none), else why it hung."""
        try:
            with open(self.wrapper_log, "rb") as f:
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
        if how == "killed":
            # No summary: count the reports written so far (a message, then its stack).
            found = valgrind_reports(text)
            problem = f"{found} error(s) before it was killed" if found else None
        elif how != "stopped":
            problem = how
        elif not summary:
            problem = f"no ERROR SUMMARY (exit status {self.proc.returncode})"
        elif int(summary[-1]) or self.proc.returncode == 99:
            problem = (f"{summary[-1]} error(s), definite and indirect leaks included "
                       f"(exit status {self.proc.returncode})")
        else:
            problem = None
        if problem:
            raise AssertionError(f"valgrind: {self.name}: {problem}; {self.wrapper_log}:\n"
                                 + text[-20000:])


def valgrind_reports(text):
    """How many errors a (possibly cut-off) memcheck log reports: "==pid== message" lines
    followed by "==pid==    at 0x…" (the first frame of the stack)."""
    lines = text.splitlines()
    return sum(1 for a, b in zip(lines, lines[1:])
               if re.match(r"==\d+== \S", a) and re.match(r"==\d+==    at 0x", b))


class Stack:
    """A database, a Redis and optionally kqe-api / kqe-aggregator for one test module.

    pg_url: a superuser URL of another cluster than KQE_TEST_PG_URL's (tests/faults has one
    on a small file system, and a primary with its standby: several hosts and
    target_session_attrs); persist_redis: see Redis; redis_cls: another kind of Redis with
    Redis's methods (tests/faults/test_failover.py: a master, a replica and Sentinels)."""

    def __init__(self, name, pg_url=None, persist_redis=False, redis_cls=None):
        self.pg_url = pg_url or PG_URL
        if not self.pg_url:
            raise unittest.SkipTest("KQE_TEST_PG_URL is not set: run through ./scripts/test")
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix=f"kqe-{name}-")
        self.dbname = f"kqe_{name}_{uuid.uuid4().hex[:8]}"
        # The database's name replaces the URL's; a query (?target_session_attrs=…) stays.
        self.db_url = re.sub(r"/[^/?]*(\?[^/]*)?$", lambda m: "/" + self.dbname + (m.group(1) or ""),
                             self.pg_url)
        self.redis = (redis_cls or Redis)(self.workdir, persist=persist_redis)
        self.api = None
        self.aggregator = None
        self.api_port = None
        self.api_env = {}
        self.default_token = None
        self.tokens = {}
        self.tls_ca = None  # a CA file: talk HTTPS to kqe-api
        self.logs = os.path.join(LOG_DIR, f"{name}-{self.dbname}")
        os.makedirs(self.logs, exist_ok=True)

    # --- lifecycle -------------------------------------------------------
    def setup(self, migrate=True):
        psql(self.pg_url, f"CREATE DATABASE {self.dbname}")
        self.redis.start()
        if migrate:
            self.kqe("migrate", check=True)
        return self

    def teardown(self):
        failures = []
        for p in (self.api, self.aggregator):
            if p is not None:
                try:
                    p.stop()
                except AssertionError as e:  # valgrind's report: clean up first
                    failures.append(str(e))
        self.redis.stop()
        psql(self.pg_url, f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.check_sanitizers()
        if failures:
            raise AssertionError("\n".join(failures))

    def check_sanitizers(self):
        """Fails if any kqe process of this stack reported an ASan/UBSan/LSan finding."""
        for name in os.listdir(self.logs):
            if name.endswith(".wrapper.log"):
                continue  # valgrind's own reports: Process.check_wrapper reads them
            with open(os.path.join(self.logs, name), "rb") as f:
                text = f.read().decode(errors="replace")
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    raise AssertionError(f"{marker} in {self.logs}/{name}:\n{text[-4000:]}")

    @property
    def service_url(self):
        """The same database as the service role: what kqe-api and kqe-aggregator use."""
        return re.sub(r"//[^@/]*@", "//kqe_service@", self.db_url)

    def env(self, **overrides):
        env = dict(os.environ)
        env.update(TEST_KEYS)
        if WRAPPER:
            env.update({k: str(int(v * TIMEOUT_SCALE)) for k, v in SERVICE_TIMEOUTS_MS.items()})
        env.update({
            "KQE_DATABASE_URL": self.service_url,
            "KQE_DATABASE_ADMIN_URL": self.db_url,
            "KQE_LOG_LEVEL": "info",
            **self.redis.env(),
        })
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def kqe(self, *args, check=False, env=None, input=None):
        r = subprocess.run([os.path.join(BIN, "kqe"), *args], env=env or self.env(),
                           capture_output=True, text=True, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"kqe {' '.join(args)} failed: {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def token(self, role, office=None, region=None, institute=None, expires=None, name=None,
              provider=None, programme=None):
        """A new API key made with `kqe token create`; returns (token, id)."""
        args = ["token", "create", "--name", name or f"test-{role}", "--role", role]
        for flag, value in (("--office", office), ("--region", region),
                            ("--institute", institute), ("--provider", provider),
                            ("--programme", programme), ("--expires", expires)):
            if value is not None:
                args += [flag, value]
        out = self.kqe(*args, check=True).stdout
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        self.tokens[fields["token"]] = role
        return fields["token"], fields["id"]

    def professional_token(self, programme, status="approved"):
        """An API key of the role professional: a registration of programme made directly
        (as the approval would), and its key; returns (token, registration id)."""
        import hashlib
        import secrets
        token = "kqe_" + secrets.token_urlsafe(32)
        rid = str(uuid.uuid4())
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.sql("INSERT INTO professionals (id, programme_id, person_enc, email_key, seat,"
                 " status, confirm_hash, confirm_expires) VALUES"
                 f" ('{rid}', '{programme}', 'x', '{secrets.token_hex(32)}', 'Köln',"
                 f" '{status}', '{secrets.token_hex(32)}', now())")
        self.sql("INSERT INTO api_tokens (name, token_hash, role, programme_id, professional_id)"
                 f" VALUES ('test-professional', '{digest}', 'professional', '{programme}',"
                 f" '{rid}')")
        self.tokens[token] = "professional"
        return token, rid

    def start_api(self, wait_ready=True, port=None, binary=None, **env):
        """port: listen there (a restart on the port clients know), else on a free one;
        binary: another kqe-api than this build's (test_upgrade.py: the previous release's)."""
        self.api_port = port or free_port()
        self.api_env = env
        # Every test request comes from 127.0.0.1: the per-address limit of registering
        # without a token stays out of the way unless a test sets it (test_mail.py does).
        self.api = Process("api", [binary or os.path.join(BIN, "kqe-api")],
                           self.env(KQE_HTTP_PORT=self.api_port,
                                    **{"KQE_SIGNUP_RATE_LIMIT_PER_MINUTE": 100000, **env}),
                           os.path.join(self.logs, "api.log"))
        path = "/readyz" if wait_ready else "/healthz"
        wait_until(lambda: self._status(path) == 200, what=f"kqe-api {path}")
        return self.api

    def stop_api(self, sig=signal.SIGTERM):
        api, self.api = self.api, None
        return api.stop(sig)

    def start_aggregator(self, **env):
        self.aggregator = Process("aggregator", [os.path.join(BIN, "kqe-aggregator")],
                                  self.env(**{"KQE_JOBS_BLOCK_MS": 200, "KQE_OUTBOX_GRACE_MS": 200,
                                              # A release before every report job, refreshing
                                              # on any change: reports follow each write, as
                                              # most tests want (test_releases sets its own).
                                              "KQE_RELEASE_INTERVAL_S": 0,
                                              "KQE_RELEASE_MIN_CHANGES": 1,
                                              "KQE_RELEASE_FINAL": 0, **env}),
                                  os.path.join(self.logs, "aggregator.log"))
        return self.aggregator

    def stop_aggregator(self, sig=signal.SIGTERM):
        aggregator, self.aggregator = self.aggregator, None
        return aggregator.stop(sig)

    def _status(self, path):
        try:
            return self.request("GET", path).status
        except OSError:
            return None

    # --- HTTP ------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, raw=None, timeout=10,
                token="default"):
        """token: "default" uses self.default_token, None sends no Authorization."""
        timeout *= TIMEOUT_SCALE
        if self.tls_ca is not None:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, timeout=timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=timeout)
        hdrs = dict(headers or {})
        if token == "default":
            token = self.default_token
        if token is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            response = Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()
        record_response(self.name, method, path, hdrs, response)
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    # --- database ----------------------------------------------------------
    def sql(self, query):
        return psql(self.db_url, query)

    def sql_error_as_service(self, query):
        """Runs query as kqe_service (the services' role); its error message, or None."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            self.service_url, "-c", query], capture_output=True, text=True)
        return r.stderr if r.returncode != 0 else None

    def sql_value(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def open_procedure(self):
        """(id, office, institute) of an open demo procedure assigned to an institute."""
        return self.sql("SELECT id, office_id, institute_id FROM procedures"
                        " WHERE phase <> 'completed' AND institute_id IS NOT NULL"
                        " AND NOT out_of_cycle ORDER BY id LIMIT 1")[0]

    def wait_job(self, job_id, status="succeeded", timeout=15):
        return wait_until(
            lambda: self.sql_value(f"SELECT status FROM jobs WHERE id = '{job_id}'") == status,
            timeout=timeout, what=f"job {job_id} {status}")

    def log_lines(self, which="api"):
        with open(os.path.join(self.logs, f"{which}.log"), "rb") as f:
            return [json.loads(l) for l in f.read().decode().splitlines() if l.startswith("{")]


def psql(url, query):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", url,
                        "-c", query], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"psql failed: {r.stderr}")
    return [line.split("\t") for line in r.stdout.splitlines()]


class SqlSession:
    """A psql session kept open, to hold a transaction (and its locks) across requests."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, query):
        """Runs query and waits until psql has answered it; its output lines. The last
        statement needs no semicolon (psql would wait for one)."""
        self.proc.stdin.write(query.rstrip().rstrip(";") + ";\n\\echo --done--\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self.proc.stdout.readline()) != "--done--\n":
            if line == "":
                raise AssertionError(f"psql ended while running: {query}")
            lines.append(line.rstrip("\n"))
        return lines

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


_PTABLE = {}


def perturb(stack, n, keysum):
    """The published count for a true count n whose records' keys sum to keysum: the
    perturbation table of `kqe sdc ptable --json`, looked up as common/src/ckm.c does (a
    reimplementation of the lookup only, so a test compares two)."""
    if "rows" not in _PTABLE:
        _PTABLE.update(json.loads(stack.kqe("sdc", "ptable", "--json", check=True).stdout))
    if n <= 0:
        return n
    rows = _PTABLE["rows"]
    key = keysum % (1 << 32)
    for noise in rows[min(n, len(rows) - 1)]["noise"]:
        if key < noise["key_below"]:
            return n + noise["v"]
    raise AssertionError("the perturbation table's last interval must end at 2^32")


def published(stack, atoms):
    """What a report publishes for a count over atoms, (n, sum of record keys) pairs of the
    finest cells (a year of a cycle × region × kind × category; docs/disclosure.md): the sum
    of the atoms, each perturbed with its own cell key."""
    return sum(perturb(stack, n, k) for n, k in atoms)


def png_colours(path):
    """Distinct pixel rows of a PNG (stdlib only): a blank page has one."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, height = 8, b"", 1
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            height = struct.unpack(">I", chunk[4:8])[0]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height  # one filter byte + the row's pixels
    return len({raw[i:i + stride] for i in range(0, len(raw), stride)})


def render_in_chromium(test, html, name):
    """Renders html (bytes) in headless Chromium as an A4-sized page: a screenshot that is
    not blank, no console message; returns the DOM Chromium built. The screenshot goes to
    KQE_TEST_LOG_DIR as <name>-screenshot.png."""
    chromium = shutil.which("chromium")
    test.assertIsNotNone(chromium, "chromium is installed by ./scripts/test")
    work = tempfile.mkdtemp(prefix="kqe-chromium-")
    try:
        page = os.path.join(work, f"{name}.html")
        with open(page, "wb") as f:
            f.write(html)
        shot = os.path.join(work, f"{name}.png")
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--disable-background-networking",
                 "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr",
                 "--v=0", f"--user-data-dir={work}/profile", "--window-size=1240,1754"]
        r = subprocess.run(flags + [f"--screenshot={shot}", f"file://{page}"],
                           capture_output=True, text=True, timeout=120)
        test.assertEqual(r.returncode, 0, r.stderr[-2000:])
        test.assertGreater(os.path.getsize(shot), 10_000)
        test.assertGreater(png_colours(shot), 50)  # not a blank page
        artefacts = os.environ.get("KQE_TEST_LOG_DIR")
        if artefacts:
            shutil.copy(shot, os.path.join(artefacts, f"{name}-screenshot.png"))
        test.assertEqual([l for l in r.stderr.splitlines() if "CONSOLE" in l], [])
        dom = subprocess.run(flags + ["--dump-dom", f"file://{page}"],
                             capture_output=True, text=True, timeout=120)
        test.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        test.assertEqual([l for l in dom.stderr.splitlines() if "CONSOLE" in l], [])
        return dom.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


class StackTestCase(unittest.TestCase):
    """Base class: one Stack per test class, set up with migrations and kqe-api running."""

    start_api = True
    start_aggregator = False
    seed_demo = False
    api_env = {}
    aggregator_env = {}
    default_role = "admin"  # the token requests carry unless they say otherwise

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.__name__.lower())
        try:
            cls.stack.setup()
            if cls.seed_demo:
                cls.stack.kqe("seed", "--demo", check=True)
            if cls.default_role:
                cls.stack.default_token = cls.stack.token(cls.default_role)[0]
            if cls.start_api:
                cls.stack.start_api(**cls.api_env)
            if cls.start_aggregator:
                cls.stack.start_aggregator(**cls.aggregator_env)
        except BaseException:
            cls.stack.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.teardown()

    def assertProblem(self, resp, status, errors=None, detail=None):
        """Asserts an exact status, problem+json shape and (if given) the exact error list."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.header("Content-Type").startswith("application/problem+json"), resp)
        body = resp.json()
        self.assertEqual(body["status"], status)
        self.assertIn("title", body)
        self.assertTrue(body["type"].startswith("https://kqe.nrw/problems/"))
        self.assertEqual(body["request_id"], resp.header("X-Request-Id"))
        if detail is not None:
            self.assertEqual(body["detail"], detail)
        if errors is not None:
            got = [{k: e[k] for k in e if k in ("pointer", "parameter", "code")}
                   for e in body.get("errors", [])]
            self.assertEqual(got, errors, body)
        return body
