"""What every conformance script shares: its environment, its checks and its verdict.

The Rust tests (crates/cli/tests/support/clients.rs) pass when a script exits 0 and prints
"all checks passed"; every check prints one ok/FAIL line, so a failure names itself.
"""
import os
import sys

failures = []


def env(name):
    """A required environment variable (exit 2 when missing: the harness's mistake)."""
    value = os.environ.get(name)
    if not value:
        print(f"FAIL: environment variable {name} is not set")
        sys.exit(2)
    return value


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def eq(got, want, what):
    return check(got == want, f"{what}: {got!r}" + ("" if got == want else f" (want {want!r})"))


def finish():
    """Exit 1 with a count when any check failed; otherwise print the pass line."""
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")
