"""Checking and recording decisions: authority, digest, edits, compare-and-set, quorum."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import (
    AlreadyDecided,
    ConfigurationError,
    DecisionError,
    DigestMismatch,
    InvalidDecision,
    NotAuthorized,
    RequestNotFound,
    TamperedRequest,
)
from ..policy.action import Action, canonical_json, digest_of, request_digest
from ..store.records import ApprovalRecord, AuditEvent
from . import quorum
from ._base import DECISION_ADAPTER, STATUS_OF, Committed, InboxBase, Prepared
from ._graph import find_interrupt, gate_policy, gate_tools, hitl_interrupts, not_pending
from .authority import Reviewer, check_authority, check_edit_target, same_person
from .signing import decision_signature, with_signature

__all__ = ["DecideMixin", "check_integrity", "check_pending_action"]


def check_integrity(rec: ApprovalRecord) -> None:
    """Raise :class:`TamperedRequest` if ``rec``'s digest does not cover its tool and args."""
    if rec.digest in (
        request_digest(rec.request_id, rec.tool, rec.args),
        digest_of(rec.tool, rec.args),  # rows written before digests covered the request
    ):
        return
    raise TamperedRequest(
        f"request {rec.request_id} ({rec.tool}): its digest {rec.digest} does not cover the "
        "stored tool and args, so what a reviewer would see is not what would run; it was "
        "changed in the store. It is not decidable; investigate, then run `hitl reconcile`",
        request_id=rec.request_id,
    )


def check_pending_action(state: Any, rec: ApprovalRecord) -> None:
    """Raise :class:`TamperedRequest` if the thread's pending action differs from ``rec``."""
    for _, ar, _ in hitl_interrupts(state):
        if ar.get("request_id") != rec.request_id:
            continue
        same = ar.get("name") == rec.tool and canonical_json(ar.get("args") or {}) == (
            canonical_json(rec.args)
        )
        bound = request_digest(rec.request_id, rec.tool, rec.args)
        if not same or ar.get("digest") not in (None, rec.digest, bound):
            raise TamperedRequest(
                f"request {rec.request_id}: the stored request ({rec.tool} {rec.args!r}) is "
                f"not the action the thread would run ({ar.get('name')} {ar.get('args')!r}); "
                "the store row was changed. It is not decidable; investigate, then run "
                "`hitl reconcile`",
                request_id=rec.request_id,
            )
        return


logger = logging.getLogger("hitl_langgraph.inbox")


