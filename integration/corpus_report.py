"""pytest plugin (registered by test_corpus.py): one summary line for the
request-corpus replay, ``corpus: N passed, N skipped, N failed``."""

_CORPUS_FILE = "test_corpus.py::"
_outcomes = {}  # nodeid -> "passed" | "skipped" | "failed"


def pytest_runtest_logreport(report):
    if _CORPUS_FILE not in report.nodeid:
        return
    previous = _outcomes.get(report.nodeid)
    if report.failed:
        # An error in setup or teardown fails the case whatever the call did.
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and previous != "failed":
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed and previous is None:
        _outcomes[report.nodeid] = "passed"


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    counts = {k: 0 for k in ("passed", "skipped", "failed")}
    for outcome in _outcomes.values():
        counts[outcome] += 1
    terminalreporter.write_line(
        "corpus: {passed} passed, {skipped} skipped, {failed} failed".format(**counts))
