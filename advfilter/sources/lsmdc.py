"""LSMDC tab-separated clip annotations: ``clip_id, start, end, [...,] sentence``.

A clip id looks like ``1004_Juno_00.00.32.849-00.00.38.183``; everything before the time
range names the movie. Clips of one movie form one Story, ordered by start time, so the
movie is the unit of fold assignment (no generator sees another clip of the same movie).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import Story, read_text, require_text, sources

_CLIP = re.compile(r"^(?P<movie>.+?)_\d+\.\d+\.\d+\.\d+-\d+\.\d+\.\d+\.\d+$")
_HMS = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")


def parse_time(text: str) -> float:
    """Seconds from LSMDC's ``hh.mm.ss.mmm`` or a plain number; ValueError otherwise."""
    match = _HMS.match(text.strip())
    if match:
        hours, minutes, seconds, millis = (int(g) for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds + millis / 10 ** len(match.group(4))
    return float(text)


def movie_of(clip_id: str) -> str:
    """The movie part of a clip id (the whole id if it has no time range)."""
    match = _CLIP.match(clip_id)
    return match.group("movie") if match else clip_id.rsplit("_", 1)[0]


@sources.register("lsmdc")
def read_lsmdc(path: Path) -> Iterator[Story]:
    """Yield one Story per movie of an LSMDC annotation file."""
    clips: dict[str, list[tuple[float, int, str]]] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        record = f"line {lineno}"
        fields = line.split("\t")
        if len(fields) < 4:
            raise InputError(path, record, f"expected at least 4 tab-separated fields, got {len(fields)}")
        clip_id = require_text(path, record, "clip id", fields[0])
        try:
            start = parse_time(fields[1])
        except ValueError:
            raise InputError(path, record, f"start time {fields[1]!r} is not a time") from None
        sentence = require_text(path, record, "sentence", fields[-1])
        clips.setdefault(movie_of(clip_id), []).append((start, lineno, sentence))
    for movie, rows in clips.items():
        rows.sort()
        yield Story(
            source="lsmdc",
            video_id=movie,
            activity_label=movie,
            sentences=tuple(sentence for _, _, sentence in rows),
            input_file=path.name,
        )
