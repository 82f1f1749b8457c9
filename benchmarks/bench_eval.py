"""Items per second of ``advfilter evaluate``'s scorer vs a naive loop, on a tiny Phi model.

Run by hand: ``python benchmarks/bench_eval.py [--items 2000]``. Both score the same exported
items with the same tiny random ``PhiConfig`` model (built offline by ``advfilter.lm.tiny``); the
naive loop runs one forward pass per (context, ending) pair. The last line is one JSON object
with ``fast_ips`` and ``naive_ips``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch

from advfilter.core.models import load_causal_lm
from advfilter.core.lm import Scorer, batches, to_doc
from advfilter.lm.tiny import build_tiny_phi

ENDINGS = ["picks up the rope and starts to jump.", "walks over to the table.",
           "throws the ball across the field to a friend.", "sits down."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.items = 24
    rng = np.random.default_rng(0)
    docs = [to_doc({"activity_label": "Jumping rope", "ctx_a": f"A person number {i} walks into a gym.",
                    "ctx_b": "The person", "endings": list(rng.permutation(ENDINGS)), "label": 0})
            for i in range(args.items)]
    with tempfile.TemporaryDirectory() as tmp:
        model, tok = load_causal_lm(str(build_tiny_phi(tmp)))
        scorer = Scorer(model.eval(), tok)
        start = time.perf_counter()
        fast = [s for batch in batches(docs, args.batch_size) for s in scorer.loglikelihoods(batch)]
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        naive = []
        with torch.no_grad():
            for doc in docs:
                scores = []
                for choice in doc.choices:
                    ctx, cont = scorer.encode_pair(doc.query, " " + choice)
                    logp = torch.log_softmax(scorer.model(torch.tensor([ctx + cont])).logits[0], -1)
                    scores.append(float(logp[torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1),
                                             torch.tensor(cont)].sum()))
                naive.append(np.array(scores))
        naive_s = time.perf_counter() - start
    diff = max(float(np.abs(a - b).max()) for a, b in zip(fast, naive))
    print(f"fast: {fast_s:.2f} s, naive: {naive_s:.2f} s, max |difference| {diff:.2e}")
    print(json.dumps({"fast_ips": round(args.items / fast_s, 1), "naive_ips": round(args.items / naive_s, 1),
                      "ratio": round(naive_s / fast_s, 2), "max_abs_diff": diff,
                      "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}"}))


if __name__ == "__main__":
    main()
