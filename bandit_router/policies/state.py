"""Versioned, checksummed state blobs: magic, JSON header, npz payload.

Layout: ``b"BRSTATE\\0"`` | 4-byte big-endian header length | UTF-8 JSON header | npz.
The header carries the format version, the policy name and hyper-parameters, the RNG
state and the sha256 of the payload. Loading validates everything before building a new
policy, so a bad blob raises ``StateError`` and nothing is half-loaded.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import struct
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from bandit_router.errors import BanditRouterError, StateError

if TYPE_CHECKING:
    from bandit_router.policies.base import Policy

MAGIC = b"BRSTATE\x00"
FORMAT_VERSION = 1


def dump_state(policy: Policy) -> bytes:
    return encode_state(capture_state(policy))


def capture_state(policy: Policy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What ``dump_state`` writes, copied out of ``policy`` (its arrays and the header's
    fields), so that ``encode_state`` can run while the policy learns on: the router
    takes this under its lock and encodes outside it."""
    arrays = {k: np.array(v, copy=True) for k, v in policy._state_arrays().items()}
    fields = {
        "format": "bandit-router-policy-state",
        "version": FORMAT_VERSION,
        "policy": policy.name,
        "config": policy.config(),
        "rng": policy.rng.bit_generator.state,
        "n_updates": policy.n_updates,
        "extra": policy._state_extra(),
    }
    return arrays, copy.deepcopy(fields)


def encode_state(captured: tuple[dict[str, np.ndarray], dict[str, Any]]) -> bytes:
    """The blob of ``capture_state``'s copy: the npz payload, then the header with its
    checksum."""
    arrays, fields = captured
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    header = {
        **fields,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
    }
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    return MAGIC + struct.pack(">I", len(head)) + head + payload


def read_header(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """Split and check a blob; returns the header and the verified payload."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise StateError(f"state must be bytes, got {type(blob).__name__}.")
    blob = bytes(blob)
    if len(blob) < len(MAGIC) + 4 or not blob.startswith(MAGIC):
        raise StateError(
            "not a bandit-router policy state (bad magic bytes); was the file truncated?"
        )
    (n,) = struct.unpack(">I", blob[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if start + n > len(blob):
        raise StateError("state header is truncated; the blob was cut short.")
    try:
        header = json.loads(blob[start : start + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(
            f"state header is not valid JSON ({exc}); the blob is corrupted."
        ) from None
    if header.get("format") != "bandit-router-policy-state":
        raise StateError("blob is not a policy state (wrong format tag).")
    if header.get("version") != FORMAT_VERSION:
        raise StateError(
            f"state format version {header.get('version')} is not supported by this release "
            f"(it reads version {FORMAT_VERSION}); upgrade bandit-router."
        )
    payload = blob[start + n :]
    if len(payload) != header.get("payload_bytes") or (
        hashlib.sha256(payload).hexdigest() != header.get("payload_sha256")
    ):
        raise StateError("state payload does not match its checksum; the blob is corrupted.")
    return header, payload


def load_state(blob: bytes, expected: str | None = None) -> Policy:
    """Rebuild a policy from ``get_state()`` bytes; ``expected`` checks the policy name."""
    from bandit_router.policies.registry import POLICY_CLASSES

    header, payload = read_header(blob)
    name = header.get("policy")
    if expected is not None and name != expected:
        raise StateError(f"state holds a {name!r} policy, expected {expected!r}.")
    cls = POLICY_CLASSES.get(name)
    if cls is None:
        raise StateError(f"state holds an unknown policy {name!r}.")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise StateError(f"state payload cannot be read ({exc}).") from None
    config = dict(header.get("config") or {})
    if getattr(cls, "needs_prior", False) and not config.get("priors"):
        config["_from_state"] = True  # a blob written before config() carried the priors
    try:
        policy = cls(**config)
    except (TypeError, BanditRouterError) as exc:
        raise StateError(f"state's configuration does not fit {name!r}: {exc}") from None
    extra = header.get("extra") or {}
    policy._validate_state(arrays, extra)
    policy._restore(arrays, extra)
    try:
        policy.rng.bit_generator.state = header["rng"]
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"state's random generator cannot be restored ({exc}).") from None
    policy.n_updates = int(header.get("n_updates", 0))
    return policy
