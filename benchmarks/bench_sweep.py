"""Wall time of one 4-trial ``advfilter sweep`` with 1 vs 2 trials at a time.

Run by hand: ``python benchmarks/bench_sweep.py [--steps 40] [--hidden 256]``. Both sweeps run
the same grid of 4 LoRA trials (ASHA off, so every trial runs all its steps) on a tiny random
Phi model built offline by ``advfilter.lm.tiny``, each through the CLI with a fresh local Ray
runtime. With one trial at a time a trial gets every CPU; with two, half each. The last line
is one JSON object with ``one_at_a_time_s``, ``two_at_a_time_s`` and their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advfilter.lm.tiny import build_tiny_phi

ITEM = {"activity_label": "Cooking", "ctx_b": "the cook",
        "endings": ["stirs the soup in the pot.", "flies over the moon.", "sings to a rock.",
                    "paints the sky green."], "label": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per trial")
    parser.add_argument("--hidden", type=int, default=256, help="the tiny model's hidden size")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    space = "{lr: [0.001, 0.0005], scheduler: [linear, cosine]}"
    concurrency = (1, 2)
    if args.quick:  # two trials of two steps, two at a time only: checks that it runs
        args.steps, args.hidden, space, concurrency = 2, 32, "{lr: [0.001, 0.0005]}", (2,)
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_phi(root / "model", hidden_size=args.hidden, layers=4)
        rows = [{**ITEM, "ctx_a": f"A cook number {i} stands at a stove.", "split": "train"} for i in range(64)]
        rows += [{**ITEM, "ctx_a": f"A baker number {i} stands at an oven.", "split": "validation"}
                 for i in range(16)]  # never items it trains on
        data = root / "items.jsonl"
        data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        cli = str(Path(sys.executable).parent / "advfilter")
        for concurrent in concurrency:
            cmd = [cli, "sweep", "--data", str(data), "--model", str(model), "--out", str(root / f"sweep-{concurrent}"),
                   "--search", "grid", "--set", f"space={space}",
                   "--max-concurrent", str(concurrent), "--max-steps", str(args.steps),
                   "--set", "asha.enabled=false", "--set", "finetune.batch_size=8", "--set", "finetune.grad_accum=1",
                   "--set", f"finetune.eval_every={max(1, args.steps // 2)}", "--set", "finetune.eval_items=16"]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            timings[concurrent] = time.perf_counter() - start
            print(f"{concurrent} at a time: {timings[concurrent]:.1f} s", file=sys.stderr)
    one = timings.get(1)
    print(json.dumps({"trials": 2 if args.quick else 4, "steps": args.steps, "hidden": args.hidden,
                      "one_at_a_time_s": one and round(one, 1), "two_at_a_time_s": round(timings[2], 1),
                      "speedup": one and round(one / timings[2], 2),
                      "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}))


if __name__ == "__main__":
    main()
