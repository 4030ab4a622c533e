#!/usr/bin/env python3
"""Writes the seeds the fuzz targets cannot take from files as they are (the others copy real
files: proto/examples, tests/data): corpus/jwt/ (tokens signed as tests/integration/test_jwt.py
signs them, with fuzz_keys.h's keys, valid at fuzz_jwt's FUZZ_NOW; header and claims for the
fuzzer to sign; a JWKS; the first byte is fuzz_jwt's mode), corpus/links/ (download links signed
with fuzz_links' key), corpus/cursor/, corpus/api_key/, corpus/query/, corpus/http_headers/,
corpus/report_html/ and corpus/report_csv/ (a report snapshot as the aggregator builds one) and
corpus/offices_csv/ (the sample import file and a few lines of it).
Run it after changing a key, a claim or a shape: python3 tests/fuzz/make_corpus.py"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
OUT = os.path.join(CORPUS, "jwt")
LINK_KEY = b"kqe fuzz link key, 32 bytes ...\0"  # fuzz_links.c key (a C string of 32 bytes)
NOW = 1749945600  # fuzz_jwt.c FUZZ_NOW
ISSUER = "https://idp.test.nrw/realms/kqe"


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def der_to_raw(der):
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def pems():
    text = open(os.path.join(HERE, "fuzz_keys.h")).read()
    found = {}
    for name in ("fuzz_rsa_pem", "fuzz_ec_pem"):
        body = text.split(f"{name}[] =", 1)[1].split(";", 1)[0]
        found[name] = "\n".join(re.findall(r'"(.*?)\\n"', body)) + "\n"
    return found


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def report():
    """A report snapshot (GET /v1/reports/{id}) with each kind of table stats.c builds."""
    def cell(value, suppressed=False, reason=None, **dims):
        c = dict(dims, value=None if suppressed else value, suppressed=suppressed)
        if reason:
            c["reason"] = reason
        return c
    tables = [
        {"id": "result_by_region", "title": "Ergebnis der Gefährdungseinschätzung", "measure": "count",
         "dimensions": ["region", "result"],
         "cells": [cell(12, region="LVR", result="akute_gefaehrdung"),
                   cell(None, True, "min_count", region="LWL", result="akute_gefaehrdung"),
                   cell(0, region="LVR", result="keine_gefaehrdung"),
                   cell(31, region=None, result=None)]},
        {"id": "process_by_kind", "title": "Verfahren nach Art des Jugendamts", "measure": "share",
         "dimensions": ["kind", "flag"],
         "cells": [cell(0.425, kind="kreis", flag="child_involved"),
                   cell(None, True, "dominance", kind="kreisfreie_stadt", flag="child_involved")]},
        {"id": "days_median_by_region", "title": "Tage bis zum Erstkontakt (Median)", "measure": "median",
         "dimensions": ["region"], "cells": [cell(2.5, region="LVR"), cell(None, region="LWL")]},
        {"id": "structure_by_region", "title": "Strukturindikatoren", "measure": "quantiles",
         "dimensions": ["region", "indicator", "statistic"],
         "cells": [cell(14, region="LVR", indicator="cases_per_fte", statistic="offices"),
                   cell(25.5, region="LVR", indicator="cases_per_fte", statistic="q1"),
                   cell(31.0, region="LVR", indicator="cases_per_fte", statistic="median"),
                   cell(38.25, region="LVR", indicator="cases_per_fte", statistic="q3"),
                   cell(None, True, "min_offices", region="LWL", indicator="cases_per_fte",
                        statistic="median")]},
    ]
    return {"id": "0b7e3f7c-4c4e-4f1e-9a3e-6d1f2b3c4d5e", "job_id": "5f0c9a52-1d5e-4c1b-8f43-2b7d7d0e9a11",
            "scope": "region", "region": "LVR", "period": "2023-2028",
            "params": {"scope": "region", "region": "LVR", "period": "2023-2028"},
            "watermark": {"offices": 95, "offices_updated_at": "2025-06-01T08:00:00.000000Z",
                          "case_analyses": 412, "case_analyses_updated_at": "2025-06-14T17:30:00.000000Z",
                          "topics": 37, "structure_surveys": 80, "rollups_pending": 0,
                          "disclosure": {"min_count": 3, "dominance": 0.85, "min_offices": 5}},
            "generated_at": "2025-06-15T00:00:00.000000Z",
            "content_hash": "sha256:" + "ab" * 32, "tables": tables}


def other_seeds():
    uuid = "1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d"
    cursors = {"timestamp-uuid": ["2025-06-14T17:30:00.123456Z", uuid], "slug": ["demo-lvr-001"],
               "integer": ["4711"]}
    for name, keys in cursors.items():
        write("cursor", name, b64(json.dumps(keys, separators=(",", ":")).encode()))
    write("api_key", "key", "kqe_" + b64(hashlib.sha256(b"fuzz").digest()))
    write("api_key", "jwt-shaped", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
    queries = {
        "case-list": ("GET /v1/case-analyses",
                      f"office_id=demo-lvr-001&procedure_id={uuid.upper()}&updated_since=2025-01-01T00:00:00%2B01:00"
                      f"&limit=10&cursor={b64(json.dumps(cursors['timestamp-uuid']).encode())}"),
        "offices-csv": ("GET /v1/offices.csv", "region=LVR&kind=kreis&dialect=excel"),
        "reports": ("GET /v1/reports", "period=2023-2028&scope=state&job_id=" + uuid),
        "topics": ("GET /v1/topics", "status=in_progress&limit=500"),
        "audit": ("GET /v1/audit", "action=case_analysis.read&actor=token%3Aabc&since=2025-06-01"),
        "dry-run": ("POST /v1/case-analyses:batch", "dry_run=true&atomic=false"),
        "cycle": ("GET /v1/cycles/{cycle}/offices", "region=LWL&status=overdue"),
    }
    for name, (route, q) in queries.items():
        write("query", name, f"{route}\n{q}")
    headers = {
        "accept-list": ("text/html;q=0.9, application/json, */*;q=0.1", '"v3"'),
        "accept-refuse": ("application/*;q=0, text/csv", '"v12"'),
        "if-none-match": ('W/"v1", "v2" , "0123456789abcdef"', '"v2"'),
        "star": ("*", '"0123456789abcdef"'),
    }
    for name, (h, etag) in headers.items():
        write("http_headers", name, f"{h}\n{etag}")
    claims = {"actor": "token:7d1f", "exp": 1749945900, "institute_id": "", "office_id": "demo-lvr-001",
              "region": "", "role": "office_staff"}
    for name, uri in {"report-html": "/v1/reports/0b7e3f7c-4c4e-4f1e-9a3e-6d1f2b3c4d5e.html",
                      "list-csv": "/v1/case-analyses.csv?office_id=demo-lvr-001&dialect=excel"}.items():
        text = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        sig = hmac.new(LINK_KEY, text + b"\n" + uri.encode(), hashlib.sha256).digest()
        write("links", name, b"\0" + f"{b64(text)}.{b64(sig)}\n{uri}".encode())
        write("links", "sign-" + name, b"\1" + text + b"\n" + uri.encode())
    rep = json.dumps(report(), ensure_ascii=False, indent=1)
    write("report_html", "report.json", rep)
    write("report_csv", "report.json", rep)
    write("report_csv", "items.json", json.dumps([{"id": uuid, "child": {"sex": "weiblich"},
        "process": {"days_to_first_contact": 2}, "ratings": {"intake": 3},
        "endangerment_forms": ["vernachlaessigung", "=HYPERLINK(\"x\")"],
        "findings": "Zeile 1\r\nZeile \"2\"; Ende", "version": 2.5}], ensure_ascii=False))
    sample = open(os.path.join(HERE, "..", "data", "nrw-jugendaemter-sample.csv"), "rb").read()
    write("offices_csv", "nrw-jugendaemter-sample.csv", sample)
    lines = sample.splitlines(keepends=True)
    write("offices_csv", "header-and-two-rows.csv", b"".join(lines[:3]))
    write("offices_csv", "quoted.csv", b'\xef\xbb\xbfname,type,landesjugendamt_region,population_under_18\r\n'
          b'"K\xc3\xb6ln, Stadt","kreisfreie Stadt",lvr,"180000"\r\n"Kreis ""Lippe""",Kreis,LWL,\r\n')


