"""The commands as users write them: default run directories, the latest finished run, and
fine-tuning / evaluation on a run's own splits."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from advfilter.cli import main
from advfilter.core.errors import RunError
from advfilter.core.layout import items
from advfilter.core.runs import latest_run
from advfilter.core.store import RunStore
from conftest import anet_video


@pytest.fixture
def in_project(tmp_path, monkeypatch):
    """A working directory with an empty ``runs/``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    return tmp_path


def finished_copy(filtered_run, root, name):
    """A copy of the filtered_run run under ``root/runs/name`` whose filter finished just now."""
    target = root / "runs" / name
    shutil.copytree(filtered_run, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["stages"]["filter"]["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_generate_without_out_names_the_run_after_source_and_input(runner, write, in_project):
    corpus = write("my_captions.json", {"v1": anet_video("A woman is standing in a kitchen next to a stove.",
                                                         "The woman in an apron cracks two eggs into a bowl.")})
    result = runner.invoke(main, ["generate", "--input", str(corpus), "--stage", "contexts"])
    assert result.exit_code == 0, result.output
    assert "run directory: runs/activitynet-my_captions (no --out given)" in result.stdout
    assert (in_project / "runs" / "activitynet-my_captions" / "contexts.parquet").exists()


def test_commands_without_run_use_the_latest_finished_run_and_say_which(runner, filtered_run, in_project):
    finished_copy(filtered_run, in_project, "older")
    time.sleep(1.1)  # "updated" has one-second resolution
    newer = finished_copy(filtered_run, in_project, "newer")
    shutil.copytree(filtered_run, in_project / "runs" / "unfinished")
    unfinished = json.loads((in_project / "runs" / "unfinished" / "manifest.json").read_text())
    del unfinished["stages"]["filter"]
    (in_project / "runs" / "unfinished" / "manifest.json").write_text(json.dumps(unfinished))
    assert latest_run("filter") == newer.relative_to(in_project)
    result = runner.invoke(main, ["export", "--out", "items.jsonl"])
    assert result.exit_code == 0, result.output
    assert "using run runs/newer (the latest with a finished filter stage)" in result.stderr
    assert "items.jsonl" in json.loads((newer / "manifest.json").read_text())["exports"]


def test_no_finished_run_is_one_line_naming_the_flag(runner, in_project):
    with pytest.raises(RunError, match="pass --run RUN_DIR"):
        latest_run("filter")
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "--run" in result.stderr


def test_evaluate_run_split_test_scores_only_the_test_items(runner, filtered_run, tiny_phi, tmp_path):
    out = tmp_path / "test.json"
    result = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--run", str(filtered_run),
                                  "--split", "test", "--output", str(out)])
    assert result.exit_code == 0, result.output
    n_test = sum(1 for _ in items(RunStore(filtered_run), split="test"))
    assert json.loads(out.read_text())["n"] == n_test > 0
    assert "activity" in result.stdout  # the per-activity table, one line per activity
    activities = {r["activity_label"] for r in items(RunStore(filtered_run), split="test")}
    assert sum(line.strip().startswith("activity ") for line in result.stdout.splitlines()) == len(activities)


def test_finetune_on_a_run_trains_on_train_validates_on_validation_and_evaluate_compares(
        runner, filtered_run, tiny_phi, tmp_path):
    out = tmp_path / "ft"
    result = runner.invoke(main, ["finetune-phi2", "--run", str(filtered_run), "--model", str(tiny_phi),
                                  "--lora-r", "4", "--max-steps", "1", "--batch-size", "4",
                                  "--grad-accum", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    run = RunStore(filtered_run)
    assert metrics["train_examples"] == sum(1 for _ in items(run, split="train"))
    assert metrics["valid_examples"] == sum(1 for _ in items(run, split="validation"))
    scored = tmp_path / "scored.json"
    result = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--run", str(filtered_run),
                                  "--split", "test", "--adapter", str(out), "--output", str(scored)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("base: n=") and "\ntuned: n=" in result.stdout
    assert "(tuned)" in result.stdout
    both = json.loads(scored.read_text())
    assert both["adapter"] == str(out) and both["baseline"]["adapter"] is None


def test_data_and_run_together_are_refused(runner, filtered_run, tmp_path):
    result = runner.invoke(main, ["evaluate", "--run", str(filtered_run), "--data", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "not both" in result.stderr


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    from advfilter.core.progress import PlainProgress, progress

    monkeypatch.setenv("ADVFILTER_PROGRESS_SECONDS", "0")
    bar = progress(range(3), desc="shards", unit="shard")
    assert isinstance(bar, PlainProgress)
    assert list(bar) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("shards: 1/3 shard (33%)") and "ETA" in lines[0]
    assert lines[-1].startswith("shards: 3/3 shard (100%)") and "\r" not in "".join(lines)
    assert os.environ["ADVFILTER_PROGRESS_SECONDS"] == "0"


def test_a_fitted_fold_is_reported_with_its_epochs_and_held_out_perplexity():
    from advfilter.pipeline.generate import fit_line

    stats = {"lstm": {"vocab": 2733, "epochs": 15, "best_valid_ppl": 49.62}, "retrieval": {"endings": 900},
             "fold": 0}
    assert fit_line(stats) == "lstm 15 epochs, lstm held-out perplexity 49.6"
