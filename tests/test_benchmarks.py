"""Every benchmark runs on the current code and defaults: each, at a tiny size (``--quick``),
ends with one JSON object, so none rots unnoticed between the runs made by hand."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("bench_*.py"))
ANET_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "anet_dev"


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Every benchmark's ``--quick`` run, all started at once (most of each is waiting for Ray,
    imports and subprocesses, so together they take about as long as the longest): per script,
    its process and the files its stdout and stderr go to."""
    env = {**os.environ, "ADVFILTER_PROGRESS_SECONDS": "3600"}
    runs = {}
    for script in BENCHMARKS:
        where = tmp_path_factory.mktemp(script.stem)
        out, err = where / "stdout", where / "stderr"
        with out.open("w") as o, err.open("w") as e:
            runs[script.stem] = subprocess.Popen([sys.executable, str(script), "--quick"], stdout=o, stderr=e,
                                                 cwd=where, env=env, start_new_session=True), out, err
    yield runs
    for process, _, _ in runs.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_a_benchmark_runs_quick_and_ends_with_json(script, quick_runs):
    if script.stem == "bench_cut" and not (ANET_DEV / "captions.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{ANET_DEV} is missing on CI")
        pytest.skip(f"{ANET_DEV} not here (a clone outside the workspace)")
    process, out, err = quick_runs[script.stem]
    assert process.wait(timeout=600) == 0, err.read_text()[-3000:]
    assert isinstance(json.loads(out.read_text().strip().splitlines()[-1]), dict)


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