def main():
    other_seeds()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        keys = {}
        for name, pem in pems().items():
            keys[name] = os.path.join(tmp, name + ".pem")
            with open(keys[name], "w") as f:
                f.write(pem)
        rsa, ec = keys["fuzz_rsa_pem"], keys["fuzz_ec_pem"]

        def sign(header, claims):
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            if header.get("alg") == "RS256":
                sig = openssl("dgst", "-sha256", "-sign", rsa, data=signing_input.encode())
            elif header.get("alg") == "ES256":
                sig = der_to_raw(openssl("dgst", "-sha256", "-sign", ec, data=signing_input.encode()))
            else:
                sig = b""
            return f"{signing_input}.{b64(sig)}"

        def claims(**over):
            c = {"iss": ISSUER, "aud": "kqe-api", "sub": "user-4711", "iat": NOW, "exp": NOW + 300,
                 "kqe_role": "office_staff", "kqe_office": "demo-lvr-001"}
            c.update(over)
            return {k: v for k, v in c.items() if v is not None}

        seeds = {
            "rs256-office": b"\0" + sign({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}, claims()).encode(),
            "es256-admin-aud-list": b"\0" + sign({"alg": "ES256", "kid": "ec-1"}, claims(
                kqe_role="admin", kqe_office=None, aud=["other", "kqe-api"])).encode(),
            "es256-advisor": b"\0" + sign({"alg": "ES256", "kid": "ec-1"}, claims(
                kqe_role="advisor", kqe_office=None, kqe_region="LWL", nbf=NOW - 10)).encode(),
            "alg-none": b"\0" + sign({"alg": "none"}, claims()).encode(),
            "unknown-kid": b"\0" + sign({"alg": "RS256", "kid": "nope"}, claims()).encode(),
            "no-keys": b"\7" + sign({"alg": "ES256", "kid": "ec-1"}, claims()).encode(),
        }
        for name, c in {"office": claims(), "institute": claims(kqe_role="institute", kqe_office=None,
                                                                  kqe_institute="isa-muenster"),
                        "expired": claims(exp=NOW - 3600)}.items():
            seeds["sign-es256-" + name] = b"\1" + json.dumps({"alg": "ES256", "kid": "ec-1"}).encode() + \
                b"\n" + json.dumps(c).encode()
        seeds["sign-rs256-office"] = b"\2" + json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode() + \
            b"\n" + json.dumps(claims()).encode()
        modulus = openssl("rsa", "-in", rsa, "-noout", "-modulus").decode().strip().split("=", 1)[1]
        point = openssl("pkey", "-in", ec, "-pubout", "-outform", "DER")[-65:]
        jwks = {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(bytes.fromhex(modulus)),
             "e": "AQAB"},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256", "x": b64(point[1:33]),
             "y": b64(point[33:])},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}
        seeds["jwks"] = b"\3" + json.dumps(jwks).encode()
        for name, data in seeds.items():
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
