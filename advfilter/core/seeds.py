"""Every random choice draws from a seed derived from (seed, stage, round/shard/...)."""
from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across machines, processes and Python versions."""
    blob = "\x00".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1
