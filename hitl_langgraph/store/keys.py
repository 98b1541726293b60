"""Keys for the evidence trail: the audit chain's HMAC key and Ed25519 decision signatures.

Two kinds of key, held by different people (see the README's "Evidence and audit"):

* **The audit key** (symmetric, HMAC-SHA256). Every audit row carries
  ``mac = HMAC(key, hash)``; without the key, an insider who edits a row and recomputes
  every hash is caught. Configure it with ``HITL_AUDIT_KEY`` (hex, or any text of at
  least 16 characters), ``HITL_AUDIT_KEY_FILE`` (a file holding it), or plug in a
  :class:`KeyProvider` (a KMS, a secrets manager) with ``store.set_audit_key(...)``.
  Without a key the chain behaves as before and ``verify`` says so: re-hashing is then
  not detected.
* **Decision signing keys** (Ed25519, needs the ``evidence`` extra: ``cryptography``).
  The inbox signs every decision it records (request id, action digest, decision,
  reviewer, time) with a :class:`Signer` (``HITL_SIGNING_KEY_FILE``: a PEM private key,
  or a KMS hook); the gate checks the signature with a :class:`DecisionVerifier` built
  from public keys only (``HITL_DECISION_PUBLIC_KEYS``: PEM files, separated by
  ``os.pathsep``) before it runs anything. Auditors verify evidence bundles with the
  public key alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError, missing_dependency
from ..policy.action import canonical_json

__all__ = [
    "DecisionVerifier",
    "Ed25519Signer",
    "KeyProvider",
    "Signer",
    "StaticKey",
    "audit_key_from_env",
    "decision_payload",
    "generate_signing_key",
    "key_id_of",
    "mac_hex",
    "public_key_id",
    "signer_from_env",
    "verifier_from_env",
]

AUDIT_KEY_ENV = "HITL_AUDIT_KEY"
AUDIT_KEY_FILE_ENV = "HITL_AUDIT_KEY_FILE"
SIGNING_KEY_FILE_ENV = "HITL_SIGNING_KEY_FILE"
PUBLIC_KEYS_ENV = "HITL_DECISION_PUBLIC_KEYS"


# -- the audit HMAC key ---------------------------------------------------------------


@runtime_checkable
class KeyProvider(Protocol):
    """Where the audit chain's HMAC key comes from (env, file, KMS, secrets manager).

    ``current()`` is the key new rows are keyed with, as ``(key_id, key_bytes)``;
    ``key(key_id)`` returns any key still trusted for verification (rotation), or
    ``None``."""

    def current(self) -> tuple[str, bytes]: ...

    def key(self, key_id: str) -> bytes | None: ...


def key_id_of(key: bytes) -> str:
    """A short public id for an HMAC key (does not reveal the key)."""
    return "k" + hashlib.sha256(b"hitl-audit-key-id\x00" + key).hexdigest()[:12]


class StaticKey:
    """One HMAC key (plus older ones still accepted when verifying)."""

    def __init__(self, key: bytes | str, *, previous: Iterable[bytes | str] = ()) -> None:
        self._key = _key_bytes(key, "the audit key")
        self._id = key_id_of(self._key)
        self._all = {self._id: self._key}
        for old in previous:
            b = _key_bytes(old, "a previous audit key")
            self._all[key_id_of(b)] = b

    def current(self) -> tuple[str, bytes]:
        return self._id, self._key

    def key(self, key_id: str) -> bytes | None:
        return self._all.get(key_id)

    def __repr__(self) -> str:  # never print the key
        return f"StaticKey(id={self._id})"


def _key_bytes(key: bytes | str, what: str) -> bytes:
    if isinstance(key, str):
        text = key.strip()
        try:
            raw = bytes.fromhex(text) if len(text) % 2 == 0 and len(text) >= 32 else None
        except ValueError:
            raw = None
        key = raw if raw is not None else text.encode()
    if len(key) < 16:
        raise ConfigurationError(
            f"{what} is too short ({len(key)} bytes); use at least 16 random bytes, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def audit_key_from_env(env: Mapping[str, str] | None = None) -> StaticKey | None:
    """The audit key from ``HITL_AUDIT_KEY`` or ``HITL_AUDIT_KEY_FILE``, else ``None``."""
    env = os.environ if env is None else env
    if env.get(AUDIT_KEY_ENV):
        return StaticKey(env[AUDIT_KEY_ENV])
    path = env.get(AUDIT_KEY_FILE_ENV)
    if path:
        try:
            return StaticKey(Path(path).read_text())
        except OSError as exc:
            raise ConfigurationError(
                f"{AUDIT_KEY_FILE_ENV}={path!r} cannot be read ({exc}); point it at the file "
                "holding the audit key"
            ) from exc
    return None


def mac_hex(key: bytes, chain_hash: str) -> str:
    """The row's keyed tag: HMAC-SHA256 over its chain hash."""
    return hmac.new(key, chain_hash.encode(), hashlib.sha256).hexdigest()


# -- decision signatures (Ed25519) ----------------------------------------------------


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise missing_dependency("cryptography", "evidence", exc) from exc
    return ed25519


