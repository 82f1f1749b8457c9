"""Import SWAG CSV: ``video-id, fold-ind, startphrase, sent1, sent2, gold-source, ending0..3, label``."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import Item, read_text, require_text, sources

_COLUMNS = ("video-id", "fold-ind", "sent1", "sent2", "ending0", "ending1", "ending2", "ending3",
            "label")


@sources.register("swag")
def read_swag(path: Path) -> Iterator[Item]:
    """Yield one Item per labelled SWAG row (``sent1`` → ctx_a, ``sent2`` → ctx_b)."""
    reader = csv.DictReader(io.StringIO(read_text(path)))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(path, "header", f"missing columns: {', '.join(missing)}")
    for row in reader:
        record = f"line {reader.line_num}"
        label = (row["label"] or "").strip()
        if label not in {"0", "1", "2", "3"}:
            raise InputError(path, record, f"label {label!r} is not one of 0-3")
        video_id = require_text(path, record, "video-id", row["video-id"])
        yield Item(
            source="swag",
            item_id=f"{video_id}~{row['fold-ind']}",
            video_id=video_id,
            activity_label="",
            ctx_a=require_text(path, record, "sent1", row["sent1"]),
            ctx_b=require_text(path, record, "sent2", row["sent2"]),
            ending=require_text(path, record, f"ending{label}", row[f"ending{label}"]),
            input_file=path.name,
        )
