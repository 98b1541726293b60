"""Fault suite: hypothesis over the ``hitl`` CLI's arguments (bounded, fast, in-process).

Invariant: whatever a reviewer types (ids, names, roles, reasons, edit args, route
filters, hostile text included), the CLI ends with one of its documented exit codes
(0 ok, 1 error, 2 usage, 3 refused) and never a traceback; a refusal leaves the pending
request exactly as it was; the audit trail still verifies.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import open_store
from hitl_langgraph.cli.main import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main

pytestmark = pytest.mark.faults

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

_DIR = Path(tempfile.mkdtemp(prefix="hitl-faults-cli-"))
URL = f"sqlite:///{_DIR / 'hitl.db'}"
STORE = open_store(URL)
_, _, RID = interrupted(build_app(STORE, InMemorySaver(), MemLedger(), transfer()))

text = st.text(
    alphabet=st.characters(codec=None, min_codepoint=1, max_codepoint=0x10FFFF), max_size=10
)
hostile = st.builds(
    lambda a, bad, b: a + bad + b, text, st.sampled_from(["\ud800", "\x1b", "\u200b", "\x85"]), text
)
word = st.one_of(text, hostile, st.sampled_from(["alice", "carol", "finance", ""]))
request_id = st.one_of(st.just(RID), word, st.just(RID.upper()), st.just(RID + " "))
args_json = st.one_of(
    st.just('{"amount": 5000}'),
    st.just('{"amount": "lots"}'),
    st.just("[1, 2]"),
    st.just("{"),
    st.builds(lambda k, v: json.dumps({k: v}), word, st.one_of(st.integers(), word)),
)
command = st.one_of(
    st.builds(
        lambda verb, rid, who, roles, reason: [verb, rid, "--as", who]
        + [x for r in roles for x in ("--role", r)]
        + ([] if reason is None else ["--reason", reason]),
        st.sampled_from(["approve", "reject"]),
        request_id,
        word,
        st.lists(word, max_size=2),
        st.one_of(st.none(), word),
    ),
    st.builds(
        lambda rid, who, a: ["edit", rid, "--as", who, "--role", "finance", "--args", a],
        request_id,
        word,
        args_json,
    ),
    st.builds(lambda rid: ["show", rid], request_id),
    st.builds(lambda route: ["pending", "--route", route], st.one_of(word, st.just("approve"))),
)


def _snapshot() -> tuple[str, object]:
    rec = STORE.get_request(RID)
    assert rec is not None
    return rec.status, rec.decision


@SETTINGS
@given(argv=command, as_json=st.booleans())
def test_any_cli_input_ends_with_a_documented_exit_code(argv: list[str], as_json: bool) -> None:
    before = _snapshot()
    out, err = io.StringIO(), io.StringIO()
    full = ["--store", URL, *(["--json"] if as_json else []), *argv]
    try:
        code = main(full, out=out, err=err)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code in (EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED), (argv, code)
    assert "Traceback" not in err.getvalue()
    if code != EXIT_OK or argv[0] in ("show", "pending"):
        assert _snapshot() == before, f"{argv} exited {code} yet changed the request"


def test_the_audit_trail_still_verifies_after_the_fuzzing() -> None:
    assert STORE.verify_audit().ok
