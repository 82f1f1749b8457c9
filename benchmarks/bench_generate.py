"""LSTM generation throughput: batched vs one context at a time, and Ray with 1 vs 2 workers.

``single_eps`` samples one context per call (its n endings still drawn together);
``one_ending_eps`` is the naive loop, one ending per call.

Run by hand: ``python benchmarks/bench_generate.py``. Builds a demo-style corpus, trains one
LSTM (default size) on folds 1-4, then samples endings for fold-0 contexts. The last line is
one JSON object with ``batched_eps``, ``single_eps``, ``ray1_eps`` and ``ray2_eps`` (endings
per second); the Ray figures cover whole shards (sampling, filtering, scoring, writing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch

from advfilter.core.config import load_config
from advfilter.pipeline.contexts import contexts_from_records
from advfilter.sources.demo import make_corpus
from advfilter.pipeline.generate import _fill_shards, fold_data, plan_shards
from advfilter.core.nlp import load_pipeline
from advfilter.sources import Story
from generators import resolve
from advfilter.core.cluster import ray_session


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--contexts", type=int, default=768, help="fold-0 contexts sampled")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.candidates, args.contexts = 60, 8, 32
    torch.set_num_threads(1)
    cfg = load_config(None, {"generate.generator": "lstm", "generate.num_candidates": args.candidates,
                             "generate.lstm.max_epochs": 1 if args.quick else 4,
                             "generate.shard_size": 16 if args.quick else 32, "generate.threads_per_worker": 1})
    stories = [Story("activitynet", vid, v["activity_label"], tuple(s.strip() for s in v["sentences"]),
                     "bench.json") for vid, v in make_corpus(args.videos, seed=1).items()]
    nlp = load_pipeline(cfg.contexts.spacy_model, cfg.contexts.spacy_fallbacks)
    table, _ = contexts_from_records(stories, cfg, nlp)
    train, valid, _ = fold_data(table, 0, cfg.seed, cfg.generate.valid_fraction)
    cls, name = resolve("lstm")
    gen = cls(cfg.generate, name)
    print("fit:", gen.fit(train, valid, seed=0))
    fold0 = table[table.fold == 0].sort_values("id").head(args.contexts)
    shards = plan_shards(fold0, cfg.generate.shard_size)
    contexts = [c for s in shards for c in s.contexts]
    n = args.candidates
    figures = {}

    seconds = timed(lambda: gen.sample(contexts, n, seed=0))
    figures["batched_eps"] = round(len(contexts) * n / seconds, 1)
    few = contexts[:16]
    seconds = timed(lambda: [gen.sample([c], n, seed=i) for i, c in enumerate(few)])
    figures["single_eps"] = round(len(few) * n / seconds, 1)
    seconds = timed(lambda: [gen.sample([c], 1, seed=i * n + j) for i, c in enumerate(few[:4])
                             for j in range(n)])
    figures["one_ending_eps"] = round(4 * n / seconds, 1)  # the naive loop: one ending per call

    with tempfile.TemporaryDirectory() as tmp, ray_session(None, cpus=2):
        models = Path(tmp) / "models"
        (models / "fold-0").mkdir(parents=True)
        gen.save(models / "fold-0")
        ray.get(ray.remote(lambda: 0).remote())  # Ray is up before the clock starts
        for workers in (1, 2):
            out = Path(tmp) / f"run{workers}" / "candidates"  # shards beside the run's contexts
            out.mkdir(parents=True)
            table.to_parquet(out.parent / "contexts.parquet", index=False)
            run_cfg = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"workers": workers})})
            seconds = timed(lambda: _fill_shards(run_cfg, shards, models, out))
            figures[f"ray{workers}_eps"] = round(len(contexts) * n / seconds, 1)
            print(f"ray {workers} worker(s): {seconds:.1f} s")
    figures["batched_over_single"] = round(figures["batched_eps"] / figures["single_eps"], 2)
    figures["batched_over_one_ending"] = round(figures["batched_eps"] / figures["one_ending_eps"], 2)
    figures["ray2_over_ray1"] = round(figures["ray2_eps"] / figures["ray1_eps"], 2)
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
