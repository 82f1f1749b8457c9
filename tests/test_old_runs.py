"""Runs and sweep folders written by older versions of advfilter still open: a run's stages are
reused, extended, exported, reported and probed as if this version had written them; a
sweep's Tune state restores and its trials compare."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from advfilter.cli import main

OLD = Path(__file__).parent / "fixtures" / "run-2026-11"


@pytest.fixture
def old_run(tmp_path) -> Path:
    shutil.copytree(OLD / "run", tmp_path / "run")
    return tmp_path / "run"


def test_an_old_run_reuses_its_finished_stages_when_generated_again(runner, old_run):
    result = runner.invoke(main, ["generate", "--source", "activitynet", "--input", str(OLD / "corpus.json"),
                                  "--out", str(old_run), "--generator", "random", "--num-candidates", "6",
                                  "--folds", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "contexts: reusing" in result.output and "candidates: reusing" in result.output


def test_an_old_run_extends_its_filter_rounds(runner, old_run):
    result = runner.invoke(main, ["filter", "--run", str(old_run), "--rounds", "3", "--discriminators", "bow",
                                  "--set", "filter.discriminator.bow.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "resumed after round 2" in result.output
    assert len((old_run / "af" / "metrics.jsonl").read_text().splitlines()) == 3


def test_an_old_run_exports_reports_and_probes(runner, old_run, tmp_path):
    out = tmp_path / "items.jsonl"
    for args in (["export", "--run", str(old_run), "--out", str(out)], ["report", "--run", str(old_run)],
                 ["probe", "--run", str(old_run), "--probes", "tfidf", "--rounds", "last"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == 39 and {len(i["endings"]) for i in items} == {4}


OLD_SWEEP = Path(__file__).parent / "fixtures" / "sweep-2026-11"


def test_an_old_sweep_folder_restores_its_trials_and_compares(runner, tmp_path):
    from advfilter.lm.results import best_result, read_results
    from advfilter.lm.sweep import _trial, restore_tuner

    sweep = tmp_path / "sweep"
    shutil.copytree(OLD_SWEEP, sweep)
    results = restore_tuner(sweep / "tune", _trial).get_results()  # Tune's pickles name old modules
    assert sorted(r.config["lr"] for r in results) == [0.001, 0.01]
    rows = read_results(sweep)
    assert best_result(rows, "eval_loss", "min")["config"] == {"lr": 0.01}
    trials = sorted(str(p) for p in (sweep / "trials").iterdir())
    result = runner.invoke(main, ["compare", *trials])
    assert result.exit_code == 0 and "eval_acc_norm" in result.output


def test_a_run_made_before_the_strong_model_continues_without_one(old_run):
    from advfilter.core.config import load_config
    from advfilter.core.store import RunStore

    run = RunStore(old_run)
    assert load_config(None, base=run.manifest["config"]).filter.strong.discriminator is None
    fresh = load_config(None)
    assert fresh.filter.strong.discriminator == "bert"  # new runs get one
