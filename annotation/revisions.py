"""Revisions of items under verification: distractors people flag are replaced from the pool.

Revision 0 of an item is its negatives in the annotated round. When enough annotators of a
revision flag a distractor with one of ``annotate.replace_flags`` ("also plausible" by
default: more than half of the answers, or ``annotate.flag_votes``), the next revision swaps it for the
candidate of the item's pool the driver of the last round that tested the item scored highest
among those never shown with it, so the item stays hard; when the pool has no such candidate
left, the item is dropped. ``RUN_DIR/revisions.jsonl`` holds one line per revision after 0.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from advfilter.core.layout import REVISIONS_FILE, read_round, read_rows
from advfilter.core.scores import latest_scores
from advfilter.core.store import RunStore, read_jsonl, write_jsonl

@dataclass
class Revision:
    """One version of an item: its negatives (pool indices, in export order) and what changed."""

    context_id: str
    round: int
    revision: int
    negatives: list[int]
    replaced: list[list[int]] = field(default_factory=list)  # [old, new] pool indices
    exhausted: bool = False  # flagged, but the pool had nothing left: the item is dropped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_revisions(run: RunStore, round_n: int) -> dict[str, Revision]:
    """The latest revision of every item of ``round_n`` (revision 0: the round's negatives)."""
    table = read_round(run, round_n)
    latest = {cid: Revision(cid, round_n, 0, [int(i) for i in neg])
              for cid, neg in zip(table["context_id"], table["negatives"]) if neg[0] >= 0}
    for row in read_jsonl(run.path(REVISIONS_FILE)):
        if row["round"] == round_n and row["revision"] > latest[row["context_id"]].revision:
            latest[row["context_id"]] = Revision(**row)
    return latest


def flag_threshold(votes: int | None, answers: int, needed: int) -> int | None:
    """Flags that replace a distractor among ``answers`` answers to a task that asked for
    ``needed``: ``votes`` when set, else more than half of them once all are in (None: wait)."""
    if votes is not None:
        return votes
    return answers // 2 + 1 if answers >= needed else None


def flagged(answers: Sequence[dict[str, Any]], gold: int, flags: Sequence[str], votes: int | None) -> list[int]:
    """Exported indices of the distractors flagged (any of ``flags``: ``plausible``, ``nonsense``,
    the answer fields of the same names) by ``votes`` or more answers (None: none yet)."""
    if votes is None:
        return []
    counts: Counter[int] = Counter()
    for a in answers:
        counts.update({i for f in flags for i in a[f] if i != gold})
    return sorted(i for i, c in counts.items() if c >= votes)


def revise(run: RunStore, current: Revision, exported: list[int], label: int,
           shown: set[int], pool_size: int) -> Revision:
    """The next revision of ``current``: the negatives at exported positions ``exported``
    (gold at ``label``) replaced by the unshown candidates the driver scored highest."""
    position = [i - (i > label) for i in exported]  # exported index → position in negatives
    scores = latest_scores(run, current.context_id, current.round)
    order = np.argsort(-scores, kind="stable") if scores is not None else np.arange(pool_size)
    fresh = [int(c) for c in order if int(c) not in shown]
    negatives, replaced = list(current.negatives), []
    if len(fresh) < len(position):
        return Revision(current.context_id, current.round, current.revision + 1, negatives, exhausted=True)
    for p, new in zip(position, fresh):
        replaced.append([negatives[p], new])
        negatives[p] = new
    return Revision(current.context_id, current.round, current.revision + 1, negatives, replaced)


def pool_sizes(run: RunStore) -> dict[str, int]:
    """Candidates in each context's pool (the gold not counted)."""
    rows = read_rows(run, [])
    return {cid: int(b - a - 1) for cid, a, b in zip(rows.context_ids, rows.offsets[:-1], rows.offsets[1:])}


def shown_before(run: RunStore, context_id: str, round_n: int) -> set[int]:
    """Every pool index any revision of the item has shown."""
    table = read_round(run, round_n)
    first = table.loc[table["context_id"] == context_id, "negatives"].iloc[0]
    shown = {int(i) for i in first}
    for row in read_jsonl(run.path(REVISIONS_FILE)):
        if row["context_id"] == context_id and row["round"] == round_n:
            shown.update(row["negatives"])
    return shown


def append_revisions(run: RunStore, new: list[Revision]) -> None:
    """Add ``new`` to ``revisions.jsonl`` (rewritten atomically)."""
    if new:
        write_jsonl(run.path(REVISIONS_FILE), read_jsonl(run.path(REVISIONS_FILE)) + [r.as_dict() for r in new])
