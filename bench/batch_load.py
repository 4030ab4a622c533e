#!/usr/bin/env python3
"""Sends 1,000-item dry-run batches of case analyses in a loop, one client per token.

Usage: batch_load.py PORT PROCEDURE_ID SECONDS TOKEN [TOKEN...]
Prints "BATCHES done=<n> p50_ms=<ms> errors=<n>" when SECONDS are over. Used by
bench/isolation.sh as the load that used to stall every other request on its event loop.
"""
import http.client
import json
import sys
import threading
import time

port, procedure, seconds, tokens = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4:]


def item(i):
    return {"procedure_id": procedure, "case_reference": f"BENCH-{i}", "selection": "random",
            "closed_month": "2022-05", "child": {"sex": "weiblich", "birth_month": "2015-03"},
            "parents_age_group": "27_und_aelter", "reported_by": "schule",
            "result": "latente_gefaehrdung", "endangerment_forms": ["vernachlaessigung"],
            "process": {"days_to_first_contact": 2, "direct_impression": True},
            "ratings": {"intake": 2}, "learning_themes": ["documentation"]}


body = json.dumps({"items": [item(i) for i in range(1000)]}).encode()
durations, errors, lock = [], [0], threading.Lock()
end = time.monotonic() + seconds


def client(token):
    while time.monotonic() < end:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start = time.monotonic()
        try:
            conn.request("POST", "/v1/case-analyses:batch?dry_run=true", body=body,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
            status = conn.getresponse().status
        except OSError:
            status = 0
        finally:
            conn.close()
        with lock:
            if status == 200:
                durations.append(time.monotonic() - start)
            else:
                errors[0] += 1


threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
for t in threads:
    t.start()
for t in threads:
    t.join()
durations.sort()
p50 = durations[len(durations) // 2] * 1000 if durations else 0
print(f"BATCHES done={len(durations)} p50_ms={p50:.0f} errors={errors[0]}")