class DecideMixin(InboxBase):
    """Turns a reviewer's decision into a recorded one, or a refusal (audited)."""

    def _normalize(self, request_id: str, decision: Any) -> dict[str, Any]:
        if hasattr(decision, "model_dump"):
            decision = decision.model_dump(exclude_none=True)
        if not isinstance(decision, Mapping):
            raise InvalidDecision(
                f"a decision is a dict like {{'type': 'approve'}}, got {type(decision).__name__}",
                request_id=request_id,
            )
        raw = {k: v for k, v in decision.items() if v is not None}
        if raw.get("request_id") not in (None, request_id):
            raise InvalidDecision(
                f"the decision names request {raw['request_id']!r} but was sent for {request_id!r}",
                request_id=request_id,
            )
        try:
            model = DECISION_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e.get('loc', ())) or 'decision'}: {e.get('msg')}"
                for e in exc.errors()[:3]
            )
            raise InvalidDecision(
                f"malformed decision for {request_id}: {problems}. Expected "
                "{'type': 'approve'|'edit'|'reject'|'respond', ...}",
                request_id=request_id,
            ) from exc
        out: dict[str, Any] = model.model_dump(exclude_none=True)
        return out

    def _prepare(
        self,
        request_id: str,
        decision: Any,
        reviewer: Reviewer,
        digest: str | None,
        *,
        keep_tool: bool = False,
    ) -> Prepared:
        """Check ``decision`` against the request (read once); refusals are audited.

        ``keep_tool``: an edit naming no tool (``Inbox.edit`` without ``tool=``) keeps the
        request's tool."""
        if not isinstance(reviewer, Reviewer):
            raise ConfigurationError(
                "reviewer= must be a Reviewer(id, roles) built from your authenticated user, "
                f"got {type(reviewer).__name__}"
            )
        rec = self.store.get_request(request_id)
        if rec is None:
            raise RequestNotFound(request_id)
        if keep_tool and decision["edited_action"]["name"] is None:
            edited = {**decision["edited_action"], "name": rec.tool}
            decision = {**decision, "edited_action": edited}
        now = self.clock()
        kind = str(decision.get("type")) if isinstance(decision, Mapping) else "?"
        try:
            if rec.status == "pending":
                check_integrity(rec)
            d = self._normalize(request_id, decision)
            kind = str(d["type"])
            digest = digest or d.get("digest")
            check_authority(
                rec,
                reviewer,
                kind,
                separation_of_duties=self.separation_of_duties,
                others=self._other_ids(rec),
                edited_by=self._editor_of(rec),
            )
            if digest is not None and digest != rec.digest:
                raise DigestMismatch(
                    f"the decision was made for a different action (digest {digest}) than "
                    f"request {request_id} holds ({rec.digest}); review the request again",
                    request_id=request_id,
                    expected=rec.digest,
                    got=digest,
                )
            if rec.status != "pending":
                raise self._already(rec, kind)
            if kind == "edit":
                self._check_edit(rec, reviewer, d)
        except DecisionError as err:
            self._refused(rec, reviewer, kind, err, now)
            raise
        # the request-bound digest of the checked row (rows older than request digests
        # hold the action digest, which the gate no longer accepts on a resume)
        bound = request_digest(request_id, rec.tool, rec.args)
        wire = {**d, "request_id": request_id, "digest": bound}
        return Prepared(rec, reviewer, kind, wire, d.get("message"), now)

    def _other_ids(self, rec: ApprovalRecord) -> list[str | None]:
        """Ids already on the request (approvers so far), for the confusable-id check."""
        votes = quorum.approvals_of(self.store, rec) if rec.quorum > 1 else rec.approvals
        return [rec.decided_by, *(str(v.get("reviewer")) for v in votes)]

    def _editor_of(self, rec: ApprovalRecord) -> str | None:
        """Who made the edit that created ``rec`` (a follow-up), if anyone."""
        if rec.parent_request_id is None:
            return None
        editor = rec.metadata.get("edited_by")
        if isinstance(editor, str):
            return editor
        parent = self.store.get_request(rec.parent_request_id)
        return None if parent is None else parent.decided_by

    @staticmethod
    def _already(rec: ApprovalRecord, kind: str) -> AlreadyDecided:
        who = f" by {rec.decided_by}" if rec.decided_by else ""
        return AlreadyDecided(
            f"request {rec.request_id} ({rec.tool}) was already {rec.status}{who}; your "
            f"{kind!r} decision was not recorded",
            request_id=rec.request_id,
            status=rec.status,
            decided_by=rec.decided_by,
        )

    def _check_edit(self, rec: ApprovalRecord, reviewer: Reviewer, d: Mapping[str, Any]) -> None:
        rid = rec.request_id
        if rec.quorum > 1:
            raise InvalidDecision(
                f"request {rid} needs {rec.quorum} approvals, and one reviewer's edit would "
                "bypass the others; reject it with the correction as the reason instead",
                request_id=rid,
            )
        name = str(d["edited_action"]["name"])
        args = dict(d["edited_action"]["args"])
        tools = gate_tools(self.graph, rec.node) if self.graph is not None else None
        if tools is not None:
            if name not in tools:
                raise InvalidDecision(
                    f"edit names tool {name!r}, which the gate does not have; known: "
                    f"{sorted(tools)}",
                    request_id=rid,
                )
            schema = getattr(tools[name], "tool_call_schema", None)
            if isinstance(schema, type) and issubclass(schema, BaseModel):
                try:
                    schema.model_validate(args)
                except ValidationError as exc:
                    raise InvalidDecision(
                        f"edited args for {name} do not fit its schema: {exc}", request_id=rid
                    ) from exc
        policy = self.policy or (
            gate_policy(self.graph, rec.node) if self.graph is not None else None
        )
        if policy is None:
            return
        action = Action(tool=name, args=args, kind=rec.kind, tool_call_id=rec.tool_call_id)  # type: ignore[arg-type]
        a = policy.assess(action, config={"configurable": {"user_id": rec.requester}})
        if a.route == "deny":
            raise InvalidDecision(
                f"the edited action {name} is denied by the policy: {'; '.join(a.reasons)}",
                request_id=rid,
            )
        if a.route == "approve":
            check_edit_target(rec, reviewer, a.approver_roles, name)

    def _locate(self, prep: Prepared, state: Any) -> str:
        iid = find_interrupt(state, prep.record)
        try:
            check_pending_action(state, prep.record)
        except DecisionError as tampered:
            self._refused(prep.record, prep.reviewer, prep.kind, tampered, prep.at)
            raise
        if iid is None:
            err = not_pending(state, prep.record)
            self._refused(prep.record, prep.reviewer, prep.kind, err, prep.at)
            raise err
        return iid

    def _refused(
        self, rec: ApprovalRecord, reviewer: Reviewer, kind: str, err: DecisionError, now: datetime
    ) -> None:
        """Audit a refused attempt (best effort: the refusal is raised either way)."""
        try:
            self.store.append_audit(
                AuditEvent(
                    event="refused",
                    at=now,
                    request_id=rec.request_id,
                    thread_id=rec.thread_id,
                    actor=reviewer.id,
                    data={
                        "via": "inbox",
                        "decision": kind,
                        "reviewer_roles": sorted(reviewer.roles),
                        "error": type(err).__name__,
                        "message": str(err),
                        "digest": rec.digest,
                        "tool": rec.tool,
                        "policy_version": rec.policy_version,
                    },
                )
            )
        except Exception:
            logger.exception("could not audit a refused decision on %s", rec.request_id)
        self._notify(
            "refused",
            rec,
            now,
            decision=kind,
            reviewer=reviewer,
            extra={"error": type(err).__name__, "message": str(err)},
        )

    def _decided_audit(
        self,
        prep: Prepared,
        event: str,
        *,
        approvals: list[dict[str, Any]] | None = None,
    ) -> AuditEvent:
        rec = prep.record
        data: dict[str, Any] = {
            "via": "inbox",
            "decision": prep.decision,
            "reviewer": prep.reviewer.id,
            "reviewer_key": prep.reviewer.key,
            "reviewer_roles": sorted(prep.reviewer.roles),
            "reason": prep.reason,
            "tool": rec.tool,
            "digest": rec.digest,
            "policy_version": rec.policy_version,
            "approver_roles": list(rec.approver_roles),
            "requester": rec.requester,
            "quorum": rec.quorum,
            "waited_seconds": (prep.at - rec.created_at).total_seconds(),
        }
        if approvals is not None:
            data["approvals"] = approvals
        if event == "decided":
            data["resumer"] = self.worker_id if self.graph is not None else None
            signature = decision_signature(self, prep)
            if signature is not None:
                data["signature"] = signature
        return AuditEvent(
            event=event,
            at=prep.at,
            request_id=rec.request_id,
            thread_id=rec.thread_id,
            actor=prep.reviewer.id,
            data=data,
        )

    def _commit(self, prep: Prepared) -> Committed:
        rec, kind = prep.record, prep.kind
        try:
            if rec.quorum > 1 and kind == "approve":
                return self._commit_vote(prep)
            if rec.quorum > 1 and not self.reject_ends_quorum:
                return self._commit_objection(prep)
            vote = {
                "reviewer": prep.reviewer.id,
                "roles": sorted(prep.reviewer.roles),
                "at": prep.at.isoformat(),
                "reason": prep.reason,
            }
            approvals = [vote] if kind in ("approve", "edit") else list(rec.approvals)
            updated = self.store.update_request(
                rec.request_id,
                expected_status="pending",
                status=STATUS_OF[kind],
                decision=prep.decision,
                decided_by=prep.reviewer.id,
                decided_at=prep.at,
                updated_at=prep.at,
                approvals=approvals,
                metadata=with_signature(self, prep, self._marked(rec.metadata, prep.at)),
                audit=self._decided_audit(prep, "decided"),
            )
        except AlreadyDecided as exc:
            current = self.store.get_request(rec.request_id) or rec
            err = exc if current.status == "pending" else self._already(current, kind)
            self._refused(rec, prep.reviewer, kind, err, prep.at)
            raise err from None
        except NotAuthorized as err:
            self._refused(rec, prep.reviewer, kind, err, prep.at)
            raise
        self._notify("decided", updated, prep.at, decision=kind, reviewer=prep.reviewer)
        return Committed(
            updated, kind, "final", len(updated.approvals), prep.reviewer, self.graph is not None
        )

    def _commit_vote(self, prep: Prepared) -> Committed:
        rec, n = prep.record, prep.record.quorum
        vote = quorum.take_slot(self.store, rec, prep.reviewer, at=prep.at, reason=prep.reason)
        names = ", ".join(str(v.get("reviewer")) for v in vote.approvals)
        if vote.duplicate:
            raise NotAuthorized(
                f"reviewer {prep.reviewer.id!r} already approved request {rec.request_id}; it "
                f"needs {n} approvals from distinct reviewers (so far: {names})",
                request_id=rec.request_id,
            )
        if vote.slot is None:  # every slot taken: the quorum is reached
            completed = self._complete_for_crashed_closer(prep, vote.approvals)
            if completed is not None:
                return completed
            raise AlreadyDecided(
                f"request {rec.request_id} already has its {n} approvals ({names}); your "
                "approval was not needed",
                request_id=rec.request_id,
                status="approved",
                decided_by=",".join(str(v.get("reviewer")) for v in vote.approvals),
            )
        if vote.slot < n:
            try:
                updated = self.store.update_request(
                    rec.request_id,
                    expected_status="pending",
                    approvals=vote.approvals,
                    updated_at=prep.at,
                    audit=self._decided_audit(prep, "approval", approvals=vote.approvals),
                )
            except AlreadyDecided:
                # the last approver completed the quorum between our slot and this write:
                # our vote is in the slots, so it counted; the request is final
                current = self.store.get_request(rec.request_id)
                counted = current is not None and any(
                    same_person(str(v.get("reviewer")), prep.reviewer.id) for v in current.approvals
                )
                if current is None or current.status != "approved" or not counted:
                    raise
                return Committed(current, "approve", "final", vote.slot, prep.reviewer)
            self._notify(
                "approval",
                updated,
                prep.at,
                decision="approve",
                reviewer=prep.reviewer,
                extra={"approvals": vote.slot, "quorum": n},
            )
            return Committed(updated, "approve", "partial", vote.slot, prep.reviewer)
        final = self._complete_quorum(prep, vote.approvals)
        if final is None:  # a rejection or expiry got there first
            current = self.store.get_request(rec.request_id) or rec
            raise self._already(current, "approve")
        self._notify("decided", final, prep.at, decision="approve", reviewer=prep.reviewer)
        return Committed(final, "approve", "final", n, prep.reviewer, self.graph is not None)

    def _complete_for_crashed_closer(
        self, prep: Prepared, approvals: list[dict[str, Any]]
    ) -> Committed | None:
        """Every slot is taken but the request is still pending, and the reviewer who took
        the last slot did so more than ``stale_after`` ago: they crashed before recording
        ``approved``. Record it for them (and resume). A recent last slot means its
        holder is still at work, so leave it to them."""
        rec, n = prep.record, prep.record.quorum
        last = self.store.get_execution(quorum.slot_key(rec.request_id, n))
        if last is None or prep.at - last.started_at < self.stale_after:
            return None
        current = self.store.get_request(rec.request_id)
        if current is None or current.status != "pending":
            return None
        vote = approvals[-1] if approvals else {}
        closer = Reviewer(str(vote.get("reviewer") or prep.reviewer.id), vote.get("roles") or ())
        done = self._complete_quorum(replace(prep, reviewer=closer), approvals)
        if done is None:
            return None
        self._notify("decided", done, prep.at, decision="approve", reviewer=closer)
        return Committed(done, "approve", "final", n, closer, self.graph is not None)

    def _complete_quorum(
        self, prep: Prepared, approvals: list[dict[str, Any]]
    ) -> ApprovalRecord | None:
        rid = prep.record.request_id
        try:
            return self.store.update_request(
                rid,
                expected_status="pending",
                status="approved",
                decision=prep.decision,
                decided_by=",".join(str(v.get("reviewer")) for v in approvals),
                decided_at=prep.at,
                updated_at=prep.at,
                approvals=approvals,
                metadata=with_signature(self, prep, self._marked(prep.record.metadata, prep.at)),
                audit=self._decided_audit(prep, "decided", approvals=approvals),
            )
        except AlreadyDecided:
            return None

    def _commit_objection(self, prep: Prepared) -> Committed:
        rec = prep.record
        objections = [
            *list(rec.metadata.get("objections") or ()),
            {
                "reviewer": prep.reviewer.id,
                "decision": prep.kind,
                "reason": prep.reason,
                "at": prep.at.isoformat(),
            },
        ]
        updated = self.store.update_request(
            rec.request_id,
            expected_status="pending",
            metadata={**rec.metadata, "objections": objections},
            updated_at=prep.at,
            audit=self._decided_audit(prep, "objection"),
        )
        self._notify("objection", updated, prep.at, decision=prep.kind, reviewer=prep.reviewer)
        return Committed(updated, prep.kind, "objection", len(updated.approvals), prep.reviewer)
