"""A rolling update: the previous release's kqe-api on the current schema (docs/releases.md).

Migrations only add (docs/operations.md, "Start order and upgrades"), so while the new release
migrates and rolls out, instances of the previous one keep serving. This builds the kqe-api of
the newest release recorded in docs/releases.md from the git history (kept in
build/previous-release/<commit>/ for the next run), migrates a database with this checkout's
migrations, and has the old kqe-api serve an office's work next to this checkout's
kqe-aggregator; then this build's kqe-api reads what the old one wrote.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO, StackTestCase

RELEASES = os.path.join(REPO, "docs", "releases.md")
ROW = re.compile(r"^\| (\d+\.\d+\.\d+) \| ([0-9a-f]{40}) \| [0-9-]+ \| (\d+) \|$", re.M)


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)


def previous_release():
    """(version, commit, schema) of the newest release in docs/releases.md that is not this
    very commit."""
    with open(RELEASES) as f:
        rows = ROW.findall(f.read())
    if not rows:
        raise AssertionError(f"{RELEASES} records no release")
    head = git("rev-parse", "HEAD").stdout.strip()
    for version, commit, schema in rows:
        if commit != head:
            return version, commit, int(schema)
    raise unittest.SkipTest("this commit is the only release: there is no previous one")


def build_previous(commit):
    """The previous release's kqe-api, built once per checkout (Release, no sanitizers)."""
    out = os.path.join(REPO, "build", "previous-release", commit[:12])
    binary = os.path.join(out, "bin", "kqe-api")
    if os.access(binary, os.X_OK):
        return binary
    if git("cat-file", "-e", commit + "^{commit}").returncode != 0:
        raise unittest.SkipTest(f"the git history does not hold the previous release {commit}"
                                " (a shallow or exported checkout)")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    work = tempfile.mkdtemp(prefix="building-", dir=os.path.dirname(out))
    try:
        src, build = os.path.join(work, "src"), os.path.join(work, "build")
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", REPO, "archive", commit], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        for step in (["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                     ["cmake", "--build", build, "--target", "kqe-api", f"-j{os.cpu_count()}"]):
            r = subprocess.run(step, capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(f"building the previous release failed: {' '.join(step)}"
                                     f"\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        os.makedirs(os.path.join(out, "bin"), exist_ok=True)
        shutil.copy2(os.path.join(build, "bin", "kqe-api"), binary + ".new")
        os.replace(binary + ".new", binary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


class UpgradeTest(StackTestCase):
    start_api = False
    start_aggregator = True
    seed_demo = True

    @classmethod
    def setUpClass(cls):
        cls.version, cls.commit, cls.schema = previous_release()
        cls.old_api = build_previous(cls.commit)
        super().setUpClass()
        cls.stack.start_api(binary=cls.old_api)

    def test_1_the_previous_release_is_ready_on_the_current_schema(self):
        r = subprocess.run([self.old_api, "--version"], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), f"kqe-api {self.version}")
        current = int(self.stack.sql_value("SELECT max(version) FROM schema_migrations"))
        r = self.stack.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["schema_version"], r.json()["build_schema_version"]),
                         (current, self.schema))
        self.assertGreaterEqual(current, self.schema)

    def test_2_an_office_works_on_it_and_this_build_reads_what_it_wrote(self):
        s = self.stack
        proc, office, _ = s.open_procedure()
        token = s.token("office_staff", office=office)[0]
        body = {"procedure_id": proc, "case_reference": "AZ UPGRADE-1", "selection": "random",
                "closed_month": "2022-05", "child": {"sex": "weiblich", "birth_month": "2015-03"},
                "parents_age_group": "27_und_aelter", "reported_by": "schule",
                "result": "latente_gefaehrdung", "endangerment_forms": ["vernachlaessigung"],
                "process": {"days_to_first_contact": 2, "direct_impression": True,
                            "several_professionals": True},
                "ratings": {"intake": 2}, "learning_themes": ["documentation"],
                "findings": "Upgrade: written by the previous release."}
        r = s.post("/v1/case-analyses", body, token=token)
        self.assertEqual(r.status, 201, r)
        case = r.json()["id"]
        r = s.get(f"/v1/case-analyses/{case}", token=token)
        self.assertEqual(r.status, 200, r)
        r = s.request("PATCH", f"/v1/case-analyses/{case}", {"ratings": {"intake": 3}},
                      headers={"If-Match": r.header("ETag")}, token=token)
        self.assertEqual(r.status, 200, r)
        r = s.get(f"/v1/case-analyses?procedure_id={proc}&limit=200", token=token)
        self.assertIn(case, [item["id"] for item in r.json()["items"]])
        r = s.post("/v1/reports", {"scope": "state", "period": "2022"})
        self.assertEqual(r.status, 202, r)
        s.wait_job(r.json()["id"], timeout=60)
        # The current kqe-api reads the record the old one wrote, findings and all.
        s.stop_api()
        s.start_api()
        r = s.get(f"/v1/case-analyses/{case}", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["ratings"]["intake"], 3)
        self.assertEqual(r.json()["findings"], body["findings"])


if __name__ == "__main__":
    unittest.main()
