"""The filter stage: the bank's inputs built once, rounds of Algorithm 1, resume, manifest entry."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from advfilter.core.config import Config
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    AF_DIR, ANNOTATION_STATE, BANK_DIR, read_metrics, read_probes, round_assignment, round_file, write_metrics,
    write_round,
)
from advfilter.core.models import resolve_device
from advfilter.core.progress import progress
from advfilter.core.settings import FilterConfig
from advfilter.core.store import RunStore
from advfilter.pipeline.algorithm1 import Members, initial_assignment, run_round, set_threads
from advfilter.pipeline.pool_scoring import pool_scorer
from advfilter.pipeline.strong import ScoreRows, WarmStore
from discriminators import Bank
from discriminators.bank_files import Map, in_process
from discriminators.inputs import Input

log = logging.getLogger(__name__)


@dataclass
class FilterSummary:
    rounds: int
    contexts: int
    short_pool: int
    resumed_from: int
    seconds: float
    reused: bool = False
    stopped: str = ""  # why it stopped before --rounds ("" if it ran them all)
    went_on: str = ""  # why an earlier run had stopped, when more rounds were asked past it


def chance(f: FilterConfig) -> float:
    return 1 / (f.negatives + 1)


def below_chance(accuracy: dict[str, float], f: FilterConfig) -> list[str]:
    """Discriminators scoring below chance by more than ``filter.stop.margin``: an overshoot
    (negatives more typical than the gold), an artifact of filtering, not success."""
    return [name for name, acc in accuracy.items() if acc < chance(f) - f.stop.margin]


def stop_reason(metrics: list[dict[str, Any]], f: FilterConfig, probes: list[dict[str, Any]] = ()) -> str:
    """Why filtering should stop after these rounds, or "" to go on: the driver within
    ``stop.margin`` of chance for ``stop.patience`` rounds, a round changing fewer than
    ``min_changed`` of the contexts, or (``stop.probe``) the last round's ``tfidf_context``
    probe (among ``probes``, af/probe.jsonl's rows) at or below ``stop.probe``."""
    if metrics and metrics[-1]["changed_frac"] < f.min_changed:
        return f"round {metrics[-1]['round']} changed fewer than {f.min_changed:.0%} of the contexts"
    tail = metrics[-f.stop.patience:]
    if len(tail) == f.stop.patience and all(
            abs(m["accuracy"][m["driver"]] - chance(f)) <= f.stop.margin for m in tail):
        return f"the driver stayed within {f.stop.margin} of chance for {f.stop.patience} rounds"
    if f.stop.probe and metrics:
        last = metrics[-1]["round"]
        acc = next((p["acc"] for p in probes if p["round"] == last and p["probe"] == "tfidf_context"), None)
        if acc is not None and acc <= f.stop.probe:
            return f"the tfidf_context probe reached {acc:.3f} (filter.stop.probe {f.stop.probe}) at round {last}"
    return ""


def filter_settings(f: FilterConfig, members: Members) -> dict[str, Any]:
    """What the filter stage's results depend on: the config without the speed, stopping and
    reporting knobs, each chosen discriminator's section resolved (defaults filled in), others
    left out. Options left unset (None) are left out too, so adding one keeps older runs'
    settings; so is ``strong`` when it is off.
    """
    settings = f.model_dump(exclude_none=True, exclude={"rounds", "threads", "min_changed", "device", "discriminator",
                                     "stop", "probe_every", "score_workers", "bank_workers",
                                     "ambiguous_margin"})
    if members.strong is None:
        del settings["strong"]
    settings["discriminator"] = {name: c.model_dump() for name, _, c in members.every}
    return settings


def _completed_rounds(run: RunStore) -> tuple[int, list[dict[str, Any]]]:
    """The last round whose assignment and metrics line are both on disk, and the metrics."""
    metrics = read_metrics(run)
    last = 0
    while last < len(metrics) and run.path(round_file(last + 1)).exists():
        last += 1
    return last, metrics[:last]


@contextlib.contextmanager
def bank_builder(f: FilterConfig, run: RunStore, address: str | None) -> Iterator[Map]:
    """How the bank's parts are built: on Ray (``filter.bank_workers`` at a time, or a
    cluster's every CPU with ``address``; the session stays up for the pool scorers) or here."""
    if not address and not f.bank_workers:
        yield in_process
        return
    from advfilter.core.cluster import ray_map, ray_session

    with ray_session(address, cpus=max(f.bank_workers, os.cpu_count() or 1), shared=run.root):
        yield functools.partial(ray_map, in_flight=f.bank_workers)


def bank_inputs(members: Members, f: FilterConfig) -> list[Input]:
    """Every input the discriminators read, once each, in member order (the strong one's only
    when one of the ``f.rounds`` rounds is its)."""
    strong = members.strong if members.strong and f.strong.from_round <= f.rounds else None
    needed = [inp for _, cls, member_cfg in [*members.chosen, *([strong] if strong else [])]
              for inp in cls.needs(member_cfg)]
    return list(dict.fromkeys(needed))


def prepare_bank(members: Members, run: RunStore, f: FilterConfig, build: Map = in_process) -> Bank:
    """The run's bank with every input of ``bank_inputs`` already built, its parts by
    ``build``; encoder features run on ``filter.device`` as each worker resolves it."""
    bank = Bank.of_run(run, f.device, build)
    for inp in bank_inputs(members, f):
        bank.get(inp)
    return bank


@dataclass(frozen=True)
class Loop:
    """What every round of one filter run shares, resolved once: the config, the models, the
    device they train on, the bank and the pool scorer."""

    cfg: Config
    members: Members
    device: torch.device
    bank: Bank
    score_rows: ScoreRows
    warm: WarmStore


def restart(run: RunStore) -> None:
    """Discard the run's filtering, so that the next ``filter`` starts at round 1 with the
    settings it is given: every file under ``af/`` but the bank (its parts are keyed by what
    they were built from), and the stage's record. ``af/`` is first moved aside whole, so a
    restart killed midway leaves no old round for the next filter to resume from. Refused
    once people have annotated the rounds: their work points at these items."""
    if run.path(ANNOTATION_STATE).exists():
        raise RunError(f"{run.root}: people have annotated its rounds ({ANNOTATION_STATE}); "
                       "filter a copy of the run directory instead")
    af, old = run.path(AF_DIR), run.path(f"{AF_DIR}.discarded")
    if af.exists():
        shutil.rmtree(old, ignore_errors=True)
        af.rename(old)
    run.drop_stage("filter")
    bank = old / Path(BANK_DIR).relative_to(AF_DIR)
    if bank.exists():
        af.mkdir()
        bank.rename(run.path(BANK_DIR))
    shutil.rmtree(old, ignore_errors=True)


def adversarial_filter(cfg: Config, run: RunStore,
                       on_round: Callable[[dict[str, Any]], None] = lambda _: None,
                       ray_address: str | None = None) -> FilterSummary:
    """Run (or resume, or extend) Adversarial Filtering up to ``cfg.filter.rounds`` rounds,
    stopping early by ``filter.stop``; pools are scored on Ray actors with
    ``filter.score_workers`` or ``ray_address``. A run that stopped early is reused as it is
    when asked for no more rounds than it was; asked for more, it goes on to them with the
    stop rule off (``went_on`` says why it had stopped)."""
    start = time.perf_counter()
    f = cfg.filter
    members = Members.of(f)  # a bad name or key fails here, before the stage is recorded
    stage = run.open_stage("filter", {"seed": cfg.seed, "filter": filter_settings(f, members)},
                           after="candidates", hint="run advfilter generate first",
                           redo="pass --restart to filter it anew (its rounds are discarded)")
    done = stage.done
    had_stopped = stop_reason(read_metrics(run), f, read_probes(run)) if done else ""
    if done and (done["rounds"] >= f.rounds or (had_stopped and f.rounds <= done.get("asked", f.rounds))):
        return FilterSummary(done["rounds"], done["contexts"], done["short_pool"], done["rounds"],
                             0.0, reused=True, stopped=had_stopped)

    def stop_now(metrics: list[dict[str, Any]]) -> str:
        return "" if had_stopped else stop_reason(metrics, f, read_probes(run))

    stage.begin()
    set_threads(f)
    device = resolve_device(f.device)
    with bank_builder(f, run, ray_address) as build:
        bank = prepare_bank(members, run, f, build)
        if not run.path(round_file(0)).exists():
            write_round(run, 0, bank.context_ids, initial_assignment(bank.pool_sizes, f.negatives, cfg.seed))
        last, metrics = _completed_rounds(run)
        assignment = round_assignment(run, last)
        active = np.flatnonzero(assignment[:, 0] >= 0)
        if len(active) < 2:
            raise RunError(f"{run.root}: fewer than 2 contexts have {f.negatives} candidates to filter")
        r, stopped = last, stop_now(metrics)
        with pool_scorer(f, run, bank, ray_address) as score_rows:
            loop = Loop(cfg, members, device, bank, score_rows, WarmStore(run))
            while r < f.rounds and not stopped:
                r += 1
                metrics.append(_round(loop, run, r, assignment, active, metrics))
                assignment = round_assignment(run, r)
                on_round(metrics[-1])
                stopped = stop_now(metrics)
    summary = FilterSummary(r, len(active), len(bank.context_ids) - len(active), last,
                            time.perf_counter() - start, stopped=stopped, went_on=had_stopped)
    stage.finish({"rounds": r, "asked": f.rounds, "contexts": summary.contexts,
                  "short_pool": summary.short_pool, "stopped": stopped})
    return summary


def _round(loop: Loop, run: RunStore, r: int, assignment: np.ndarray, active: np.ndarray,
           history: list[dict[str, Any]]) -> dict[str, Any]:
    """Round ``r`` run and written (assignment, then the metrics lines: ``history`` + its own);
    its metrics."""
    cfg, f, bank = loop.cfg, loop.cfg.filter, loop.bank
    with progress(total=len(loop.members.names) + 1, desc=f"round {r}", leave=False) as bar:
        result = run_round(r, bank, assignment, active, f, loop.members, loop.device, cfg.seed,
                           score_rows=loop.score_rows, warm=loop.warm,
                           progress=lambda msg: (bar.set_postfix_str(msg), bar.update(1)))
    metrics = {**result.metrics, "below_chance": below_chance(result.metrics["accuracy"], f)}
    write_round(run, r, bank.context_ids, result.assignment, result.scores, result.gold)
    write_metrics(run, [*history, metrics])
    loop.warm.prune(r)
    if f.probe_every and r % f.probe_every == 0:
        metrics["probe"] = _cheap_probe(cfg, run, r)
    return metrics


def _cheap_probe(cfg: Config, run: RunStore, r: int) -> dict[str, float]:
    """The tfidf probes on round ``r``'s items, recorded in ``af/probe.jsonl``."""
    from advfilter.core.layout import items
    from advfilter.gauges.probe import record_probe, run_probes

    results = run_probes(list(items(run, r, sources=True)), cfg.probe, ["tfidf"], r)
    for result in results:
        record_probe(run, result)
    return {p.probe: p.acc for p in results}
