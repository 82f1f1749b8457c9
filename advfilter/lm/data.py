"""Which items fine-tuning trains on and which it validates on, never the same ones.

A run gives its train and validation splits; an ``export --format hf`` folder its train and
validation splits; JSONL the records marked ``train`` and those marked ``validation``/``val``.
Data with no train split (e.g. HellaSwag's own validation file, every record ``val``) is split
by video, seeded, ``finetune.valid_fraction`` of the videos held out, and the recipe says so.
Validation items that equal a training item (same query and endings) are left out, and said.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore
from advfilter.core.lm import Doc, to_doc
from advfilter.lm.evaluate import read_docs, run_docs


@dataclass
class TrainingData:
    """Items to train on and to validate on, and a line saying how they were chosen ("" when
    the data named its own splits and nothing was left out)."""

    train: list[Doc]
    valid: list[Doc]
    note: str = ""


def by_video(docs: list[Doc], fraction: float, seed: int) -> tuple[list[Doc], list[Doc]]:
    """(train, held out): whole videos, each held out with probability ``fraction`` (seeded);
    at least one video on each side when there are two or more."""
    videos = sorted({d.video for d in docs})
    held = {v for v in videos if derive_seed(seed, "finetune-valid", v) % 10_000 < fraction * 10_000}
    if len(videos) > 1 and not held:
        held = {min(videos, key=lambda v: derive_seed(seed, "finetune-valid", v))}
    if len(videos) > 1 and held == set(videos):
        held.discard(max(videos, key=lambda v: derive_seed(seed, "finetune-valid", v)))
    return [d for d in docs if d.video not in held], [d for d in docs if d.video in held]


def _named_splits(data: Path | RunStore, eval_data: Path | None) -> tuple[list[Doc], list[Doc], bool]:
    """(train, validation, whether the data marks a train split) as the data names them."""
    if isinstance(data, RunStore):
        return run_docs(data, "train"), read_docs(eval_data) if eval_data else run_docs(data, "validation"), True
    if data.is_dir():
        from datasets import load_from_disk

        dataset = load_from_disk(str(data))
        valid = [to_doc(r) for r in dataset["validation"]] if "validation" in dataset else []
        return [to_doc(r) for r in dataset["train"]], read_docs(eval_data) if eval_data else valid, True
    docs = read_docs(data)
    splits = {d.split for d in docs}
    if "train" not in splits:
        return docs, read_docs(eval_data) if eval_data else [], False
    held = next((name for name in ("validation", "val") if name in splits), None)
    valid = read_docs(eval_data) if eval_data else [d for d in docs if d.split == held] if held else []
    return [d for d in docs if d.split == "train"], valid, True


def training_data(data: Path | RunStore, eval_data: Path | None, valid_fraction: float,
                  seed: int) -> TrainingData:
    """The items to train and validate on (see the module docstring); none in both."""
    train, valid, marked = _named_splits(data, eval_data)
    notes = []
    if not marked and eval_data is None:
        train, valid = by_video(train, valid_fraction, seed)
        notes.append(f"{data}: no train split; held out {len(valid)} items of "
                     f"{len({d.video for d in valid})} videos to validate on (finetune.valid_fraction "
                     f"{valid_fraction}), training on the other {len(train)}")
    seen = {(d.query, d.choices) for d in train}
    overlap = [d for d in valid if (d.query, d.choices) in seen]
    if overlap:
        valid = [d for d in valid if (d.query, d.choices) not in seen]
        notes.append(f"left out {len(overlap)} validation items that are also training items")
    return TrainingData(train, valid, "; ".join(notes))
