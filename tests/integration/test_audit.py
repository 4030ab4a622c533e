"""The audit log without a global lock: appended freely, sealed in order, heads signed
(migration 0033; docs/security.md, "Audit").

Appends of concurrent transactions do not wait for each other; kqe-aggregator links them into
the hash chain once their transactions ended and signs the head with Ed25519. `kqe audit
verify` finds a sealed entry that was changed, and — given a head kept outside — a history
that the database's owner rewrote and re-hashed after that head was published.
"""

import base64
import json
import os
import subprocess
import tempfile

from harness import SqlSession, StackTestCase, wait_until

APPEND = ("SELECT kqe_audit_append('test:{who}', 'admin', NULL, 'test.append', 'test', NULL,"
          " NULL, '{{}}')")
# An Ed25519 public key as OpenSSL reads it: the DER prefix of its SubjectPublicKeyInfo.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class AuditSealingTest(StackTestCase):
    start_aggregator = True
    aggregator_env = {"KQE_AUDIT_SEAL_INTERVAL_MS": 50, "KQE_AUDIT_HEAD_INTERVAL_S": 1}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        out = cls.stack.kqe("audit", "key", check=True).stdout
        cls.public_key = dict(line.split(": ", 1) for line in out.splitlines())["public_key"]

    def verify(self, *args, public_key=True):
        env = self.stack.env(KQE_AUDIT_PUBLIC_KEY=self.public_key if public_key else "-")
        return self.stack.kqe("audit", "verify", *args, env=env)

    def sealed(self, entry_id):
        return self.stack.sql_value(f"SELECT seq IS NOT NULL FROM audit_log WHERE id = {entry_id}")

    def all_sealed(self):
        wait_until(lambda: self.stack.sql_value(
            "SELECT count(*) FROM audit_log WHERE seq IS NULL") == "0", what="all sealed")

    def saved_head(self, covering):
        """GET /v1/audit/head once its head covers position `covering`, saved to a file."""
        wait_until(lambda: (self.stack.get("/v1/audit/head").json()["head"] or {})
                   .get("seq", 0) >= covering, what="a signed head covering the entries")
        answer = self.stack.get("/v1/audit/head")
        self.assertEqual(answer.status, 200)
        path = os.path.join(self.stack.workdir, f"head-{covering}.json")
        with open(path, "w") as f:
            f.write(answer.body.decode())
        return path, answer.json()["head"]

    def test_1_appends_of_open_transactions_do_not_wait_for_each_other(self):
        held = SqlSession(self.stack.db_url)
        try:
            held.run("BEGIN")
            first = int(held.run(APPEND.format(who="held"))[0])
            # With the lock of old, this append would wait for the held transaction: here it
            # must be done well within the statement timeout.
            r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                self.stack.db_url, "-c", "SET statement_timeout = '3s'",
                                "-c", APPEND.format(who="other")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            second = int(r.stdout.split()[-1])
            self.assertGreater(second, first)
            # The later one is not sealed while an older transaction is open: nothing may be
            # sealed before a position an open transaction could still need.
            self.stack.kqe("audit", "seal", check=True)
            self.assertEqual(self.sealed(second), "f")
            held.run("COMMIT")
        finally:
            held.close()
        self.all_sealed()
        seqs = self.stack.sql(f"SELECT seq FROM audit_log WHERE id IN ({first}, {second})"
                              " ORDER BY id")
        self.assertLess(int(seqs[0][0]), int(seqs[1][0]))
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("chain intact", r.stdout)
        self.assertIn("signatures included", r.stdout)

    def test_2_a_sealed_entry_changed_is_found(self):
        target = int(self.stack.sql_value(APPEND.format(who="target")))
        self.all_sealed()
        self.assertEqual(self.verify().returncode, 0)
        self.stack.sql(f"UPDATE audit_log SET details = '{{\"x\": 1}}' WHERE id = {target}")
        try:
            r = self.verify()
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(f"audit: entry {target} is broken", r.stderr)
            self.assertIn("hash does not match its content", r.stderr)
        finally:
            self.stack.sql(f"UPDATE audit_log SET details = '{{}}' WHERE id = {target}")
        self.assertEqual(self.verify().returncode, 0)

    def test_3_history_rewritten_after_a_signed_head_left_is_found(self):
        s = self.stack
        victim = int(s.sql_value(APPEND.format(who="victim")))
        self.all_sealed()
        position = int(s.sql_value(f"SELECT seq FROM audit_log WHERE id = {victim}"))
        path, head = self.saved_head(position)
        r = self.verify("--head", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The owner rewrites the entry and re-hashes every later one, moves audit_head along
        # and deletes the signed heads: a chain consistent in itself.
        s.stop_aggregator()
        try:
            s.sql(f"""DO $$
DECLARE e audit_log; prev text;
BEGIN
    UPDATE audit_log SET action = 'rewritten' WHERE seq = {position};
    SELECT coalesce((SELECT hash FROM audit_log WHERE seq = {position} - 1), repeat('0', 64))
        INTO prev;
    FOR e IN SELECT * FROM audit_log WHERE seq >= {position} ORDER BY seq LOOP
        e.hash := encode(sha256(convert_to(prev || kqe_audit_canonical(e), 'UTF8')), 'hex');
        UPDATE audit_log SET prev_hash = prev, hash = e.hash WHERE id = e.id;
        prev := e.hash;
    END LOOP;
    UPDATE audit_head SET last_hash = prev;
    DELETE FROM audit_heads;
END $$""")
            r = self.verify()
            self.assertEqual(r.returncode, 0, "the rewrite was not self-consistent: " + r.stderr)
            r = self.verify("--head", path)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(f"the chain was rewritten: the {path} for position {head['seq']}",
                          r.stderr)
            # A head forged without the key is not taken for one.
            forged = dict(head, hash=s.sql_value(f"SELECT hash FROM audit_log WHERE seq ="
                                                 f" {head['seq']}"))
            forged_path = os.path.join(s.workdir, "forged.json")
            with open(forged_path, "w") as f:
                json.dump({"head": forged}, f)
            r = self.verify("--head", forged_path)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("is not genuine: its signature does not verify", r.stderr)
        finally:
            s.start_aggregator(**self.aggregator_env)

    def test_4_a_head_is_plain_ed25519_as_openssl_checks_it(self):
        self.stack.sql_value(APPEND.format(who="openssl"))
        self.all_sealed()
        position = int(self.stack.sql_value("SELECT max(seq) FROM audit_log"))
        _, head = self.saved_head(position)
        message = "\n".join(["kqe audit head v1", str(head["seq"]), head["hash"],
                             head["signed_at"]]).encode()
        der = ED25519_SPKI_PREFIX + base64.b64decode(self.public_key)
        with tempfile.TemporaryDirectory() as d:
            pem = os.path.join(d, "key.pem")
            with open(pem, "w") as f:
                f.write("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() +
                        "\n-----END PUBLIC KEY-----\n")
            for name, data in (("msg", message), ("sig", base64.b64decode(head["signature"]))):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem,
                                "-rawin", "-in", os.path.join(d, "msg"), "-sigfile",
                                os.path.join(d, "sig")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("Signature Verified Successfully", r.stdout)

    def test_5_entries_show_their_position_once_sealed(self):
        entry = int(self.stack.sql_value(APPEND.format(who="listed")))
        self.all_sealed()
        items = self.stack.get("/v1/audit?action=test.append&limit=100").json()["items"]
        mine = [i for i in items if i["id"] == entry][0]
        self.assertEqual(mine["seq"], int(self.stack.sql_value(
            f"SELECT seq FROM audit_log WHERE id = {entry}")))
        self.assertRegex(mine["hash"], "^[0-9a-f]{64}$")

    def test_6_reports_carry_the_newest_signed_head(self):
        self.stack.sql_value(APPEND.format(who="report"))
        self.all_sealed()
        _, head = self.saved_head(int(self.stack.sql_value("SELECT max(seq) FROM audit_log")))
        r = self.stack.post("/v1/reports", {"scope": "state", "period": "2024"})
        self.assertEqual(r.status, 202, r)
        self.stack.wait_job(r.json()["id"])
        report = self.stack.get(self.stack.get(f"/v1/jobs/{r.json()['id']}").json()["result"])
        signed = report.json()["audit_head"]
        self.assertGreaterEqual(signed["seq"], head["seq"])
        stored = json.loads(self.stack.sql_value(
            "SELECT json_build_object('seq', seq, 'hash', hash, 'signed_at', kqe_ts(signed_at),"
            " 'key_id', key_id, 'signature', signature)::text FROM audit_heads"
            f" WHERE seq = {signed['seq']}"))
        self.assertEqual(signed, stored)
        html = self.stack.get(report.json()["id"].join(["/v1/reports/", ".html"])).body.decode()
        self.assertIn(signed["signature"], html)
        self.assertIn(f"Stand Nr. {signed['seq']}", html)
