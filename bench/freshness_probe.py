"""bench/run's freshness probe: while other load runs, submit one case analysis at a time as
a probe office and measure how long until (1) the office's rollup counts it and (2) a state
report job requested after it has finished (a report job first recomputes every dirty
office, docs/rollups.md, so a finished job includes every write committed before it).

Usage: freshness_probe.py PORT OFFICE_TOKEN ADMIN_TOKEN OFFICE PROCEDURE SECONDS
Prints one line: "rollup_p50 rollup_p99 report_p50 report_p99 probes" in seconds. Its helpers
serve bench/freshness.sh (the same on a quiet system) as well."""

import http.client
import json
import os
import subprocess
import sys
import time


def call(port, method, path, token, body=None):
    """One request on a new connection: (status, the JSON answer or None)."""
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def case_body(procedure, reference):
    """A valid case analysis without findings: what the freshness measurements submit."""
    return {"procedure_id": procedure, "case_reference": reference,
            "selection": "random", "closed_month": "2024-05",
            "child": {"sex": "weiblich", "birth_month": "2015-03"},
            "parents_age_group": "27_und_aelter", "reported_by": "schule",
            "result": "hilfebedarf_ohne_gefaehrdung", "endangerment_forms": [],
            "process": {"days_to_first_contact": 2, "direct_impression": True}}


class Sql:
    """One psql session answers the polls: a process per poll would dominate the figure."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", "-XAtq", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def __call__(self, q):
        self.proc.stdin.write(q.rstrip(";") + ";\n")
        return self.proc.stdout.readline().strip()


def wait(pred, limit=120.0):
    t = time.monotonic()
    while not pred():
        if time.monotonic() - t > limit:
            sys.exit("freshness: timed out")
        time.sleep(0.002)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report_done(port, token, job_id):
    """Waits until the job has ended; exits unless it succeeded."""
    state = {}
    wait(lambda: state.update(call(port, "GET", f"/v1/jobs/{job_id}", token)[1])
         or state["status"] in ("succeeded", "failed"))
    if state["status"] != "succeeded":
        sys.exit(f"freshness: report job {state['status']}")
    return state


def main():
    port, office_token, admin_token, office, procedure = sys.argv[1:6]
    seconds = float(sys.argv[6])
    sql = Sql(os.environ["KQE_DATABASE_ADMIN_URL"])

    def counted():
        return int(sql("SELECT coalesce(sum(n), 0) FROM rollups"
                       f" WHERE office_id = '{office}' AND dimension = 'cases'"))

    to_rollup, to_report = [], []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        before = counted()
        status, _ = call(port, "POST", "/v1/case-analyses", office_token,
                         case_body(procedure, f"PROBE-{time.time_ns()}-{i}"))
        if status != 201:
            sys.exit(f"freshness probe: submission answered {status}")
        t0 = time.monotonic()
        wait(lambda: counted() > before)
        to_rollup.append(time.monotonic() - t0)
        if i % 4 == 0:  # a report now and then: each one is a whole state's work
            status, job = call(port, "POST", "/v1/reports", admin_token,
                               {"scope": "state", "period": "2023-2028"})
            if status != 202:
                sys.exit(f"freshness probe: report request answered {status}")
            report_done(port, admin_token, job["id"])
            to_report.append(time.monotonic() - t0)
        i += 1

    print(f"{percentile(to_rollup, 50):.3f} {percentile(to_rollup, 99):.3f}"
          f" {percentile(to_report, 50):.3f} {percentile(to_report, 99):.3f} {i}")


if __name__ == "__main__":
    main()
