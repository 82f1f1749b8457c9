"""`advfilter sweep`: finetune-phi2 trials on a real local Ray Tune runtime, tiny Phi model on CPU."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.lm.config import FinetuneConfig, SweepConfig
from advfilter.core.errors import ConfigError
from advfilter.lm.space import check_space, grid_points, planned_trials

ITEM = {"activity_label": "Cooking", "ctx_b": "the cook",
        "endings": ["stirs the soup in the pot.", "flies over the moon.", "sings to a rock.",
                    "paints the sky green."], "label": 0}


@pytest.fixture
def items(tmp_path) -> Path:
    rows = [{**ITEM, "ctx_a": f"A cook number {i} stands at a stove.", "split": "train"} for i in range(16)]
    rows += [{**ITEM, "ctx_a": f"A baker number {i} stands at an oven.", "split": "validation"} for i in range(4)]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def sweep_args(items: Path, tiny_phi: Path, out: Path, space: str, *extra: str) -> list[str]:
    """A grid sweep of short trials: 4 items a step, evaluated on 4 items."""
    return ["sweep", "--data", str(items), "--model", str(tiny_phi), "--out", str(out), "--search", "grid",
            "--set", f"space={space}", "--set", "finetune.batch_size=4", "--set", "finetune.grad_accum=1",
            "--set", "finetune.lora.r=4", "--set", "finetune.eval_items=4", *extra]


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def span(out: Path, trial: str) -> tuple[float, float]:
    """When a trial first and last reported (Tune's own result log)."""
    log = next((out / "tune").glob(f"*{trial}*")) / "result.json"
    stamps = [json.loads(line)["timestamp"] for line in log.read_text().splitlines()]
    return min(stamps) - 1, max(stamps)  # whole seconds: a trial started up to 1 s before


@pytest.mark.slow  # in the full suite its trials ran one at a time (see the session 11 note)
def test_a_four_trial_grid_with_two_at_a_time_records_every_trial_and_the_best(items, tiny_phi, tmp_path, runner):
    out = tmp_path / "sweep"  # trials long enough to outlast the next one's start (~1 s)
    result = runner.invoke(main, sweep_args(items, tiny_phi, out, "{lr: [0.01, 0.001], scheduler: [linear, cosine]}",
                                            "--max-concurrent", "2", "--max-steps", "16",
                                            "--set", "finetune.eval_every=8", "--set", "asha.enabled=false"))
    assert result.exit_code == 0, result.output
    rows = results(out)
    assert sorted((r["config"]["lr"], r["config"]["scheduler"]) for r in rows) == [
        (0.001, "cosine"), (0.001, "linear"), (0.01, "cosine"), (0.01, "linear")]
    for row in rows:
        assert row["status"] == "completed" and row["metrics"]["step"] == 16
        assert row["metrics"]["eval_loss"] > 0 and 0 <= row["metrics"]["eval_acc"] <= 1
        assert (out / row["dir"] / "adapter" / "adapter_config.json").exists()
    spans = sorted(span(out, r["trial"]) for r in rows)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), f"no two trials overlapped: {spans}"
    best = min(rows, key=lambda r: r["metrics"]["eval_loss"])
    saved = load_config(out / "best.yaml", schema=FinetuneConfig)  # ready for finetune-phi2 --config
    assert (saved.lr, saved.scheduler, saved.max_steps) == (best["config"]["lr"], best["config"]["scheduler"], 16)
    table = result.stdout.splitlines()
    assert table[-6].split()[:3] == ["trial", "lr", "scheduler"]
    assert table[-5].startswith(f"* {best['trial']}")
    assert table[-1] == f"best: trial {best['trial']} (eval_loss {best['metrics']['eval_loss']:.4f}); " \
                        f"its config: {out / 'best.yaml'}"


@pytest.mark.slow  # Ray Tune's scheduler at work (~35 s); how we size it: test_asha_counts_the_longest_trial...
def test_asha_stops_a_trial_that_falls_behind_at_its_first_evaluation(items, tiny_phi, tmp_path, runner):
    out = tmp_path / "sweep"
    result = runner.invoke(main, sweep_args(items, tiny_phi, out, "{lr: [0.02, 0.000001]}", "--max-concurrent", "1",
                                            "--max-steps", "6", "--set", "finetune.eval_every=2"))
    assert result.exit_code == 0, result.output
    by_lr = {r["config"]["lr"]: r for r in results(out)}
    assert by_lr[0.02]["status"] == "completed" and by_lr[0.02]["metrics"]["step"] == 6
    slow = by_lr[0.000001]
    assert slow["status"] == "stopped" and slow["metrics"]["step"] == 2
    assert slow["metrics"]["eval_loss"] > by_lr[0.02]["metrics"]["eval_loss"]
    assert not (out / slow["dir"] / "adapter").exists()
    assert "best: trial " + by_lr[0.02]["trial"] in result.stdout


