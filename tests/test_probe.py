"""Probes outside the loop: split by video, the TF-IDF, encoder and LM probes, the command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.core.settings import ProbeConfig
from advfilter.core.layout import read_probes
from advfilter.pipeline.filter import adversarial_filter
from advfilter.gauges.probe import by_source, halves, parse_rounds, run_probes, sample
from advfilter.lm.config import EvaluateConfig
from advfilter.lm.evaluate import evaluate
from advfilter.core.lm import to_doc
from conftest import FAST_RUN

ACTS = ["chops the onion on the board.", "pours water into the pot.", "stirs the soup slowly.",
        "washes the knife in the sink.", "dries the plate with a towel.", "cuts the bread into slices."]


def toy_items(n: int, gold_marked: bool, seed: int = 0) -> list[dict]:
    """n items of 4 endings; with ``gold_marked`` the gold alone says "carefully"."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        endings = [str(e) for e in rng.choice(ACTS, 4, replace=False)]
        label = int(rng.integers(4))
        if gold_marked:
            endings[label] = endings[label].replace(".", " carefully.")
        out.append({"ctx_a": f"A cook number {i} works in a kitchen.", "ctx_b": "the cook",
                    "endings": endings, "label": label, "video_id": f"v{i // 2}"})
    return out


def test_halves_never_split_a_video_and_are_seeded():
    items = toy_items(60, gold_marked=False)
    train, test = halves(items, seed=3)
    assert {it["video_id"] for it in train}.isdisjoint({it["video_id"] for it in test})
    assert len(train) + len(test) == 60 and halves(items, seed=3) == (train, test)


def test_halves_of_a_run_are_made_of_whole_folds():
    items = [{**it, "fold": i % 5} for i, it in enumerate(toy_items(50, gold_marked=False))]
    train, test = halves(items, seed=0)
    assert {it["fold"] for it in train} == {0, 2, 4} and {it["fold"] for it in test} == {1, 3}


def test_tfidf_probes_find_a_lexical_cue_and_not_a_missing_one():
    cfg = ProbeConfig()
    marked = {r.probe: r for r in run_probes(toy_items(200, True), cfg, ["tfidf"])}
    blind = {r.probe: r for r in run_probes(toy_items(200, False), cfg, ["tfidf"])}
    assert set(marked) == {"tfidf_ending", "tfidf_context"}
    assert marked["tfidf_ending"].acc > 0.95 and marked["tfidf_context"].acc > 0.95
    assert blind["tfidf_ending"].acc < 0.4 and blind["tfidf_ending"].chance == 0.25
    assert 0 < blind["tfidf_ending"].stderr < 0.05


def test_both_ways_tests_every_item_once():
    items = toy_items(200, False)
    [one_way] = [r for r in run_probes(items, ProbeConfig(), ["tfidf"]) if r.probe == "tfidf_ending"]
    [both] = [r for r in run_probes(items, ProbeConfig(both_ways=True), ["tfidf"]) if r.probe == "tfidf_ending"]
    assert one_way.n_test < 200 and both.n_test == 200 and both.stderr < one_way.stderr


def test_the_encoder_probe_learns_what_tells_the_gold_apart():
    cfg = ProbeConfig(encoder={"epochs": 3, "lr": 1e-4, "max_train": 40, "max_test": 40, "max_length": 32})
    [result] = run_probes(toy_items(80, True), cfg, ["encoder"])
    assert result.probe == "encoder" and result.acc > 0.8 and result.n_test <= 40


def test_the_encoder_probe_tests_a_seeded_random_sample_and_reports_the_counts_used():
    items = toy_items(80, True)
    train, test = halves(items, 0)
    picked = sample(test, 6, seed=0, what="test")
    assert picked != test[:6] and all(it in test for it in picked)  # not the first six
    assert picked == sample(test, 6, seed=0, what="test") != sample(test, 6, seed=1, what="test")
    cfg = ProbeConfig(encoder={"epochs": 1, "max_train": 8, "max_test": 6, "max_length": 32})
    [result] = run_probes(items, cfg, ["encoder"])
    assert (result.n_train, result.n_test) == (8, 6)


