"""Adversarial Filtering: Algorithm 1 of SWAG, with HellaSwag's options.

State: for every context an *assignment*, ``negatives`` indices into its candidate pool. Each
round: hold out a part of the contexts (train / test); train the discriminators on the train
contexts (gold + assigned negatives); score the gold and the whole pool of each test context
with the driver; replace up to ``max_swaps`` *easy* negatives (scored below the gold) by
*adversarial* candidates (unassigned, scored above it). With ``also_fool``, the scores of
further models join the driver's: a negative any of them sees through is easy, and a
candidate is adversarial only when it fools them all. Every round writes
``af/round-XX.parquet`` and a line of ``af/metrics.jsonl`` (``filtering``), so a killed run resumes from the
last complete round and gives the assignments an uninterrupted run gives.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from advfilter.core.scores import score_spread
from advfilter.core.settings import FilterConfig
from advfilter.core.seeds import derive_seed
from advfilter.pipeline.strong import ScoreRows, Strong, WarmStore, strong_round
from discriminators import Bank, Discriminator, Ensemble, configured, fit, score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Members:
    """The models a filter run trains, resolved once from ``filter``: each chosen discriminator's
    class and validated config, the ensemble's config when there are two or more, and the strong
    model of the last rounds (``filter.strong``) if any. An unknown name or key raises
    ConfigError here, before anything is recorded."""

    chosen: tuple[tuple[str, type[Discriminator], Any], ...]
    ensemble: Any
    strong: tuple[str, type[Discriminator], Any] | None = None

    @classmethod
    def of(cls, cfg: FilterConfig) -> "Members":
        strong = cfg.strong.discriminator
        return cls(tuple(configured(cfg.discriminators, cfg.discriminator)), cfg.ensemble,
                   configured([strong], cfg.discriminator)[0] if strong else None)

    @property
    def names(self) -> list[str]:
        """The chosen ones, plus their joint ensemble when there are several (trained every round)."""
        names = [name for name, _, _ in self.chosen]
        return [*names, "ensemble"] if len(names) > 1 else names

    @property
    def every(self) -> list[tuple[str, type[Discriminator], Any]]:
        """Each discriminator's (name, class, config), the strong one included."""
        return [*self.chosen, *([self.strong] if self.strong else [])]

    def build(self, name: str, bank: Bank, seed: int) -> Discriminator:
        """A fresh model called ``name``, its weights initialised from ``seed`` alone."""
        torch.manual_seed(seed)
        if name == "ensemble":
            return Ensemble(bank, self.ensemble, [(c, member_cfg) for _, c, member_cfg in self.chosen])
        _, c, member_cfg = next(m for m in self.every if m[0] == name)
        return c(bank, member_cfg)


@dataclass
class RoundResult:
    """What one round did: the new assignment and its metrics line."""

    assignment: np.ndarray
    metrics: dict[str, Any]
    scores: dict[int, np.ndarray] | None = None  # test context → the driver's pool scores
    gold: dict[int, float] | None = None  # test context → the driver's score of its gold


def initial_assignment(pool_sizes: np.ndarray, negatives: int, seed: int) -> np.ndarray:
    """``negatives`` distinct pool indices per context, uniformly at random (round 0).

    Contexts whose pool is smaller than ``negatives`` get -1 and take no part in filtering.
    """
    rng = np.random.default_rng(derive_seed(seed, "af", 0))
    out = np.full((len(pool_sizes), negatives), -1, dtype=np.int32)
    for i, size in enumerate(pool_sizes):
        if size >= negatives:
            out[i] = rng.choice(size, negatives, replace=False)
    return out


