# A copy of ../shared/api/rest_surface.py (reformatted by ruff; the calls and the comparison are
# unchanged), so the project does not depend on ../shared at run time. tests/compat/test_rest_surface.py
# runs it against ours and compares with tests/data/rest-original-0.2.0.json.
"""Record the REST surface of a running dranspose (controller + reducer): status, content type and the
shape of each JSON answer (keys and value types, recursively) for a fixed list of calls written for the
original's API. Two recordings compare with --compare A.json B.json (what B lacks or answers
differently). Stdlib only.

usage: rest_surface.py --controller URL --reducer URL OUT.json ; rest_surface.py --compare A.json B.json
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def call(method, url, body=None, ctype=None):
    h = {"Content-Type": ctype} if ctype else {}
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()
    except Exception as e:
        return None, "", repr(e).encode()


def shape(v, depth=0):
    if depth > 4:
        return "..."
    if isinstance(v, dict):
        return {k: shape(x, depth + 1) for k, x in sorted(v.items())} if len(v) < 40 else "dict"
    if isinstance(v, list):
        return [shape(v[0], depth + 1)] if v else []
    return type(v).__name__


def record(c, r):
    mapping = {"eiger": [[{"constraint": i}] for i in range(4)]}
    seq = {"parts": {"main": mapping}, "sequence": ["main"]}
    calls = [
        ("GET", c + "/api/v1/config"),
        ("GET", c + "/api/v1/status"),
        ("GET", c + "/api/v1/load"),
        ("GET", c + "/api/v1/progress"),
        ("GET", c + "/api/v1/parameters"),
        ("POST", c + "/api/v1/parameter/undeclared_x", b"abc", "application/octet-stream"),
        ("GET", c + "/api/v1/parameter/undeclared_x"),
        ("POST", c + "/api/v1/parameter/probe_int", b"7", "application/octet-stream"),
        ("GET", c + "/api/v1/parameter/probe_int"),
        ("POST", c + "/api/v1/sequence", json.dumps(seq).encode(), "application/json"),
        ("GET", c + "/api/v1/sequence"),
        ("POST", c + "/api/v1/mapping", json.dumps(mapping).encode(), "application/json"),
        ("GET", c + "/api/v1/mapping"),
        ("GET", c + "/api/v1/progress"),
        ("POST", c + "/api/v1/stop"),
        ("GET", c + "/api/v1/logs"),
        ("POST", c + "/api/v1/sequence", b"{not json", "application/json"),
        ("POST", c + "/api/v1/parameter/probe_int", b"abc", "application/octet-stream"),
        ("GET", r + "/api/v1/status"),
        ("GET", r + "/"),
    ]
    out = []
    for i, (m, u, *rest) in enumerate(calls):
        st, ct, body = call(m, u, *rest)
        try:
            j = json.loads(body)
            sh = shape(j)
        except Exception:
            sh = f"<{len(body)} bytes>"
        path = u.split("//", 1)[1].split("/", 1)[1]
        out.append(
            {"i": i, "call": f"{m} /{path}", "status": st, "ctype": ct.split(";")[0], "shape": sh}
        )
        time.sleep(0.2)
    return out


def compare(a, b):
    n = 0
    for x, y in zip(a, b):
        diffs = []
        if x["status"] != y["status"]:
            diffs.append(f"status {x['status']} -> {y['status']}")
        if x["ctype"] != y["ctype"]:
            diffs.append(f"type {x['ctype']} -> {y['ctype']}")

        def missing(sa, sb, p=""):
            if isinstance(sa, dict):
                if not isinstance(sb, dict):
                    return [
                        f"{p or '.'}: object -> {type(sb).__name__ if not isinstance(sb, str) else sb}"
                    ]
                return [
                    m
                    for k in sa
                    for m in (
                        missing(sa[k], sb[k], f"{p}.{k}") if k in sb else [f"{p}.{k} missing"]
                    )
                ]
            if isinstance(sa, list):
                if not isinstance(sb, list):
                    return [
                        f"{p or '.'}: list -> {sb if isinstance(sb, str) else type(sb).__name__}"
                    ]
                return missing(sa[0], sb[0], p + "[]") if sa and sb else []
            if isinstance(sb, (dict, list)) or (
                sa != sb and {sa, sb} - {"int", "float"} and "NoneType" not in (sa, sb)
            ):
                return [f"{p or '.'}: {sa} -> {sb if isinstance(sb, str) else type(sb).__name__}"]
            return []

        if x["status"] == y["status"] and 200 <= (x["status"] or 0) < 300:
            diffs += missing(x["shape"], y["shape"])
        if diffs:
            n += 1
            print(f"{x['call']}: " + "; ".join(diffs)[:400])
    print(f"{n} calls answer differently")
    return n


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--controller")
    ap.add_argument("--reducer")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--compare", nargs=2)
    a = ap.parse_args()
    if a.compare:
        sys.exit(1 if compare(*(json.load(open(p)) for p in a.compare)) else 0)
    json.dump(record(a.controller.rstrip("/"), a.reducer.rstrip("/")), open(a.out, "w"), indent=1)
