"""The filter stage: the bank's inputs built once, rounds of Algorithm 1, resume, manifest entry."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from advfilter.af import initial_assignment, model_names, run_round, set_threads
from advfilter.core.config import Config, FilterConfig
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    read_metrics, round_assignment, round_file, write_metrics, write_round,
)
from advfilter.core.models import resolve_device
from advfilter.core.store import RunStore
from discriminators import Bank, configured

log = logging.getLogger(__name__)


@dataclass
class FilterSummary:
    rounds: int
    contexts: int
    short_pool: int
    resumed_from: int
    seconds: float
    reused: bool = False


def filter_settings(f: FilterConfig) -> dict[str, Any]:
    """What the filter stage's results depend on: the config without the speed and stopping
    knobs, each chosen discriminator's section resolved (defaults filled in), others left out.

    Raises ConfigError for an unknown discriminator name or key, before anything is recorded.
    """
    members = configured(f.discriminators, f.discriminator)
    settings = f.model_dump(exclude={"rounds", "threads", "min_changed", "device", "discriminator"})
    settings["discriminator"] = {name: c.model_dump() for name, _, c in members}
    return settings


def _completed_rounds(run: RunStore) -> tuple[int, list[dict[str, Any]]]:
    """The last round whose assignment and metrics line are both on disk, and the metrics."""
    metrics = read_metrics(run)
    last = 0
    while last < len(metrics) and run.path(round_file(last + 1)).exists():
        last += 1
    return last, metrics[:last]


def prepare_bank(cfg: FilterConfig, run: RunStore) -> Bank:
    """The run's bank with every input the chosen discriminators need already built."""
    bank = Bank.of_run(run, str(resolve_device(cfg.device)))
    for _, cls, member_cfg in configured(cfg.discriminators, cfg.discriminator):
        for inp in cls.needs(member_cfg):
            bank.get(inp)
    return bank


def adversarial_filter(cfg: Config, run: RunStore,
                       on_round: Callable[[dict[str, Any]], None] = lambda _: None) -> FilterSummary:
    """Run (or resume, or extend) Adversarial Filtering up to ``cfg.filter.rounds`` rounds."""
    start = time.perf_counter()
    f = cfg.filter
    stage = run.open_stage("filter", {"seed": cfg.seed, "filter": filter_settings(f)},
                           after="candidates", hint="run advfilter generate first")
    if stage.done and stage.done["rounds"] >= f.rounds:
        done = stage.done
        return FilterSummary(done["rounds"], done["contexts"], done["short_pool"], done["rounds"],
                             0.0, reused=True)
    stage.begin()
    set_threads(f)
    bank = prepare_bank(f, run)
    if not run.path(round_file(0)).exists():
        write_round(run, 0, bank.context_ids, initial_assignment(bank.pool_sizes, f.negatives, cfg.seed))
    last, metrics = _completed_rounds(run)
    assignment = round_assignment(run, last)
    active = np.flatnonzero(assignment[:, 0] >= 0)
    if len(active) < 2:
        raise RunError(f"{run.root}: fewer than 2 contexts have {f.negatives} candidates to filter")
    r = last
    for r in range(last + 1, f.rounds + 1):
        with tqdm(total=len(model_names(f)) + 1, desc=f"round {r}", leave=False, disable=None) as bar:
            result = run_round(r, bank, assignment, active, f, cfg.seed,
                               progress=lambda msg: (bar.set_postfix_str(msg), bar.update(1)))
        assignment = result.assignment
        write_round(run, r, bank.context_ids, assignment)
        metrics.append(result.metrics)
        write_metrics(run, metrics)
        on_round(result.metrics)
        if result.metrics["changed_frac"] < f.min_changed:
            break
    summary = FilterSummary(r, len(active), len(bank.context_ids) - len(active), last,
                            time.perf_counter() - start)
    stage.finish({"rounds": r, "contexts": summary.contexts, "short_pool": summary.short_pool})
    return summary
