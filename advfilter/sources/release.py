"""The public ActivityNet Captions release and ActivityNet v1.3 activity labels, fetched once.

``advfilter generate --source activitynet`` without ``--input`` reads ``SPLIT.json`` (train,
val_1, val_2) of the ActivityNet Captions archive, downloaded into the cache and checked
against its SHA-256 (``sources.activitynet`` in the config). ActivityNet Captions carries no
activity label; HellaSwag's come from the ActivityNet v1.3 annotation file
(``database[id].annotations[*].label``), fetched the same way, or read from ``--labels FILE``
(that file, or a flat ``{video_id: label}`` JSON object).
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

from advfilter.core.settings import ActivityNetConfig
from advfilter.core.errors import InputError
from advfilter.core.fetch import FetchError, cache_home, fetch
from advfilter.sources.base import Record, load_json_document

INPUT_HINT = "download it yourself and pass --input FILE"
LABELS_HINT = "pass --labels FILE (activity_net.v1-3.min.json or a {video_id: label} JSON)"


def captions_file(cfg: ActivityNetConfig, captions: str) -> Path:
    """``SPLIT.json`` of the ActivityNet Captions release, from the cache (fetched if absent)."""
    target = cache_home() / "activitynet_captions" / f"{captions}.json"
    if target.is_file():
        return target
    archive = fetch(cfg.captions_url, "activitynet_captions.zip", cfg.captions_sha256, INPUT_HINT)
    try:
        with zipfile.ZipFile(archive) as zf:
            member = next((n for n in zf.namelist() if Path(n).name == f"{captions}.json"), None)
            if member is None:
                raise FetchError(f"{archive}: has no {captions}.json; {INPUT_HINT}")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
            try:
                tmp.write_bytes(zf.read(member))
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    except zipfile.BadZipFile:
        raise FetchError(f"{archive}: not a zip archive; delete it and retry, or {INPUT_HINT}") from None
    return target


def labels_file(cfg: ActivityNetConfig) -> Path:
    """The ActivityNet v1.3 annotation file, from the cache (fetched if absent)."""
    return fetch(cfg.labels_url, "activity_net.v1-3.min.json", cfg.labels_sha256, LABELS_HINT)


def read_labels(path: Path) -> dict[str, str]:
    """video id → activity label, from ActivityNet v1.3's annotation file or a flat mapping.

    Ids are stored both with and without ActivityNet Captions' ``v_`` prefix.
    """
    doc = load_json_document(path)
    if not isinstance(doc, dict):
        raise InputError(path, None, "expected a JSON object")
    database = doc.get("database", doc)
    if not isinstance(database, dict):
        raise InputError(path, "database", "expected a JSON object mapping video ids to annotations")
    labels = {}
    for video_id, entry in database.items():
        label = _label(entry)
        if label is None:
            raise InputError(path, f"video {video_id}", "no activity label (annotations[*].label)")
        if label:
            bare = video_id[2:] if video_id.startswith("v_") else video_id
            labels[bare] = labels[f"v_{bare}"] = label
    return labels


def _label(entry: Any) -> str | None:
    """The label of one database entry: a string, or the first annotation's ``label``."""
    if isinstance(entry, str):
        return entry.strip()
    if isinstance(entry, dict):
        annotations = entry.get("annotations")
        if isinstance(annotations, list):
            found = [a.get("label") for a in annotations if isinstance(a, dict) and isinstance(a.get("label"), str)]
            return found[0].strip() if found else ""
    return None


def unlabelled(records: Sequence[Record]) -> bool:
    """Whether any video lacks an activity label."""
    return any(not r.activity_label for r in records)


def with_labels(records: Sequence[Record], labels: dict[str, str]) -> list[Record]:
    """Records with their activity label filled in from ``labels`` where they have none."""
    out: list[Record] = []
    for r in records:
        if not r.activity_label and r.video_id in labels:
            r = dataclasses.replace(r, activity_label=labels[r.video_id])
        out.append(r)
    return out


def label_records(records: list[Record], source: str, labels: Path | None,
                  cfg: ActivityNetConfig) -> tuple[list[Record], Path | None]:
    """Records with activity labels filled in, and the labels file used (None: none needed).

    ``labels`` (``--labels``) wins; else ActivityNet videos without a label get v1.3's,
    fetched into the cache (``fetch_labels``).
    """
    if labels is None and source == "activitynet" and cfg.fetch_labels and unlabelled(records):
        labels = labels_file(cfg)
    if labels is None:
        return records, None
    return with_labels(records, read_labels(labels)), labels
