"""Template variables: find them, fill them, and refuse a template that would lose one.

Two template syntaxes are supported: langchain-core prompt templates (f-string
``{name}``; any ``BasePromptTemplate`` reports its ``input_variables``) and Phoenix
MUSTACHE strings (``{{name}}``; sections and partials are not interpreted, only plain
variables). The guard follows Opik's fix (comet-ml/opik#7656): a candidate template that
drops a placeholder of the template it replaces is *rejected*, never repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import TemplateVariableError

__all__ = [
    "GUIDANCE_VARIABLE",
    "check_variables",
    "mustache_variables",
    "render_mustache",
    "template_variables",
]

GUIDANCE_VARIABLE = "reviewer_guidance"
_MUSTACHE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_FSTRING = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")


def mustache_variables(text: str) -> frozenset[str]:
    """The ``{{name}}`` variables of a MUSTACHE string."""
    return frozenset(_MUSTACHE.findall(text))


def template_variables(template: Any) -> frozenset[str]:
    """The variables of a template.

    Accepts a langchain-core prompt template (its ``input_variables`` and
    ``partial_variables``), a MUSTACHE string, a list of ``{"role", "content"}``
    messages (Phoenix chat template) or a Phoenix ``{"type": "chat", "messages": ...}``.
    """
    if isinstance(template, str):
        return mustache_variables(template)
    if isinstance(template, Mapping) and "messages" in template:
        return template_variables(template["messages"])
    if isinstance(template, (list, tuple)):
        out: set[str] = set()
        for msg in template:
            content = msg.get("content") if isinstance(msg, Mapping) else msg
            if isinstance(content, str):
                out |= mustache_variables(content)
            elif isinstance(content, (list, tuple)):
                for part in content:
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                        out |= mustache_variables(part["text"])
        return frozenset(out)
    names = getattr(template, "input_variables", None)
    if names is None:
        raise TypeError(f"cannot read the variables of a {type(template).__name__}")
    partial = getattr(template, "partial_variables", None) or {}
    return frozenset(names) | frozenset(partial)


def check_variables(
    before: Any,
    after: Any,
    *,
    require: Iterable[str] = (),
    what: str = "template",
) -> frozenset[str]:
    """Refuse ``after`` if it lost any variable of ``before`` or lacks a ``require``d one.

    Args:
        before: The template being replaced (or its variable names).
        after: The candidate.
        require: Variables the candidate must have (e.g. ``reviewer_guidance``).
        what: Names the template in the error message.

    Returns:
        The candidate's variables.

    Raises:
        TemplateVariableError: with ``missing`` naming every lost or required variable.
    """
    old = frozenset(before) if isinstance(before, (set, frozenset)) else template_variables(before)
    new = template_variables(after)
    lost = sorted(old - new)
    needed = sorted(set(require) - new)
    if lost or needed:
        parts = []
        if lost:
            parts.append(f"it drops {', '.join(lost)}")
        if needed:
            parts.append(f"it has no {', '.join(needed)} slot")
        raise TemplateVariableError(
            f"refusing the {what}: {'; '.join(parts)} (a prompt must keep every variable "
            "of the version it replaces)",
            missing=[*lost, *needed],
        )
    return new


def render_mustache(text: str, variables: Mapping[str, Any], *, strict: bool = True) -> str:
    """Fill ``{{name}}`` variables (values are inserted as-is, not HTML-escaped).

    Raises:
        TemplateVariableError: ``strict`` and a variable has no value (as Phoenix's
            ``format()`` does).
    """
    missing = sorted(mustache_variables(text) - set(variables))
    if strict and missing:
        raise TemplateVariableError(
            f"no value for {', '.join(missing)} (pass reviewer_guidance='' when there is none)",
            missing=missing,
        )

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(variables[name]) if name in variables else m.group(0)

    return _MUSTACHE.sub(sub, text)


def fill_fstring_slot(text: str, name: str, value: str) -> str:
    """Replace only the ``{name}`` placeholder of an f-string-style text."""
    return re.sub(r"(?<!\{)\{" + re.escape(name) + r"\}(?!\})", lambda _m: value, text)


def has_slot(text: str, name: str = GUIDANCE_VARIABLE) -> bool:
    """Whether ``text`` has a ``{name}`` or ``{{name}}`` placeholder."""
    return name in mustache_variables(text) or name in _FSTRING.findall(text)
