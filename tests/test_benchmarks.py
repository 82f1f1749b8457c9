"""Every benchmark runs on the current code and defaults: each, at a tiny size (``--quick``),
ends with one JSON object, so none rots unnoticed between the runs made by hand."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("bench_*.py"))
ANET_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "anet_dev"


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_a_benchmark_runs_quick_and_ends_with_json(script, tmp_path):
    if script.stem == "bench_cut" and not (ANET_DEV / "captions.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{ANET_DEV} is missing on CI")
        pytest.skip(f"{ANET_DEV} not here (a clone outside the workspace)")
    env = {**os.environ, "ADVFILTER_PROGRESS_SECONDS": "3600"}
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert isinstance(json.loads(done.stdout.strip().splitlines()[-1]), dict)


def test_the_gpu_check_says_what_it_skipped_and_why_where_there_is_no_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run bash benchmarks/gpu_check.sh by hand (8 minutes)")
    done = subprocess.run(["bash", str(BENCHMARKS[0].parent / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    skipped = json.loads(done.stdout.strip().splitlines()[-1])["skipped"]
    assert set(skipped) == {"bank", "strong_round", "lstm", "hf", "finetune_fp", "finetune_4bit"}
    assert all("no CUDA device" in why for why in skipped.values())
