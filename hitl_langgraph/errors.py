"""Every error hitl-langgraph raises, in one place.

The hierarchy::

    HitlError
    ├── ConfigurationError (ValueError)     bad setup: policy, store URL, gate arguments
    │   └── PolicyError                     a rule or scorer misbehaved (bad score, wrong type)
    ├── MissingDependencyError (ImportError) an optional extra is not installed
    ├── StoreError                          the approval store failed or holds unexpected data
    │   └── RequestNotFound (KeyError)      no request with that id
    ├── DecisionError (ValueError)          a human decision cannot be applied
    │   ├── InvalidDecision                 malformed resume payload, disallowed decision type
    │   ├── DigestMismatch                  decision made for other args than those pending
    │   ├── AlreadyDecided                  the request was decided before (names who decided)
    │   ├── NotAuthorized                   the reviewer may not make this decision
    │   └── NotPending                      nothing is waiting for a decision there
    ├── ExecutionInProgress                 another worker is executing the approved action
    │   └── ExecutionHeld                   the tool started and never finished: a human settles it
    ├── NothingToRecover                    ``recover`` found no held execution to settle
    ├── AuditError                          the audit trail failed verification
    ├── PhoenixError                        Phoenix refused a request or could not be reached
    │   ├── PhoenixUnavailable              no answer (refused, timeout): spooled writes wait
    │   ├── PhoenixNotFound                 404: project (before its first span), span, config
    │   │   └── PromptNotFound (+FeedbackError)  no such prompt, version or tag
    │   ├── PhoenixConflict                 409: exists already / defined differently
    │   └── PhoenixStartError (RuntimeError)  a local ``phoenix serve`` did not come up
    ├── InvalidVerdict (ValueError)         a verdict label or reviewer the config does not allow
    └── FeedbackError                       the feedback loop could not do its job
        ├── TemplateVariableError (ConfigurationError)  a template would lose a variable
        ├── CompensationFailed              a compensator kept failing; it was reported
        └── CompensationNotRegistered (ConfigurationError)  no compensator for the tool

Decision errors raised while a graph resumes are marked as *invalid resume values*
(``langgraph.errors.is_invalid_resume``), so LangGraph does not store them: the interrupt
stays pending and a correct decision can be sent afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AlreadyDecided",
    "AuditError",
    "CompensationFailed",
    "CompensationNotRegistered",
    "ConfigurationError",
    "DecisionError",
    "DecisionNotRecorded",
    "DigestMismatch",
    "ExecutionHeld",
    "ExecutionInProgress",
    "FeedbackError",
    "HitlError",
    "InvalidAction",
    "InvalidDecision",
    "InvalidVerdict",
    "missing_dependency",
    "MissingDependencyError",
    "NotAuthorized",
    "NotPending",
    "NothingToRecover",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixStartError",
    "PhoenixUnavailable",
    "PolicyError",
    "PromptNotFound",
    "RequestNotFound",
    "StoreError",
    "TamperedRequest",
    "TemplateVariableError",
    "WebhookRejected",
    "WrongRequest",
]


class HitlError(Exception):
    """Base class of every error raised by hitl-langgraph."""


class ConfigurationError(HitlError, ValueError):
    """The library was set up wrongly (a policy, a store URL, a gate argument)."""


class PolicyError(ConfigurationError):
    """A rule or a custom scorer returned something that is not a score in [0, 1]."""


class MissingDependencyError(HitlError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class StoreError(HitlError):
    """The approval store failed, or holds data this version cannot read."""


class RequestNotFound(StoreError, KeyError):
    """No approval request with the given id exists in the store."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"no approval request {request_id!r} in the store; list pending ones with "
            "`Inbox.pending()` or `hitl pending`"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DecisionError(HitlError, ValueError):
    """A human decision could not be applied. Nothing pending was changed."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class InvalidDecision(DecisionError):
    """The resume payload is malformed or asks for a decision that is not allowed."""


class DigestMismatch(DecisionError):
    """The decision was made for a different action (tool + args) than the one pending."""

    def __init__(self, message: str, *, request_id: str | None, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(message, request_id=request_id)


class AlreadyDecided(DecisionError):
    """The request already has a decision; ``decided_by`` tells who made it."""

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None,
        status: str,
        decided_by: str | None,
    ) -> None:
        self.status = status
        self.decided_by = decided_by
        super().__init__(message, request_id=request_id)


class NotAuthorized(DecisionError):
    """The reviewer lacks the role, or is the requester (separation of duties)."""


class NotPending(DecisionError):
    """The thread has no pending interrupt for this request (or does not exist)."""


class WrongRequest(DecisionError):
    """The decision was addressed to another request or interrupt than the one it reached.

    A resume keyed to an interrupt that is no longer pending, or naming the request id or
    digest of another request, is refused and never applied to what is pending now.
    """


class TamperedRequest(DecisionError):
    """The stored request no longer matches the action that would run (args edited in the
    store, or a digest that does not cover them). Nothing is decidable until it is fixed."""


class DecisionNotRecorded(DecisionError, StoreError):
    """Recording the decision failed (store error); it was not accepted and the request is
    still pending, so the next decision from any path is the one that counts."""


class InvalidAction(HitlError, ValueError):
    """A proposed action (tool name, args, ids) holds text no store can keep (lone
    surrogate, NUL, control characters); it was refused before anything was saved."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class WebhookRejected(HitlError, ValueError):
    """A webhook delivery failed verification: bad signature, stale timestamp or replay."""