def option_rows(bank: Bank, contexts: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Bank rows of each context's options: the gold in column 0, then its assigned negatives."""
    start = bank.offsets[contexts]
    return np.concatenate([start[:, None], start[:, None] + 1 + assignment[contexts]], axis=1)


def swap_count(cfg: FilterConfig, accuracy: float) -> int:
    """Swaps allowed per context: fixed, or (HellaSwag) growing with the driver's accuracy."""
    if cfg.swap_schedule == "fixed":
        return cfg.max_swaps
    chance = 1 / (cfg.negatives + 1)
    strength = min(max((accuracy - chance) / (1 - chance), 0.0), 1.0)
    return max(1, math.ceil(cfg.max_swaps * strength))


@dataclass
class Reuse:
    """How often each ending text is a negative, and how often it may be: ``filter.max_reuse``
    times the number of items it is the gold of (at least once). A retrieved ending is another
    item's gold: a negative more often than an answer, it teaches a model that its words mark
    a wrong answer, and ending-only models fall below chance. A rewritten ending counts as
    the real one it was made from (``Bank.text_ids``), or a gold's rewrites would be negatives
    of any number of items. ``count`` follows the swaps."""

    text: np.ndarray  # per bank row: the id of the real ending it says (Bank.text_ids)
    count: np.ndarray  # per text id: items it is a negative of
    limit: np.ndarray  # per text id: items it may be a negative of

    @classmethod
    def of(cls, bank: Bank, assignment: np.ndarray, active: np.ndarray, max_reuse: int) -> "Reuse":
        text = bank.text_ids
        n = text.max() + 1
        negatives = option_rows(bank, active, assignment)[:, 1:].ravel()
        golds = np.bincount(text[bank.offsets[:-1]], minlength=n)
        return cls(text, np.bincount(text[negatives], minlength=n), max_reuse * np.maximum(golds, 1))


def swap(assignment: np.ndarray, gold: np.ndarray, pools: list[np.ndarray], test: np.ndarray,
         max_swaps: int, choice: str, rng: np.random.Generator,
         reuse: tuple[Reuse, list[np.ndarray]] | None = None,
         guard: tuple[np.ndarray, list[np.ndarray]] | None = None) -> tuple[np.ndarray, int]:
    """Replace easy negatives of each test context by adversarial candidates.

    ``pools[i]`` holds the driver's scores of test context ``test[i]``'s whole pool and
    ``gold[i]`` its gold's score. ``choice`` picks among the adversarial candidates:
    ``random`` (SWAG), ``weighted`` (drawn by score), ``closest`` (those scored just above the
    gold: the smallest step that fools the driver, so negatives do not overshoot into being
    more typical than the gold). With ``reuse`` = (counts, bank rows of each test context's
    pool), a candidate whose text is a negative as often as its limit allows is not drawn.
    With ``guard`` = (a second model's gold scores, its pool scores), a candidate it scores
    above the gold is not drawn either (``filter.ending_guard``).
    Returns the new assignment and the number of swaps.
    """
    new = assignment.copy()
    total = 0
    for i, c in enumerate(test):
        scores, assigned = pools[i], assignment[c]
        easy = np.flatnonzero(scores[assigned] < gold[i])  # positions in the assignment
        above = np.flatnonzero(scores > gold[i])
        adversarial = above[~np.isin(above, assigned)]
        if guard is not None:
            adversarial = adversarial[guard[1][i][adversarial] <= guard[0][i]]
        if reuse is not None:
            counts, rows = reuse
            texts = counts.text[rows[i]]
            adversarial = adversarial[counts.count[texts[adversarial]] < counts.limit[texts[adversarial]]]
        n = min(max_swaps, len(easy), len(adversarial))
        if n == 0:
            continue
        out = rng.choice(easy, n, replace=False)
        if choice == "closest":
            new[c, out] = adversarial[np.argsort(scores[adversarial], kind="stable")[:n]]
        else:
            p = None
            if choice == "weighted":
                z = scores[adversarial] - scores[adversarial].max()
                p = np.exp(z) / np.exp(z).sum()
            new[c, out] = rng.choice(adversarial, n, replace=False, p=p)
        if reuse is not None:
            np.subtract.at(counts.count, texts[assigned[out]], 1)
            np.add.at(counts.count, texts[new[c, out]], 1)
        total += n
    return new, total


def holdout_round(bank: Bank, active: np.ndarray, cfg: FilterConfig, r: int, seed: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) contexts of round ``r``: a random ``test_fraction`` of the contexts, or with
    ``holdout: folds`` whole folds, so a negative that is another item's gold (``retrieval``:
    always of its own fold) is never a gold on the training side. Folds take turns: every
    ``ceil(K / n)`` rounds each of the K folds is tested once (n folds a round, in a seeded
    order per cycle), so no fold is left at its round-0 negatives while another is filtered
    again and again."""
    folds = bank.corpus.folds
    if cfg.holdout == "folds" and folds is not None:
        ks = np.unique(folds[active])
        n = max(1, min(len(ks) - 1, round(len(ks) * cfg.test_fraction)))
        per_cycle = math.ceil(len(ks) / n)
        cycle, turn = divmod(r - 1, per_cycle)
        order = np.random.default_rng(derive_seed(seed, "af", "folds", cycle)).permutation(ks)
        chosen = order[turn * n:(turn + 1) * n]
        in_test = np.isin(folds[active], chosen)
        return active[in_test], active[~in_test]
    order = rng.permutation(active)
    n_test = max(1, round(len(order) * cfg.test_fraction))
    return np.sort(order[:n_test]), np.sort(order[n_test:])


def margins(scored: list[tuple[np.ndarray, list[np.ndarray]]]) -> list[np.ndarray]:
    """Per test context, how far each pool candidate scores above the gold under all of
    ``scored``'s models at once ((gold scores, pool scores) per model): the smallest margin.
    Above 0 a candidate fools every model; below 0 one of them sees through it."""
    per_model = [[p - g for g, p in zip(gold, pools)] for gold, pools in scored]
    return [np.minimum.reduce(context) for context in zip(*per_model)]


def gold_and_pools(flat: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Scores laid out context by context (gold, then its pool) as (gold scores, pool scores)."""
    per_context = np.split(flat, cuts)
    return np.array([s[0] for s in per_context]), [s[1:] for s in per_context]


