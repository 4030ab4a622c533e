"""The container image (docker/Dockerfile), as ./scripts/test built it with buildah
(scripts/lib/image.sh): inside the image kqe-api tells its version, `kqe migrate` migrates
an empty database of the test cluster, and kqe-api and kqe-aggregator started from the image
answer /readyz and do a report job together. Run as the image's own user (uid 10001) with the
root filesystem as the image gives it; the processes share the host's network, as
`buildah run` does here (`podman run` does not work on these machines)."""

import json
import os
import unittest

from containers import Container, buildah, serve_and_report
from harness import Stack, StackTestCase

IMAGE = os.environ.get("KQE_TEST_IMAGE")
SKIP = os.environ.get("KQE_TEST_IMAGE_SKIP")


@unittest.skipIf(IMAGE is None, SKIP or "KQE_TEST_IMAGE is not set: run through ./scripts/test")
class ImageTest(StackTestCase):
    start_api = False
    default_role = None

    @classmethod
    def setUpClass(cls):
        # An empty database: the image's kqe migrates it.
        cls.stack = Stack(cls.__name__.lower())
        cls.stack.setup(migrate=False)
        cls.box = Container(IMAGE, "kqe-smoke", "10001:10001")

    @classmethod
    def tearDownClass(cls):
        cls.box.remove()
        cls.stack.teardown()

    def run_in_image(self, *argv, check=True):
        return self.box.run(*argv, check=check)

    def test_1_version_as_its_own_user(self):
        r = self.run_in_image("kqe-api", "--version")
        self.assertRegex(r.stdout, r"^kqe-api \d+\.\d+\.\d+")
        self.assertEqual(self.run_in_image("id", "-u").stdout.strip(), "10001")
        # Only runtime libraries: no compiler in the image.
        self.assertNotEqual(self.run_in_image("sh", "-c", "command -v gcc cc cmake",
                                              check=False).returncode, 0)
        info = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)
        config = info["Docker"]["config"]
        self.assertEqual(config["User"], "10001:10001")
        self.assertEqual(config["Healthcheck"]["Test"], ["CMD", "kqe", "health"])
        self.assertEqual(config["Labels"]["org.opencontainers.image.title"], "kqe")

    def test_2_migrate_serve_and_build_a_report(self):
        before = self.box.files()
        serve_and_report(self, self.box)
        # A read-only root filesystem works: all three wrote nothing outside /tmp (buildah
        # run has no read-only flag, so the files are compared instead).
        after = self.box.files()
        changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
        self.assertEqual(changed - {"etc/hosts", "etc/resolv.conf", "etc/hostname"}, set())


if __name__ == "__main__":
    unittest.main()
