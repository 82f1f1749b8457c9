"""The strong model of the last rounds (``filter.strong``): a fine-tuned cross-encoder that
drives Adversarial Filtering from ``from_round`` on, as BERT-Large drove HellaSwag's.

On a CPU a cross-encoder costs a hundred times a shallow model per row, so each round it
trains ``steps`` optimizer steps and scores a ``shortlist`` of each test context's pool (the
candidates the shallow driver ranks highest, and the assigned negatives). With ``holdout:
folds`` it is not trained from scratch each round: the folds form ``groups``, each group has
its own model, trained only on the other groups' contexts and continued from the last round
that held its group out, so a model never trains on the contexts it scores and still improves
round after round. The weights live in ``af/strong/`` (one file per group, named by the round
that trained it), so a resumed run continues from the weights an uninterrupted one had.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from advfilter.core.settings import StrongConfig
from advfilter.core.store import RunStore, atomic_path
from discriminators import Bank, Discriminator, fit

ScoreRows = Callable[[str, Discriminator, np.ndarray], np.ndarray]

STRONG_DIR = "af/strong"


class WarmStore:
    """Each fold group's strong-model weights, on disk: ``af/strong/KEY.round-RR.pt``."""

    def __init__(self, run: RunStore) -> None:
        self.root = run.path(STRONG_DIR)

    def _files(self, key: str) -> list[tuple[int, Path]]:
        found = [(int(p.name.rsplit("round-", 1)[1][:-3]), p) for p in self.root.glob(f"{key}.round-*.pt")]
        return sorted(found)

    def load(self, key: str, before: int) -> dict[str, torch.Tensor] | None:
        """The weights ``key``'s model had after the latest round before ``before``; None if
        no earlier round trained one (a round killed midway may have left a later file)."""
        earlier = [p for r, p in self._files(key) if r < before]
        return torch.load(earlier[-1], map_location="cpu") if earlier else None

    def save(self, key: str, r: int, model: torch.nn.Module) -> None:
        """``model``'s weights after round ``r``, written whole or not at all."""
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.root / f"{key}.round-{r:02d}.pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)

    def prune(self, upto: int) -> None:
        """Keep only each group's newest weights from rounds up to ``upto`` (called once
        round ``upto`` is on disk, so a resume never needs an older file)."""
        keys = {p.name.split(".round-")[0] for p in self.root.glob("*.pt")} if self.root.exists() else set()
        for key in keys:
            files = [(r, p) for r, p in self._files(key) if r <= upto]
            for _, p in files[:-1]:
                p.unlink()


def shortlist(pools: list[np.ndarray], assigned: np.ndarray, size: int) -> list[np.ndarray]:
    """Per test context, the pool indices the strong model scores: the ``size`` highest under
    the shallow driver (``pools``), and the assigned negatives (``assigned``: one row per
    context); the whole pool when ``size`` is 0."""
    out = []
    for scores, negatives in zip(pools, assigned):
        if not size or size >= len(scores):
            out.append(np.arange(len(scores)))
            continue
        top = np.argsort(-scores, kind="stable")[:size]
        out.append(np.union1d(top, negatives))
    return out


@dataclass(frozen=True)
class Strong:
    """The strong model of a filter run: its ``name``, how to ``build`` a fresh one (name, bank,
    seed), ``filter.strong``, and where its per-fold weights are kept (None: nowhere, every
    round starts from the pretrained weights)."""

    name: str
    build: Callable[[str, Bank, int], Discriminator]
    cfg: StrongConfig
    warm: WarmStore | None = None


def train_strong(strong: Strong, r: int, bank: Bank, test: np.ndarray, train: np.ndarray,
                 train_rows: np.ndarray, seed: int, device: torch.device) -> Discriminator:
    """Round ``r``'s strong model, trained ``steps`` steps on the options of the ``train``
    contexts (``train_rows``: contexts × options, the gold first) and saved for the next
    round. With ``warm_start`` and whole folds held out, the folds form ``groups`` (fold
    ``k`` in group ``k % groups``; 0 = each fold its own): the test folds' groups have one
    model, continued from the last round that tested them and trained only on contexts of
    the other groups, so it never learns a context it will score."""
    model = strong.build(strong.name, bank, seed)
    folds, cfg = bank.corpus.folds, strong.cfg
    key = None
    if strong.warm and cfg.warm_start and folds is not None:
        group = (lambda f: f % cfg.groups) if cfg.groups else (lambda f: f)
        held = np.unique(group(folds[test]))
        train_rows = train_rows[~np.isin(group(folds[train]), held)]
        key = ("groups-" if cfg.groups else "folds-") + "-".join(str(int(k)) for k in held)
        state = strong.warm.load(key, before=r)
        if state is not None:
            model.load_state_dict(state)
    fit(model, bank, train_rows, seed, device, steps=cfg.steps, desc=f"round {r}: {strong.name}")
    if key:
        strong.warm.save(key, r, model)
    return model


def strong_scores(name: str, model: Discriminator, score_rows: ScoreRows, starts: np.ndarray,
                  pools: list[np.ndarray], assigned: np.ndarray, size: int
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The strong model's (gold scores, pool scores) of the test contexts (their first bank
    rows ``starts``), scoring each one's ``shortlist``; candidates off it score -inf (never
    swapped in)."""
    picks = shortlist(pools, assigned, size)
    rows = np.concatenate([np.concatenate([[a], a + 1 + p]) for a, p in zip(starts, picks)])
    flat = score_rows(name, model, rows)
    per_context = np.split(flat, np.cumsum([1 + len(p) for p in picks])[:-1])
    full = []
    for p, scored, pool in zip(picks, per_context, pools):
        out = np.full(len(pool), -np.inf, dtype=np.float32)
        out[p] = scored[1:]
        full.append(out)
    return np.array([s[0] for s in per_context]), full


def strong_round(strong: Strong, r: int, bank: Bank,
                 split: tuple[np.ndarray, np.ndarray, np.ndarray], assigned: np.ndarray,
                 pools: list[np.ndarray], seed: int, device: torch.device, score_rows: ScoreRows,
                 timings: dict[str, float]) -> tuple[np.ndarray, list[np.ndarray], float]:
    """Round ``r``'s strong model trained (``split``: test contexts, train contexts, the
    train contexts' option rows) and scoring the test contexts' shortlists (``pools``: the
    shallow driver's scores; ``assigned``: their negatives): its (gold scores, pool scores,
    held-out accuracy on the assigned items). Adds its seconds to ``timings``."""
    test, train, train_rows = split
    t = time.perf_counter()
    model = train_strong(strong, r, bank, test, train, train_rows, seed, device)
    t2 = time.perf_counter()
    gold, scored = strong_scores(strong.name, model, score_rows, bank.offsets[test], pools, assigned,
                                 strong.cfg.shortlist)
    timings["train_s"] += t2 - t
    timings["score_s"] += time.perf_counter() - t2
    return gold, scored, float(np.mean([g > p[a].max() for g, p, a in zip(gold, scored, assigned)]))