def _train_members(r: int, bank: Bank, train_rows: np.ndarray, test_rows: np.ndarray,
                   members: Members, device: torch.device, seed: int,
                   progress: Callable[[str], None], timings: dict[str, float]
                   ) -> tuple[dict[str, Discriminator], dict[str, float]]:
    """Every member trained from scratch on ``train_rows``; each one's held-out accuracy."""
    accuracy, models = {}, {}
    for name in members.names:
        progress(f"round {r}: training {name}")
        t = time.perf_counter()
        models[name] = model = members.build(name, bank, derive_seed(seed, "af", r, name, "init"))
        fit(model, bank, train_rows, derive_seed(seed, "af", r, name), device)
        t2 = time.perf_counter()
        accuracy[name] = float((score(model, bank, test_rows).argmax(1) == 0).mean())
        timings["train_s"] += t2 - t
        timings["score_s"] += time.perf_counter() - t2
    return models, accuracy


def run_round(r: int, bank: Bank, assignment: np.ndarray, active: np.ndarray, cfg: FilterConfig,
              members: Members, device: torch.device, seed: int,
              progress: Callable[[str], None] = lambda _: None,
              score_rows: ScoreRows | None = None,
              warm: WarmStore | None = None) -> RoundResult:
    """One round of Algorithm 1 over the ``active`` contexts (bank indices with a full pool),
    training ``members`` on ``device``; from ``filter.strong.from_round`` on, the strong model
    drives (its weights carried over in ``warm``, where given).

    ``assignment`` has a row per bank context; rows of inactive contexts are never read.
    ``progress`` is called before each model trains and before the pools are scored;
    ``score_rows(name, model, rows)`` scores the pools (default: in this process).
    """
    timings = {"train_s": 0.0, "score_s": 0.0}
    rng = np.random.default_rng(derive_seed(seed, "af", r))
    test, train = holdout_round(bank, active, cfg, r, seed, rng)
    train_rows, test_rows = option_rows(bank, train, assignment), option_rows(bank, test, assignment)
    models, accuracy = _train_members(r, bank, train_rows, test_rows, members, device, seed,
                                      progress, timings)
    driver = "ensemble" if cfg.driver == "ensemble" and "ensemble" in models else \
        max(cfg.discriminators, key=lambda n: accuracy[n])
    progress(f"round {r}: scoring pools with {driver}")
    t = time.perf_counter()
    starts, ends = bank.offsets[test], bank.offsets[test + 1]
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
    score_rows = score_rows or (lambda _, model, rows: score(model, bank, rows))
    cuts = np.cumsum(ends - starts)[:-1]
    gold, pools = gold_and_pools(score_rows(driver, models[driver], rows), cuts)
    fooled = [gold_and_pools(score_rows(name, models[name], rows), cuts)
              for name in dict.fromkeys(cfg.also_fool or []) if name != driver]
    guard = None
    if cfg.ending_guard:  # the driver's own scores when the guard is the driver (driver: best)
        guard = (gold, pools) if cfg.ending_guard == driver else \
            gold_and_pools(score_rows(cfg.ending_guard, models[cfg.ending_guard], rows), cuts)
    timings["score_s"] += time.perf_counter() - t
    if members.strong is not None and r >= cfg.strong.from_round:
        driver = members.strong[0]
        progress(f"round {r}: training {driver}")
        gold, pools, accuracy[driver] = strong_round(
            Strong(driver, members.build, cfg.strong, warm), r, bank, (test, train, train_rows),
            assignment[test], pools, derive_seed(seed, "af", r, driver), device, score_rows, timings)
    t = time.perf_counter()
    reuse = None
    if cfg.max_reuse:
        reuse = (Reuse.of(bank, assignment, active, cfg.max_reuse),
                 [np.arange(a + 1, b) for a, b in zip(starts, ends)])
    new, swaps = swap(assignment, np.zeros(len(test)), margins([(gold, pools), *fooled]), test,
                      swap_count(cfg, accuracy[driver]),
                      cfg.swap_choice, rng, reuse, guard)
    changed = float((new[active] != assignment[active]).any(1).mean())
    over = np.array([p[new[c]].max() - g for g, p, c in zip(gold, pools, test)]) / score_spread(pools)
    timings["bookkeeping_s"] = time.perf_counter() - t
    return RoundResult(new, {"round": r, "accuracy": accuracy, "driver": driver, "swaps": swaps,
                             "changed_frac": changed, "test_contexts": int(len(test)),
                             "ambiguous": float((over >= cfg.ambiguous_margin).mean()),
                             **{k: round(v, 3) for k, v in timings.items()}},
                       {int(c): pools[i] for i, c in enumerate(test)},
                       {int(c): float(gold[i]) for i, c in enumerate(test)})


def set_threads(cfg: FilterConfig) -> None:
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
