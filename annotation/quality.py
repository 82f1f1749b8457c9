"""Annotator quality: each Label Studio user measured against the gold and the majority,
low-accuracy annotators' votes dropped, and the human accuracy the dataset is judged by.

HellaSwag's claim is "easy for people, hard for models" (95.6 % human vs 47 % BERT-Large);
``human_accuracy`` is our side of it: the share of the kept annotators' answers that pick the
gold.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from annotation.agreement import fleiss_kappa, majority


@dataclass
class Annotator:
    """One annotator's record: ``tasks`` answered, ``accuracy`` against the gold, ``agreement``
    with the item's strict majority (on items with two or more answers and a majority; None
    without any), ``dropped``."""

    user: int | None
    tasks: int
    accuracy: float
    agreement: float | None
    dropped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def annotators(records: Sequence[dict[str, Any]], gold: dict[str, int]) -> list[Annotator]:
    """Per ``completed_by``: tasks, accuracy against ``gold`` (context id → label) and
    agreement with the strict majority of the item's answers."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["choice"] is not None:
            by_item.setdefault(r["context_id"], []).append(r)
    out = []
    for user in sorted({r["completed_by"] for r in records}, key=lambda u: (u is None, u)):
        mine = [r for r in records if r["completed_by"] == user and r["choice"] is not None]
        agree = []
        for r in mine:
            top = majority([o["choice"] for o in by_item[r["context_id"]]])
            if top is not None and len(by_item[r["context_id"]]) > 1:
                agree.append(r["choice"] == top)
        out.append(Annotator(user, len(mine),
                             float(np.mean([r["choice"] == gold[r["context_id"]] for r in mine])) if mine else 0.0,
                             float(np.mean(agree)) if agree else None))
    return out


def drop_low_accuracy(people: list[Annotator], min_accuracy: float, min_tasks: int) -> list[Annotator]:
    """Mark annotators with at least ``min_tasks`` tasks and accuracy below ``min_accuracy``."""
    for a in people:
        a.dropped = a.tasks >= min_tasks and a.accuracy < min_accuracy
    return people


def kappa(records: Sequence[dict[str, Any]], k: int) -> float:
    """Fleiss' kappa of the answers' choices, items × ``k`` choices."""
    by_item: dict[str, Counter[int]] = {}
    for r in records:
        if r["choice"] is not None:
            by_item.setdefault(r["context_id"], Counter())[r["choice"]] += 1
    if not by_item:
        return float("nan")
    return fleiss_kappa(np.array([[c[i] for i in range(k)] for c in by_item.values()]))


def kappa_text(value: float | None) -> str:
    """Fleiss' kappa as printed: three decimals, or why there is none (each task has at most
    one answer: there is no agreement to measure)."""
    if value is None or value != value:  # None (as stored in JSON) or NaN
        return "not defined (one answer per task: push with --overlap 2 or more to measure agreement)"
    return f"{value:.3f}"


def stored_kappa(value: float) -> float | None:
    """Kappa for a JSON file: None where it is not defined (JSON has no NaN)."""
    return None if value != value else value


def human_accuracy(records: Sequence[dict[str, Any]], gold: dict[str, int]) -> tuple[float, int]:
    """(share of the answers that pick the gold, answers counted)."""
    counted = [r for r in records if r["choice"] is not None]
    if not counted:
        return float("nan"), 0
    return float(np.mean([r["choice"] == gold[r["context_id"]] for r in counted])), len(counted)
