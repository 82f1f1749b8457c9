"""Plain JSONL: ``{"id", "sentences": [...]}`` stories or ready ``{"id", "ctx_a", "ctx_b", "ending"}``
(``ctx_b`` may be empty, as in WikiHow-style items).

Optional keys: ``activity_label``; ``video_id`` (ready items of one video share a fold;
defaults to ``id``). WikiHow-style step lists fit the ``sentences`` form.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import (
    Item, Record, Story, iter_json_lines, require_sentences, require_text, sources,
)

_READY = ("ctx_a", "ctx_b", "ending")


def _ident(path: Path, record: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(path, record, "id must be a string or an integer")
    return require_text(path, record, "id", str(value))


@sources.register("jsonl")
def read_jsonl(path: Path) -> Iterator[Record]:
    """Yield a Story per ``sentences`` record and an Item per ready record."""
    for lineno, obj in iter_json_lines(path):
        record = f"line {lineno}"
        if "id" not in obj:
            raise InputError(path, record, "missing key 'id'")
        ident = _ident(path, record, obj["id"])
        label = require_text(path, record, "activity_label", obj["activity_label"]) \
            if "activity_label" in obj else ""
        video_id = _ident(path, record, obj.get("video_id", ident))
        if "sentences" in obj:
            yield Story("jsonl", video_id, label, require_sentences(path, record, obj["sentences"]),
                        path.name)
        elif all(key in obj for key in _READY):
            # ctx_b may be empty: WikiHow-style items continue ctx_a with no subject between
            ctx_a, ctx_b, ending = (require_text(path, record, k, obj[k], empty_ok=k == "ctx_b") for k in _READY)
            yield Item("jsonl", ident, video_id, label, ctx_a, ctx_b, ending, path.name)
        else:
            raise InputError(path, record, "needs either 'sentences' or all of ctx_a, ctx_b, ending")
