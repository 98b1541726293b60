"""Human decisions and the resume payload, wire-compatible with LangChain's HITL shapes.

A graph paused by a gate is resumed with ``Command(resume={interrupt_id: payload})``
where ``payload`` is LangChain's ``HITLResponse`` shape, ``{"decisions": [...]}``, or a
single decision (LangChain's per-call shape). Each decision is one of::

    {"type": "approve"}
    {"type": "edit", "edited_action": {"name": "transfer_funds", "args": {...}}}
    {"type": "reject", "message": "why (told to the model)"}
    {"type": "respond", "message": "the answer, returned in place of the tool"}

hitl-langgraph extensions, all optional: ``request_id`` (answer some of several pending
actions, in any order), ``digest`` (bind the decision to the exact action reviewed; a
mismatch is refused) and ``message`` on approve/edit (a reviewer comment).
Without ``request_id`` the decisions match the pending actions by position, as in
LangChain, and their number must equal the number pending.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema

from .._display_hooks import html_for
from ..errors import DecisionError, DigestMismatch, InvalidDecision
from ..policy.text import unsafe_text

__all__ = [
    "DECISION_ADAPTER",
    "DECISION_FIELDS",
    "STATUS_OF",
    "Approve",
    "Decision",
    "Edit",
    "EditedAction",
    "PendingAction",
    "Reject",
    "Respond",
    "ResumePayload",
    "decision_error_from",
    "pending_context",
]


class _DecisionBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = None
    """Which pending request this answers (optional; default: by position)."""
    digest: str | None = None
    """The request digest the reviewer saw; refused if it is not the pending request's."""

    @model_validator(mode="after")
    def _storable(self) -> _DecisionBase:
        # refused while LangGraph validates: nothing is stored, the interrupt stays pending
        found = unsafe_text(self.model_dump(exclude_none=True), "the decision")
        if found is not None:
            raise InvalidDecision(
                f"{found}; a decision's text must not hold lone surrogates, NUL or control "
                "characters (nothing was recorded; send the decision again without them)",
                request_id=self.request_id if unsafe_text(self.request_id) is None else None,
            )
        return self

    def _repr_html_(self) -> str | None:
        return html_for("decision", self)


class Approve(_DecisionBase):
    """Run the action as proposed."""

    type: Literal["approve"] = "approve"
    message: str | None = None


class EditedAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    args: dict[str, Any]


class Edit(_DecisionBase):
    """Run a corrected action instead. It is re-scored by the policy."""

    type: Literal["edit"] = "edit"
    edited_action: EditedAction
    message: str | None = None


class Reject(_DecisionBase):
    """Do not run the action; ``message`` is told to the model."""

    type: Literal["reject"] = "reject"
    message: str | None = None


class Respond(_DecisionBase):
    """Do not run the action; ``message`` is returned to the model as the tool's result."""

    type: Literal["respond"] = "respond"
    message: str


Decision = Annotated[Union[Approve, Edit, Reject, Respond], Field(discriminator="type")]

DECISION_ADAPTER: TypeAdapter[Approve | Edit | Reject | Respond] = TypeAdapter(Decision)
"""Validates a decision dict into its model (the discriminated union)."""

DECISION_FIELDS: tuple[str, ...] = ("type", "request_id", "digest", "message", "edited_action")
"""The fields of a decision on the wire (anything else in a stored decision is ours)."""

STATUS_OF: dict[str, str] = {
    "approve": "approved",
    "edit": "edited",
    "reject": "rejected",
    "respond": "responded",
}
"""The request status a decision of each type leaves behind."""


@dataclass(frozen=True)
class PendingAction:
    """What a resume payload is validated against: one pending request."""

    request_id: str
    tool: str
    digest: str
    allowed_decisions: tuple[str, ...]


DecisionCheck = Callable[[PendingAction, Any], None]
"""Engine hook run on each matched decision while validating (raise DecisionError)."""

DecisionCommit = Callable[[dict[str, Any]], None]
"""Engine hook run once every decision is matched and checked, still inside validation:
it records the decisions, so LangGraph stores the resume value only once they are
durably recorded (a failure raises a DecisionError and nothing is stored)."""


@dataclass(frozen=True)
class _Context:
    pending: tuple[PendingAction, ...]
    check: DecisionCheck | None
    commit: DecisionCommit | None = None


_PENDING: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "hitl_pending_actions", default=None
)


class pending_context:
    """Bind the actions a resume payload must answer while ``interrupt()`` validates it."""

    def __init__(
        self,
        pending: Sequence[PendingAction],
        check: DecisionCheck | None = None,
        commit: DecisionCommit | None = None,
    ):
        self._ctx = _Context(tuple(pending), check, commit)
        self._token: contextvars.Token[_Context | None] | None = None

    def __enter__(self) -> None:
        self._token = _PENDING.set(self._ctx)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _PENDING.reset(self._token)


