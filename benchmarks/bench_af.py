"""Cost of one Adversarial Filtering round on synthetic data, and its memory at scale.

Run by hand: ``python benchmarks/bench_af.py``. Part 1 times one round (the default
ensemble: bow, cnn, bilstm, aflite + ensemble) on 10k contexts x 64 candidates and on 4x the
contexts, split into training, scoring and bookkeeping (splits, swaps, writing the round).
Part 2, in a fresh process, streams 20k contexts x 256 candidates from Parquet shards of real
strings into the feature bank and runs one round, reporting the peak RSS. The last line is
one JSON object: ``round_s, train_s, score_s, bookkeeping_s, overhead_frac, scale4_ratio,
peak_rss_gb``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from advfilter.core.layout import LM_COLUMNS, Rows, read_rows, write_metrics, write_round
from advfilter.core.models import resolve_device
from advfilter.core.settings import FilterConfig
from advfilter.core.store import RunStore
from advfilter.pipeline.algorithm1 import Members, initial_assignment, run_round
from discriminators import Bank
from discriminators.inputs import Arrays, Corpus, Input

WORDS = "the a man woman boy girl ball rope cake dog runs jumps picks puts holds throws " \
        "slowly quickly over under into onto with near table floor water camera".split()


def synthetic_bank(contexts: int, pool: int, cfg: FilterConfig, seed: int = 0) -> Bank:
    """Endings of random words with random LM features, every input the config needs built
    (POS tags made up from the word ids: no spaCy here), so a round times the models alone."""
    rng = np.random.default_rng(seed)
    rows = contexts * (pool + 1)
    lengths = rng.integers(5, 20, rows)
    vocab = np.array(WORDS)
    table = pd.DataFrame({"ending": [" ".join(vocab[rng.integers(0, len(vocab), k)]) + "." for k in lengths]})
    table[LM_COLUMNS] = np.stack([-rng.gamma(8, 3, rows), -rng.gamma(8, 3, rows), lengths,
                                  np.full(rows, 15)], axis=1).astype(np.float32)
    corpus = Corpus(Rows(np.array([f"c{i:07d}" for i in range(contexts)]),
                         np.arange(0, rows + 1, pool + 1, dtype=np.int64), table),
                    np.full(contexts, "A man walks into a large gym."), np.full(contexts, "The man"))
    return build_inputs(Bank(corpus), cfg)


def build_inputs(bank: Bank, cfg: FilterConfig) -> Bank:
    """Build every input the chosen discriminators need; POS tags are made up from word ids."""
    for _, cls, member_cfg in Members.of(cfg).chosen:
        for inp in cls.needs(member_cfg):
            if inp.feature == "pos":
                words = bank.get(Input("words")).rows["words"]
                bank.put(inp, Arrays({"pos": np.where(words > 0, 1 + words % 40, 0).astype(np.int16)},
                                     meta={"pos_size": 41}))
            else:
                bank.get(inp)
    return bank


def one_round(bank: Bank, cfg: FilterConfig, root: Path) -> dict[str, float]:
    """Wall time of a whole round (as the filter stage runs it) and its parts."""
    run = RunStore(root)
    root.mkdir(parents=True, exist_ok=True)
    assignment = initial_assignment(bank.pool_sizes, cfg.negatives, seed=0)
    active = np.flatnonzero(assignment[:, 0] >= 0)
    start = time.perf_counter()
    result = run_round(1, bank, assignment, active, cfg, Members.of(cfg), resolve_device(cfg.device), seed=0)
    write_round(run, 1, bank.context_ids, result.assignment)
    write_metrics(run, [result.metrics])
    round_s = time.perf_counter() - start
    m = result.metrics
    return {"round_s": round_s, "train_s": m["train_s"], "score_s": m["score_s"],
            "bookkeeping_s": round_s - m["train_s"] - m["score_s"]}


def epochs_config(epochs: int, quick: bool = False) -> FilterConfig:
    """The default ensemble (``quick``: bow and cnn only, no encoder to run), every model
    trained for ``epochs`` epochs a round."""
    names = ["bow", "cnn"] if quick else FilterConfig().discriminators
    return FilterConfig(discriminators=names, discriminator={n: {"epochs": epochs} for n in names},
                        ensemble={"epochs": epochs})


def memory_probe(contexts: int, pool: int, quick: bool = False) -> None:
    """Child process: write shards of real strings, stream them into a bank, run a round."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "candidates"
        shards.mkdir()
        ids = [f"c{i:07d}" for i in range(contexts)]
        for s, start in enumerate(range(0, contexts, 1000)):
            part = ids[start:start + 1000]
            n = len(part) * (pool + 1)
            lengths = rng.integers(5, 20, n)
            endings = [" ".join(rng.choice(WORDS, k)) + "." for k in lengths]
            pd.DataFrame({"context_id": np.repeat(part, pool + 1), "ending": endings,
                          "is_gold": np.tile([True] + [False] * pool, len(part)),
                          "lm_logprob": -rng.gamma(8, 3, n), "lm_uncond_logprob": -rng.gamma(8, 3, n),
                          "ending_tokens": lengths, "context_tokens": 15}).to_parquet(
                shards / f"part-{s:05d}.parquet", index=False)
        del endings
        table = pd.DataFrame({"id": ids, "ctx_a": "A man walks into a large gym.", "ctx_b": "The man"})
        cfg = epochs_config(1, quick)
        bank = build_inputs(Bank(Corpus.of(read_rows(RunStore(tmp), LM_COLUMNS), table)), cfg)
        one_round(bank, cfg, Path(tmp) / "run")
    print(json.dumps({"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="discriminator epochs per round")
    parser.add_argument("--memory-probe", nargs=2, type=int, metavar=("CONTEXTS", "POOL"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    memory = ("2000", "16") if args.quick else ("20000", "256")
    if args.quick and not args.memory_probe:
        args.contexts, args.pool = 300, 8
    if args.memory_probe:
        memory_probe(*args.memory_probe, quick=args.quick)
        return
    cfg = epochs_config(args.epochs, args.quick)
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 4):
            parts = one_round(synthetic_bank(args.contexts * scale, args.pool, cfg), cfg,
                              Path(tmp) / f"x{scale}")
            print(f"{args.contexts * scale} contexts x {args.pool}: "
                  + ", ".join(f"{k}={v:.2f}" for k, v in parts.items()))
            if scale == 1:
                figures.update({k: round(v, 3) for k, v in parts.items()})
            else:
                figures["scale4_ratio"] = round(parts["round_s"] / figures["round_s"], 3)
    figures["overhead_frac"] = round(figures["bookkeeping_s"] / figures["round_s"], 4)
    child = subprocess.run([sys.executable, __file__, "--memory-probe", *memory, *(["--quick"] if args.quick else [])],
                           capture_output=True, text=True, check=True)
    figures["peak_rss_gb"] = round(json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_gb"], 3)
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores; epochs={args.epochs}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