def test_the_lm_probe_is_a_causal_lm_zero_shot_scored_as_evaluate_scores_acc_norm(tiny_phi, tmp_path, runner):
    items = [{**it, "activity_label": "Cooking"} for it in toy_items(40, True)]
    cfg = ProbeConfig(lm={"model": str(tiny_phi), "max_test": 12, "batch_size": 5})
    [result] = run_probes(items, cfg, ["lm"])
    assert (result.probe, result.n_train, result.n_test) == ("lm", 0, 12)  # trained on nothing
    tested = sample(halves(items, cfg.seed)[1], 12, cfg.seed, "test")
    scored = evaluate(EvaluateConfig(model=str(tiny_phi), device="cpu"), [to_doc(it) for it in tested], "items")
    assert result.acc == pytest.approx(scored["acc_norm"], abs=1e-4)
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in toy_items(20, False)))  # no activity label
    out = runner.invoke(main, ["probe", "--items", str(path), "--probes", "lm", "--lm", str(tiny_phi)])
    assert out.exit_code == 0, out.output
    assert "lm " in out.stdout and "train 0" in out.stdout


def test_by_source_says_whose_negatives_a_probe_is_fooled_by():
    lstm_heavy, retrieval_heavy = ["gold", "lstm", "lstm", "retrieval"], ["gold", "retrieval", "retrieval", "lstm"]
    test = [{"endings": ["g", "a", "b", "c"], "label": 0, "ending_sources": s}
            for s in (lstm_heavy, lstm_heavy, retrieval_heavy, retrieval_heavy)]
    picks = np.array([3, 0, 1, 0])  # both wrong picks are retrieved endings
    got = by_source(picks, test)
    assert got == {"lstm": {"share": 0.5, "picked": 0.0, "items": 2, "acc": 0.5},
                   "retrieval": {"share": 0.5, "picked": 2.0, "items": 2, "acc": 0.5}}
    one_writer = [{**it, "ending_sources": ["gold", "lstm", "lstm", "lstm"]} for it in test]
    assert by_source(picks, one_writer) is None and by_source(picks, toy_items(4, False)) is None


def test_rounds_are_parsed_against_the_last_finished_one():
    assert parse_rounds("0,last", 7) == [0, 7] and parse_rounds("all", 2) == [0, 1, 2]
    from advfilter.core.errors import RunError

    with pytest.raises(RunError, match="round 9 does not exist"):
        parse_rounds("0,9", 7)


def test_probe_command_writes_one_line_per_round_and_probe_and_reruns_replace_them(
        generated_run, copy_run, runner):
    run = copy_run(generated_run)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 2}), run)
    for _ in range(2):
        result = runner.invoke(main, ["probe", "--run", str(run.root), "--probes", "tfidf"])
        assert result.exit_code == 0, result.output
    rows = read_probes(run)
    assert [(p["round"], p["probe"]) for p in rows] == [
        (0, "tfidf_context"), (0, "tfidf_ending"), (2, "tfidf_context"), (2, "tfidf_ending")]
    assert "round  2: tfidf_ending" in result.stdout
    report = runner.invoke(main, ["report", "--run", str(run.root)])
    assert report.exit_code == 0 and "probes (outside the loop" in report.stdout


def test_filter_probe_every_records_the_cheap_probe_during_filtering(generated_run, copy_run, runner):
    run = copy_run(generated_run)
    result = runner.invoke(main, ["filter", "--run", str(run.root), "--rounds", "2", "--discriminators", "mlp",
                                  "--probe-every", "1", "--set", "filter.discriminator.mlp.epochs=1"])
    assert result.exit_code == 0, result.output
    assert {p["round"] for p in read_probes(run)} == {1, 2} and "tfidf_ending" in result.stdout


def test_a_malformed_items_file_is_one_line_and_exit_2(tmp_path, runner):
    bad = tmp_path / "items.jsonl"
    bad.write_text(json.dumps({"ctx_a": "a", "ctx_b": "b", "endings": ["x", "y"], "label": 5}) + "\n")
    result = runner.invoke(main, ["probe", "--items", str(bad)])
    assert result.exit_code == 2 and f"{bad}: line 1: label 5 is not an index" in result.stderr


def test_hellaswag_items_sit_between_chance_and_easy_for_the_tfidf_probe(runner, anet_dev):
    items = anet_dev / "hellaswag_items.jsonl"
    result = runner.invoke(main, ["probe", "--items", str(items), "--probes", "tfidf"])
    assert result.exit_code == 0, result.output
    accs = [float(line.split("acc=")[1].split()[0]) for line in result.stdout.splitlines()]
    assert len(accs) == 2 and all(0.25 < a < 0.5 for a in accs)
