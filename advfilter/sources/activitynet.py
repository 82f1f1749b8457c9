"""ActivityNet Captions JSON: ``{video_id: {"duration", "timestamps", "sentences"}}``.

Sentences are ordered by start time. An optional ``activity_label`` per video (our own
extension, used by the demo corpus) is carried through; ActivityNet itself has none.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import (
    Story, load_json_document, require_keys, require_sentences, sources,
)


def _timestamps(path: Path, record: str, value: Any, n: int) -> list[float]:
    """Start times of a ``[[start, end], ...]`` list that has one pair per sentence."""
    if not isinstance(value, list):
        raise InputError(path, record, "timestamps must be a list of [start, end] pairs")
    if len(value) != n:
        raise InputError(path, record, f"{len(value)} timestamps but {n} sentences")
    starts = []
    for i, pair in enumerate(value):
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in pair):
            raise InputError(path, record, f"timestamps[{i}] must be [start, end] numbers")
        starts.append(float(pair[0]))
    return starts


@sources.register("activitynet")
def read_activitynet(path: Path) -> Iterator[Story]:
    """Yield one Story per video of an ActivityNet Captions file (train.json, val_1.json, ...)."""
    doc = load_json_document(path)
    if not isinstance(doc, dict):
        raise InputError(path, None, "expected a JSON object mapping video ids to annotations")
    for video_id, ann in doc.items():
        record = f"video {video_id}"
        if not isinstance(ann, dict):
            raise InputError(path, record, "annotation must be a JSON object")
        require_keys(path, record, ann, ("timestamps", "sentences"))
        duration = ann.get("duration", 0.0)
        if not isinstance(duration, (int, float)) or isinstance(duration, bool):
            raise InputError(path, record, "duration must be a number")
        sentences = require_sentences(path, record, ann["sentences"])
        starts = _timestamps(path, record, ann["timestamps"], len(sentences))
        label = ann.get("activity_label", "")
        if not isinstance(label, str):
            raise InputError(path, record, "activity_label must be a string")
        order = sorted(range(len(sentences)), key=starts.__getitem__)
        yield Story(
            source="activitynet",
            video_id=video_id,
            activity_label=label.strip(),
            sentences=tuple(sentences[i] for i in order),
            input_file=path.name,
        )
