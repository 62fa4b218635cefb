"""Per-test outcomes the grading runner can trust: the collector and the verdict on its records.

The pytest child of :mod:`envs.swe.runner` runs :data:`CHILD`: pytest with a collector
plugin that writes one record per test (each phase's outcome from the exception the test
raised, beside the outcome pytest reports) and a final one with pytest's exit status, to a
private pipe. :func:`verdict` reads those records back into per-test outcomes and the flags
of suspected tampering; :data:`CANARY` is the test module whose must-fail test catches a
run that passes everything. Writer and reader of the records live here, side by side.

Standard library only and no ``from __future__`` import: this source is sent into the
sandbox between :mod:`envs.swe.patchrules` and the runner, as one program.
"""

#: What the pytest child runs: pytest with the collector plugin (records go to the fd in
#: AGENTGYM_REPORT_FD, which is made non-inheritable before any test code runs).
CHILD = r'''
import json, os, sys
_fd = int(os.environ.pop("AGENTGYM_REPORT_FD"))
os.set_inheritable(_fd, False)
import pytest
from _pytest.outcomes import Skipped

def _emit(obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(_fd, data):]

class AgentgymCollector:
    def __init__(self):
        self.raw, self.rep = {}, {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        exc = call.excinfo
        self.raw.setdefault(item.nodeid, {})[call.when] = (
            "ok" if exc is None else "skip" if exc.errisinstance(Skipped) else "fail")
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        self.rep.setdefault(report.nodeid, {})[report.when] = report.outcome

    def pytest_runtest_logfinish(self, nodeid, location):
        _emit({"t": nodeid, "raw": self.raw.pop(nodeid, {}), "rep": self.rep.pop(nodeid, {})})

    def pytest_sessionfinish(self, session, exitstatus):
        _emit({"finish": int(exitstatus)})

sys.exit(pytest.main(sys.argv[1:], plugins=[AgentgymCollector()]))
'''

CANARY = '''def test_{tag}_passes():
    assert True


def test_{tag}_fails():
    assert False, "the canary must fail"
'''


def phase_outcome(raw):
    """One test's outcome from its own exceptions: passed only if every phase ran clean."""
    if raw.get("setup") == "fail" or raw.get("teardown") == "fail":
        return "ERROR"
    if "skip" in (raw.get("setup"), raw.get("call")):
        return "SKIPPED"
    if raw.get("call") == "fail":
        return "FAILED"
    if raw.get("call") == "ok" and raw.get("setup") == "ok" and raw.get("teardown", "ok") == "ok":
        return "PASSED"
    return "MISSING"


def verdict(records, exit_code, wanted, canary_tag, timed_out):
    """Per-test outcomes and tampering flags from the collector's records.

    Suspected tampering: pytest reports a test passed that raised; the must-fail canary
    passes; a test is reported twice with different outcomes; pytest's exit status and the
    process's disagree, or the process exits 0 without finishing the session; the report
    channel holds something the collector never writes.
    """
    flags, outcomes, finish = [], {}, None
    canary, reported_failures = {}, 0
    for rec in records:
        if not isinstance(rec, dict):
            flags.append("the report channel holds something the collector never writes")
            continue
        if "finish" in rec:
            if finish is not None or not isinstance(rec["finish"], int):
                flags.append("the session was reported finished twice")
            finish = rec["finish"]
            continue
        test, raw, rep = rec.get("t"), rec.get("raw"), rec.get("rep")
        if not isinstance(test, str) or not isinstance(raw, dict) or not isinstance(rep, dict):
            flags.append("the report channel holds something the collector never writes")
            continue
        out = phase_outcome(raw)
        reported = "passed" if rep.get("call") == "passed" and all(
            rep.get(p, "passed") == "passed" for p in ("setup", "teardown")) else "not passed"
        reported_failures += any(v == "failed" for v in rep.values())
        if reported == "passed" and out != "PASSED":
            flags.append(f"pytest reported {test} passed although it raised")
        if test in outcomes and outcomes[test] != out:
            flags.append(f"{test} was reported twice with different outcomes")
        outcomes[test] = out
        if canary_tag and test.endswith(f"::test_{canary_tag}_fails"):
            canary["fails"] = out
        if canary_tag and test.endswith(f"::test_{canary_tag}_passes"):
            canary["passes"] = out
    if canary.get("fails") == "PASSED":
        flags.append("the canary test that must fail passed")
    if finish is not None and exit_code is not None and exit_code >= 0 and finish != exit_code:
        flags.append(f"pytest's exit status {finish} is not the process's {exit_code}")
    if finish is None and exit_code == 0 and not timed_out:
        flags.append("the test process exited with status 0 before pytest finished")
    if finish == 0 and reported_failures:  # (an xfail test raises, and pytest rightly exits 0)
        flags.append("pytest exited 0 although it reported failures")
    tests = {t: outcomes.get(t, "MISSING") for t in wanted}
    return {"tests": tests, "finished": finish is not None, "pytest_exit": finish, "flags": flags,
            "canary": canary, "collected": len(outcomes)}
