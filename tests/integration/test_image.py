"""The container image (docker/Dockerfile), as ./scripts/test built it with buildah
(scripts/lib/image.sh): inside the image kqe-api tells its version, `kqe migrate` migrates
an empty database of the test cluster, and kqe-api and kqe-aggregator started from the image
answer /readyz and do a report job together. Run as the image's own user (uid 10001) with the
root filesystem as the image gives it; the processes share the host's network, as
`buildah run` does here (`podman run` does not work on these machines)."""

import json
import os
import signal
import subprocess
import unittest

import urllib.request

from harness import Stack, StackTestCase, free_port, wait_until

IMAGE = os.environ.get("KQE_TEST_IMAGE")
SKIP = os.environ.get("KQE_TEST_IMAGE_SKIP")


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except Exception:  # refused while starting, or an HTTP error: not ready
        return None


def buildah(*args, check=True, **kw):
    r = subprocess.run(["buildah", "--storage-driver", "vfs", *args], capture_output=True,
                       text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


@unittest.skipIf(IMAGE is None, SKIP or "KQE_TEST_IMAGE is not set: run through ./scripts/test")
class ImageTest(StackTestCase):
    start_api = False
    default_role = None

    @classmethod
    def setUpClass(cls):
        # An empty database: the image's kqe migrates it.
        cls.stack = Stack(cls.__name__.lower())
        cls.stack.setup(migrate=False)
        cls.ctr = buildah("from", "--name", f"kqe-smoke-{os.getpid()}", IMAGE).stdout.strip()
        cls.procs = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        buildah("rm", cls.ctr, check=False)
        cls.stack.teardown()

    @classmethod
    def run_in_image(cls, *argv, env=None, check=True):
        """argv inside the image, as its user, with env (the stack's settings and more)."""
        args = ["run", "--isolation", "chroot", "--network", "host", "--user", "10001:10001"]
        for k, v in (env or {}).items():
            args += ["--env", f"{k}={v}"]
        return buildah(*args, cls.ctr, "--", *argv, check=check)

    @classmethod
    def start_in_image(cls, name, env):
        args = ["buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot",
                "--network", "host", "--user", "10001:10001"]
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        with open(os.path.join(cls.stack.logs, f"image-{name}.log"), "w") as log:
            p = subprocess.Popen(args + [cls.ctr, "--", name], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        cls.procs.append(p)
        return p

    def service_env(self, **more):
        s = self.stack
        keys = {k: v for k, v in s.env().items() if k.startswith("KQE_")}
        keys.update({k: str(v) for k, v in more.items()})
        return keys

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

    def files(self):
        """Every file of the container's root filesystem but /tmp (and what the kernel and
        buildah provide), with its size and modification time."""
        root = buildah("mount", self.ctr).stdout.strip()
        try:
            out = {}
            for top, dirs, names in os.walk(root):
                rel = os.path.relpath(top, root)
                if rel.split(os.sep)[0] in ("tmp", "proc", "sys", "dev", "run"):
                    dirs[:] = []
                    continue
                for n in names:
                    st = os.lstat(os.path.join(top, n))
                    out[os.path.join(rel, n)] = (st.st_size, st.st_mtime_ns)
            return out
        finally:
            buildah("umount", self.ctr, check=False)

    def test_2_migrate_serve_and_build_a_report(self):
        s = self.stack
        env = self.service_env()
        before = self.files()
        r = self.run_in_image("kqe", "migrate", env=dict(env, KQE_DATABASE_URL=s.db_url))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(int(s.sql_value("SELECT count(*) FROM schema_migrations")), 20)
        token = s.token("admin")[0]  # the host's kqe: the same schema
        port = free_port()
        self.start_in_image("kqe-api", dict(env, KQE_HTTP_PORT=port, KQE_HTTP_ADDR="127.0.0.1"))
        wait_until(lambda: status_of(f"http://127.0.0.1:{port}/readyz") == 200, timeout=60,
                   what="kqe-api from the image: /readyz")
        # Its HEALTHCHECK command, inside the image.
        self.assertEqual(self.run_in_image(
            "kqe", "health", f"http://127.0.0.1:{port}/healthz", env=env).returncode, 0)
        self.start_in_image("kqe-aggregator", dict(env, KQE_JOBS_BLOCK_MS=200))
        s.api_port = port
        s.default_token = token
        r = s.post("/v1/reports", {"scope": "state", "period": "2024"})
        self.assertEqual(r.status, 202, r)
        s.wait_job(r.json()["id"], timeout=120)
        report = s.get(s.get(f"/v1/jobs/{r.json()['id']}").json()["result"])
        self.assertEqual((report.status, report.json()["scope"]), (200, "state"), report)
        # A read-only root filesystem works: all three wrote nothing outside /tmp (buildah
        # run has no read-only flag, so the files are compared instead).
        after = self.files()
        changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
        self.assertEqual(changed - {"etc/hosts", "etc/resolv.conf", "etc/hostname"}, set())


if __name__ == "__main__":
    unittest.main()
