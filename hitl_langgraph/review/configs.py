"""The review options Phoenix shows its reviewers: annotation configs, made idempotently.

Two configs, assigned to the project so the Phoenix UI offers them on every span:

* ``hitl_verdict`` (categorical): ``correct`` (score 1), ``incorrect`` (0), ``unsafe`` (0);
* ``hitl_guidance`` (free-form): what the agent should do differently next time.

Config names are global in Phoenix. :func:`ensure_annotation_configs` creates a missing
config, accepts an existing one with the same definition (a ``409`` on create means it
exists: it is fetched and compared), refuses a different one unless ``update=True``, and
assigns both to the project (``PUT``, idempotent).

Phoenix does not check annotations against configs (a label ``"banana"`` is accepted),
so :meth:`ReviewOptions.check_verdict` does, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import ConfigurationError
from .errors import InvalidVerdict, PhoenixConflict
from .phoenix_client import PhoenixClient

__all__ = [
    "CODE_IDENTIFIER",
    "DEFAULT_VERDICT_LABELS",
    "GUIDANCE_NAME",
    "REVIEW_REQUEST_NAME",
    "VERDICT_NAME",
    "ConfigsReport",
    "InvalidVerdict",
    "ReviewOptions",
    "ensure_annotation_configs",
    "human_identifier",
]

VERDICT_NAME: Final = "hitl_verdict"
"""Annotation (and config) name of a reviewer's verdict."""
GUIDANCE_NAME: Final = "hitl_guidance"
"""Annotation (and config) name of a reviewer's free-form guidance."""
REVIEW_REQUEST_NAME: Final = "review_request"
"""Annotation name of the package's request for review on a sampled span."""
CODE_IDENTIFIER: Final = "code:hitl"
"""Identifier of the ``review_request`` annotations this package writes."""
DEFAULT_VERDICT_LABELS: Final[Mapping[str, float]] = {
    "correct": 1.0,
    "incorrect": 0.0,
    "unsafe": 0.0,
}

_REVIEWER = re.compile(r"^[^\s:][^\s]{0,199}$")


def human_identifier(reviewer: str) -> str:
    """The annotation identifier of a reviewer's verdicts: ``human:<reviewer>``.

    Each reviewer gets an own row in Phoenix (which upserts on name, span and
    identifier), so no later write by someone else, a UI click with auth off (identifier
    ``""``) or an LLM judge can replace it.

    Raises:
        InvalidVerdict: ``reviewer`` is empty, has whitespace or starts with ``:``.
    """
    if not isinstance(reviewer, str) or not _REVIEWER.match(reviewer):
        raise InvalidVerdict(
            f"reviewer {reviewer!r} is not a usable name: use a non-empty id without "
            "whitespace (e.g. an email or login), at most 200 characters"
        )
    return f"human:{reviewer}"


