"""JWTs from the identity provider: RS256 and ES256 accepted, every forgery refused.

Keys come from a JWKS file (JwtTest) or from the identity provider's JWKS endpoint
(JwksUrlTest: a real HTTPS server on loopback with a certificate from a CA made here).
"""

import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import unittest
import uuid

from harness import BIN, StackTestCase, timing_dependent, wait_until

ISSUER = "https://idp.test.nrw/realms/kqe"
AUDIENCE = "kqe-api"
OFFICE = "demo-lvr-001"


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True,
                          check=True).stdout


def der_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) → 64-byte r || s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class Keys:
    def __init__(self, directory):
        self.dir = directory
        self.rsa = self.path("rsa.pem")
        self.rsa_other = self.path("rsa-other.pem")
        self.ec = self.path("ec.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                self.rsa_other)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ec)
        self.rsa_public_pem = openssl("pkey", "-in", self.rsa, "-pubout")

    def path(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def rsa_jwk(path, kid, use="sig"):
        modulus = openssl("rsa", "-in", path, "-noout", "-modulus").decode()
        n = bytes.fromhex(modulus.strip().split("=", 1)[1])
        jwk = {"kty": "RSA", "kid": kid, "use": use, "n": b64(n), "e": "AQAB"}
        if use == "sig":
            jwk["alg"] = "RS256"
        return jwk

    @staticmethod
    def ec_jwk(path, kid):
        point = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")[-65:]
        assert point[0] == 4
        return {"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                "x": b64(point[1:33]), "y": b64(point[33:])}

    def jwks(self):
        return {"keys": [self.rsa_jwk(self.rsa, "rsa-1"), self.ec_jwk(self.ec, "ec-1"),
                         self.rsa_jwk(self.rsa, "enc-1", use="enc")]}

    def sign(self, header, claims, key=None):
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        alg = header.get("alg")
        if alg == "RS256":
            sig = openssl("dgst", "-sha256", "-sign", key or self.rsa, data=signing_input.encode())
        elif alg == "ES256":
            sig = der_to_raw(openssl("dgst", "-sha256", "-sign", key or self.ec,
                                     data=signing_input.encode()))
        elif alg == "HS256":  # keyed with the RSA *public* key: the classic confusion attack
            sig = hmac.new(self.rsa_public_pem, signing_input.encode(), hashlib.sha256).digest()
        else:
            sig = b""
        return f"{signing_input}.{b64(sig)}"


class JwtTest(StackTestCase):
    seed_demo = True
    default_role = None

    start_api = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.keys = Keys(cls.stack.workdir)
            jwks_path = cls.keys.path("jwks.json")
            with open(jwks_path, "w") as f:
                json.dump(cls.keys.jwks(), f)
            cls.stack.start_api(KQE_JWKS_FILE=jwks_path, KQE_JWT_ISSUER=ISSUER,
                                KQE_JWT_AUDIENCE=AUDIENCE, KQE_JWT_LEEWAY_S=60)
        except BaseException:
            cls.stack.teardown()
            raise

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-4711", "iat": now, "exp": now + 300,
             "kqe_role": "office_staff", "kqe_office": OFFICE}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def rs(self, **over):
        return self.keys.sign({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}, self.claims(**over))

    def test_rs256_office_token_sees_own_procedures(self):
        r = self.stack.get("/v1/procedures", token=self.rs())
        self.assertEqual(r.status, 200, r)
        self.assertEqual({p["office_id"] for p in r.json()["items"]}, {OFFICE})

    def test_es256_admin_token_and_audience_list(self):
        token = self.keys.sign({"alg": "ES256", "kid": "ec-1"},
                               self.claims(kqe_role="admin", kqe_office=None,
                                           aud=["other", AUDIENCE]))
        self.assertEqual(self.stack.get("/v1/audit?limit=1", token=token).status, 200)

    def test_jwt_actor_is_recorded_in_the_audit_log(self):
        token = self.keys.sign({"alg": "ES256", "kid": "ec-1"},
                               self.claims(kqe_role="ministry", kqe_office=None,
                                           sub="ministry-user"))
        r = self.stack.post("/v1/reports", {"scope": "state", "period": "2024"}, token=token)
        self.assertEqual(r.status, 202, r)
        actor = self.stack.sql_value("SELECT actor FROM audit_log WHERE action = 'report.request'"
                                     " ORDER BY id DESC LIMIT 1")
        self.assertEqual(actor, "jwt:ministry-user")

    def test_provider_staff_is_bound_to_the_provider_of_its_claim(self):
        token = self.rs(kqe_role="provider_staff", kqe_office=None,
                        kqe_provider="demo-traeger-lwl-02")
        r = self.stack.get("/v1/protection-concepts", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({c["provider_id"] for c in r.json()["items"]} - {"demo-traeger-lwl-02"},
                         set())
        self.assertEqual(self.stack.get("/v1/procedures", token=token).status, 403)

    def test_programme_team_is_bound_to_the_programme_of_its_claim(self):
        programme = self.stack.sql_value(
            "SELECT id FROM programmes WHERE NOT nrw_only AND synthetic")
        token = self.rs(kqe_role="programme_team", kqe_office=None, kqe_programme=programme)
        me = self.stack.get("/v1/me", token=token).json()
        self.assertEqual((me["role"], me["programme_id"]), ("programme_team", programme))
        r = self.stack.get("/v1/applications?limit=100", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({a["programme_id"] for a in r.json()["items"]}, {programme})
        self.assertEqual(self.stack.get("/v1/procedures", token=token).status, 403)

    def test_leeway_accepts_small_clock_skew(self):
        now = int(time.time())
        self.assertEqual(self.stack.get("/v1/offices", token=self.rs(exp=now - 20)).status, 200)
        self.assertEqual(self.stack.get("/v1/offices", token=self.rs(nbf=now + 20)).status, 200)

    def test_forged_and_invalid_tokens_are_401(self):
        now = int(time.time())
        good = self.rs()
        h, p, s = good.split(".")
        tampered_claims = b64(json.dumps(self.claims(kqe_role="admin", kqe_office=None)).encode())
        cases = {
            "wrong key": self.keys.sign({"alg": "RS256", "kid": "rsa-1"}, self.claims(),
                                        key=self.keys.rsa_other),
            "alg none": self.keys.sign({"alg": "none"}, self.claims()),
            "alg none with kid": self.keys.sign({"alg": "none", "kid": "rsa-1"}, self.claims()),
            "HS256 keyed with the public key": self.keys.sign({"alg": "HS256", "kid": "rsa-1"},
                                                              self.claims()),
            "RS256 header on the EC key": self.keys.sign({"alg": "RS256", "kid": "ec-1"},
                                                         self.claims()),
            "encryption key": self.keys.sign({"alg": "RS256", "kid": "enc-1"}, self.claims()),
            "unknown kid": self.keys.sign({"alg": "RS256", "kid": "nope"}, self.claims()),
            "expired": self.rs(exp=now - 120),
            "no exp": self.rs(exp=None),
            "not yet valid": self.rs(nbf=now + 120),
            "wrong audience": self.rs(aud="someone-else"),
            "wrong issuer": self.rs(iss="https://evil.example"),
            "no subject": self.rs(sub=None),
            # The subject becomes the audit actor and goes into logs: no control characters.
            "subject with a bell": self.rs(sub="user\u0007"),
            "subject with a line break": self.rs(sub="user\nrole=admin"),
            "subject with DEL": self.rs(sub="user\u007f"),
            "subject with a C1 control": self.rs(sub="user\u0085"),
            "unknown role": self.rs(kqe_role="superuser"),
            "office role without office": self.rs(kqe_office=None),
            "advisor without region": self.rs(kqe_role="advisor", kqe_office=None),
            "provider staff without provider": self.rs(kqe_role="provider_staff",
                                                       kqe_office=None),
            "programme team without programme": self.rs(kqe_role="programme_team",
                                                         kqe_office=None),
            "programme team with a programme that is no id": self.rs(
                kqe_role="programme_team", kqe_office=None, kqe_programme="nzfh"),
            "tampered claims": f"{h}.{tampered_claims}.{s}",
            "truncated signature": f"{h}.{p}.{s[:-4]}",
            "empty signature": f"{h}.{p}.",
            "garbage": "a.b.c",
            "four parts": good + ".x",
        }
        for name, token in cases.items():
            with self.subTest(case=name):
                r = self.stack.get("/v1/offices", token=token)
                self.assertProblem(r, 401)
                self.assertEqual(r.header("WWW-Authenticate"),
                                 'Bearer realm="kqe", error="invalid_token"')

    def test_tokens_never_appear_in_the_log(self):
        token = self.rs()
        self.stack.get("/v1/offices", token=token)
        self.stack.get("/v1/offices", token=self.rs(iss="https://evil.example"))
        with open(self.stack.logs + "/api.log") as f:
            log = f.read()
        for part in token.split("."):
            self.assertNotIn(part, log)

    def test_bad_jwks_settings_exit_2(self):
        bad = self.keys.path("bad.json")
        with open(bad, "w") as f:
            json.dump({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, f)
        cases = [({"KQE_JWKS_FILE": bad, "KQE_JWT_ISSUER": ISSUER, "KQE_JWT_AUDIENCE": AUDIENCE},
                  "KQE_JWKS_FILE"),
                 ({"KQE_JWKS_FILE": "/nonexistent", "KQE_JWT_ISSUER": ISSUER,
                   "KQE_JWT_AUDIENCE": AUDIENCE}, "KQE_JWKS_FILE"),
                 ({"KQE_JWKS_FILE": self.keys.path("jwks.json")}, "KQE_JWT_ISSUER")]
        for extra, name in cases:
            with self.subTest(name=name):
                env = self.stack.env(KQE_HTTP_PORT=0, **extra)
                r = subprocess.run([os.path.join(BIN, "kqe-api")], env=env, capture_output=True,
                                   text=True, timeout=10)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(name, r.stderr)


# --- keys from the identity provider's JWKS endpoint --------------------------------------

IDP_PATH = "/realms/kqe/protocol/openid-connect/certs"


def make_ca(directory, name):
    """A self-signed CA (certificate, key) for a private PKI."""
    cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", key, "-out", cert)
    return cert, key


def make_server_certificate(directory, ca, name):
    """A certificate for 127.0.0.1 signed by ca; returns (certificate, key)."""
    ca_cert, ca_key = ca
    cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
    csr, ext = os.path.join(directory, f"{name}.csr"), os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial",
            str(uuid.uuid4().int >> 64), "-days", "1", "-extfile", ext, "-out", cert)
    return cert, key


class IdentityProvider:
    """The JWKS endpoint of an identity provider: Python's http.server over TLS on a free
    loopback port. Counts the requests for the JWKS, serves whatever keys a test sets, and
    fails on demand (mode)."""

    MODES = ("ok", "fail", "garbage", "huge", "redirect-http")

    def __init__(self, cert, key):
        self.lock = threading.Lock()
        self.reset()
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with idp.lock:
                    if self.path == IDP_PATH:
                        idp._requests += 1
                    mode, doc, cache_control = idp.mode, idp.document, idp.cache_control
                if self.path != IDP_PATH:
                    return self.answer(404, b"{}")
                if mode == "fail":
                    return self.answer(503, b"Service Unavailable")
                if mode == "garbage":
                    return self.answer(200, b"<html>login</html>")
                if mode == "redirect-http":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{idp.port}{IDP_PATH}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if mode == "huge":  # no Content-Length: only the stream shows the size
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        self.wfile.write(b'{"keys": [' + b" " * (2 * 1024 * 1024))
                    except OSError:
                        pass  # kqe-api hung up, as it should
                    return None
                extra = {"Cache-Control": cache_control} if cache_control else {}
                return self.answer(200, json.dumps(doc).encode(), **extra)

            def answer(self, status, body, **headers):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}{IDP_PATH}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.mode = "ok"
            self.document = {"keys": []}
            self.cache_control = None
            self._requests = 0

    def serve(self, document=None, mode=None, cache_control=None):
        with self.lock:
            if document is not None:
                self.document = document
            if mode is not None:
                assert mode in self.MODES, mode
                self.mode = mode
            if cache_control is not None:
                self.cache_control = cache_control

    @property
    def requests(self):
        with self.lock:
            return self._requests

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@timing_dependent("each fetch's TLS handshake must end within the built-in 3 s connect timeout;"
                  " under memcheck the first takes 1-2 s on a quiet machine, over 3 s on a busy one")
class JwksUrlTest(StackTestCase):
    """KQE_JWKS_URL: keys fetched over HTTPS, cached, refreshed on rotation, rate-limited."""

    start_api = False
    default_role = "admin"  # an API key, which works whatever the identity provider does

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            d = cls.stack.workdir
            cls.keys = Keys(d)
            cls.ca = make_ca(d, "idp-ca")
            cls.other_ca = make_ca(d, "other-ca")
            cls.idp = IdentityProvider(*make_server_certificate(d, cls.ca, "idp"))
        except BaseException:
            cls.stack.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.idp.stop()
        super().tearDownClass()

    def setUp(self):
        self.idp.reset()
        self.idp.serve({"keys": [Keys.rsa_jwk(self.keys.rsa, "rsa-1"),
                                 Keys.ec_jwk(self.keys.ec, "ec-1")]})

    def tearDown(self):
        if self.stack.api is not None:
            self.assertEqual(self.stack.stop_api(), 0)

    # --- helpers ---------------------------------------------------------------------
    def start(self, **env):
        """Starts kqe-api with keys from the identity provider; waits until it is ready."""
        self.log_start = len(self.stack.log_lines()) if os.path.exists(
            os.path.join(self.stack.logs, "api.log")) else 0
        settings = {"KQE_JWKS_URL": self.idp.url, "KQE_JWKS_CA_FILE": self.ca[0],
                    "KQE_JWT_ISSUER": ISSUER, "KQE_JWT_AUDIENCE": AUDIENCE}
        settings.update(env)
        self.stack.start_api(**settings)

    def log(self):
        """The log lines of the kqe-api started last."""
        return self.stack.log_lines()[self.log_start:]

    def wait_log(self, msg, what=None, **fields):
        def found():
            for line in self.log():
                if line.get("msg") == msg and all(line.get(k) == v for k, v in fields.items()):
                    return line
            return None
        return wait_until(found, timeout=30, what=what or f"log line {msg!r} {fields}")

    def token(self, kid="rsa-1", key=None, alg="RS256", **claims):
        now = int(time.time())
        c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-4711", "iat": now, "exp": now + 300,
             "kqe_role": "ministry"}
        c.update(claims)
        return self.keys.sign({"alg": alg, "typ": "JWT", "kid": kid}, c, key=key)

    def status(self, token):
        return self.stack.get("/v1/offices", token=token).status

    # --- tests -----------------------------------------------------------------------
    def test_tokens_verify_with_keys_from_the_url(self):
        self.idp.serve(cache_control="public, max-age=5")
        self.start()
        fetched = self.wait_log("jwks fetched")
        self.assertEqual(fetched["level"], "info")
        self.assertEqual(fetched["keys"], 2)
        self.assertEqual(fetched["host"], "127.0.0.1")
        self.assertEqual(fetched["next_refresh_s"], 60)  # max-age=5 clamped to the minimum
        self.assertEqual(self.status(self.token()), 200)
        self.assertEqual(self.status(self.token(kid="ec-1", alg="ES256")), 200)
        self.assertEqual(self.status(self.token(key=self.keys.rsa_other)), 401)  # forged
        self.assertEqual(self.status(self.token(iss="https://evil.example")), 401)
        self.assertEqual(self.idp.requests, 1)  # cached: one fetch served all of them

    def test_key_rotation_is_picked_up_without_a_restart(self):
        self.idp.serve(cache_control="max-age=3600")
        self.start()
        self.assertEqual(self.wait_log("jwks fetched")["next_refresh_s"], 3600)
        self.assertEqual(self.status(self.token()), 200)
        before = self.idp.requests
        # The identity provider rotates: rsa-1 is retired, rsa-2 signs new tokens.
        self.idp.serve({"keys": [Keys.rsa_jwk(self.keys.rsa_other, "rsa-2"),
                                 Keys.ec_jwk(self.keys.ec, "ec-1")]})
        self.assertEqual(self.status(self.token(kid="rsa-2", key=self.keys.rsa_other)), 200)
        self.assertEqual(self.idp.requests, before + 1)
        self.wait_log("jwks fetched", trigger="unknown kid", keys=2)
        self.assertEqual(self.status(self.token(kid="rsa-2", key=self.keys.rsa_other)), 200)
        self.assertEqual(self.status(self.token(kid="ec-1", alg="ES256")), 200)
        self.assertEqual(self.status(self.token()), 401)  # the retired key no longer verifies
        self.assertEqual(self.stack.get("/v1/offices").status, 200)  # the API key, as ever

    def test_a_burst_of_unknown_kids_fetches_at_most_once(self):
        self.start()
        self.wait_log("jwks fetched")
        before = self.idp.requests
        tokens = [self.token(kid=f"random-{uuid.uuid4().hex}") for _ in range(40)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(self.status, tokens))
        self.assertEqual(statuses, [401] * len(tokens))
        # The first unknown kid asked for one refresh; all others fell in the cool-down.
        wait_until(lambda: self.idp.requests >= before + 1, what="the refresh")
        self.assertEqual(self.status(self.token(kid=f"random-{uuid.uuid4().hex}")), 401)
        self.assertEqual(self.idp.requests, before + 1)
        self.assertEqual(self.status(self.token()), 200)  # the known keys are unaffected
        refused = [l for l in self.log() if l.get("msg") == "jwt refused"]
        self.assertEqual({l["reason"] for l in refused}, {"unknown kid"})

    def test_idp_down_at_start_then_back(self):
        self.idp.serve(mode="fail")
        self.start()  # ready although the identity provider is down
        failed = self.wait_log("jwks fetch failed")
        self.assertEqual(failed["level"], "error")
        self.assertEqual(failed["host"], "127.0.0.1")
        self.assertEqual(failed["reason"], "HTTP status 503")
        self.assertGreater(failed["retry_in_s"], 0)
        self.assertFalse(failed["have_keys"])
        token = self.token()
        self.assertEqual(self.status(token), 401)
        self.wait_log("jwt refused", reason="no keys from the identity provider yet")
        self.assertEqual(self.stack.get("/v1/offices").status, 200)  # API keys keep working
        self.assertEqual(self.stack.get("/readyz", token=None).status, 200)
        # Back: the retries pick the keys up without a restart.
        self.idp.serve(mode="ok")
        wait_until(lambda: self.status(self.token()) == 200, timeout=90,
                   what="JWTs accepted after the identity provider came back")
        recovered = self.wait_log("jwks fetched after failures")
        self.assertTrue(recovered["recovered"])
        self.assertGreaterEqual(recovered["failed_attempts"], 1)
        with open(os.path.join(self.stack.logs, "api.log")) as f:
            text = f.read()
        for part in token.split("."):
            self.assertNotIn(part, text)

    def test_unusable_answers_are_refused_with_one_error_line_each(self):
        cases = {"garbage": "not a JWKS: ", "huge": "response larger than 1048576 bytes",
                 "redirect-http": 'Protocol "http" not supported'}
        for mode, reason in cases.items():
            with self.subTest(mode=mode):
                self.idp.serve(mode=mode)
                self.start()
                failed = self.wait_log("jwks fetch failed")
                self.assertEqual(failed["level"], "error")
                self.assertIn(reason, failed["reason"])
                self.assertEqual(self.status(self.token()), 401)
                self.assertEqual(self.stack.stop_api(), 0)

    def test_a_certificate_from_another_ca_is_refused(self):
        self.start(KQE_JWKS_CA_FILE=self.other_ca[0])
        failed = self.wait_log("jwks fetch failed")
        self.assertEqual(failed["level"], "error")
        self.assertIn("certificate", failed["reason"])
        self.assertEqual(self.idp.requests, 0)  # no request was sent over the untrusted TLS
        self.assertEqual(self.status(self.token()), 401)

    def test_bad_url_settings_exit_2_naming_the_variable(self):
        url = {"KQE_JWT_ISSUER": ISSUER, "KQE_JWT_AUDIENCE": AUDIENCE}
        jwks_path = self.keys.path("url-test-jwks.json")
        with open(jwks_path, "w") as f:
            json.dump(self.keys.jwks(), f)
        cases = [
            ({"KQE_JWKS_URL": f"http://127.0.0.1:{self.idp.port}{IDP_PATH}", **url},
             ["KQE_JWKS_URL"]),
            ({"KQE_JWKS_URL": "ftp://127.0.0.1/certs", **url}, ["KQE_JWKS_URL"]),
            ({"KQE_JWKS_URL": "https://", **url}, ["KQE_JWKS_URL"]),
            ({"KQE_JWKS_URL": self.idp.url, "KQE_JWKS_FILE": jwks_path, **url},
             ["KQE_JWKS_FILE", "KQE_JWKS_URL"]),
            ({"KQE_JWKS_URL": self.idp.url, "KQE_JWT_AUDIENCE": AUDIENCE}, ["KQE_JWT_ISSUER"]),
            ({"KQE_JWKS_URL": self.idp.url, "KQE_JWKS_CA_FILE": "/nonexistent.pem", **url},
             ["KQE_JWKS_CA_FILE"]),
            ({"KQE_JWKS_FILE": jwks_path, "KQE_JWKS_CA_FILE": self.ca[0], **url},
             ["KQE_JWKS_CA_FILE"]),
        ]
        for extra, names in cases:
            with self.subTest(extra=extra):
                env = self.stack.env(KQE_HTTP_PORT=0, **extra)
                r = subprocess.run([os.path.join(BIN, "kqe-api")], env=env, capture_output=True,
                                   text=True, timeout=10)
                self.assertEqual(r.returncode, 2, r)
                for name in names:
                    self.assertIn(name, r.stderr)
        self.assertEqual(self.idp.requests, 0)


if __name__ == "__main__":
    unittest.main()
