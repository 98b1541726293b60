"""Phoenix prompt versions as the feedback loop reads and writes them.

:class:`PromptTemplate` is a MUSTACHE chat template with the model settings Phoenix
stores next to it; :class:`GuidedPromptVersion` is one version read back: its template,
the guidance snapshot pinned in its ``metadata`` and the parent version it was derived
from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .guidance import GuidanceSet
from .templates import render_mustache, template_variables

__all__ = ["MANAGED_BY", "GuidedPromptVersion", "PromptTemplate"]

MANAGED_BY = "hitl_langgraph.feedback"
"""``metadata["managed_by"]`` of the prompts and versions the feedback loop writes."""


@dataclass(frozen=True)
class PromptTemplate:
    """A Phoenix chat template (MUSTACHE) and the model settings stored with it.

    Args:
        messages: ``({"role": "system", "content": "... {{reviewer_guidance}}"}, ...)``.
        model_name: Stored with the version (Phoenix requires one).
        model_provider: One of Phoenix's providers (``OPENAI``, ``ANTHROPIC``, ...).
        invocation_parameters: Phoenix's provider-specific parameters object.
    """

    messages: tuple[Mapping[str, Any], ...]
    model_name: str = "gpt-4o-mini"
    model_provider: str = "OPENAI"
    invocation_parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "openai", "openai": {}}
    )

    @classmethod
    def chat(cls, system: str, user: str = "{{input}}", **kwargs: Any) -> PromptTemplate:
        """A system + user template."""
        return cls(
            ({"role": "system", "content": system}, {"role": "user", "content": user}), **kwargs
        )

    def variables(self) -> frozenset[str]:
        return template_variables(list(self.messages))

    def format(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        """The messages with every variable filled (missing ones raise)."""
        out = []
        for m in self.messages:
            content = m["content"]
            if not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            out.append({"role": str(m["role"]), "content": render_mustache(content, variables)})
        return out

    def to_phoenix(self) -> dict[str, Any]:
        return {
            "model_provider": self.model_provider,
            "model_name": self.model_name,
            "template": {"type": "chat", "messages": [dict(m) for m in self.messages]},
            "template_type": "CHAT",
            "template_format": "MUSTACHE",
            "invocation_parameters": dict(self.invocation_parameters),
        }

    @classmethod
    def from_phoenix(cls, data: Mapping[str, Any]) -> PromptTemplate:
        return cls(
            messages=tuple(data["template"]["messages"]),
            model_name=str(data.get("model_name", "")),
            model_provider=str(data.get("model_provider", "OPENAI")),
            invocation_parameters=data.get("invocation_parameters")
            or {"type": "openai", "openai": {}},
        )


@dataclass(frozen=True)
class GuidedPromptVersion:
    """One Phoenix prompt version: its template and the guidance pinned to it."""

    id: str
    prompt: str
    template: PromptTemplate
    guidance: GuidanceSet
    parent: str | None
    description: str
    metadata: Mapping[str, Any]

    @property
    def guidance_version(self) -> str:
        return self.guidance.version

    @property
    def managed(self) -> bool:
        """Whether this version was made by the feedback loop."""
        return self.metadata.get("managed_by") == MANAGED_BY

    def format(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        """The template's messages filled (give ``reviewer_guidance``, "" if none)."""
        return self.template.format(variables)

    @classmethod
    def from_phoenix(cls, prompt: str, data: Mapping[str, Any]) -> GuidedPromptVersion:
        meta = dict(data.get("metadata") or {})
        snap = meta.get("guidance")
        return cls(
            id=str(data["id"]),
            prompt=prompt,
            template=PromptTemplate.from_phoenix(data),
            guidance=GuidanceSet.from_snapshot(snap)
            if isinstance(snap, Mapping)
            else GuidanceSet(),
            parent=meta.get("parent_version"),
            description=str(data.get("description") or ""),
            metadata=meta,
        )
