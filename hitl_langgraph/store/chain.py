"""Verifying the per-stream, keyed audit chain in one streaming pass (flat memory).

:class:`ChainVerifier` is fed audit rows in ``seq`` order (a store's pages, an export's
lines, an evidence bundle) and keeps only one ``(stream_seq, hash)`` per stream. At the
end it compares what it saw with the stream heads the store recorded and, if given, with
a trusted anchor, and reports every problem naming the row (``seq``), the stream and
its position.

Anchors and checkpoints are the same JSON object: the head (``n``, ``hash``, ``seq``) of
every stream at one moment, tagged with the audit key's HMAC and, optionally, an Ed25519
signature. Published outside the database (a file, stdout for a log system, a
webhook), an anchor lets ``verify`` detect truncation and deletion of everything after
it; kept as a checkpoint after a successful verify, it lets the next verify read only
what is new.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError
from ..policy.action import canonical_json
from .keys import KeyProvider, Signer, mac_hex, sign_payload
from .records import LEGACY_STREAM, AuditEvent, audit_hash

__all__ = [
    "ANCHOR_KIND",
    "AuditHeads",
    "ChainVerifier",
    "StreamHead",
    "check_anchor",
    "make_anchor",
]

ANCHOR_KIND = "hitl-audit-anchor"


@dataclass(frozen=True)
class StreamHead:
    """The last row of one stream: its position ``n``, chain ``hash`` and global ``seq``."""

    stream: int
    n: int
    hash: str
    seq: int


@dataclass(frozen=True)
class AuditHeads:
    """Every stream's head, and the last ``seq`` the never-reused counter handed out."""

    streams: dict[int, StreamHead] = field(default_factory=dict)
    last_seq: int = 0

    @property
    def low_seq(self) -> int:
        """Every row appended after these heads has a larger ``seq`` than this."""
        return min((h.seq for h in self.streams.values()), default=0)


def _anchor_body(anchor: Mapping[str, Any]) -> bytes:
    return canonical_json(
        {k: v for k, v in anchor.items() if k not in ("mac", "signature")}
    ).encode()


def make_anchor(
    heads: AuditHeads,
    *,
    at: datetime,
    keys: KeyProvider | None = None,
    signer: Signer | None = None,
    events: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """An anchor over ``heads``: HMAC-tagged with the audit key, signed with ``signer``."""
    anchor: dict[str, Any] = {
        "kind": ANCHOR_KIND,
        "v": 1,
        "at": at.isoformat(),
        "last_seq": heads.last_seq,
        "streams": {
            str(s): {"n": h.n, "hash": h.hash, "seq": h.seq}
            for s, h in sorted(heads.streams.items())
        },
    }
    if events is not None:
        anchor["events"] = events
    if note:
        anchor["note"] = note
    if keys is not None:
        key_id, key = keys.current()
        anchor["key_id"] = key_id
        anchor["mac"] = hmac.new(key, _anchor_body(anchor), "sha256").hexdigest()
    if signer is not None:
        anchor["signature"] = sign_payload(signer, _anchor_body(anchor))
    return anchor


def check_anchor(
    anchor: Mapping[str, Any], *, keys: KeyProvider | None = None, verifier: Any = None
) -> tuple[dict[int, StreamHead], list[str]]:
    """The heads an anchor claims, and problems with the anchor itself (bad MAC or
    signature). An anchor without a MAC or signature is accepted with a note."""
    problems: list[str] = []
    if anchor.get("kind") != ANCHOR_KIND:
        raise ConfigurationError(
            "this file is not an audit anchor (expected kind "
            f"{ANCHOR_KIND!r}); make one with `hitl audit anchor --out FILE`"
        )
    body = _anchor_body(anchor)
    signed = "signature" in anchor and verifier is not None
    if signed:
        why = verifier.verify(anchor["signature"], body)
        if why is not None:
            problems.append(f"anchor: signature invalid: {why}")
    if "mac" in anchor:
        key = keys.key(str(anchor.get("key_id"))) if keys is not None else None
        if keys is None:
            if not signed:  # a valid signature is enough; otherwise the tag is unchecked
                problems.append(
                    "anchor: it is HMAC-tagged but no audit key is configured to check it"
                )
        elif key is None:
            problems.append(
                f"anchor: tagged with unknown audit key {anchor.get('key_id')!r} (wrong key?)"
            )
        elif not hmac.compare_digest(hmac.new(key, body, "sha256").hexdigest(), str(anchor["mac"])):
            problems.append("anchor: MAC mismatch (the anchor was edited, or another key)")
    try:
        heads = {
            int(s): StreamHead(int(s), int(h["n"]), str(h["hash"]), int(h.get("seq", 0)))
            for s, h in dict(anchor.get("streams") or {}).items()
        }
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"the anchor's streams are malformed: {exc}") from exc
    return heads, problems


