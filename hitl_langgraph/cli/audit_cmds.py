"""``hitl audit ...``: verify (with anchors and checkpoints), export, anchor, keygen,
evidence bundles and their offline verification."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..audit import anchor as audit_anchor
from ..audit import evidence as audit_evidence
from ..audit import export as audit_export
from ..audit import verify as audit_verify
from ..errors import ConfigurationError
from ..store.base import AuditReport
from ..store.keys import (
    DecisionVerifier,
    StaticKey,
    audit_key_from_env,
    generate_signing_key,
    signer_from_env,
)

__all__ = ["add_audit_parsers", "run_audit"]


def add_audit_parsers(asub: Any, common: Callable[..., None]) -> None:
    p = asub.add_parser(
        "verify", help="recompute the hash chains, check keys and heads (exit 1 if tampered)"
    )
    common(p, top=False)
    p.add_argument("--file", metavar="JSONL", help="verify an exported file instead")
    p.add_argument("--anchor", metavar="FILE", help="a published anchor the chain must still hold")
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="resume from this verified checkpoint if it exists; write a new one on success",
    )
    p.add_argument("--key-file", metavar="FILE", help="the audit key (else HITL_AUDIT_KEY[_FILE])")
    p.add_argument(
        "--public-key",
        dest="public_keys",
        action="append",
        default=[],
        metavar="PEM",
        help="also check every approving decision's signature with this trusted Ed25519 "
        "public key (repeatable; else HITL_DECISION_PUBLIC_KEYS)",
    )
    p = asub.add_parser("export", help="export as JSONL or CSV")
    common(p, top=False)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--request", metavar="ID", help="only this request's events")
    p = asub.add_parser("anchor", help="print or publish the heads of every audit stream")
    common(p, top=False)
    p.add_argument("--out", metavar="FILE", help="append the anchor to this file (JSON lines)")
    p.add_argument("--webhook", metavar="URL", help="POST the anchor to this URL")
    p = asub.add_parser("keygen", help="create an Ed25519 signing key (PEM) and its public key")
    common(p, top=False)
    p.add_argument("--out", required=True, metavar="FILE", help="private key file (mode 600)")
    p = asub.add_parser("evidence", help="write a signed evidence bundle (JSON, optional HTML)")
    common(p, top=False)
    p.add_argument("request_ids", nargs="*", metavar="REQUEST_ID")
    p.add_argument("--since", metavar="ISO", help="requests created at or after this time")
    p.add_argument("--until", metavar="ISO", help="requests created before this time")
    p.add_argument("-o", "--output", metavar="FILE", help="bundle file (default: stdout)")
    p.add_argument("--html", metavar="FILE", help="also render it as an HTML page")
    p.add_argument("--anchor", metavar="FILE", help="prove the chain against this anchor")
    p.add_argument("--phoenix-url", metavar="URL", help="link traces to this Phoenix")
    p = asub.add_parser("verify-bundle", help="check an evidence bundle offline")
    common(p, top=False)
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--public-key",
        dest="public_keys",
        action="append",
        default=[],
        metavar="PEM",
        help="trusted Ed25519 public key (repeatable; else HITL_DECISION_PUBLIC_KEYS)",
    )
    p.add_argument("--key-file", metavar="FILE", help="the audit key, to check row HMACs too")


def _time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"{what} {text!r} is not an ISO-8601 time") from exc
    if t.tzinfo is None:
        raise ConfigurationError(f"{what} {text!r} needs a timezone, e.g. {text}+00:00")
    return t


def _keys(a: argparse.Namespace) -> StaticKey | None:
    path = getattr(a, "key_file", None)
    if path:
        try:
            return StaticKey(Path(path).read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the audit key file {path}: {exc}") from exc
    return audit_key_from_env()


def _verifier(paths: list[str]) -> DecisionVerifier | None:
    if not paths:
        env = os.environ.get("HITL_DECISION_PUBLIC_KEYS", "")
        paths = [p for p in env.split(os.pathsep) if p]
    return DecisionVerifier.from_files(paths) if paths else None


def _report_text(report: Any, what: str = "audit trail") -> str:
    if report.ok:
        lines = [f"{what} OK: {report.events} events checked, head {report.head[:16]}"]
    else:
        lines = [f"{what} FAILED verification ({len(report.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in report.problems]
    lines += [f"  note: {n}" for n in getattr(report, "notes", ())]
    return "\n".join(lines)


def _remote(ctx: Any) -> Any:
    """The deployment's inbox route (``--deployment`` with a token), if the CLI has one."""
    remote = getattr(ctx, "remote", None)
    return remote() if callable(remote) else None