def test_a_killed_sweep_resumes_its_unfinished_trial_and_keeps_the_finished_one(items, tiny_phi, tmp_path, runner):
    out = tmp_path / "sweep"
    args = sweep_args(items, tiny_phi, out, "{lr: [0.01, 0.005]}", "--max-concurrent", "1", "--max-steps", "60",
                      "--set", "finetune.eval_every=20", "--set", "finetune.save_every=5", "--set", "asha.enabled=false")
    sweep = subprocess.Popen([str(Path(sys.executable).parent / "advfilter"), *args], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sweep.poll() is None:
            second = [d for d in (out / "trials").glob("*_00001")] if (out / "trials").exists() else []
            if second and (second[0] / "checkpoint").exists() and not (second[0] / "metrics.json").exists():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second trial never saved a checkpoint")
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # the driver, Ray's processes and the trial
        sweep.wait()
    first_dir, second_dir = sorted((out / "trials").iterdir())
    first_log = (first_dir / "metrics.jsonl").read_bytes()
    assert (first_dir / "metrics.json").exists() and not (second_dir / "metrics.json").exists()

    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = results(out)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert (first_dir / "metrics.jsonl").read_bytes() == first_log  # not trained again
    train = [json.loads(line) for line in (second_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if "loss" in r]
    assert [r["step"] for r in train] == list(range(1, 61))  # every step once
    restarts = [b["step"] for a, b in zip(train, train[1:]) if b["seconds"] < a["seconds"]]
    # resumed after a checkpoint (every 5 steps and each 4-step epoch), not from the start
    assert len(restarts) == 1 and restarts[0] > 1 and (restarts[0] - 1) % 5 * ((restarts[0] - 1) % 4) == 0, restarts


@pytest.mark.slow
def test_optuna_search_samples_ranges_and_logs_each_trial_to_wandb_offline(items, tiny_phi, tmp_path, runner,
                                                                          monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "sweep"
    args = sweep_args(items, tiny_phi, out, "{lr: {loguniform: [0.0001, 0.01]}, lora.dropout: [0.0, 0.1]}",
                      "--search", "optuna", "--trials", "2", "--max-steps", "2", "--wandb")
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = results(out)
    assert len(rows) == 2 and all(0.0001 <= r["config"]["lr"] <= 0.01 for r in rows)
    assert rows[0]["config"]["lr"] != rows[1]["config"]["lr"]
    for row in rows:
        assert list((out / row["dir"] / "wandb").glob("offline-run-*/run-*.wandb")), row["trial"]


def test_a_rerun_with_other_settings_is_refused(items, tiny_phi, tmp_path, runner):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.yaml").write_text(yaml.safe_dump({"sweep": {}, "path": "elsewhere"}))
    result = runner.invoke(main, sweep_args(items, tiny_phi, out, "{lr: [0.01]}"))
    assert result.exit_code == 2 and "holds a sweep with other settings" in result.stderr


@pytest.mark.parametrize("space, search, message", [
    ({"lr": {"loguniform": [1e-5, 1e-3]}}, "grid", "space.lr: a grid takes a list of values, not a range"),
    ({"lr": {"normal": [0, 1]}}, "random", "space.lr: a range is one of"),
    ({"lr": {"loguniform": [0, 1e-3]}}, "optuna", "space.lr: loguniform needs low > 0"),
    ({"lora.rank": [8]}, "grid", "space.lora.rank: 8 is not a valid setting"),
    ({"scheduler": ["linear", "exponential"]}, "random", "space.scheduler: 'exponential' is not a valid setting"),
    ({"lr": []}, "grid", "space.lr: expected a non-empty list"),
])
def test_a_bad_search_space_is_named_before_anything_runs(space, search, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        planned_trials(SweepConfig(space=space, search=search))


def test_a_grid_runs_its_first_n_combinations_in_order():
    space = {"lora.r": [8, 16], "lr": [1e-4, 2e-4, 3e-4]}
    assert planned_trials(SweepConfig(space=space, search="grid", trials=0)) == 6
    assert planned_trials(SweepConfig(space=space, search="grid", trials=4)) == 4
    assert grid_points(space)[:2] == [{"lora.r": 8, "lr": 1e-4}, {"lora.r": 8, "lr": 2e-4}]


def test_listed_values_are_read_as_the_finetune_config_reads_them():
    # YAML reads 1e-4 (no decimal point) as text: the trials and results.jsonl get the number
    space = check_space(SweepConfig(space={"lr": ["1e-4", 0.001], "lora.r": [8]}, search="grid"))
    assert space == {"lr": [0.0001, 0.001], "lora.r": [8]}
    assert check_space(SweepConfig(space={"lr": {"loguniform": ["1e-5", "1e-3"]}}))["lr"] == {"loguniform": [1e-5, 1e-3]}


@pytest.mark.slow
def test_asha_may_stop_a_trial_at_its_own_last_step_without_losing_its_adapter(items, tiny_phi, tmp_path, runner):
    out = tmp_path / "sweep"
    result = runner.invoke(main, sweep_args(items, tiny_phi, out, "{max_steps: [6, 2], lr: [0.02, 0.000001]}",
                                            "--max-concurrent", "1", "--set", "finetune.eval_every=2"))
    assert result.exit_code == 0, result.output
    for row in results(out):
        if row["metrics"]["step"] == row["config"]["max_steps"]:  # it ran to its own end
            assert row["status"] == "completed", row
            assert (out / row["dir"] / "adapter" / "adapter_config.json").exists()
    assert any(r["config"]["max_steps"] == 6 and r["metrics"]["step"] == 2 for r in results(out))  # ASHA ran


def test_asha_counts_the_longest_trial_the_space_allows():
    from advfilter.lm.config import SweepConfig
    from advfilter.lm.space import longest_trial

    cfg = SweepConfig(space={"max_steps": [6, 20]}, finetune=FinetuneConfig(max_steps=4))
    assert longest_trial(cfg, n_train=16) == 20
    cfg = SweepConfig(space={"batch_size": [2, 8]}, finetune=FinetuneConfig(max_steps=0, epochs=1, batch_size=4,
                                                                            grad_accum=1))
    assert longest_trial(cfg, n_train=16) == 8  # 16 items, 2 a step
