"""Ray plumbing for generation: one task per fold to fit, a pool of actors to fill shards.

Actors are thin wrappers: they rebuild the config, load the fold's generator from the run
directory once, and write each finished shard atomically themselves, so a killed job keeps
every shard it finished. A crashed actor is restarted and its shard retried.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from advfilter.core.config import Config
from advfilter.core.layout import read_contexts, shard_name, write_shard
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore, atomic_dir
from advfilter.pipeline.candidates import candidate_pools, candidate_table, foreign_golds
from generators import Context, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A fixed slice of one fold's contexts: its ``index`` names its file and seeds it."""

    index: int
    fold: int
    ids: tuple[str, ...]
    contexts: tuple[Context, ...]


def fit_fold(cfg_json: str, fold: int, train: list[Context], valid: list[Context],
             own: list[Context], videos: list[str], directory: str) -> dict[str, Any]:
    """Fit the configured generator for ``fold`` on other folds' ``train``/``valid``, give it
    the fold's ``own`` contexts (``index_fold``), and save it atomically to ``directory``.

    ``videos`` (the videos of ``train`` and ``valid``) go into ``fit.json`` for leakage audits.
    """
    cfg = Config.model_validate_json(cfg_json)
    torch.set_num_threads(cfg.generate.threads_per_worker)
    cls, name = resolve(cfg.generate.generator)
    gen = cls(cfg.generate, name)
    stats = gen.fit(train, valid, derive_seed(cfg.seed, "fit", fold))
    gen.index_fold(own)
    with atomic_dir(directory) as tmp:
        gen.save(tmp)
        (tmp / "fit.json").write_text(json.dumps({**stats, "fold": fold, "train_contexts": len(train),
                                                  "train_videos": videos}))
    return stats


def golds_by_split(contexts: pd.DataFrame) -> dict[str, list[str]]:
    """Each split's gold endings (sorted, without repeats)."""
    return {str(s): sorted(set(group["ending"])) for s, group in contexts.groupby("split")}


def _inject_fault(index: int) -> None:
    """Testing hook: the worker process dies on shard ``$ADVFILTER_FAULT_SHARD``.

    With ``$ADVFILTER_FAULT_ONCE`` naming a marker file it dies only the first time.
    """
    if os.environ.get("ADVFILTER_FAULT_SHARD") != str(index):
        return
    marker = os.environ.get("ADVFILTER_FAULT_ONCE")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).touch()
    os._exit(1)


class ShardWorker:
    """Fills shards with candidates for the folds whose generators live in ``models_dir``."""

    def __init__(self, cfg_json: str, models_dir: str, out_dir: str) -> None:
        self.cfg = Config.model_validate_json(cfg_json)
        # the run's contexts (beside the candidates it writes): each split's golds, which no
        # context of another split may get as a candidate
        self.foreign = foreign_golds(golds_by_split(read_contexts(RunStore(Path(out_dir).parent))))
        torch.set_num_threads(self.cfg.generate.threads_per_worker)
        self.models_dir, self.out_dir = Path(models_dir), Path(out_dir)
        self.loaded: dict[int, Any] = {}

    def _generator(self, fold: int):
        if fold not in self.loaded:
            self.loaded.clear()  # one model in memory at a time (Phi-2 is large)
            cls, name = resolve(self.cfg.generate.generator)
            self.loaded[fold] = cls.load(self.models_dir / f"fold-{fold}", self.cfg.generate, name)
        return self.loaded[fold]

    def run(self, shard: Shard) -> dict[str, Any]:
        """Sample, filter and score the shard's candidates; write ``part-XXXXX.parquet``."""
        _inject_fault(shard.index)
        gen = self._generator(shard.fold)
        seed = derive_seed(self.cfg.seed, "generate", shard.index)
        pools, dropped = candidate_pools(gen, shard.contexts, self.cfg, seed, self.foreign)
        short = [len(p) < self.cfg.generate.num_candidates for p in pools]
        keep = [i for i, s in enumerate(short)
                if not (s and self.cfg.generate.short_contexts == "drop")]
        table = candidate_table(gen, [shard.ids[i] for i in keep],
                                [shard.contexts[i] for i in keep], [pools[i] for i in keep])
        stats = {"shard": shard.index, "fold": shard.fold, "contexts": len(shard.ids),
                 "kept_contexts": len(keep), "short_contexts": sum(short),
                 "candidates": int((~table["is_gold"]).sum()), "dropped": dict(sorted(dropped.items()))}
        write_shard(self.out_dir / shard_name(shard.index), table, stats)
        return stats
