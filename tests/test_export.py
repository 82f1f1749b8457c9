"""Export formats read back with the tools that consume them, and lm-eval parity."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.export import split_of
from advfilter.filtering import adversarial_filter
from advfilter.sources import sources
from conftest import FAST_RUN

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def filtered(generated_run, tmp_path_factory):
    import shutil

    from advfilter.core.store import RunStore

    root = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(generated_run, root)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 1}), RunStore(root))
    return root


def export(runner, filtered, fmt, out, *extra):
    result = runner.invoke(main, ["export", "--run", str(filtered), "--format", fmt, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def test_hellaswag_jsonl_loads_with_datasets(runner, filtered, tmp_path):
    from datasets import load_dataset

    out = export(runner, filtered, "hellaswag", tmp_path / "items.jsonl")
    rows = load_dataset("json", data_files=str(out), split="train")
    first = rows[0]
    assert first["endings"][first["label"]] and set(rows.column_names) >= {"ctx", "source_id", "split_type"}


def test_swag_csv_reads_back_with_the_swag_reader_to_the_same_golds(runner, filtered, tmp_path):
    out = export(runner, filtered, "swag", tmp_path / "train.csv")
    golds = {json.loads(x)["ctx_a"] + json.loads(x)["endings"][json.loads(x)["label"]]
             for x in export(runner, filtered, "hellaswag", tmp_path / "i.jsonl").read_text().splitlines()}
    back = list(sources.get("swag")(out))
    assert {item.ctx_a + item.ending for item in back} == golds


def test_hf_dataset_splits_by_video_and_has_a_card(runner, filtered, tmp_path):
    from datasets import load_from_disk

    out = export(runner, filtered, "hf", tmp_path / "hf")
    data = load_from_disk(str(out))
    videos = {split: set(data[split]["video_id"]) for split in data}
    assert all(not videos[a] & videos[b] for a in videos for b in videos if a < b)
    assert "Splits are by whole cross-fitting folds" in (out / "README.md").read_text()


def test_splits_are_whole_folds_so_no_split_meets_another_splits_golds_as_negatives():
    five = {k: split_of(k, 5, "v", 0) for k in range(5)}
    assert five == {0: "train", 1: "train", 2: "train", 3: "validation", 4: "test"}
    ten = [split_of(k, 10, "v", 0) for k in range(10)]
    assert ten.count("train") == 8 and ten[-2:] == ["validation", "test"]
    by_video = {split_of(0, 2, f"v{i}", 0) for i in range(50)}  # too few folds: by video
    assert by_video == {"train", "validation", "test"}


def test_lm_eval_scores_the_exported_task_exactly_as_advfilter_evaluate(runner, filtered, tmp_path, tiny_phi):
    lm_eval = REPO / ".lmeval-venv" / "bin" / "lm_eval"
    if not lm_eval.exists():
        pytest.fail("lm-evaluation-harness is not installed: run `make .lmeval-venv/.installed`")
    task = export(runner, filtered, "lm-eval", tmp_path / "task", "--name", "advfilter_parity")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([str(lm_eval), "--model", "hf", "--model_args", f"pretrained={tiny_phi},dtype=float32",
                    "--include_path", str(task), "--tasks", "advfilter_parity", "--device", "cpu",
                    "--batch_size", "8", "--output_path", str(tmp_path / "lm")],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    theirs = json.loads(next((tmp_path / "lm").rglob("results_*.json")).read_text())["results"]["advfilter_parity"]
    ours_file = tmp_path / "ours.json"
    result = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--data",
                                  str(task / "advfilter_parity.jsonl"), "--output", str(ours_file)])
    assert result.exit_code == 0, result.output
    ours = json.loads(ours_file.read_text())
    assert round(ours["acc"], 3) == round(theirs["acc,none"], 3)
    assert round(ours["acc_norm"], 3) == round(theirs["acc_norm,none"], 3)
