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
    └── AuditError                          the audit trail failed verification

Decision errors raised while a graph resumes are marked as *invalid resume values*
(``langgraph.errors.is_invalid_resume``), so LangGraph does not store them: the interrupt
stays pending and a correct decision can be sent afterwards.
"""

from __future__ import annotations

__all__ = [
    "AlreadyDecided",
    "AuditError",
    "ConfigurationError",
    "DecisionError",
    "DigestMismatch",
    "ExecutionInProgress",
    "HitlError",
    "InvalidDecision",
    "MissingDependencyError",
    "NotAuthorized",
    "NotPending",
    "PolicyError",
    "RequestNotFound",
    "StoreError",
    "missing_dependency",
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


class ExecutionInProgress(HitlError):
    """Another worker claimed the execution of this action and has not finished it.

    Raised when a replayed or concurrent resume finds the action claimed but without a
    result. Run ``Inbox.reconcile()`` if the other worker crashed.
    """

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"action {request_id!r} is being executed by another worker (or a worker "
            "crashed while executing it); retry later or run `Inbox.reconcile()`"
        )


class AuditError(HitlError):
    """The audit trail failed verification: a row was edited, removed or reordered."""


def missing_dependency(package: str, extra: str, exc: ImportError) -> MissingDependencyError:
    """Build the error raised when an optional dependency is not installed."""
    err = MissingDependencyError(
        f'{package} is not installed; install it with: pip install "hitl-langgraph[{extra}]"'
    )
    err.__cause__ = exc
    return err
