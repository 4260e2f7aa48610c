"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) for crates/testkit/tests/api_fuzz.rs.

Hypothesis describes filtered strategies by parsing their source with `ast`; deep in schemathesis' coverage
phase that parse can reach Python 3.11's recursion limit, which CPython 3.11 reports as
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905) instead of failing cleanly.
A higher limit keeps the run about the API rather than the interpreter.
"""

import sys

sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    """An import names each Drive file at most once (a repeat is a documented 400 listing `duplicate_ids`).
    JSON Schema has no keyword for "unique by one property", so the fuzzer is told here: a repeated id in a
    generated import is replaced by a fresh one before the request goes out. Everything else is sent as
    generated."""
    if case.operation.method.upper() != "POST" or case.operation.path != "/api/v2/cloud-storage/import":
        return
    files = case.body.get("files") if isinstance(case.body, dict) else None
    if not isinstance(files, list):
        return
    seen = set()
    for index, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        if entry["id"] in seen:
            fresh = f"d{index}"
            while fresh in seen:
                fresh += "x"
            entry["id"] = fresh
        seen.add(entry["id"])
