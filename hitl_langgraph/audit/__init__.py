"""The audit trail outside the store: JSONL/CSV export and offline verification of the chain.

Layer 4: may import ``store``, ``policy`` and the foundation; never ``inbox`` or above.
"""

from __future__ import annotations

from .export import COLUMNS, audit_rows, export_audit, verify_jsonl

__all__ = ["COLUMNS", "audit_rows", "export_audit", "verify_jsonl"]
