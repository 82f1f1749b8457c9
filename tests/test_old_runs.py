"""Runs written by older versions of advfilter still open: their stages are reused, extended,
exported, reported and probed as if this version had written them."""
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
