"""What the driver said of each context in the rounds that tested it: its scores of the pool
(for annotation's replacement distractors) and how far its favourite negative stood above the
gold (the ambiguity guard: ``annotate push --order ambiguous``, ``export --drop-ambiguous``)."""
from __future__ import annotations

import numpy as np

from advfilter.core.layout import DECISIONS_FILE, read_round
from advfilter.core.store import RunStore, read_jsonl


def score_spread(pools: list[np.ndarray]) -> float:
    """The standard deviation of a round's finite pool scores (candidates off the strong
    model's shortlist score -inf): the unit of margins, so one means the same for any driver."""
    pooled = np.concatenate([np.asarray(p, dtype=np.float64) for p in pools])
    return float(np.std(pooled[np.isfinite(pooled)])) or 1.0


def latest_scores(run: RunStore, context_id: str, upto: int) -> np.ndarray | None:
    """The driver's scores of a context's pool from the last round up to ``upto`` that tested
    it (None if none did, or the rounds predate recorded scores)."""
    for r in range(upto, 0, -1):
        table = read_round(run, r)
        if "scores" not in table:
            return None
        row = table.loc[table["context_id"] == context_id, "scores"]
        if len(row) and row.iloc[0] is not None:
            return np.asarray(row.iloc[0], dtype=np.float64)
    return None


def latest_margins(run: RunStore, upto: int) -> dict[str, float]:
    """Per context, how far the driver scored its highest negative above its gold in the last
    round up to ``upto`` that tested it, in standard deviations of that round's pool scores
    (so a margin means the same for any driver, however sure it is). A context's negatives
    change only when it is tested, so they are round ``upto``'s. The items scored furthest
    above are the likeliest to have a second correct answer. Contexts no round with gold
    scores tested are absent."""
    negatives = dict(zip(*(read_round(run, upto)[c] for c in ("context_id", "negatives"))))
    out: dict[str, float] = {}
    for r in range(upto, 0, -1):
        table = read_round(run, r)
        if "gold" not in table:
            break
        tested = table[table["gold"].notna()]
        if tested.empty:
            continue
        spread = score_spread(list(tested["scores"]))
        for cid, scores, gold in zip(tested["context_id"], tested["scores"], tested["gold"]):
            if cid not in out and negatives[cid][0] >= 0:
                out[cid] = float((np.asarray(scores)[negatives[cid]].max() - gold) / spread)
    return out


def ambiguous_ids(run: RunStore, upto: int, margin: float) -> set[str]:
    """Contexts whose round-``upto`` item is likely ambiguous (``latest_margins`` at least
    ``margin``) and that people have not kept in Label Studio (``decisions.jsonl``)."""
    path = run.path(DECISIONS_FILE)
    kept = {d["context_id"] for d in read_jsonl(path) if d["decision"] == "keep"} if path.exists() else set()
    return {cid for cid, m in latest_margins(run, upto).items() if m >= margin and cid not in kept}