def decision_payload(
    *,
    request_id: str,
    digest: str,
    decision: Mapping[str, Any],
    reviewer: str | None,
    roles: Iterable[str] = (),
    at: str,
) -> bytes:
    """The exact bytes a decision signature covers."""
    body = {
        "v": 1,
        "request_id": request_id,
        "digest": digest,
        "decision": {k: v for k, v in decision.items() if k not in ("request_id", "digest")},
        "reviewer": reviewer,
        "roles": sorted(roles),
        "at": at,
    }
    return canonical_json(body).encode()


@runtime_checkable
class Signer(Protocol):
    """Signs decision payloads. Implement it over a KMS/HSM to keep the key outside."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, payload: bytes) -> bytes: ...


def public_key_id(raw_public: bytes) -> str:
    """A short id of an Ed25519 public key (32 raw bytes)."""
    return "ed25519:" + hashlib.sha256(raw_public).hexdigest()[:16]


def _raw_public(pub: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


class Ed25519Signer:
    """A local Ed25519 private key (PEM file, or generated)."""

    algorithm = "ed25519"

    def __init__(self, private_key: Any) -> None:
        ed = _crypto()
        if not isinstance(private_key, ed.Ed25519PrivateKey):
            raise ConfigurationError("Ed25519Signer needs an Ed25519 private key")
        self._key = private_key
        self._key_id = public_key_id(_raw_public(private_key.public_key()))

    @property
    def key_id(self) -> str:
        return self._key_id

    @classmethod
    def from_pem(cls, data: bytes | str, *, password: bytes | None = None) -> Ed25519Signer:
        from cryptography.hazmat.primitives import serialization

        _crypto()
        try:
            key = serialization.load_pem_private_key(
                data.encode() if isinstance(data, str) else data, password=password
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"the signing key is not a PEM private key ({exc}); create one with "
                "`hitl audit keygen --out reviewer.pem`"
            ) from exc
        return cls(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Ed25519Signer:
        try:
            return cls.from_pem(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the signing key {path!s}: {exc}") from exc

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def private_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem.decode()

    def sign(self, payload: bytes) -> bytes:
        sig: bytes = self._key.sign(payload)
        return sig

    def __repr__(self) -> str:
        return f"Ed25519Signer({self._key_id})"


def generate_signing_key() -> Ed25519Signer:
    """A fresh Ed25519 key (store ``private_pem()`` somewhere only its holder can read)."""
    return Ed25519Signer(_crypto().Ed25519PrivateKey.generate())


class DecisionVerifier:
    """Checks decision signatures against a set of trusted Ed25519 public keys."""

    def __init__(self, public_keys: Iterable[Any]) -> None:
        ed = _crypto()
        from cryptography.hazmat.primitives import serialization

        self._keys: dict[str, Any] = {}
        for k in public_keys:
            if isinstance(k, Ed25519Signer):
                k = k.public_pem()
            if isinstance(k, (str, bytes)):
                data = k.encode() if isinstance(k, str) else k
                try:
                    k = serialization.load_pem_public_key(data)
                except ValueError as exc:
                    raise ConfigurationError(
                        f"a decision public key is not a PEM public key ({exc})"
                    ) from exc
            if not isinstance(k, ed.Ed25519PublicKey):
                raise ConfigurationError(
                    f"decision public keys must be Ed25519, got {type(k).__name__}"
                )
            self._keys[public_key_id(_raw_public(k))] = k
        if not self._keys:
            raise ConfigurationError("a DecisionVerifier needs at least one public key")

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]]) -> DecisionVerifier:
        pems = []
        for p in paths:
            try:
                pems.append(Path(p).read_bytes())
            except OSError as exc:
                raise ConfigurationError(f"cannot read the public key {p!s}: {exc}") from exc
        return cls(pems)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, signature: Mapping[str, Any] | None, payload: bytes) -> str | None:
        """``None`` if ``signature`` is a valid signature of ``payload`` by a trusted key,
        else the reason it is not."""
        from cryptography.exceptions import InvalidSignature

        if not signature:
            return "the decision is not signed"
        if signature.get("alg") != "ed25519":
            return f"unsupported signature algorithm {signature.get('alg')!r}"
        key = self._keys.get(str(signature.get("key_id")))
        if key is None:
            return f"signed by an untrusted key {signature.get('key_id')!r}"
        try:
            key.verify(base64.b64decode(str(signature.get("sig", ""))), payload)
        except (InvalidSignature, ValueError):
            return (
                "the signature does not match the decision (forged, or made for another "
                "request or action)"
            )
        return None


def sign_payload(signer: Signer, payload: bytes) -> dict[str, Any]:
    """The stored form of a signature."""
    return {
        "alg": signer.algorithm,
        "key_id": signer.key_id,
        "sig": base64.b64encode(signer.sign(payload)).decode(),
    }


def signer_from_env(env: Mapping[str, str] | None = None) -> Ed25519Signer | None:
    env = os.environ if env is None else env
    path = env.get(SIGNING_KEY_FILE_ENV)
    return Ed25519Signer.from_file(path) if path else None


def verifier_from_env(env: Mapping[str, str] | None = None) -> DecisionVerifier | None:
    env = os.environ if env is None else env
    paths = [p for p in env.get(PUBLIC_KEYS_ENV, "").split(os.pathsep) if p]
    return DecisionVerifier.from_files(paths) if paths else None
