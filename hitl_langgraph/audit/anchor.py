"""Publishing audit anchors somewhere the database's writers cannot rewrite.

An anchor (:func:`hitl_langgraph.store.chain.make_anchor`) names every audit stream's
head: seq, position and hash, HMAC-tagged with the audit key and signed with the
deployment's Ed25519 key when one is configured. Publish one at intervals (cron:
``hitl audit anchor --out /worm/anchors.jsonl``, or ``--webhook URL``, or stdout into a
log system); ``hitl audit verify --anchor FILE`` then detects truncation, and deletion
of everything after the anchor, even by someone who also rewrote the head rows.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, StoreError
from ..store.base import ApprovalStore
from ..store.chain import ANCHOR_KIND, make_anchor
from ..store.keys import Signer

__all__ = ["anchor_now", "load_anchor", "publish_anchor"]


def anchor_now(store: ApprovalStore, *, signer: Signer | None = None) -> dict[str, Any]:
    """An anchor over the store's audit heads right now."""
    return make_anchor(
        store.audit_heads(), at=datetime.now(timezone.utc), keys=store.audit_key(), signer=signer
    )


def publish_anchor(
    anchor: Mapping[str, Any],
    *,
    out: str | Path | None = None,
    webhook: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Append ``anchor`` as one JSON line to ``out`` (a file opened in append mode, so
    older anchors stay) and/or POST it to ``webhook``. Returns where it went."""
    line = json.dumps(dict(anchor), sort_keys=True)
    went: list[str] = []
    if out is not None:
        try:
            with Path(out).open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot write the anchor to {out}: {exc}") from exc
        went.append(str(out))
    if webhook is not None:
        req = urllib.request.Request(
            webhook, data=line.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                if resp.status >= 300:
                    raise StoreError(f"the anchor webhook {webhook} answered {resp.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(
                f"could not publish the anchor to {webhook}: {exc}; check the URL, or publish "
                "to a file with --out"
            ) from exc
        went.append(webhook)
    return went


def load_anchor(path: str | Path) -> dict[str, Any]:
    """The newest anchor in a file written by :func:`publish_anchor` (or a single one)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the anchor file {path}: {exc}") from exc
    last: dict[str, Any] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise ConfigurationError(f"{path} holds no JSON anchor: {exc}") from exc
            if isinstance(obj, dict) and obj.get("kind") == ANCHOR_KIND:
                return obj
            break
        if isinstance(obj, dict) and obj.get("kind") == ANCHOR_KIND:
            last = obj
    if last is None:
        raise ConfigurationError(
            f"{path} holds no audit anchor; make one with `hitl audit anchor --out {path}`"
        )
    return last
