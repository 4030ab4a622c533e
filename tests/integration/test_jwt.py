"""JWTs from the identity provider: RS256 and ES256 accepted, every forgery refused."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import unittest

from harness import BIN, StackTestCase

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

    def jwks(self):
        modulus = openssl("rsa", "-in", self.rsa, "-noout", "-modulus").decode()
        n = bytes.fromhex(modulus.strip().split("=", 1)[1])
        point = openssl("pkey", "-in", self.ec, "-pubout", "-outform", "DER")[-65:]
        assert point[0] == 4
        return {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(n), "e": "AQAB"},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256",
             "x": b64(point[1:33]), "y": b64(point[33:])},
            {"kty": "RSA", "kid": "enc-1", "use": "enc", "n": b64(n), "e": "AQAB"},
        ]}

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
            "unknown role": self.rs(kqe_role="superuser"),
            "office role without office": self.rs(kqe_office=None),
            "advisor without region": self.rs(kqe_role="advisor", kqe_office=None),
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


if __name__ == "__main__":
    unittest.main()