def run_audit(ctx: Any) -> int:
    a = ctx.args
    cmd = a.audit_command
    if cmd == "verify":
        keys = _keys(a)
        anchor = audit_anchor.load_anchor(a.anchor) if a.anchor else None
        verifier = _verifier(a.public_keys)
        if a.file:
            if a.public_keys:
                raise ConfigurationError(
                    "--public-key checks decision signatures in the store; for an exported "
                    "file, export an evidence bundle (`hitl audit evidence`) and check it "
                    "with `hitl audit verify-bundle --public-key`"
                )
            try:
                with open(a.file, encoding="utf-8") as fh:
                    report = audit_export.verify_jsonl(fh, keys=keys, anchor=anchor)
            except OSError as exc:
                raise ConfigurationError(f"cannot read {a.file}: {exc}") from exc
        elif (
            keys is None
            and anchor is None
            and not a.public_keys
            and (remote := _remote(ctx)) is not None
        ):
            v = remote.audit(request_id=None)["verified"]  # the deployment verifies its store
            report = AuditReport(ok=v["ok"], events=v["events"], problems=v["problems"])
        else:
            store = ctx.store()
            if keys is not None:
                store.set_audit_key(keys)
            since = None
            if a.checkpoint and Path(a.checkpoint).exists():
                since = audit_anchor.load_anchor(a.checkpoint)
            report = audit_verify.verify_with_signatures(
                store, verifier, anchor=anchor, since=since
            )
            if report.ok and a.checkpoint and report.checkpoint is not None:
                Path(a.checkpoint).write_text(json.dumps(report.checkpoint, sort_keys=True) + "\n")
        data = {
            "ok": report.ok,
            "events": report.events,
            "problems": report.problems,
            "head": report.head,
            "keyed": report.keyed,
            "notes": report.notes,
        }
        ctx.emit(data, _report_text(report))
        return 0 if report.ok else 1
    if cmd == "export":
        if a.output:
            with Path(a.output).open("w", encoding="utf-8", newline="") as fh:
                n = audit_export.export_audit(
                    ctx.store(), fh, format=a.format, request_id=a.request
                )
            ctx.emit({"exported": n, "file": a.output}, f"exported {n} audit events to {a.output}")
        else:
            audit_export.export_audit(ctx.store(), ctx.out, format=a.format, request_id=a.request)
        return 0
    if cmd == "anchor":
        store = ctx.store()
        anchor = audit_anchor.anchor_now(store, signer=signer_from_env())
        went = audit_anchor.publish_anchor(anchor, out=a.out, webhook=a.webhook)
        if went and not ctx.json:
            streams = anchor["streams"]
            lines = [
                f"anchor at {anchor['at']} (last seq {anchor['last_seq']}) -> {', '.join(went)}"
            ]
            lines.append(f"{'stream':>6}  {'#':>8}  {'seq':>10}  hash")
            lines += [
                f"{s:>6}  {h['n']:>8}  {h['seq']:>10}  {h['hash'][:16]}" for s, h in streams.items()
            ]
            ctx.out.write("\n".join(lines) + "\n")
        else:  # stdout: one JSON line for a log system
            ctx.out.write(json.dumps(anchor, sort_keys=True) + "\n")
        return 0
    if cmd == "keygen":
        signer = generate_signing_key()
        out = Path(a.out)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(signer.private_pem())
        pub = out.with_suffix(".pub.pem")
        pub.write_text(signer.public_pem())
        ctx.emit(
            {"private_key": str(out), "public_key": str(pub), "key_id": signer.key_id},
            f"private key {out} (keep it secret: HITL_SIGNING_KEY_FILE={out})\n"
            f"public key  {pub} (give it to gates and auditors: "
            f"HITL_DECISION_PUBLIC_KEYS={pub})\nkey id      {signer.key_id}",
        )
        return 0
    if cmd == "evidence":
        t0, t1 = _time(a.since, "--since"), _time(a.until, "--until")
        if not a.request_ids and t0 is None and t1 is None:
            raise ConfigurationError("give REQUEST_ID(s) or --since/--until")
        anchor = audit_anchor.load_anchor(a.anchor) if a.anchor else None
        bundle = audit_evidence.build_bundle(
            ctx.store(),
            a.request_ids,
            since=t0,
            until=t1,
            anchor=anchor,
            signer=signer_from_env(),
            phoenix_url=a.phoenix_url,
        )
        text = json.dumps(bundle, sort_keys=True, indent=1, default=str)
        if a.html:
            Path(a.html).write_text(audit_evidence.render_html(bundle), encoding="utf-8")
        if a.output:
            Path(a.output).write_text(text + "\n", encoding="utf-8")
            signed = "signed" if "signature" in bundle else "NOT signed (set HITL_SIGNING_KEY_FILE)"
            ctx.emit(
                {"file": a.output, "requests": len(bundle["requests"]), "html": a.html},
                f"wrote {a.output}: {len(bundle['requests'])} request(s), {signed}"
                + (f"; HTML {a.html}" if a.html else ""),
            )
        else:
            ctx.out.write(text + "\n")
        return 0
    if cmd == "verify-bundle":
        try:
            raw = Path(a.file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {a.file}: {exc}") from exc
        rep = audit_evidence.verify_bundle(raw, _verifier(a.public_keys), keys=_keys(a))
        text = (
            f"bundle OK: {rep.requests} request(s), signatures and chain proof verified"
            if rep.ok
            else f"bundle FAILED verification ({len(rep.problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in rep.problems)
        )
        text += "".join(f"\n  note: {n}" for n in rep.notes)
        ctx.emit(
            {"ok": rep.ok, "requests": rep.requests, "problems": rep.problems, "notes": rep.notes},
            text,
        )
        return 0 if rep.ok else 1
    raise ConfigurationError(f"unknown audit command {cmd!r}")
