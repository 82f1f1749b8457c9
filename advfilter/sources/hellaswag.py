"""Import HellaSwag JSONL (``ind, activity_label, ctx_a, ctx_b, endings, label, source_id``).

The labelled ending becomes the gold; the other endings are not kept (re-filtering draws new
negatives). Unlabelled records (HellaSwag's test split) are rejected: they have no gold.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import Item, iter_json_lines, require_keys, require_text, sources

_KEYS = ("ind", "activity_label", "ctx_a", "ctx_b", "endings", "label", "source_id")


@sources.register("hellaswag")
def read_hellaswag(path: Path) -> Iterator[Item]:
    """Yield one Item per labelled HellaSwag record."""
    for lineno, obj in iter_json_lines(path):
        record = f"line {lineno}"
        require_keys(path, record, obj, _KEYS)
        endings, label = obj["endings"], obj["label"]
        if not isinstance(endings, list) or not endings:
            raise InputError(path, record, "endings must be a non-empty list")
        if isinstance(label, str) and label.strip().isdigit():
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(endings):
            raise InputError(path, record, f"label {label!r} does not index endings")
        ctx_b = obj["ctx_b"]
        if not isinstance(ctx_b, str):  # may be empty: HellaSwag's WikiHow items have no ctx_b
            raise InputError(path, record, "ctx_b must be a string")
        yield Item(
            source="hellaswag",
            item_id=str(obj["ind"]),
            video_id=require_text(path, record, "source_id", obj["source_id"]),
            activity_label=str(obj["activity_label"]).strip(),
            ctx_a=require_text(path, record, "ctx_a", obj["ctx_a"]),
            ctx_b=ctx_b.strip(),
            ending=require_text(path, record, f"endings[{label}]", endings[label]),
            input_file=path.name,
        )
