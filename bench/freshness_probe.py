"""bench/run's freshness probe: while other load runs, submit one case analysis at a time as
a probe office and measure how long until (1) the office's rollup counts it and (2) a state
report job requested after it has finished (a report job first recomputes every dirty
office, docs/rollups.md, so a finished job includes every write committed before it).

Usage: freshness_probe.py PORT OFFICE_TOKEN ADMIN_TOKEN OFFICE PROCEDURE SECONDS
Prints one line: "rollup_p50 rollup_p99 report_p50 report_p99 probes" in seconds."""

import http.client
import json
import os
import subprocess
import sys
import time

port, office_token, admin_token, office, procedure = sys.argv[1:6]
seconds = float(sys.argv[6])
db = os.environ["KQE_DATABASE_ADMIN_URL"]

# One psql session answers the polls: a process per poll would dominate the figure.
psql = subprocess.Popen(["psql", "-XAtq", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        text=True, bufsize=1)


def sql(q):
    psql.stdin.write(q.rstrip(";") + ";\n")
    return psql.stdout.readline().strip()


def call(method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def counted():
    return int(sql("SELECT coalesce(sum(n), 0) FROM rollups"
                   f" WHERE office_id = '{office}' AND dimension = 'cases'"))


def wait(pred, limit=120.0):
    t = time.monotonic()
    while not pred():
        if time.monotonic() - t > limit:
            sys.exit("freshness probe: timed out")
        time.sleep(0.005)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


to_rollup, to_report = [], []
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    before = counted()
    body = {"procedure_id": procedure, "case_reference": f"PROBE-{time.time_ns()}-{i}",
            "selection": "random", "closed_month": "2024-05",
            "child": {"sex": "weiblich", "birth_month": "2015-03"},
            "parents_age_group": "27_und_aelter", "reported_by": "schule",
            "result": "hilfebedarf_ohne_gefaehrdung", "endangerment_forms": [],
            "process": {"days_to_first_contact": 2, "direct_impression": True}}
    status, _ = call("POST", "/v1/case-analyses", office_token, body)
    if status != 201:
        sys.exit(f"freshness probe: submission answered {status}")
    t0 = time.monotonic()
    wait(lambda: counted() > before)
    to_rollup.append(time.monotonic() - t0)
    if i % 4 == 0:  # a report now and then: each one is a whole state's work
        status, job = call("POST", "/v1/reports", admin_token,
                           {"scope": "state", "period": "2023-2028"})
        if status != 202:
            sys.exit(f"freshness probe: report request answered {status}")
        state = {}
        wait(lambda: state.update(call("GET", f"/v1/jobs/{job['id']}", admin_token)[1])
             or state["status"] in ("succeeded", "failed"))
        if state["status"] != "succeeded":
            sys.exit(f"freshness probe: report job {state['status']}")
        to_report.append(time.monotonic() - t0)
    i += 1

print(f"{percentile(to_rollup, 50):.3f} {percentile(to_rollup, 99):.3f}"
      f" {percentile(to_report, 50):.3f} {percentile(to_report, 99):.3f} {i}")
