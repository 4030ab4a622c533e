"""The Debian package (docs/operations.md, "Packages"), as ./scripts/test built it with CPack
(scripts/lib/package.sh): installed with apt into a fresh Debian 12 root (the debootstrap
base of scripts/lib/image.sh), its files and hardened systemd units are there and verify,
and the binaries it installed migrate an empty database, serve and do a report job, run as
an unprivileged user as systemd's DynamicUser would."""

import os
import subprocess
import unittest

from containers import Container, buildah, serve_and_report
from harness import Stack, StackTestCase

DEB = os.environ.get("KQE_TEST_DEB")
BASE = os.environ.get("KQE_TEST_IMAGE_BASE")
SKIP = os.environ.get("KQE_TEST_IMAGE_SKIP")
UNITS = ("kqe-api.service", "kqe-aggregator.service", "kqe-migrate.service")


@unittest.skipIf(DEB is None or BASE is None,
                 SKIP or "KQE_TEST_DEB / KQE_TEST_IMAGE_BASE not set: run through ./scripts/test")
class PackageTest(StackTestCase):
    start_api = False
    default_role = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.__name__.lower())
        cls.stack.setup(migrate=False)
        cls.box = Container(BASE, "kqe-package", "65534:65534")
        try:
            cls.box.copy(DEB, "/tmp/kqe.deb")
            # With systemd, as on a server (minbase has none): its units verify against it.
            cls.box.run("sh", "-c", "apt-get -qq update && DEBIAN_FRONTEND=noninteractive"
                        " apt-get -qq install -y --no-install-recommends systemd /tmp/kqe.deb",
                        user="0:0")
        except BaseException:
            cls.box.remove()
            cls.stack.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.box.remove()
        cls.stack.teardown()

    def test_1_what_it_installs(self):
        files = self.box.run("dpkg", "-L", "kqe").stdout.split()
        for path in ("/usr/bin/kqe-api", "/usr/bin/kqe-aggregator", "/usr/bin/kqe",
                     "/usr/share/doc/kqe/kqe.env.example", "/usr/share/doc/kqe/operations.md",
                     *(f"/usr/lib/systemd/system/{u}" for u in UNITS)):
            self.assertIn(path, files)
        depends = self.box.run("dpkg-query", "-W", "-f=${Depends}", "kqe").stdout
        for lib in ("libevent", "libpq5", "libjansson4", "libhiredis", "libcurl4", "libical3",
                    "libmagic1", "libmagic-mgc"):
            self.assertIn(lib, depends)
        self.assertRegex(self.box.run("kqe-api", "--version").stdout, r"^kqe-api \d+\.\d+")

    def test_2_the_units_verify_and_are_hardened(self):
        root = self.box.mount()
        try:
            for unit in UNITS:
                path = os.path.join(root, "usr/lib/systemd/system", unit)
                r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", path],
                                   capture_output=True, text=True)
                self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), unit)
                text = open(path, encoding="utf-8").read()
                for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                                "PrivateTmp=yes", "EnvironmentFile=/etc/kqe/kqe.env"):
                    self.assertIn(setting, text, unit)
            for unit in UNITS[:2]:  # the long-running ones: systemd's own exposure score
                r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                    f"--root={root}", f"/usr/lib/systemd/system/{unit}"],
                                   capture_output=True, text=True)
                score = float(r.stdout.split("Overall exposure level for")[1].split(":")[1]
                              .split()[0])
                self.assertLessEqual(score, 2.0, (unit, r.stdout[-500:]))
        finally:
            self.box.umount()

    def test_3_the_installed_binaries_serve(self):
        serve_and_report(self, self.box)


if __name__ == "__main__":
    unittest.main()
