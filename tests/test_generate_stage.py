"""The candidates stage on a real local Ray runtime: shards, cross-fitting, determinism, faults."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.pipeline.contexts import build_contexts
from advfilter.sources.demo import make_corpus
from advfilter.core.errors import RunError
from advfilter.pipeline.generate import generate_candidates
from advfilter.core.store import RunStore

TINY_LSTM = {"generate.generator": "lstm", "generate.lstm.embed_dim": 32, "generate.lstm.hidden_dim": 32,
             "generate.lstm.max_epochs": 12, "generate.lstm.lr": 0.02, "generate.num_candidates": 4,
             "generate.shard_size": 16, "contexts.folds": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.json"
    path.write_text(json.dumps(make_corpus(videos=36, seed=5)))
    return path


def run_generate(root: Path, corpus: Path, **overrides) -> object:
    cfg = load_config(None, {**TINY_LSTM, **overrides})
    with RunStore.open(root) as run:
        build_contexts(cfg, run, "activitynet", [corpus])
        return generate_candidates(cfg, run)


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "candidates").glob("part-*.parquet"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus) -> Path:
    """One uninterrupted run with two workers."""
    root = tmp_path_factory.mktemp("ref") / "run"
    run_generate(root, corpus, **{"generate.workers": 2})
    return root


def test_every_context_gets_the_gold_and_its_candidates_with_features(reference):
    contexts = pd.read_parquet(reference / "contexts.parquet")
    candidates = pd.read_parquet(reference / "candidates")
    assert set(candidates["context_id"]) == set(contexts["id"])
    assert {"context_id", "ending", "is_gold", "lm_logprob", "lm_uncond_logprob",
            "ending_tokens", "context_tokens"} <= set(candidates.columns)
    gold = candidates[candidates.is_gold].set_index("context_id")["ending"]
    assert (gold == contexts.set_index("id")["ending"].loc[gold.index]).all()
    assert candidates.groupby("context_id").size().max() == 5  # gold + num_candidates


def test_no_context_gets_endings_from_a_generator_trained_on_its_video(reference):
    contexts = pd.read_parquet(reference / "contexts.parquet").set_index("id")
    for fold in sorted(contexts["fold"].unique()):
        fit = json.loads((reference / "generators" / "lstm" / f"fold-{fold}" / "fit.json").read_text())
        own_videos = set(contexts[contexts.fold == fold]["video_id"])
        assert fit["fold"] == fold and not own_videos & set(fit["train_videos"])
    shard_folds = {p.name: set(contexts.loc[pd.read_parquet(p)["context_id"], "fold"])
                   for p in (reference / "candidates").glob("part-*.parquet")}
    assert all(len(folds) == 1 for folds in shard_folds.values())


@pytest.mark.parametrize("fit_folds, learns_from", [
    ("other", {0: {1, 2, 3, 4}, 3: {0, 1, 2, 4}, 4: {0, 1, 2, 3}}),
    ("train", {0: {1, 2}, 3: {0, 1, 2}, 4: {0, 1, 2}}),  # folds 3 and 4: validation and test
])
def test_fit_folds_train_keeps_held_out_text_out_of_every_generator(fit_folds, learns_from):
    from advfilter.core.layout import splits_of
    from advfilter.pipeline.generate import fold_data

    contexts = pd.DataFrame({"id": [f"c{i}" for i in range(20)], "video_id": [f"v{i}" for i in range(20)],
                             "fold": [i % 5 for i in range(20)], "ctx_a": "A man stands.", "ctx_b": "He",
                             "ending": "waves.", "activity_label": "Waving", "source": "demo"})
    contexts["split"] = splits_of(contexts, 5, 0)
    fold_of = dict(zip(contexts["video_id"], contexts["fold"]))
    for fold, expected in learns_from.items():
        *_, videos = fold_data(contexts, fold, seed=0, fraction=0.1, fit_folds=fit_folds)
        assert {fold_of[v] for v in videos} == expected


def test_one_worker_writes_the_same_bytes_as_two(reference, corpus, tmp_path):
    run_generate(tmp_path / "run", corpus, **{"generate.workers": 1})
    assert shard_bytes(tmp_path / "run") == shard_bytes(reference)


def test_a_shard_failing_every_time_fails_the_job_naming_it_and_a_rerun_resumes(
        reference, corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVFILTER_FAULT_SHARD", "3")
    with pytest.raises(RunError, match=r"shard 3 \(part-00003.parquet\) failed"):
        run_generate(tmp_path / "run", corpus, **{"generate.workers": 1, "generate.max_retries": 1})
    assert not (tmp_path / "run" / "candidates" / "part-00003.parquet").exists()
    monkeypatch.delenv("ADVFILTER_FAULT_SHARD")
    summary = run_generate(tmp_path / "run", corpus, **{"generate.workers": 1})
    assert summary.resumed_shards >= 3
    assert shard_bytes(tmp_path / "run") == shard_bytes(reference)


def test_a_worker_that_dies_once_is_restarted_and_its_shard_retried(reference, corpus, tmp_path, monkeypatch):
    marker = tmp_path / "crashed"
    monkeypatch.setenv("ADVFILTER_FAULT_SHARD", "1")
    monkeypatch.setenv("ADVFILTER_FAULT_ONCE", str(marker))
    run_generate(tmp_path / "run", corpus, **{"generate.workers": 2})
    assert marker.exists()
    assert shard_bytes(tmp_path / "run") == shard_bytes(reference)


def test_a_finished_stage_is_reused_and_other_settings_are_refused(reference, corpus):
    assert run_generate(reference, corpus, **{"generate.workers": 2}).reused
    with pytest.raises(RunError, match="changed: generate"):
        run_generate(reference, corpus, **{"generate.num_candidates": 8})


def test_generate_command_runs_both_stages_and_prints_a_summary(runner, corpus, tmp_path):
    result = runner.invoke(main, ["generate", "--source", "activitynet", "--input", str(corpus),
                                  "--out", str(tmp_path / "r"), "--generator", "random",
                                  "--num-candidates", "5", "--workers", "2", "--folds", "4"])
    assert result.exit_code == 0, result.output
    assert "candidates: " in result.stdout and "short contexts" in result.stdout
    assert len(pd.read_parquet(tmp_path / "r" / "candidates")) > 0


def test_an_unknown_generator_is_refused_before_the_stage_starts(runner, corpus, tmp_path):
    args = ["generate", "--input", str(corpus), "--out", str(tmp_path / "r"), "--folds", "4",
            "--num-candidates", "3", "--workers", "1"]
    result = runner.invoke(main, [*args, "--generator", "gpt9"])
    assert result.exit_code == 2 and "unknown generator 'gpt9'" in result.stderr
    assert not (tmp_path / "r").exists()  # nothing parsed, nothing written


@pytest.mark.slow
def test_a_mixture_writes_the_same_bytes_with_one_worker_as_with_two(corpus, tmp_path):
    mixture = {**TINY_LSTM, "generate.generator": "lstm,retrieval"}
    run_generate(tmp_path / "one", corpus, **mixture, **{"generate.workers": 1})
    run_generate(tmp_path / "two", corpus, **mixture, **{"generate.workers": 2})
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")


def test_gpu_workers_are_capped_at_the_gpus_ray_sees_and_it_says_so(caplog):
    import ray

    from advfilter.pipeline.generate import _workers

    cfg = load_config(None, {"generate.generator": "hf:any", "generate.workers": 3})
    ray.init(num_cpus=1, num_gpus=1, include_dashboard=False)  # Ray advertises the GPU it is told of
    try:
        assert _workers(cfg) == (1, 1.0)
    finally:
        ray.shutdown()
    assert "generate.workers 3 > the 1 GPUs Ray sees" in caplog.text


def test_generation_and_items_count_the_same_folds_when_the_last_fold_is_empty():
    from advfilter.core.layout import splits_of
    from advfilter.pipeline.generate import fold_data

    contexts = pd.DataFrame({"id": [f"c{i}" for i in range(16)], "video_id": [f"v{i}" for i in range(16)],
                             "fold": [i % 4 for i in range(16)], "ctx_a": "A man stands.", "ctx_b": "He",
                             "ending": "waves.", "activity_label": "Waving", "source": "demo"})
    contexts["split"] = splits_of(contexts, 5, 0)  # contexts.folds 5: fold 4 is empty, fold 3 validation
    fold_of = dict(zip(contexts["video_id"], contexts["fold"]))
    *_, videos = fold_data(contexts, 0, seed=0, fraction=0.1, fit_folds="train")
    assert {fold_of[v] for v in videos} == {1, 2}  # the train split's other folds, as items() sees them
