"""Loading Hugging Face models and tokenizers by name or path, with one-line errors."""
from __future__ import annotations

from typing import Any

from advfilter.errors import ConfigError


def from_pretrained(loader: Any, name_or_path: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(name_or_path, **kwargs)``; a missing or unreadable model
    (no such folder, no hub access, bad files) becomes a ConfigError naming it."""
    try:
        return loader.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load {name_or_path!r}: {reason}") from None
