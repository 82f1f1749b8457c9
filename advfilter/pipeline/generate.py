"""The generation stage: cross-fitted candidate endings for every context, spread over Ray.

For each fold k a generator is fitted on the contexts of the other folds (a tenth of their
videos held out for early stopping) and writes endings only for fold k's contexts. Contexts
are cut into fixed shards (fold-major, sorted by id); each shard is seeded from (seed, shard
index) alone, so the files do not depend on the number of workers or on interruptions.
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray

from advfilter.core.cluster import ray_session
from advfilter.core.config import Config
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    CANDIDATES_DIR, MODELS_DIR, read_contexts, read_shard_stats, shard_name,
)
from advfilter.core.progress import progress
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore
from advfilter.pipeline.shards import Shard, ShardWorker, fit_fold
from generators import Context, generator_settings

log = logging.getLogger(__name__)


@dataclass
class GenerateSummary:
    """Totals over all shards of the candidates stage (``reused``: an earlier run's)."""

    contexts: int = 0
    kept_contexts: int = 0
    candidates: int = 0
    short_contexts: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    shards: int = 0
    resumed_shards: int = 0
    seconds: float = 0.0
    reused: bool = False


def model_dir_name(generator: str) -> str:
    """A folder name for a generator spec (``hf:/x/y`` → ``hf-_x_y``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in generator.replace(":", "-"))


def as_contexts(table: pd.DataFrame) -> list[Context]:
    """The rows of a contexts table as generator Contexts."""
    free = table["ctx_a_ending"] if "ctx_a_ending" in table else [""] * len(table)  # older runs
    return [Context(a, b, e, v, f, s) for a, b, e, v, f, s in
            zip(table["ctx_a"], table["ctx_b"], table["ending"], table["video_id"], free, table["split"])]


def plan_shards(contexts: pd.DataFrame, shard_size: int) -> list[Shard]:
    """Fixed shards: fold by fold, contexts sorted by id, ``shard_size`` at a time."""
    shards: list[Shard] = []
    for fold, group in contexts.sort_values("id").groupby("fold", sort=True):
        for start in range(0, len(group), shard_size):
            part = group.iloc[start:start + shard_size]
            shards.append(Shard(len(shards), int(fold), tuple(part["id"]), tuple(as_contexts(part))))
    return shards


def in_validation(video_id: str, seed: int, fraction: float) -> bool:
    """Whether a training video is held out for the generator's early stopping."""
    return derive_seed(seed, "valid", video_id) % 10_000 < fraction * 10_000


def fold_data(contexts: pd.DataFrame, fold: int, seed: int, fraction: float, fit_folds: str = "other"):
    """(train, valid, videos) for fold ``fold``'s generator: other folds only (``fit_folds:
    train``: only those of the train split, so no held-out split's text reaches a negative),
    split by video for early stopping."""
    train = contexts[contexts["fold"] != fold].sort_values("id")
    if fit_folds == "train":
        train = train[train["split"] == "train"]
    if train.empty:
        raise RunError(f"fold {fold}: the other folds{' of the train split' if fit_folds == 'train' else ''} "
                       "hold no contexts to fit a generator on; use fewer folds or a larger corpus")
    held = train["video_id"].map(lambda v: in_validation(v, seed, fraction)).astype(bool)
    return as_contexts(train[~held]), as_contexts(train[held]), sorted(set(train["video_id"]))


def _workers(cfg: Config) -> tuple[int, float]:
    """(actor count, GPUs per actor): one per GPU where Ray sees GPUs, else one per
    ``threads_per_worker`` CPUs of the cluster (of this machine with a local runtime)."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus and cfg.generate.generator != "lstm":
        if cfg.generate.workers > gpus:  # an actor that asks for a GPU nobody has never starts
            log.warning("generate.workers %d > the %d GPUs Ray sees: running %d GPU workers",
                        cfg.generate.workers, gpus, gpus)
        return min(cfg.generate.workers or gpus, gpus), 1.0
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return (cfg.generate.workers or max(1, cpus // cfg.generate.threads_per_worker)), 0.0


def _fit_missing_folds(cfg: Config, contexts: pd.DataFrame, models: Path) -> None:
    folds = sorted(int(f) for f in contexts["fold"].unique())
    missing = [k for k in folds if not (models / f"fold-{k}" / "fit.json").exists()]
    if not missing:
        return
    fit = ray.remote(max_retries=cfg.generate.max_retries)(fit_fold)
    _, gpus = _workers(cfg)
    refs = {}
    for k in missing:
        train, valid, videos = fold_data(contexts, k, cfg.seed, cfg.generate.valid_fraction,
                                         cfg.generate.fit_folds)
        own = as_contexts(contexts[contexts["fold"] == k].sort_values("id"))
        refs[fit.options(num_cpus=cfg.generate.threads_per_worker, num_gpus=gpus).remote(
            cfg.model_dump_json(), k, train, valid, own, videos, str(models / f"fold-{k}"))] = k
    bar = progress(total=len(refs), desc="fitting folds", unit="fold", every=0)
    for ref in _as_completed(refs):
        stats = _get(ref, f"fitting fold {refs[ref]}")
        log.info("fold %d fitted: %s", refs[ref], stats)
        bar.set_postfix_str(f"fold {refs[ref]}: {fit_line(stats)}")
        bar.update(1)
    bar.close()


def fit_line(stats: dict[str, Any], prefix: str = "") -> str:
    """A fold's fit figures in a few words: epochs and held-out perplexity of each generator
    that reports them (a mixture's members are nested under their names)."""
    parts = []
    if "epochs" in stats:
        parts.append(f"{prefix}{stats['epochs']} epochs")
    if "best_valid_ppl" in stats:
        parts.append(f"{prefix}held-out perplexity {stats['best_valid_ppl']:.1f}")
    for name, value in stats.items():
        if isinstance(value, dict):
            parts.append(fit_line(value, f"{name} "))
    return ", ".join(p for p in parts if p)


def _as_completed(refs):
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield done[0]


def _get(ref, what: str) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{what} failed after retries: {cause}") from None


def _fill_shards(cfg: Config, shards: list[Shard], models: Path, out: Path) -> None:
    if not shards:
        return
    count, gpus = _workers(cfg)
    actor = ray.remote(ShardWorker).options(
        num_cpus=cfg.generate.threads_per_worker, num_gpus=gpus,
        max_restarts=cfg.generate.max_retries, max_task_retries=cfg.generate.max_retries)
    pool = [actor.remote(cfg.model_dump_json(), str(models), str(out))
            for _ in range(min(count, len(shards)))]
    queue, running = list(shards), {}
    bar = progress(total=sum(len(s.ids) for s in shards), unit="ctx", desc="generating")
    for worker in pool:  # one shard in flight per actor, so a worker's death names its shard
        shard = queue.pop(0)
        running[worker.run.remote(shard)] = (worker, shard)
    while running:
        [ref], _ = ray.wait(list(running), num_returns=1)
        worker, shard = running.pop(ref)
        _get(ref, f"shard {shard.index} ({shard_name(shard.index)})")
        bar.update(len(shard.ids))
        if queue:
            nxt = queue.pop(0)
            running[worker.run.remote(nxt)] = (worker, nxt)
    bar.close()


def generate_candidates(cfg: Config, run: RunStore, ray_address: str | None = None) -> GenerateSummary:
    """The candidates stage: ``RUN_DIR/candidates/part-XXXXX.parquet`` for every shard.

    Resumes a started stage (finished shards and fitted folds are kept) and reuses a finished
    one; raises RunError if the run's contexts or generation settings changed.
    """
    start = time.perf_counter()
    g = cfg.generate
    # an unknown generator, section or key fails here, before the stage is recorded
    stage = run.open_stage("candidates", {"seed": cfg.seed, "generate": generator_settings(g)},
                           after="contexts", hint="run generate --stage contexts first")
    if stage.done:
        return GenerateSummary(**stage.done["summary"], reused=True)
    stage.begin()
    contexts = read_contexts(run)
    models = run.path(MODELS_DIR) / model_dir_name(g.generator)
    out = run.path(CANDIDATES_DIR)
    out.mkdir(parents=True, exist_ok=True)
    shards = plan_shards(contexts, g.shard_size)
    todo = [s for s in shards if not (out / shard_name(s.index)).exists()]
    with ray_session(ray_address, cpus=(g.workers or os.cpu_count() or 1) * g.threads_per_worker,
                     shared=run.root):
        _fit_missing_folds(cfg, contexts, models)
        _fill_shards(cfg, todo, models, out)
    summary = summarize([read_shard_stats(out / shard_name(s.index)) for s in shards])
    summary.resumed_shards = len(shards) - len(todo)
    summary.seconds = time.perf_counter() - start
    stage.finish({
        "dir": CANDIDATES_DIR, "models": str(models.relative_to(run.root)),
        "summary": {k: v for k, v in vars(summary).items() if k != "reused"}})
    return summary


def summarize(stats: list[dict[str, Any]]) -> GenerateSummary:
    """Totals over shard stats."""
    dropped: Counter[str] = Counter()
    for s in stats:
        dropped.update(s["dropped"])
    return GenerateSummary(
        contexts=sum(s["contexts"] for s in stats), kept_contexts=sum(s["kept_contexts"] for s in stats),
        candidates=sum(s["candidates"] for s in stats),
        short_contexts=sum(s["short_contexts"] for s in stats),
        dropped=dict(sorted(dropped.items())), shards=len(stats))