class ChainVerifier:
    """Feed rows in ``seq`` order with :meth:`feed`; :meth:`finish` returns the problems.

    ``keys``: the audit key provider (``None``: unkeyed, re-hashing is not detected).
    ``start``: a trusted checkpoint (rows at or before a stream's checkpoint are skipped;
    the next row must link to it). ``limit``: heads read before the rows (rows beyond
    them are appends made while verifying and are not checked). ``anchor``: heads that
    must still be in the chain with the same hashes."""

    def __init__(
        self,
        keys: KeyProvider | None = None,
        *,
        start: Mapping[int, StreamHead] | None = None,
        limit: Mapping[int, StreamHead] | None = None,
        anchor: Mapping[int, StreamHead] | None = None,
        require_keyed: bool | None = None,
    ) -> None:
        self.keys = keys
        self.require_keyed = keys is not None if require_keyed is None else require_keyed
        self.state: dict[int, tuple[int, str, int]] = {
            s: (h.n, h.hash, h.seq) for s, h in (start or {}).items()
        }
        self.start = dict(start or {})
        self.limit = dict(limit) if limit is not None else None
        self.anchor = dict(anchor or {})
        self.anchor_seen: set[int] = set()
        self.problems: list[str] = []
        self.events = 0
        self.skipped = 0
        self.unkeyed = 0
        self.legacy = 0
        self.head = ""
        self.tail: dict[int, tuple[int, int]] = {}

    def _p(self, text: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(text)
        elif len(self.problems) == 1000:
            self.problems.append("... more problems not listed")

    def feed(self, ev: AuditEvent) -> None:
        stream = LEGACY_STREAM if ev.stream is None else ev.stream
        n = ev.seq if ev.stream is None else ev.stream_seq
        n = int(n or 0)
        if self.limit is not None:
            lim = self.limit.get(stream)
            if lim is None or n > lim.n:
                # beyond the heads read before the rows: an append made while verifying,
                # or a row added outside the store. Check the row itself now and its
                # position against the heads read afterwards (finish(heads_after=...)).
                self.skipped += 1
                where = f"seq {ev.seq}"
                if audit_hash(ev.prev_hash, ev) != ev.hash:
                    self._p(f"{where}: hash mismatch (row edited)")
                self._check_mac(ev, where, stream)
                top = self.tail.get(stream)
                if top is None or n > top[0]:
                    self.tail[stream] = (n, int(ev.seq or 0))
                return
        if stream in self.start and n <= self.start[stream].n:
            return  # verified before the checkpoint
        prev = self.state.get(stream)
        self.events += 1
        where = f"seq {ev.seq}"
        expected = 1 if prev is None else prev[0] + 1
        if n != expected:
            if n > expected:
                self._p(
                    f"{where} (stream {stream} #{n}): stream rows #{expected}..#{n - 1} "
                    "missing before it (row deleted?)"
                )
            else:
                self._p(
                    f"{where} (stream {stream} #{n}): position repeats or goes back after "
                    f"#{expected - 1} (rows reordered or seq reused?)"
                )
        if ev.prev_hash != (prev[1] if prev is not None else ""):
            self._p(f"{where}: prev_hash does not match the previous row of stream {stream}")
        h = audit_hash(ev.prev_hash, ev)
        if h != ev.hash:
            self._p(f"{where}: hash mismatch (row edited)")
        self._check_mac(ev, where, stream)
        claim = self.anchor.get(stream)
        if claim is not None and n == claim.n:
            self.anchor_seen.add(stream)
            if ev.hash != claim.hash:
                self._p(
                    f"{where} (stream {stream} #{n}): differs from the anchored row "
                    "(edited or rewritten after the anchor)"
                )
        self.state[stream] = (n, ev.hash, int(ev.seq or 0))
        self.head = ev.hash

    def _check_mac(self, ev: AuditEvent, where: str, stream: int) -> None:
        if stream == LEGACY_STREAM:
            self.legacy += 1
            return
        if not ev.mac:
            self.unkeyed += 1
            if self.require_keyed:
                self._p(
                    f"{where}: not keyed, but an audit key is configured (row written or "
                    "re-hashed without the key)"
                )
            return
        if self.keys is None:
            return
        key = self.keys.key(str(ev.key_id))
        if key is None:
            self._p(f"{where}: keyed with unknown key {ev.key_id!r} (wrong key?)")
        elif not hmac.compare_digest(mac_hex(key, ev.hash), ev.mac):
            self._p(f"{where}: MAC mismatch (row re-hashed without the audit key, or wrong key)")

    def finish(
        self,
        heads: Mapping[int, StreamHead] | None,
        heads_after: Mapping[int, StreamHead] | None = None,
    ) -> list[str]:
        """Compare the chain's ends with the recorded ``heads`` and the anchor; rows past
        ``heads`` (the ``limit``) must be covered by ``heads_after``, read after them."""
        for s, (n, seq) in sorted(self.tail.items()):
            h2 = (heads_after or {}).get(s)
            if h2 is None or n > h2.n:
                self._p(
                    f"seq {seq} (stream {s} #{n}): beyond the stream's recorded head "
                    f"#{0 if h2 is None else h2.n} (a row added outside the store?)"
                )
        if heads is not None:
            for s, h in sorted(heads.items()):
                got = self.state.get(s)
                last = 0 if got is None else got[0]
                if last < h.n:
                    self._p(
                        f"stream {s}: its head records #{h.n} (seq {h.seq}) but the last row is "
                        f"#{last}: rows #{last + 1}..#{h.n} were deleted (truncated)"
                    )
                elif got is not None and last == h.n and got[1] != h.hash:
                    self._p(f"stream {s}: the last row #{last} differs from the recorded head")
            if self.limit is None:
                for s, got in sorted(self.state.items()):
                    if s not in heads:
                        self._p(f"stream {s}: rows up to #{got[0]} but no head row (deleted?)")
        for s, claim in sorted(self.anchor.items()):
            if s in self.anchor_seen:
                continue
            got = self.state.get(s)
            if got is not None and s in self.start and self.start[s].n >= claim.n:
                continue  # the anchor predates the checkpoint
            self._p(
                f"anchor: stream {s} #{claim.n} (seq {claim.seq}, hash {claim.hash[:12]}…) is "
                "no longer in the chain: rows deleted or truncated after the anchor"
            )
        return self.problems

    def checkpoint_heads(self) -> dict[int, StreamHead]:
        return {s: StreamHead(s, n, h, q) for s, (n, h, q) in self.state.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