@dataclass(frozen=True)
class ReviewOptions:
    """What a reviewer may answer: the verdict labels (with scores) and the config names.

    Args:
        labels: Verdict label -> score. Defaults to correct 1 / incorrect 0 / unsafe 0.
        verdict_name, guidance_name: Annotation config names (global in Phoenix).
    """

    labels: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_VERDICT_LABELS))
    verdict_name: str = VERDICT_NAME
    guidance_name: str = GUIDANCE_NAME
    verdict_description: str = "Reviewer's verdict on this agent action (hitl-langgraph)."
    guidance_description: str = "What should the agent do differently next time?"

    def __post_init__(self) -> None:
        if not self.labels:
            raise ConfigurationError("ReviewOptions.labels needs at least one verdict label")
        for label, score in self.labels.items():
            if not isinstance(label, str) or not label.strip():
                raise ConfigurationError(f"verdict label {label!r} must be a non-empty string")
            if not isinstance(score, (int, float)):
                raise ConfigurationError(f"score of verdict {label!r} must be a number")
        if self.verdict_name == self.guidance_name or "note" in (
            self.verdict_name,
            self.guidance_name,
        ):
            raise ConfigurationError(
                "verdict_name and guidance_name must differ and not be 'note' (reserved)"
            )

    def check_verdict(self, label: str) -> float:
        """The score of ``label``.

        Raises:
            InvalidVerdict: ``label`` is not one of the configured labels.
        """
        if label not in self.labels:
            raise InvalidVerdict(
                f"verdict {label!r} is not allowed; choose one of "
                f"{', '.join(map(repr, self.labels))} (config {self.verdict_name!r})"
            )
        return float(self.labels[label])

    def verdict_config(self) -> dict[str, Any]:
        """The body of ``POST /v1/annotation_configs`` for the verdict."""
        return {
            "name": self.verdict_name,
            "type": "CATEGORICAL",
            "description": self.verdict_description,
            "optimization_direction": "MAXIMIZE",
            "values": [{"label": k, "score": float(v)} for k, v in self.labels.items()],
        }

    def guidance_config(self) -> dict[str, Any]:
        """The body of ``POST /v1/annotation_configs`` for the guidance field."""
        return {
            "name": self.guidance_name,
            "type": "FREEFORM",
            "description": self.guidance_description,
        }


@dataclass
class ConfigsReport:
    """What :func:`ensure_annotation_configs` did."""

    project: str
    project_id: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    assigned: list[str] = field(default_factory=list)
    config_ids: dict[str, str] = field(default_factory=dict)


def _signature(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parts of a config that change what a reviewer can answer."""
    values = config.get("values") or []
    return (
        config.get("type"),
        frozenset((v.get("label"), float(v.get("score") or 0.0)) for v in values),
        config.get("lower_bound"),
        config.get("upper_bound"),
    )


def _ensure_one(
    client: PhoenixClient, wanted: dict[str, Any], update: bool, report: ConfigsReport
) -> str:
    name = str(wanted["name"])
    try:
        created = client.create_annotation_config(wanted)
        report.created.append(name)
        return str(created["id"])
    except PhoenixConflict:
        pass
    found = client.get_annotation_config(name)
    if found is None:  # pragma: no cover - deleted between the 409 and the read
        raise PhoenixConflict(f"annotation config {name!r} conflicted but cannot be read")
    if _signature(found) == _signature(wanted):
        report.existing.append(name)
        return str(found["id"])
    if not update:
        raise PhoenixConflict(
            f"annotation config {name!r} exists in Phoenix with another definition "
            f"({found.get('type')}, values {found.get('values')}) than this package wants "
            f"({wanted['type']}, values {wanted.get('values')}); pass update=True "
            "(`hitl review setup --update`) to replace it, or choose other names with "
            "ReviewOptions(verdict_name=..., guidance_name=...)",
            status_code=409,
        )
    client.update_annotation_config(str(found["id"]), wanted)
    report.updated.append(name)
    return str(found["id"])


def ensure_annotation_configs(
    client: PhoenixClient,
    project: str,
    options: ReviewOptions | None = None,
    *,
    update: bool = False,
) -> ConfigsReport:
    """Create (if needed) the review configs and assign them to ``project``. Idempotent.

    The project is created when Phoenix has none of that name yet (before its first
    span), so the configs are in place for the first review.

    Raises:
        PhoenixConflict: A config of the same name exists with another definition and
            ``update`` is false.
        PhoenixUnavailable: Phoenix cannot be reached.
    """
    options = options or ReviewOptions()
    info = client.ensure_project(project, description="hitl-langgraph review queue")
    report = ConfigsReport(project=project, project_id=str(info["id"]))
    for wanted in (options.verdict_config(), options.guidance_config()):
        config_id = _ensure_one(client, wanted, update, report)
        report.config_ids[str(wanted["name"])] = config_id
    assigned = {c.get("name") for c in client.project_annotation_configs(project)}
    for name, config_id in report.config_ids.items():
        if name not in assigned:
            client.assign_annotation_config(project, config_id)
            report.assigned.append(name)
    return report