class ResumePayload(BaseModel):
    """The validated resume value: decisions matched to pending request ids.

    Used as ``interrupt(..., response_schema=ResumePayload)``: LangGraph validates the
    resume value *before* storing it, so a malformed or mismatched payload raises and
    leaves the interrupt pending.
    """

    model_config = ConfigDict(extra="forbid")

    decisions: list[Decision] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _wrap_single(cls, data: Any) -> Any:
        if isinstance(data, BaseModel) and not isinstance(data, ResumePayload):
            data = data.model_dump()
        if isinstance(data, dict) and "type" in data and "decisions" not in data:
            return {"decisions": [data]}
        if not isinstance(data, (dict, ResumePayload)):
            raise InvalidDecision(
                f"resume value must be a dict like {{'decisions': [{{'type': 'approve'}}]}}, "
                f"got {type(data).__name__} {data!r}"
            )
        return data

    @model_validator(mode="after")
    def _bind(self) -> ResumePayload:
        ctx = _PENDING.get()
        if ctx is not None:
            self._matched = match_decisions(self.decisions, ctx.pending, ctx.check)
            if ctx.commit is not None:
                ctx.commit(dict(self._matched))
        return self

    _matched: dict[str, Approve | Edit | Reject | Respond] = PrivateAttr(default_factory=dict)

    def matched(self) -> dict[str, Approve | Edit | Reject | Respond]:
        """Decisions keyed by request id (set when validated inside a gate)."""
        return dict(self._matched)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        # LangGraph builds this at every interrupt; a hand-written schema is much cheaper
        # than generating one for the discriminated union (validation is unchanged)
        return copy.deepcopy(_RESUME_JSON_SCHEMA)


def match_decisions(
    decisions: Sequence[Approve | Edit | Reject | Respond],
    pending: Sequence[PendingAction],
    check: DecisionCheck | None = None,
) -> dict[str, Approve | Edit | Reject | Respond]:
    """Match ``decisions`` to ``pending`` by request id or by position; raise if they don't fit."""
    by_id = {p.request_id: p for p in pending}
    with_id = [d for d in decisions if d.request_id is not None]
    pairs: list[tuple[PendingAction, Approve | Edit | Reject | Respond]] = []
    if with_id and len(with_id) != len(decisions):
        raise InvalidDecision(
            "either every decision names its request_id or none does (then they match the "
            f"pending actions by position); pending: {sorted(by_id)}"
        )
    if with_id:
        seen: set[str] = set()
        for d in decisions:
            rid = d.request_id or ""
            if rid in seen:
                raise InvalidDecision(f"two decisions for request {rid!r}", request_id=rid)
            seen.add(rid)
            if rid not in by_id:
                raise InvalidDecision(
                    f"decision for request {rid!r}, which is not pending here; pending: "
                    f"{sorted(by_id)}",
                    request_id=rid,
                )
            pairs.append((by_id[rid], d))
    else:
        if len(decisions) != len(pending):
            raise InvalidDecision(
                f"{len(decisions)} decision(s) for {len(pending)} pending action(s) "
                f"({', '.join(p.tool for p in pending)}); send one per action in order, or "
                "name each decision's request_id to answer only some of them"
            )
        pairs = list(zip(pending, decisions, strict=True))
    out: dict[str, Approve | Edit | Reject | Respond] = {}
    for p, d in pairs:
        if d.type not in p.allowed_decisions:
            raise InvalidDecision(
                f"decision {d.type!r} is not allowed for {p.tool} (request {p.request_id}); "
                f"allowed: {list(p.allowed_decisions)}",
                request_id=p.request_id,
            )
        if d.digest is not None and d.digest != p.digest:
            raise DigestMismatch(
                f"decision for request {p.request_id} was made for a different action "
                f"(digest {d.digest}) than the one pending ({p.digest}); review the pending "
                "action again",
                request_id=p.request_id,
                expected=p.digest,
                got=d.digest,
            )
        if check is not None:
            check(p, d)
        out[p.request_id] = d
    return out


def decision_error_from(exc: ValidationError) -> DecisionError:
    """Turn pydantic's error into our typed one (the original if a validator raised one)."""
    for err in exc.errors():
        original = (err.get("ctx") or {}).get("error")
        if isinstance(original, DecisionError):
            return original
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(payload)"
        parts.append(f"{loc}: {err.get('msg')}")
    return InvalidDecision(
        "malformed resume payload: "
        + "; ".join(parts)
        + ". Expected {'decisions': [{'type': 'approve'|'edit'|'reject'|'respond', ...}]}"
    )


_RESUME_JSON_SCHEMA: dict[str, Any] = {
    "title": "HITLResponse",
    "description": (
        "{'decisions': [...]} (LangChain's HITLResponse) or a single decision; each decision "
        "is {'type': 'approve'|'edit'|'reject'|'respond', 'request_id'?, 'digest'?, "
        "'message'?, 'edited_action'?: {'name', 'args'}}"
    ),
    "type": "object",
    "properties": {
        "decisions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["approve", "edit", "reject", "respond"]},
                    "request_id": {"type": "string"},
                    "digest": {"type": "string"},
                    "message": {"type": "string"},
                    "edited_action": {"type": "object"},
                },
            },
        }
    },
}
