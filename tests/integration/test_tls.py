"""In-process HTTPS with a certificate the test creates."""

import http.client
import os
import subprocess
import unittest

from harness import BIN, Stack


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("tls").setup()
        cls.cert, cls.key = make_certificate(cls.stack.workdir)
        cls.stack.tls_ca = cls.cert
        cls.stack.start_api(KQE_TLS_CERT=cls.cert, KQE_TLS_KEY=cls.key)
        cls.stack.default_token = cls.stack.token("ministry")[0]

    @classmethod
    def tearDownClass(cls):
        cls.stack.teardown()

    def test_https_serves_the_api(self):
        self.assertEqual(self.stack.get("/healthz").json(), {"status": "ok"})
        r = self.stack.get("/v1/offices")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertTrue(any(l.get("msg") == "listening" and l.get("tls") is True
                            for l in self.stack.log_lines()))

    def test_plain_http_on_the_tls_port_gets_no_answer(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.api_port, timeout=5)
        with self.assertRaises((http.client.HTTPException, OSError)):
            conn.request("GET", "/healthz")
            conn.getresponse()
        conn.close()
        self.assertEqual(self.stack.get("/healthz").status, 200)  # still serving

    def test_bad_certificate_settings_exit_2_naming_the_variable(self):
        env = self.stack.env(KQE_HTTP_PORT=0)
        cases = [({"KQE_TLS_CERT": "/nonexistent.pem", "KQE_TLS_KEY": self.key}, "KQE_TLS_CERT"),
                 ({"KQE_TLS_CERT": self.cert, "KQE_TLS_KEY": self.cert}, "KQE_TLS_KEY"),
                 ({"KQE_TLS_CERT": self.cert}, "KQE_TLS_KEY")]
        for extra, name in cases:
            with self.subTest(name=name, extra=extra):
                e = dict(env, **extra)
                e.pop("KQE_TLS_KEY", None) if "KQE_TLS_KEY" not in extra else None
                r = subprocess.run([os.path.join(BIN, "kqe-api")], env=e, capture_output=True,
                                   text=True, timeout=10)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(name, r.stderr)


if __name__ == "__main__":
    unittest.main()
