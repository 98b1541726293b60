"""Fault suite: hypothesis over resume payloads, inbox decisions and ids (bounded, fast).

Invariants: any resume payload or inbox decision either applies exactly what it says or
raises a typed :class:`HitlError` leaving the request pending and nothing run; ids that
differ only in case, width or invisible characters are one person.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import Inbox, Reviewer, open_store
from hitl_langgraph.errors import DecisionError, HitlError
from hitl_langgraph.inbox.authority import same_person
from hitl_langgraph.policy.text import canonical_id, unsafe_text

pytestmark = pytest.mark.faults

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

_DIR = Path(tempfile.mkdtemp(prefix="hitl-faults-"))
STORE = open_store(f"sqlite:///{_DIR / 'hitl.db'}")
LEDGER = MemLedger()
APP = build_app(STORE, InMemorySaver(), LEDGER, transfer())

text = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=12
)
hostile = st.builds(
    lambda a, bad, b: a + bad + b, text, st.sampled_from(["\ud800", "\x00", "\x1b", "\x85"]), text
)
text = st.one_of(text, hostile)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), text)
json_val = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)
decision_type = st.sampled_from(["approve", "reject", "respond", "edit", "Approve", "", "run"])
edited = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["transfer_funds", "close_account", "nope", ""]),
        "args": st.dictionaries(
            st.sampled_from(["amount", "to", "name", "x"]), json_val, max_size=3
        ),
    }
)
decision = st.fixed_dictionaries(
    {"type": decision_type},
    optional={
        "message": st.one_of(text, json_val),
        "edited_action": st.one_of(edited, json_val),
        "request_id": st.one_of(text, st.just("req_")),
        "digest": st.one_of(text, st.just("sha256:00")),
        "extra": json_val,
    },
)
payload = st.one_of(
    decision, st.fixed_dictionaries({"decisions": st.lists(decision, max_size=3)}), json_val
)


def _pending(rid: str) -> bool:
    rec = STORE.get_request(rid)
    return rec is not None and rec.status == "pending"


@SETTINGS
@given(value=payload)
@example(value={"type": "reject", "message": "no\ud800"})
@example(value={"decisions": [{"type": "approve", "message": "ok\x00"}]})
def test_any_resume_payload_applies_exactly_or_changes_nothing(value: Any) -> None:
    cfg, intr, rid = interrupted(APP, user=f"u-{uuid.uuid4().hex[:6]}")
    before = LEDGER.count("transfer_funds") + LEDGER.count("close_account")
    try:
        APP.invoke(Command(resume={intr.id: value}), cfg)
    except HitlError as err:
        assert isinstance(err, DecisionError), err
        assert _pending(rid)
        assert LEDGER.count("transfer_funds") + LEDGER.count("close_account") == before
        # the next valid decision is the one that counts
        APP.invoke(Command(resume={intr.id: {"type": "reject", "message": "no"}}), cfg)
        rec = STORE.get_request(rid)
        assert rec is not None and rec.status == "rejected"
        return
    rec = STORE.get_request(rid)
    assert rec is not None
    kind = rec.decision["type"] if rec.decision else None
    assert rec.status in ("approved", "rejected", "responded", "edited"), rec.status
    ran = LEDGER.count("transfer_funds") + LEDGER.count("close_account") - before
    assert ran == (1 if kind == "approve" else ran)  # approve runs once
    if kind in ("reject", "respond"):
        assert ran == 0


@SETTINGS
@given(value=decision, who=text)
@example(value={"type": "reject", "message": "no\ud800"}, who="frank")
def test_any_inbox_decision_is_recorded_or_refused_typed(value: Any, who: str) -> None:
    cfg, intr, rid = interrupted(APP, user=f"u-{uuid.uuid4().hex[:6]}")
    inbox = Inbox(STORE, APP)
    before = LEDGER.count("transfer_funds")
    try:
        reviewer = Reviewer(who or "x", {"finance"})
        inbox.decide(rid, value, reviewer=reviewer)
    except HitlError:
        assert _pending(rid) and LEDGER.count("transfer_funds") == before
        return
    rec = STORE.get_request(rid)
    assert rec is not None and rec.status != "pending"
    assert unsafe_text(rec.decision) is None and unsafe_text(rec.decided_by) is None


invisible = st.sampled_from(["", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10),
    pre=invisible,
    post=invisible,
    upper=st.booleans(),
)
def test_ids_differing_in_case_width_or_invisibles_are_one_person(
    name: str, pre: str, post: str, upper: bool
) -> None:
    twin = pre + (name.upper() if upper else name) + post
    assert same_person(name, twin)
    assert canonical_id(canonical_id(twin)) == canonical_id(twin)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(who=text)
def test_any_reviewer_id_is_accepted_clean_or_refused_typed(who: str) -> None:
    try:
        r = Reviewer(who, ())
    except HitlError:
        return
    assert unsafe_text(r.id) is None and r.key == canonical_id(r.key)
