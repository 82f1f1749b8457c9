"""Export formats read back with the tools that consume them, and lm-eval parity."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from advfilter.cli import main
from advfilter.core.layout import split_of
from advfilter.sources import sources

REPO = Path(__file__).resolve().parent.parent


def export(runner, filtered_run, fmt, out, *extra):
    result = runner.invoke(main, ["export", "--run", str(filtered_run), "--format", fmt, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def test_hellaswag_jsonl_loads_with_datasets(runner, filtered_run, tmp_path):
    from datasets import load_dataset

    out = export(runner, filtered_run, "hellaswag", tmp_path / "items.jsonl")
    rows = load_dataset("json", data_files=str(out), split="train")
    first = rows[0]
    assert first["endings"][first["label"]] and set(rows.column_names) >= {"ctx", "source_id", "split_type"}


def test_swag_csv_reads_back_with_the_swag_reader_to_the_same_golds(runner, filtered_run, tmp_path):
    out = export(runner, filtered_run, "swag", tmp_path / "train.csv")
    golds = {json.loads(x)["ctx_a"] + json.loads(x)["endings"][json.loads(x)["label"]]
             for x in export(runner, filtered_run, "hellaswag", tmp_path / "i.jsonl").read_text().splitlines()}
    back = list(sources.get("swag")(out))
    assert {item.ctx_a + item.ending for item in back} == golds


def test_hf_dataset_splits_by_video_and_has_a_card(runner, filtered_run, tmp_path):
    from datasets import load_from_disk

    out = export(runner, filtered_run, "hf", tmp_path / "hf")
    data = load_from_disk(str(out))
    videos = {split: set(data[split]["video_id"]) for split in data}
    assert all(not videos[a] & videos[b] for a in videos for b in videos if a < b)
    assert "no split's negatives are another split's golds" in (out / "README.md").read_text()


def test_every_format_carries_each_items_split_and_they_agree(runner, filtered_run, tmp_path):
    import csv

    from datasets import load_from_disk

    jsonl = [json.loads(x) for x in export(runner, filtered_run, "hellaswag", tmp_path / "i.jsonl").read_text().splitlines()]
    by_context = {r["context_id"]: r["split"] for r in jsonl}
    assert set(by_context.values()) == {"train", "validation", "test"}  # not one constant
    with open(export(runner, filtered_run, "swag", tmp_path / "s.csv")) as fh:
        swag = [(r["sent1"], r["split"]) for r in csv.DictReader(fh)]
    assert sorted(swag) == sorted((r["ctx_a"], r["split"]) for r in jsonl)
    hf = load_from_disk(str(export(runner, filtered_run, "hf", tmp_path / "hf")))
    assert {c: s for s in hf for c in hf[s]["context_id"]} == by_context
    task = export(runner, filtered_run, "lm-eval", tmp_path / "task", "--name", "t")
    assert [json.loads(x)["split"] for x in (task / "t.jsonl").read_text().splitlines()] == \
        [r["split"] for r in jsonl]
    videos = {s: {r["video_id"] for r in jsonl if r["split"] == s} for s in by_context.values()}
    assert not (videos["train"] & videos["test"]) and not (videos["validation"] & videos["test"])


def test_export_split_keeps_only_that_splits_items(runner, filtered_run, tmp_path):
    out = export(runner, filtered_run, "hellaswag", tmp_path / "test.jsonl", "--split", "test")
    assert {json.loads(x)["split"] for x in out.read_text().splitlines()} == {"test"}


def test_splits_are_whole_folds_so_no_split_meets_another_splits_golds_as_negatives():
    five = {k: split_of(k, 5, "v", 0) for k in range(5)}
    assert five == {0: "train", 1: "train", 2: "train", 3: "validation", 4: "test"}
    ten = [split_of(k, 10, "v", 0) for k in range(10)]
    assert ten.count("train") == 8 and ten[-2:] == ["validation", "test"]
    by_video = {split_of(0, 2, f"v{i}", 0) for i in range(50)}  # too few folds: by video
    assert by_video == {"train", "validation", "test"}


def test_an_export_that_fails_midway_leaves_the_earlier_export_whole(runner, filtered_run, tmp_path, monkeypatch):
    from datasets import DatasetDict, load_from_disk

    out = export(runner, filtered_run, "hf", tmp_path / "hf")
    before = load_from_disk(str(out))

    def save_half(self, path, **_):
        (Path(path) / "train").mkdir(parents=True)  # a torn write, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(DatasetDict, "save_to_disk", save_half)
    failed = runner.invoke(main, ["export", "--run", str(filtered_run), "--format", "hf", "--out", str(out)])
    assert failed.exit_code != 0
    after = load_from_disk(str(out))
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}


def test_an_lm_eval_task_folder_is_replaced_whole_or_not_at_all(tmp_path):
    from advfilter.pipeline.export import write_lm_eval

    record = {"ind": 0, "ctx": "a", "endings": ["b"], "label": 0}
    write_lm_eval(iter([record]), tmp_path / "task", "t")
    before = {p.name: p.read_text() for p in (tmp_path / "task").iterdir()}

    def dies_midway():
        yield record
        raise OSError("killed")

    with pytest.raises(OSError):
        write_lm_eval(dies_midway(), tmp_path / "task", "t")
    assert {p.name: p.read_text() for p in (tmp_path / "task").iterdir()} == before


@pytest.fixture(scope="module")
def contexts_run(tmp_path_factory) -> Path:
    """Contexts of a 40-video corpus with 2 folds, whose splits are drawn by video."""
    from advfilter.core.config import load_config
    from advfilter.core.store import RunStore
    from advfilter.pipeline.contexts import build_contexts
    from advfilter.sources.demo import make_corpus

    root = tmp_path_factory.mktemp("leak")
    (root / "train.json").write_text(json.dumps(make_corpus(videos=40, seed=3)))
    with RunStore.open(root / "run") as run:
        build_contexts(load_config(None, {"contexts.folds": 2}), run, "activitynet", [root / "train.json"])
    return root / "run"


def generators_with_settings():
    """Every registered generator (hf on the tiny Phi model), small; only the default mixture
    (an LSTM and retrieval) runs on the fast path, the rest are slow-marked (make test-all)."""
    from generators import generators

    tiny_lstm = {"generate.lstm.embed_dim": 16, "generate.lstm.hidden_dim": 16, "generate.lstm.max_epochs": 2}
    small = {"lstm": tiny_lstm, "mixture": {**tiny_lstm, "generate.generator": "lstm,retrieval"}, "hf": {"generate.sampling.max_new_tokens": 12, "generate.oversample": 4, "generate.retry_rounds": 6}}
    fast = {"mixture"}
    return [pytest.param(name, small.get(name, {}), marks=() if name in fast else pytest.mark.slow)
            for name in generators.names()]


@pytest.mark.parametrize("name,settings", generators_with_settings(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_split_meets_another_splits_golds_as_negatives_whatever_the_generator(
        name, settings, contexts_run, tiny_phi, runner, tmp_path):
    import shutil

    from advfilter.core.config import load_config
    from advfilter.core.store import RunStore
    from advfilter.pipeline.filter import adversarial_filter
    from advfilter.pipeline.generate import generate_candidates
    from conftest import FAST_RUN

    shutil.copytree(contexts_run, tmp_path / "run")
    run = RunStore(tmp_path / "run")
    generator = f"hf:{tiny_phi}" if name == "hf" else name
    cfg = load_config(None, {**FAST_RUN, "contexts.folds": 2, "generate.generator": generator,
                             "filter.rounds": 1, **settings})
    generate_candidates(cfg, run)
    adversarial_filter(cfg, run)
    out = export(runner, run.root, "hellaswag", tmp_path / "items.jsonl")
    items = [json.loads(line) for line in out.read_text().splitlines()]
    golds = {s: {i["endings"][i["label"]] for i in items if i["split"] == s} for s in ("train", "validation", "test")}
    negatives = {s: {e for i in items if i["split"] == s for j, e in enumerate(i["endings"]) if j != i["label"]}
                 for s in golds}
    assert {"train"} < {i["split"] for i in items}  # and a held-out split or two
    for s in golds:
        for other in golds:
            if other != s:
                assert not golds[s] & negatives[other], (s, other)


def test_lm_eval_scores_the_exported_task_exactly_as_advfilter_evaluate(runner, filtered_run, tmp_path, tiny_phi):
    lm_eval = REPO / ".lmeval-venv" / "bin" / "lm_eval"
    if not lm_eval.exists():
        pytest.fail("lm-evaluation-harness is not installed: run `make .lmeval-venv/.installed`")
    task = export(runner, filtered_run, "lm-eval", tmp_path / "task", "--name", "advfilter_parity")
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