RECOVER_HINT = "hitl recover {rid} --rerun | --mark-done [--result TEXT] | --mark-failed"


class ExecutionInProgress(HitlError):
    """Another worker claimed the execution of this action and has not finished it.

    Raised when a replayed or concurrent resume finds the action claimed or started by a
    live worker and no result within the engine's ``execution_wait``. Retry later; if
    that worker is gone, the next attempt releases a claim that never started or raises
    :class:`ExecutionHeld` for one that did.
    """

    def __init__(self, request_id: str, message: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(
            message
            or (
                f"action {request_id!r} is being executed by another worker and no result "
                "came back in time; retry later. If that worker is gone, the next resume or "
                "`hitl reconcile` takes over a claim that never started, and a started one "
                f"is settled with `{RECOVER_HINT.format(rid=request_id)}`"
            )
        )


class ExecutionHeld(ExecutionInProgress):
    """The tool was started and never finished (its worker died or hung): held for a human.

    Nothing can tell whether the side effect happened, so nothing runs it again on its
    own. Settle it with ``hitl recover REQUEST_ID --rerun | --mark-done [--result TEXT]
    | --mark-failed`` (twin: :meth:`hitl_langgraph.inbox.Inbox.recover`).

    Attributes:
        worker: the worker that started it; ``started_at``: when (ISO text).
    """

    def __init__(self, request_id: str, *, worker: str, started_at: str, why: str) -> None:
        self.worker = worker
        self.started_at = started_at
        super().__init__(
            request_id,
            f"action {request_id!r} was started by worker {worker} at {started_at} and never "
            f"finished ({why}); it may or may not have taken effect, so it is held for a "
            f"human. Check the tool's side effect, then settle it with "
            f"`{RECOVER_HINT.format(rid=request_id)}`",
        )


class NothingToRecover(HitlError):
    """``recover`` was asked to settle an execution that is not held (not started, or
    already finished). Nothing was changed."""

    def __init__(self, request_id: str, message: str) -> None:
        self.request_id = request_id
        super().__init__(message)


class AuditError(HitlError):
    """The audit trail failed verification: a row was edited, removed or reordered."""


class PhoenixError(HitlError):
    """Phoenix refused a request or could not be reached.

    Attributes:
        status_code: The HTTP status, or ``None`` when no answer came back.
        method, url: The request that failed.
        detail: Phoenix's error detail (or the transport error).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str = "",
        url: str = "",
        detail: str = "",
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.url = url
        self.detail = detail
        super().__init__(message)


class PhoenixUnavailable(PhoenixError):
    """No answer from Phoenix (connection refused, timeout). Nothing was written there."""


class PhoenixNotFound(PhoenixError):
    """404: the project (Phoenix creates it with its first span), span or config is missing."""


class PhoenixConflict(PhoenixError):
    """409: the thing exists already (annotation config names are global)."""


class PhoenixStartError(PhoenixError, RuntimeError):
    """``phoenix serve`` exited or did not become healthy in time (log tail included)."""


class InvalidVerdict(HitlError, ValueError):
    """A verdict label (or reviewer name) the review config does not allow. Nothing was
    written."""


class FeedbackError(HitlError):
    """Base class of the feedback loop's errors."""


class TemplateVariableError(FeedbackError, ConfigurationError):
    """A template would lose variables (``missing``), or lacks a needed slot.

    Raised instead of "repairing" a candidate: a prompt that silently drops
    ``{question}`` still scores well on a metric and fails in production.
    """

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        self.missing = tuple(missing)
        super().__init__(message)


class PromptNotFound(FeedbackError, PhoenixNotFound):
    """Phoenix has no such prompt, prompt version, or tag (HTTP 404).

    Other Phoenix failures are the review package's
    :class:`~hitl_langgraph.review.PhoenixError` (``PhoenixUnavailable``, ...).
    """


class CompensationFailed(FeedbackError):
    """A compensator failed on every attempt. It was recorded in the audit log.

    Attributes:
        request_id: The executed action that could not be compensated.
        attempts: How many times the compensator was called.
    """

    def __init__(self, message: str, *, request_id: str, attempts: int) -> None:
        self.request_id = request_id
        self.attempts = attempts
        super().__init__(message)


class CompensationNotRegistered(FeedbackError, ConfigurationError):
    """No compensator is registered for the tool."""


def missing_dependency(package: str, extra: str, exc: ImportError) -> MissingDependencyError:
    """Build the error raised when an optional dependency is not installed."""
    err = MissingDependencyError(
        f'{package} is not installed; install it with: pip install "hitl-langgraph[{extra}]"'
    )
    err.__cause__ = exc
    return err
