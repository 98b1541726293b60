"""Guided prompts versioned in Phoenix: candidate, promotion and rollback are tag moves.

A Phoenix prompt version here is a pair: the **base template** (your chat template, with
a ``{{reviewer_guidance}}`` slot, kept exactly as written) and the **guidance snapshot**
for that prompt's node (the active items, in the version's ``metadata``). The version's
``description`` lists the instructions and their provenance (reviewers, reviewed span
ids, annotation ids, guidance version, parent version), so a reviewer sees in the
Phoenix UI what changed and why.

* :meth:`PromptRegistry.push_candidate` adds a version tagged ``candidate`` (no new
  version when nothing changed) and refuses a template that lost a variable of its
  parent or has no ``reviewer_guidance`` slot (:class:`TemplateVariableError`).
* :meth:`PromptRegistry.promote` moves ``production`` to a version; :meth:`rollback`
  moves it back to the version the current one was derived from (or to ``to=``).
* :meth:`PromptRegistry.production` is cached for ``ttl`` seconds (one fetch costs
  5-15 ms), so running agents pick up a promotion within seconds without a restart;
  :class:`PhoenixGuidance` is the matching guidance source for ``ReviewerFeedback``.

It talks to Phoenix's REST API through :class:`~hitl_langgraph.review.PhoenixClient`
(httpx) and never imports ``phoenix``: with the server package installed,
``import phoenix.client`` imports the whole server (9 s here). Endpoints (checked
against Phoenix 20.26.1's ``/openapi.json``): ``POST /v1/prompts`` (creates the prompt
or adds a version; versions take ``description`` and ``metadata``),
``GET /v1/prompts/{name}/latest``, ``GET /v1/prompts/{name}/tags/{tag}``,
``GET /v1/prompts/{name}/versions``, ``GET /v1/prompt_versions/{id}`` and
``GET|POST /v1/prompt_versions/{id}/tags`` (a tag is on one version of a prompt at a
time: tagging another version moves it; names must match ``^[a-z0-9]([_a-z0-9-]*[a-z0-9])?$``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError
from ..review.errors import PhoenixError, PhoenixNotFound
from ..review.phoenix_client import PhoenixClient
from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from ._streams import TTLCache, utc_now
from .errors import PromptNotFound
from .guidance import GuidanceSet
from .render import render_guidance
from .templates import GUIDANCE_VARIABLE, check_variables
from .versions import MANAGED_BY, GuidedPromptVersion, PromptTemplate

__all__ = [
    "GuidedPromptVersion",
    "PhoenixGuidance",
    "PromptRegistry",
    "PromptTemplate",
    "PushResult",
]

_NAME = re.compile(r"^[a-z0-9]([_a-z0-9-]*[a-z0-9])?$")
logger = logging.getLogger("hitl_langgraph.feedback")


@dataclass(frozen=True)
class PushResult:
    """What :meth:`PromptRegistry.push_candidate` did."""

    version: GuidedPromptVersion
    created: bool


class PromptRegistry:
    """One Phoenix prompt (for one graph node) managed through tags.

    Args:
        name: The Phoenix prompt name (lower case, digits, ``-`` and ``_``).
        phoenix: A :class:`~hitl_langgraph.review.PhoenixClient` or a Phoenix URL.
        base: The template for the first version (later versions start from their
            parent's template).
        node: The graph node whose prompt this is; only guidance for it is pinned.
        tools: The tools this node offers (guidance scoped to other tools is left out).
        tenant: Pin only guidance for this tenant (and tenant-less guidance).
        store: If given, promotions and rollbacks are appended to its audit trail.
        ttl: Seconds :meth:`production` is cached.
        budget: Character budget of the guidance shown in the version description.
        monotonic: Injectable monotonic clock for the cache.
        clock: Injectable wall clock for audit events.
    """

    def __init__(
        self,
        name: str,
        *,
        phoenix: PhoenixClient | str | None = None,
        base: PromptTemplate | None = None,
        node: str | None = None,
        tools: Sequence[str] | None = None,
        tenant: str | None = None,
        store: ApprovalStore | None = None,
        ttl: float = 2.0,
        budget: int = 4000,
        candidate_tag: str = "candidate",
        production_tag: str = "production",
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        for label, value in (
            ("name", name),
            ("candidate_tag", candidate_tag),
            ("production_tag", production_tag),
        ):
            if not _NAME.match(value):
                raise ConfigurationError(
                    f"Phoenix prompt {label} {value!r} must match {_NAME.pattern} (lower case)"
                )
        if base is not None:
            check_variables(
                frozenset(), base.messages, require=[GUIDANCE_VARIABLE], what="base template"
            )
        self.name = name
        self.phoenix = phoenix if isinstance(phoenix, PhoenixClient) else PhoenixClient(phoenix)
        self.base = base
        self.node = node
        self.tools = None if tools is None else tuple(tools)
        self.tenant = tenant
        self.store = store
        self.budget = budget
        self.candidate_tag = candidate_tag
        self.production_tag = production_tag
        self.clock = clock
        self._production: TTLCache[GuidedPromptVersion | None] = TTLCache(
            lambda: self.by_tag(self.production_tag), ttl=ttl, monotonic=monotonic
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PromptRegistry({self.name!r}, node={self.node!r}, phoenix={self.phoenix.base_url!r})"
        )

    # -- reads -------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join(
            ["/v1/prompts", quote(self.name, safe=""), *(quote(p, safe="") for p in parts)]
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.phoenix.request(method, path, **kwargs)
        except PhoenixNotFound as exc:
            raise PromptNotFound(
                f"{method} {path}: {exc}",
                status_code=404,
                method=method,
                url=exc.url,
                detail=exc.detail,
            ) from exc

    def get(self, version_id: str) -> GuidedPromptVersion:
        """The version with this id (raises :class:`PromptNotFound`)."""
        body = self._call("GET", f"/v1/prompt_versions/{quote(version_id, safe='')}")
        return GuidedPromptVersion.from_phoenix(self.name, body["data"])

    def latest(self) -> GuidedPromptVersion | None:
        """The newest version, or ``None`` if the prompt does not exist yet."""
        try:
            body = self._call("GET", self._path("latest"))
        except PromptNotFound:
            return None
        return GuidedPromptVersion.from_phoenix(self.name, body["data"])

    def by_tag(self, tag: str) -> GuidedPromptVersion | None:
        """The version carrying ``tag``, or ``None``."""
        try:
            body = self._call("GET", self._path("tags", tag))
        except PromptNotFound:
            return None
        return GuidedPromptVersion.from_phoenix(self.name, body["data"])

    def versions(self, limit: int = 100) -> list[GuidedPromptVersion]:
        """Versions, newest first (one page)."""
        try:
            body = self._call("GET", self._path("versions"), params={"limit": limit})
        except PromptNotFound:
            return []
        return [GuidedPromptVersion.from_phoenix(self.name, d) for d in body["data"]]

    def tags(self, version_id: str) -> list[str]:
        """The tag names on a version."""
        body = self._call("GET", f"/v1/prompt_versions/{quote(version_id, safe='')}/tags")
        return [str(t["name"]) for t in body["data"]]

    def production(self) -> GuidedPromptVersion | None:
        """The ``production`` version, cached for ``ttl`` seconds (last good on errors)."""
        return self._production.get()

    # -- writes ------------------------------------------------------------------------
    def push_candidate(
        self,
        guidance: GuidanceSet,
        *,
        template: PromptTemplate | None = None,
        note: str = "",
    ) -> PushResult:
        """Add a version pinning ``guidance`` (for this node) and tag it ``candidate``.

        Args:
            guidance: The whole derived set; only the items for this prompt are pinned.
            template: A new base template; default: the parent's (or ``base``).
            note: Free text added to the description.

        Returns:
            The version and whether it was created (``False``: the newest version
            already pins the same guidance and template; it is re-tagged candidate).

        Raises:
            TemplateVariableError: ``template`` lost a variable of its parent or has no
                ``reviewer_guidance`` slot.
            ConfigurationError: no template at all (no parent, no ``base``).
            PhoenixError: Phoenix refused or could not be reached.
        """
        with self._lock:
            pinned = guidance.for_node(self.node, tools=self.tools, tenant=self.tenant)
            latest = self.latest()
            parent = self.by_tag(self.production_tag) or latest
            tpl = template or (parent.template if parent else None) or self.base
            if tpl is None:
                raise ConfigurationError(
                    f"prompt {self.name!r} has no version yet: pass base=PromptTemplate(...)"
                )
            before = parent.template.messages if parent else frozenset()
            check_variables(
                before, tpl.messages, require=[GUIDANCE_VARIABLE], what=f"template of {self.name!r}"
            )
            if (
                latest is not None
                and latest.guidance.version == pinned.version
                and latest.template == tpl
            ):
                self._tag(latest.id, self.candidate_tag, "unchanged guidance")
                return PushResult(latest, False)
            body = {
                "prompt": {
                    "name": self.name,
                    "metadata": {"managed_by": MANAGED_BY, "node": self.node},
                },
                "version": {
                    **tpl.to_phoenix(),
                    "description": self._describe(pinned, parent, note),
                    "metadata": self._metadata(pinned, parent),
                },
            }
            data = self._call("POST", "/v1/prompts", json=body)["data"]
            version = GuidedPromptVersion.from_phoenix(self.name, data)
            self._tag(version.id, self.candidate_tag, f"guidance {pinned.version}")
            return PushResult(version, True)

    def promote(
        self, version_id: str | None = None, *, actor: str | None = None
    ) -> GuidedPromptVersion:
        """Move ``production`` to ``version_id`` (default: the ``candidate``)."""
        target = self.get(version_id) if version_id else self.by_tag(self.candidate_tag)
        if target is None:
            raise PromptNotFound(f"prompt {self.name!r} has no {self.candidate_tag!r} version")
        return self._move(target, "prompt_promoted", actor)

    def rollback(self, to: str | None = None, *, actor: str | None = None) -> GuidedPromptVersion:
        """Move ``production`` back: to ``to``, else to the current one's parent version."""
        if to is None:
            current = self.by_tag(self.production_tag)
            if current is None or current.parent is None:
                raise PromptNotFound(f"prompt {self.name!r} has no earlier production version")
            to = current.parent
        return self._move(self.get(to), "prompt_rolled_back", actor)

    def _move(
        self, target: GuidedPromptVersion, event: str, actor: str | None
    ) -> GuidedPromptVersion:
        previous = self.by_tag(self.production_tag)
        self._tag(
            target.id, self.production_tag, f"{event.removeprefix('prompt_')} by {actor or 'hitl'}"
        )
        self._production.invalidate()
        if self.store is not None:
            self.store.append_audit(
                AuditEvent(
                    event=event,
                    at=self.clock(),
                    request_id=f"hitl_feedback:prompt:{self.name}",
                    actor=actor,
                    data={
                        "prompt": self.name,
                        "version_id": target.id,
                        "previous_version_id": None if previous is None else previous.id,
                        "guidance_version": target.guidance.version,
                    },
                )
            )
        return target

    def _tag(self, version_id: str, tag: str, description: str) -> None:
        path = f"/v1/prompt_versions/{quote(version_id, safe='')}/tags"
        self._call("POST", path, json={"name": tag, "description": description})

    def _metadata(self, pinned: GuidanceSet, parent: GuidedPromptVersion | None) -> dict[str, Any]:
        items = pinned.active
        return {
            "managed_by": MANAGED_BY,
            "node": self.node,
            "guidance_version": pinned.version,
            "parent_version": None if parent is None else parent.id,
            "parent_guidance_version": None if parent is None else parent.guidance.version,
            "guidance": pinned.to_snapshot(),
            "provenance": {
                "reviewers": sorted({r for i in items for r in i.reviewers}),
                "span_ids": sorted({s for i in items for s in i.span_ids}),
                "annotation_ids": sorted({a for i in items for a in i.annotation_ids}),
                "review_ids": sorted({r for i in items for r in i.review_ids}),
            },
        }

    def _describe(self, pinned: GuidanceSet, parent: GuidedPromptVersion | None, note: str) -> str:
        head = (
            f"hitl_langgraph reviewer guidance {pinned.version} for node {self.node or '*'}: "
            f"{len(pinned.active)} item(s); parent version "
            f"{parent.id if parent else 'none'} ({parent.guidance.version if parent else '-'})."
        )
        lines = [head]
        if note:
            lines.append(note)
        block = render_guidance(
            pinned,
            node=self.node,
            tools=self.tools,
            tenant=self.tenant,
            budget=self.budget,
            examples=False,
        )
        lines.append(block.text or "(no guidance: the base prompt alone)")
        for item in pinned.active:
            who, spans = ", ".join(item.reviewers), ", ".join(item.span_ids)
            lines.append(f"[{item.id}] reviewers: {who}; spans: {spans}")
        prov = self._metadata(pinned, parent)["provenance"]
        lines.append("provenance: " + json.dumps(prov, sort_keys=True))
        return "\n".join(lines)


class PhoenixGuidance:
    """Guidance source: the items pinned in the prompt's ``production`` version.

    Args:
        registry: The prompt registry (its ``ttl`` bounds how fast a promotion or a
            rollback reaches running agents).
    """

    def __init__(self, registry: PromptRegistry) -> None:
        self.registry = registry

    def _production(self) -> GuidedPromptVersion | None:
        try:
            return self.registry.production()
        except PhoenixError as exc:  # never break the agent: run on the base prompt
            logger.warning("hitl_langgraph: no production prompt %r: %s", self.registry.name, exc)
            return None

    @property
    def prompt_version(self) -> str | None:
        """The id of the production version in use (recorded on spans)."""
        version = self._production()
        return None if version is None else version.id

    def current(self) -> GuidanceSet:
        """The production version's guidance (empty if none or Phoenix never answered)."""
        version = self._production()
        return GuidanceSet() if version is None else version.guidance

    def stale(self) -> bool:
        return self.registry._production.stale()
