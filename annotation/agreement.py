"""Agreement between annotators and the keep / drop / re-annotate decision per item."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class ItemVerdict:
    """Votes on one item (exported indices) and what to do with it."""

    context_id: str
    round: int
    annotations: int
    majority: int | None
    gold_share: float
    plausible_flags: dict[int, int]
    decision: str  # keep | drop | reannotate | revise (a flagged distractor is being replaced)
    revision: int = 0  # the revision of the item the answers were given on
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def majority(choices: Sequence[int]) -> int | None:
    """The strict-majority choice (more than half of the votes), or None."""
    if not choices:
        return None
    choice, votes = Counter(choices).most_common(1)[0]
    return choice if votes * 2 > len(choices) else None


def verdict(context_id: str, round_n: int, gold: int, answers: Sequence[dict[str, Any]],
            needed: int) -> ItemVerdict:
    """Decide one item from its answers (``choice``, ``plausible``, ``nonsense`` lists).

    keep: at least ``needed`` answers, the gold is the strict-majority choice and no
    distractor is flagged plausible by most annotators. drop: most flag the gold as
    ungrammatical/nonsense. reannotate: anything else (too few answers, no majority for the
    gold, or a distractor most find plausible too).
    """
    choices = [a["choice"] for a in answers if a["choice"] is not None]
    n = len(choices)
    top = majority(choices)
    plausible = Counter(i for a in answers for i in a["plausible"] if i != gold)
    nonsense_gold = sum(gold in a["nonsense"] for a in answers)
    if n and nonsense_gold * 2 > n:
        decision = "drop"
    elif n >= needed and top == gold and not any(c * 2 > n for c in plausible.values()):
        decision = "keep"
    else:
        decision = "reannotate"
    return ItemVerdict(context_id, round_n, n, top, (choices.count(gold) / n) if n else 0.0,
                       dict(sorted(plausible.items())), decision)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an items × categories matrix of vote counts.

    Items may have different numbers of votes; items with fewer than two are ignored.
    Returns NaN when nothing is left to compare.
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(counts) == 0:
        return float("nan")
    p_item = ((counts ** 2).sum(1) - n) / (n * (n - 1))
    p_cat = counts.sum(0) / n.sum()
    p_bar, p_e = p_item.mean(), (p_cat ** 2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0
