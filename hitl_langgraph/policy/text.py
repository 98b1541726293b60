"""Hostile text and confusable identities: find what a store cannot keep, compare ids canonically.

* :func:`unsafe_text` finds the first character no store can keep faithfully in a value
  (strings, dict keys and values, lists, recursively): a lone surrogate (not encodable as
  UTF-8), NUL (refused by Postgres), and other control characters (C0 except tab, line
  feed and carriage return; DEL; C1). Callers refuse such values with a typed error
  *before* anything is saved; :func:`escape_text` renders one safely for a log or audit.
* :func:`canonical_id` is how reviewer and requester ids are compared everywhere
  (quorum, separation of duties, audit): NFKC, case-folded, with invisible and format
  characters (zero-width spaces, joiners, BOM, bidi controls) and surrounding whitespace
  removed. ``alice``, ``Alice``, ``ALICE`` and ``alice\\u200b`` are one person.
* :func:`mixed_script` and :func:`skeleton` catch ids built to look like another one
  (``carоl`` with a Cyrillic ``о``): a mixed-script id is refused, and two ids with the
  same skeleton but different canonical forms are treated as confusable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = [
    "canonical_id",
    "confusable",
    "escape_text",
    "mixed_script",
    "skeleton",
    "unsafe_text",
]

_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _bad_char(ch: str) -> str | None:
    o = ord(ch)
    if 0xD800 <= o <= 0xDFFF:
        return f"a lone surrogate U+{o:04X}"
    if o == 0:
        return "a NUL character (U+0000)"
    if ch in _ALLOWED_CONTROLS:
        return None
    if o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F:
        return f"the control character U+{o:04X}"
    return None


def _scan_str(s: str, where: str) -> str | None:
    for i, ch in enumerate(s):
        why = _bad_char(ch)
        if why is not None:
            return f"{where} holds {why} at position {i}"
    return None


def unsafe_text(value: Any, where: str = "value", *, depth: int = 0) -> str | None:
    """Say where ``value`` holds a character a store cannot keep (``None``: it is safe)."""
    if depth > 64:
        return f"{where} is nested more than 64 levels deep"
    if isinstance(value, str):
        return _scan_str(value, where)
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                found = _scan_str(k, f"a key of {where}")
                if found:
                    return found
            found = unsafe_text(
                v, f"{where}.{k!s}" if isinstance(k, str) else where, depth=depth + 1
            )
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = unsafe_text(v, f"{where}[{i}]", depth=depth + 1)
            if found:
                return found
    return None


def escape_text(value: Any) -> str:
    """A printable, storable rendering of ``value`` (unsafe characters as ``\\uXXXX``)."""
    text = value if isinstance(value, str) else repr(value)
    out = []
    for ch in text:
        out.append(f"\\u{ord(ch):04x}" if _bad_char(ch) is not None else ch)
    return "".join(out)


def canonical_id(identity: str) -> str:
    """The form reviewer/requester ids are compared in: NFKC, case-folded, invisibles removed.

    Combining marks are kept after NFKC composition (``é`` stays ``é``); only format,
    control and filler characters are dropped.
    """
    text = unicodedata.normalize("NFKC", identity)
    kept = "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp")
        and ch not in "\u115f\u1160\u3164\uffa0\u180e\u2800"
    )
    return unicodedata.normalize("NFKC", kept.casefold()).strip()


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    return name.split(" ", 1)[0]


def mixed_script(identity: str) -> set[str] | None:
    """The scripts of ``identity``'s letters when there are several (``None``: one or none)."""
    scripts = {s for s in map(_script, canonical_id(identity)) if s is not None}
    return scripts if len(scripts) > 1 else None


# letters of other scripts that render like Latin ones (the common ones used to spoof ids)
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "с": "c",
        "е": "e",
        "һ": "h",
        "і": "i",
        "ј": "j",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "г": "r",
        "ѕ": "s",
        "т": "t",
        "у": "y",
        "х": "x",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "ӏ": "l",
        "ɡ": "g",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ϲ": "c",
        "ı": "i",
    }
)


def skeleton(identity: str) -> str:
    """``canonical_id`` with look-alike letters mapped to Latin (for confusable checks)."""
    return canonical_id(identity).translate(_CONFUSABLES)


def confusable(identity: str, others: Iterable[str | None]) -> str | None:
    """An id in ``others`` that looks like ``identity`` but is not canonically equal."""
    mine = canonical_id(identity)
    sk = skeleton(identity)
    for other in others:
        if other is None:
            continue
        if canonical_id(other) != mine and skeleton(other) == sk:
            return other
    return None
