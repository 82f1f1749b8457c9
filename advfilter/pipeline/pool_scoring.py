"""Scoring the candidate pools on Ray actors (``filter.score_workers``, ``--ray-address``).

Each round the driver scores the whole pool of every test context, the most expensive step
with a large model (a BERT cross-encoder over 64 candidates per context). With
``score_workers`` > 0 a pool of actors (one per GPU where Ray sees GPUs) each opens the run's
bank once, and every round receives the driver's weights and a slice of the rows; the
slices are fixed by the row order alone, so the scores, and the assignments they lead to,
are those of the single-process path.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np
import torch

from advfilter.core.settings import FilterConfig
from advfilter.core.models import resolve_device
from advfilter.core.store import RunStore
from advfilter.pipeline.algorithm1 import Members
from advfilter.pipeline.strong import ScoreRows
from discriminators import Bank, Discriminator, score


class PoolScorer:
    """A Ray actor: the run's bank, and discriminators rebuilt from weights to score rows. Its
    device is resolved where it runs (a GPU node's actor uses its GPU), once."""

    def __init__(self, run_root: str, cfg_json: str, threads: int) -> None:
        torch.set_num_threads(threads)
        cfg = FilterConfig.model_validate_json(cfg_json)
        self.members = Members.of(cfg)
        self.device = resolve_device(cfg.device)
        self.bank = Bank.of_run(RunStore(run_root), str(self.device))

    def score(self, name: str, state: dict[str, torch.Tensor], rows: np.ndarray) -> np.ndarray:
        model = self.members.build(name, self.bank, seed=0)
        model.load_state_dict(state)
        return score(model.to(self.device).eval(), self.bank, rows)


@contextlib.contextmanager
def pool_scorer(cfg: FilterConfig, run: RunStore, bank: Bank, address: str | None = None
                ) -> Iterator[ScoreRows]:
    """A ``score_rows(name, model, rows)`` function: in this process when
    ``cfg.score_workers`` is 0 and no address is given, else spread over Ray actors."""
    if not cfg.score_workers and not address:
        yield lambda name, model, rows: score(model, bank, rows)
        return
    import ray

    from advfilter.core.cluster import largest_node_cpus, ray_session

    workers = cfg.score_workers or 1
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ray_session(address, cpus=workers * threads, shared=run.root):
        threads = min(threads, largest_node_cpus())  # an actor no node can hold never starts
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count, per = (min(workers, gpus) if gpus else workers), (1.0 if gpus else 0.0)
        actor = ray.remote(PoolScorer).options(num_cpus=threads, num_gpus=per)
        pool = [actor.remote(str(run.root), cfg.model_dump_json(), threads) for _ in range(count)]

        def score_rows(name: str, model: Discriminator, rows: np.ndarray) -> np.ndarray:
            state = ray.put({k: v.detach().cpu() for k, v in model.state_dict().items()})
            parts = np.array_split(rows, len(pool))
            return np.concatenate(ray.get([a.score.remote(name, state, p) for a, p in zip(pool, parts)]))

        yield score_rows
