"""A buildah working container for the tests of what we ship (test_image.py, test_package.py):
made from an image, commands run in it as a given user with the host's network, long-running
processes started in it and stopped with it, its files compared. vfs storage, chroot
isolation: what works on these machines without a container engine (scripts/lib/image.sh)."""

import os
import signal
import subprocess
import urllib.request

from harness import free_port, wait_until


def buildah(*args, check=True, **kw):
    r = subprocess.run(["buildah", "--storage-driver", "vfs", *args], capture_output=True,
                       text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


class Container:
    def __init__(self, image, name, user):
        self.user = user
        self.ctr = buildah("from", "--name", f"{name}-{os.getpid()}", image).stdout.strip()
        self.procs = []

    def _run_args(self, env, user):
        args = ["run", "--isolation", "chroot", "--network", "host", "--user", user or self.user]
        for k, v in (env or {}).items():
            args += ["--env", f"{k}={v}"]
        return args

    def run(self, *argv, env=None, check=True, user=None):
        """argv inside the container; the completed process."""
        return buildah(*self._run_args(env, user), self.ctr, "--", *argv, check=check)

    def start(self, argv, env, log_path):
        """A long-running argv inside the container, its output to log_path."""
        args = ["buildah", "--storage-driver", "vfs", *self._run_args(env, None)]
        with open(log_path, "w") as log:
            p = subprocess.Popen(args + [self.ctr, "--", *argv], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def copy(self, src, dest):
        buildah("copy", self.ctr, src, dest)

    def files(self, skip=("tmp", "proc", "sys", "dev", "run")):
        """Every file of the root filesystem but those under skip: path → (size, mtime)."""
        root = buildah("mount", self.ctr).stdout.strip()
        try:
            out = {}
            for top, dirs, names in os.walk(root):
                rel = os.path.relpath(top, root)
                if rel.split(os.sep)[0] in skip:
                    dirs[:] = []
                    continue
                for n in names:
                    st = os.lstat(os.path.join(top, n))
                    out[os.path.join(rel, n)] = (st.st_size, st.st_mtime_ns)
            return out
        finally:
            buildah("umount", self.ctr, check=False)

    def mount(self):
        return buildah("mount", self.ctr).stdout.strip()

    def umount(self):
        buildah("umount", self.ctr, check=False)

    def remove(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        buildah("rm", self.ctr, check=False)


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except Exception:  # refused while starting, or an HTTP error: not ready
        return None


def serve_and_report(test, box):
    """What every way we ship kqe must do, in box against test.stack's empty database:
    `kqe migrate`, kqe-api up (/readyz 200, `kqe health`), kqe-aggregator doing one report
    job with it. Returns the stack's settings the processes ran with."""
    s = test.stack
    env = {k: v for k, v in s.env().items() if k.startswith("KQE_")}
    r = box.run("kqe", "migrate", env=env, check=False)
    test.assertEqual(r.returncode, 0, r.stderr)
    test.assertGreater(int(s.sql_value("SELECT count(*) FROM schema_migrations")), 20)
    token = s.token("admin")[0]  # the host's kqe: the same schema
    port = free_port()
    logs = s.logs
    box.start(["kqe-api"], dict(env, KQE_HTTP_PORT=port, KQE_HTTP_ADDR="127.0.0.1"),
              os.path.join(logs, "shipped-kqe-api.log"))
    wait_until(lambda: status_of(f"http://127.0.0.1:{port}/readyz") == 200, timeout=60,
               what="kqe-api: /readyz")
    test.assertEqual(box.run("kqe", "health", f"http://127.0.0.1:{port}/healthz", env=env,
                             check=False).returncode, 0)
    box.start(["kqe-aggregator"], dict(env, KQE_JOBS_BLOCK_MS=200),
              os.path.join(logs, "shipped-kqe-aggregator.log"))
    s.api_port = port
    s.default_token = token
    r = s.post("/v1/reports", {"scope": "state", "period": "2024"})
    test.assertEqual(r.status, 202, r)
    s.wait_job(r.json()["id"], timeout=120)
    report = s.get(s.get(f"/v1/jobs/{r.json()['id']}").json()["result"])
    test.assertEqual((report.status, report.json()["scope"]), (200, "state"), report)
    return env
