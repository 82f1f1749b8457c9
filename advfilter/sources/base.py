"""What a corpus reader yields, and the registry readers are filed in."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

from advfilter.core.errors import InputError
from advfilter.core.registry import Registry


@dataclass(frozen=True)
class Story:
    """Consecutive sentences of one video (or movie, or how-to article), in temporal order."""

    source: str
    video_id: str
    activity_label: str
    sentences: tuple[str, ...]
    input_file: str


@dataclass(frozen=True)
class Item:
    """A context that arrives already split (ready JSONL, HellaSwag, SWAG)."""

    source: str
    item_id: str
    video_id: str
    activity_label: str
    ctx_a: str
    ctx_b: str
    ending: str
    input_file: str
    built: bool = False  # made by a reader's own construction (WikiHow): length filters apply


Record = Union[Story, Item]
Reader = Callable[[Path], Iterator[Record]]

sources: Registry[Reader] = Registry("source")


def read_text(path: Path) -> str:
    """The file's text, or InputError if it cannot be read or decoded."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", "not valid UTF-8") from None


def load_json_document(path: Path) -> Any:
    """Parse a whole-file JSON document; syntax errors name the line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"line {exc.lineno}", f"malformed JSON: {exc.msg}") from None


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"line {lineno}", f"malformed JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise InputError(path, f"line {lineno}", "expected a JSON object")
        yield lineno, obj


def require_text(path: Path, record: str, key: str, value: Any, empty_ok: bool = False) -> str:
    """``value`` stripped, or InputError if it is not a string (or, unless ``empty_ok``, empty)."""
    if not isinstance(value, str):
        raise InputError(path, record, f"{key} must be a string, got {type(value).__name__}")
    if not value.strip() and not empty_ok:
        raise InputError(path, record, f"{key} is empty")
    return value.strip()


def require_sentences(path: Path, record: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of non-empty strings, stripped (ActivityNet's start with a space)."""
    if not isinstance(value, list) or not value:
        raise InputError(path, record, "sentences must be a non-empty list of strings")
    return tuple(require_text(path, record, f"sentences[{i}]", s) for i, s in enumerate(value))


def require_keys(path: Path, record: str, obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    """InputError naming the first of ``keys`` missing from ``obj``."""
    for key in keys:
        if key not in obj:
            raise InputError(path, record, f"missing key {key!r}")
