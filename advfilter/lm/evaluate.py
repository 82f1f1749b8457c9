"""Zero-shot multiple-choice scoring of a causal LM, the way lm-evaluation-harness scores
HellaSwag.

How a query, its choices and their log-likelihoods are made: ``advfilter.core.lm`` (shared
with the ``lm`` probe). ``acc`` takes the argmax of the sums, ``acc_norm`` of the sums divided
by the choice's length in characters.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from advfilter.lm.config import EvaluateConfig
from advfilter.core.errors import InputError, RunError
from advfilter.core.layout import items
from advfilter.core.lm import Doc, Scorer, acc_norm_picks, to_doc
from advfilter.core.models import load_causal_lm
from advfilter.core.store import RunStore
from advfilter.sources.base import iter_json_lines


def read_docs(path: Path, split: str | None = None) -> list[Doc]:
    """HellaSwag-format JSONL records (optionally only ``split``) as Docs; bad lines → InputError."""
    docs = []
    for lineno, record in iter_json_lines(path):  # unreadable file, bad JSON: InputError
        try:
            docs.append(to_doc(record, f"line {lineno}"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(path, f"line {lineno}", f"not a HellaSwag record: {exc!r}") from None
    if split is not None:
        docs = [d for d in docs if d.split == split]
    if not docs:
        raise InputError(path, None, f"no items{f' in split {split!r}' if split else ''}")
    return docs


def bootstrap_stderr(correct: np.ndarray, iterations: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the mean of ``correct`` over bootstrap resamples."""
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (iterations, len(correct)))].mean(1)
    return float(means.std(ddof=1))


def summarize(docs: Sequence[Doc], lls: Sequence[np.ndarray]) -> dict[str, Any]:
    """acc, acc_norm with bootstrap standard errors, breakdowns and chosen-position counts."""
    pick = np.array([int(np.argmax(ll)) for ll in lls])
    pick_norm = acc_norm_picks(docs, lls)
    gold = np.array([d.gold for d in docs])
    acc, acc_norm = (pick == gold).astype(float), (pick_norm == gold).astype(float)
    groups: dict[str, dict[str, list[int]]] = {"activity": defaultdict(list), "source": defaultdict(list)}
    for i, d in enumerate(docs):
        groups["activity"][d.activity].append(i)
        groups["source"][d.source].append(i)
    k = max(len(d.choices) for d in docs)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (gold, pick_norm), 1)
    return {
        "n": len(docs), "acc": float(acc.mean()), "acc_norm": float(acc_norm.mean()),
        "acc_stderr": bootstrap_stderr(acc), "acc_norm_stderr": bootstrap_stderr(acc_norm),
        "by": {name: {key: {"n": len(ix), "acc": float(acc[ix].mean()), "acc_norm": float(acc_norm[ix].mean())}
                      for key, ix in sorted(g.items())} for name, g in groups.items()},
        "confusion_gold_by_chosen_norm": confusion.tolist(),
    }


def run_docs(run: RunStore, split: str | None) -> list[Doc]:
    """The last round's items of a run (only ``split``'s when named) as Docs."""
    docs = [to_doc(r) for r in items(run, None, split)]
    if not docs:
        raise RunError(f"{run.root}: no items{f' in split {split!r}' if split else ''}")
    return docs


def evaluate(cfg: EvaluateConfig, docs: Sequence[Doc], data: str,
             on_batch: Callable[[int], None] = lambda _: None) -> dict[str, Any]:
    """The ``evaluate`` recipe: score ``docs`` (read from ``data``, a file or a run) with the
    configured model; returns the results (config included). ``on_batch(n)`` after each batch."""
    model, tok = load_causal_lm(cfg.model, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device)
    lls = Scorer(model.eval(), tok).score_all(docs, cfg.batch_size, on_batch)
    return {"model": cfg.model, "adapter": cfg.adapter, "data": data, "split": cfg.split,
            "config": cfg.model_dump(), **summarize(docs, lls)}
