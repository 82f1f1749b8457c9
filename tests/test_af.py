"""Algorithm 1: assignments, swaps, rounds on disk, resume, export and report."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from advfilter.pipeline.algorithm1 import initial_assignment, margins, swap
from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError, RunError
from advfilter.core.layout import BANK_DIR, items, read_metrics, read_round
from advfilter.pipeline.filter import adversarial_filter
from advfilter.core.store import RunStore
from conftest import FAST_RUN

# --- the algorithm on hand-made scores ---------------------------------------------------


def test_initial_assignment_draws_distinct_pool_indices_and_is_seeded():
    sizes = np.array([10, 3, 8, 2])
    a = initial_assignment(sizes, 3, seed=1)
    assert (a[[0, 1, 2]] < sizes[[0, 1, 2], None]).all()
    assert all(len(set(row)) == 3 for row in a[:3])
    assert (a[3] == -1).all()  # a pool of 2 cannot give 3 negatives
    np.testing.assert_array_equal(a, initial_assignment(sizes, 3, seed=1))


def test_swap_replaces_easy_negatives_by_unassigned_candidates_scored_above_the_gold():
    assignment = np.array([[0, 1, 2]])
    pool = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.0])  # gold scores 0.5
    new, swaps = swap(assignment, np.array([0.5]), [pool], np.array([0]), max_swaps=5,
                      choice="random", rng=np.random.default_rng(0))
    assert swaps == 2 and new[0, 1] == 1  # the hard negative (0.9) stays
    assert set(new[0]) == {1, 3, 4}  # easy 0 and 2 out, adversarial 3 and 4 in


def test_swap_closest_takes_the_candidates_scored_just_above_the_gold():
    assignment = np.array([[0, 1, 2]])
    pool = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.55, 0.0])  # gold scores 0.5
    new, swaps = swap(assignment, np.array([0.5]), [pool], np.array([0]), max_swaps=2,
                      choice="closest", rng=np.random.default_rng(0))
    assert swaps == 2 and set(new[0]) == {1, 4, 5}  # 0.6 and 0.55, not 0.8


def test_swap_with_an_ending_guard_skips_candidates_more_typical_than_the_gold():
    assignment = np.array([[0, 1, 2]])
    pool = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7])  # driver: 3, 4 and 5 beat the gold (0.5)
    typical = np.array([0.0, 0.0, 0.0, 0.9, 0.1, 0.2])  # the guard: 3 looks more gold than the gold (0.4)
    new, swaps = swap(assignment, np.array([0.5]), [pool], np.array([0]), max_swaps=3,
                      choice="random", rng=np.random.default_rng(0),
                      guard=(np.array([0.4]), [typical]))
    assert swaps == 2 and 3 not in new[0] and {4, 5} <= set(new[0])


def test_swap_never_exceeds_max_swaps_and_leaves_other_contexts_alone():
    assignment = np.array([[0, 1, 2], [0, 1, 2]])
    pool = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    new, swaps = swap(assignment, np.array([0.5]), [pool], np.array([1]), max_swaps=1,
                      choice="weighted", rng=np.random.default_rng(0))
    assert swaps == 1 and (new[0] == assignment[0]).all()
    assert (new[1] != assignment[1]).sum() == 1


def test_swap_never_draws_an_ending_already_a_negative_as_often_as_its_limit():
    from advfilter.pipeline.algorithm1 import Reuse

    # two contexts share the text "t1" at pool position 3; context 0 already uses it
    text = np.array([9, 0, 1, 2, 3, 4, 9, 5, 6, 7, 3, 8])  # rows: gold + 5 candidates, twice
    count = np.bincount([0, 3, 8, 5], minlength=10)  # texts of the negatives in use
    reuse = Reuse(text, count, limit=np.ones(10, dtype=int))
    assignment = np.array([[0, 3], [4, 0]])
    pools, rows = [np.array([0.0, 0.0, 0.0, 0.9, 0.95])], [np.arange(7, 12)]  # test: context 1
    new, swaps = swap(assignment, np.array([0.5]), pools, np.array([1]), 2, "random",
                      np.random.default_rng(0), (reuse, rows))
    assert swaps == 0 and (new == assignment).all()  # its only adversarial text is in use
    reuse.limit[3] = 2  # e.g. text 3 is the gold of two items
    new, swaps = swap(assignment, np.array([0.5]), pools, np.array([1]), 2, "random",
                      np.random.default_rng(0), (reuse, rows))
    assert swaps == 1 and new[1, 1] == 3 and reuse.count[3] == 2 and reuse.count[5] == 0


def test_nothing_is_swapped_when_the_gold_beats_the_whole_pool():
    new, swaps = swap(np.array([[0, 1]]), np.array([2.0]), [np.array([0.0, 1.0, 1.5])],
                      np.array([0]), 2, False, np.random.default_rng(0))
    assert swaps == 0 and (new == [[0, 1]]).all()


# --- the stage on a real run -------------------------------------------------------------

def run_filter(run: RunStore, **overrides):
    return adversarial_filter(load_config(None, {**FAST_RUN, **overrides}), run)


def assignments(run: RunStore, r: int) -> list[list[int]]:
    return read_round(run, r)["negatives"].map(list).tolist()


def test_every_round_writes_its_assignment_and_a_metrics_line(generated_run, copy_run):
    run = copy_run(generated_run)
    summary = run_filter(run)
    metrics = read_metrics(run)
    assert summary.rounds == 3 and [m["round"] for m in metrics] == [1, 2, 3]
    assert set(metrics[0]["accuracy"]) == {"mlp", "bow", "cnn", "ensemble"}
    assert {"changed_frac", "swaps", "train_s", "score_s", "bookkeeping_s"} <= set(metrics[0])
    assert all(run.path(f"af/round-{r:02d}.parquet").exists() for r in range(4))
    assert assignments(run, 3) != assignments(run, 0)


def test_a_killed_run_resumes_to_the_assignments_of_an_uninterrupted_one(generated_run, copy_run):
    straight = copy_run(generated_run, "a")
    run_filter(straight)
    killed = copy_run(generated_run, "b")
    run_filter(killed, **{"filter.rounds": 2})
    killed.path("af/round-02.parquet").unlink()  # died after round 1 was complete
    summary = run_filter(RunStore(killed.root))
    assert summary.resumed_from == 1
    assert assignments(RunStore(killed.root), 3) == assignments(straight, 3)


def test_a_finished_run_is_reused_and_other_settings_refused(generated_run, copy_run):
    run = copy_run(generated_run)
    run_filter(run, **{"filter.rounds": 1})
    assert run_filter(RunStore(run.root), **{"filter.rounds": 1}).reused
    with pytest.raises(RunError, match="changed: filter"):
        run_filter(RunStore(run.root), **{"filter.negatives": 2})


def test_export_places_the_gold_at_a_seeded_position_among_the_assigned_endings(generated_run, copy_run):
    run = copy_run(generated_run)
    run_filter(run, **{"filter.rounds": 1})
    contexts = pd.read_parquet(run.path("contexts.parquet")).set_index("id")
    records = list(items(run, 1))
    first = records[0]
    assert set(first) >= {"ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label",
                          "source_id", "split", "split_type"}
    assert all(r["endings"][r["label"]] == contexts.loc[r["context_id"], "ending"] for r in records)
    assert len({r["label"] for r in records}) > 1 and all(len(r["endings"]) == 4 for r in records)
    assert [r["label"] for r in items(run, 1)] == [r["label"] for r in records]
    assert "ending_sources" not in first  # exports carry no writers; the probes ask for them
    writers = [r["ending_sources"] for r in items(run, 1, sources=True)]
    assert all(w[r["label"]] == "gold" and w.count("random") == 3 for w, r in zip(writers, records))


def test_filter_export_and_report_commands(generated_run, copy_run, runner, tmp_path):
    run = copy_run(generated_run)
    result = runner.invoke(main, ["filter", "--run", str(run.root), "--rounds", "2",
                                  "--discriminators", "mlp,bow", "--set", "filter.discriminator.mlp.epochs=1",
                                  "--set", "filter.discriminator.bow.epochs=1", "--set", "filter.ensemble.epochs=1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("round ") >= 2 and "ensemble=" in result.stdout
    out = tmp_path / "items.jsonl"
    result = runner.invoke(main, ["export", "--run", str(run.root), "--format", "hellaswag",
                                  "--out", str(out), "--round", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text().splitlines()[0])["round"] == 0
    result = runner.invoke(main, ["report", "--run", str(run.root)])
    assert result.exit_code == 0, result.output
    assert run.path("af/report.png").read_bytes()[:4] == b"\x89PNG"


def test_a_filtered_run_refuses_other_settings_until_restarted_which_keeps_its_bank(
        generated_run, copy_run, runner):
    """(The refusal said "use a new --out or pass --overwrite": filter has neither.)"""
    run = copy_run(generated_run)
    base = ["filter", "--run", str(run.root), "--rounds", "1", "--discriminators", "bow",
            "--set", "filter.discriminator.bow.epochs=1"]
    assert runner.invoke(main, base).exit_code == 0
    bank = {p.name: p.stat().st_mtime_ns for p in run.path(BANK_DIR).iterdir()}
    result = runner.invoke(main, [*base, "--negatives", "2"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "changed: filter" in result.stderr and "pass --restart" in result.stderr and "--out" not in result.stderr
    result = runner.invoke(main, [*base, "--negatives", "2", "--restart"])
    assert result.exit_code == 0, result.output
    assert "resumed after round 0" in result.stdout
    assert all(len(n) == 2 for n in read_round(RunStore(run.root), 1)["negatives"])
    assert {p.name: p.stat().st_mtime_ns for p in run.path(BANK_DIR).iterdir()} == bank
    assert not run.path("af.discarded").exists()


def test_filter_before_generation_is_a_clear_error(tmp_path, runner, write):
    (tmp_path / "r").mkdir()
    result = runner.invoke(main, ["filter", "--run", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no manifest.json" in result.stderr


def test_an_unknown_discriminator_is_refused_before_the_stage_starts(generated_run, copy_run, runner):
    run = copy_run(generated_run)
    result = runner.invoke(main, ["filter", "--run", str(run.root), "--rounds", "1", "--discriminators", "svm"])
    assert result.exit_code == 2 and "unknown discriminator 'svm'" in result.stderr
    assert run.stage("filter") is None
    result = runner.invoke(main, ["filter", "--run", str(run.root), "--rounds", "1", "--discriminators", "mlp",
                                  "--set", "filter.discriminator.mlp.epochs=1"])
    assert result.exit_code == 0, result.output


def test_pools_scored_on_two_ray_actors_give_the_single_process_assignments(generated_run, copy_run):
    alone, spread = copy_run(generated_run, "alone"), copy_run(generated_run, "spread")
    run_filter(alone, **{"filter.rounds": 2})
    run_filter(spread, **{"filter.rounds": 2, "filter.score_workers": 2})
    for r in (1, 2):
        assert assignments(alone, r) == assignments(spread, r)


def test_filtering_stops_once_the_driver_stays_near_chance(generated_run, copy_run):
    run = copy_run(generated_run)
    summary = run_filter(run, **{"filter.rounds": 6, "filter.stop.margin": 1.0, "filter.stop.patience": 2})
    assert summary.rounds == 2 and "within 1.0 of chance for 2 rounds" in summary.stopped
    again = run_filter(run, **{"filter.rounds": 6, "filter.stop.margin": 1.0, "filter.stop.patience": 2})
    assert again.reused and again.rounds == 2


def test_more_rounds_than_a_stopped_run_was_asked_for_go_on_and_say_why_it_had_stopped(
        generated_run, copy_run, runner):
    run = copy_run(generated_run)
    stop = {"filter.stop.margin": 1.0, "filter.stop.patience": 2}
    assert run_filter(run, **{"filter.rounds": 3, **stop}).rounds == 2
    result = runner.invoke(main, ["filter", "--run", str(run.root), "--rounds", "4",  # the run's own config
                                  "--set", "filter.stop.margin=1.0", "--set", "filter.stop.patience=2"])
    assert result.exit_code == 0, result.output
    assert "had stopped after round 2 (the driver stayed within 1.0 of chance for 2 rounds)" in result.output
    assert "went on to round 4" in result.output and len(read_metrics(run)) == 4


def test_filtering_stops_once_the_word_level_probe_reaches_its_target(generated_run, copy_run):
    run = copy_run(generated_run)
    summary = run_filter(run, **{"filter.rounds": 6, "filter.probe_every": 1, "filter.stop.probe": 1.0})
    assert summary.rounds == 1 and "the tfidf_context probe reached" in summary.stopped
    assert summary.stopped.endswith("at round 1")
    again = run_filter(run, **{"filter.rounds": 6, "filter.probe_every": 1, "filter.stop.probe": 1.0})
    assert again.reused and again.rounds == 1
    with pytest.raises(ConfigError, match="stop.probe needs probe_every"):
        load_config(None, {"filter.stop.probe": 0.34})


def test_an_ending_guard_swaps_less_and_must_be_a_chosen_discriminator(generated_run, copy_run):
    free, guarded = copy_run(generated_run), copy_run(generated_run, "guarded")
    settings = {"filter.rounds": 2, "filter.discriminators": ["bow", "cnn"]}
    run_filter(free, **settings)
    run_filter(guarded, **settings, **{"filter.ending_guard": "bow"})
    swaps = [[m["swaps"] for m in read_metrics(run)] for run in (free, guarded)]
    assert swaps[1][0] < swaps[0][0]  # round 1 starts from the same assignment
    from advfilter.pipeline.algorithm1 import Members
    from advfilter.pipeline.filter import filter_settings

    def recorded(overrides):
        f = load_config(None, overrides).filter
        return filter_settings(f, Members.of(f))

    guard = {"filter.ending_guard": "bow"}  # unset, it leaves runs filtered before it alone
    assert "ending_guard" not in recorded(settings)
    assert recorded({**settings, **guard})["ending_guard"] == "bow"
    with pytest.raises(ConfigError, match="ending_guard 'mlp' is not one of the discriminators"):
        load_config(None, {"filter.ending_guard": "mlp"})


def test_candidates_must_fool_every_model_and_a_negative_one_model_sees_through_is_easy():
    driver = (np.array([0.5]), [np.array([0.9, 0.1, 0.7, 0.6])])
    also = (np.array([0.5]), [np.array([0.2, 0.8, 0.9, 0.1])])
    joint = margins([driver, also])[0]
    np.testing.assert_allclose(joint, [-0.3, -0.4, 0.2, -0.4])
    # negatives 0 and 3: the driver is fooled by both, the other model by neither
    new, n = swap(np.array([[0, 3]]), np.zeros(1), [joint], np.array([0]), 2, "random",
                  np.random.default_rng(0))
    assert n == 1 and 2 in new[0]  # only candidate 2 fools both


def test_also_fool_names_models_that_are_trained(generated_run, copy_run):
    run = copy_run(generated_run)
    run_filter(run, **{"filter.rounds": 1, "filter.discriminators": ["bow", "cnn"], "filter.also_fool": ["bow"]})
    assert read_metrics(run)[0]["swaps"] > 0
    with pytest.raises(ConfigError, match=r"also_fool \['bert'\] is not among the trained models"):
        load_config(None, {"filter.also_fool": ["bert"]})


def test_a_discriminator_below_chance_is_flagged_in_the_metrics_and_the_round_line(generated_run, copy_run):
    from advfilter.pipeline.filter import below_chance

    f = load_config(None, {"filter.negatives": 3, "filter.stop.margin": 0.05}).filter
    assert below_chance({"bow": 0.18, "cnn": 0.21, "mlp": 0.6}, f) == ["bow"]
    run = copy_run(generated_run)
    run_filter(run, **{"filter.rounds": 1})
    assert "below_chance" in read_metrics(run)[0]


def test_an_ending_may_be_a_negative_max_reuse_times_per_item_it_is_the_gold_of(generated_run, copy_run):
    from advfilter.pipeline.algorithm1 import Reuse, initial_assignment
    from discriminators import Bank

    bank = Bank.of_run(copy_run(generated_run))
    active = np.arange(len(bank.context_ids))
    assignment = initial_assignment(bank.pool_sizes, 3, seed=0)
    reuse = Reuse.of(bank, assignment, active, max_reuse=2)
    golds = reuse.text[bank.offsets[:-1]]
    assert (reuse.limit[golds] >= 2).all() and reuse.count.sum() == 3 * len(active)
    twice = np.flatnonzero(np.bincount(golds) == 2)
    assert (reuse.limit[twice] == 4).all()


def test_a_rewritten_gold_counts_as_that_gold_against_the_reuse_limit():
    """rewrite turns another item's gold into new words ("Rinse the cup." → "Rinse the bowl."):
    counted as a text of its own, every gold could come back as a negative of any number of
    items (70 % of a WikiHow run's final negatives were such copies)."""
    import pandas as pd

    from advfilter.core.layout import Rows
    from advfilter.pipeline.algorithm1 import Reuse
    from discriminators import Bank
    from discriminators.inputs import Corpus

    endings = ["Rinse the cup.", "Dry it.", "Fold it.", "Stack it.", "Rinse the bowl.", "Rinse the plate."]
    origins = ["", "", "", "", "Rinse the cup.", "Rinse the cup."]  # golds first: a's, then b's
    rows = Rows(np.array(["a", "b"]), np.array([0, 3, 6], dtype=np.int64),
                pd.DataFrame({"ending": endings, "origin": origins}))
    bank = Bank(Corpus(rows, np.array(["x", "y"]), np.array(["He", "She"])))
    ids = bank.text_ids
    assert ids[4] == ids[5] == ids[0] and len(set(ids[[0, 1, 2, 3]])) == 4
    reuse = Reuse.of(bank, np.array([[0, 1], [0, 1]]), np.arange(2), max_reuse=2)
    assert reuse.count[ids[0]] == 2 == reuse.limit[ids[0]]  # b's two rewrites used the cup up
    old = Bank(Corpus(Rows(rows.context_ids, rows.offsets, rows.table[["ending"]]), bank.corpus.ctx_a,
                      bank.corpus.ctx_b))
    assert len(set(old.text_ids)) == 6  # a run without origins: each text its own


def test_text_ids_take_memory_by_the_texts_not_by_the_longest_one_times_the_rows():
    """At HellaSwag's scale (millions of rows), a fixed-width copy of every ending as wide as
    the longest took gigabytes at the start of each filter run."""
    import tracemalloc

    from advfilter.core.layout import Rows
    from discriminators import Bank
    from discriminators.inputs import Corpus

    n = 20_000
    endings = [f"ending {i}." for i in range(n - 1)] + ["word " * 400]  # one 2,000-character ending
    rows = Rows(np.array(["a"]), np.array([0, n], dtype=np.int64), pd.DataFrame({"ending": endings}))
    bank = Bank(Corpus(rows, np.array(["x"]), np.array(["He"])))
    tracemalloc.start()
    ids = bank.text_ids
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(set(ids)) == n and ids.max() == n - 1
    assert peak < 40 * 2**20  # a 20,000 x 2,000-character fixed-width array alone is 160 MB


def test_a_fold_holdout_takes_whole_folds_each_round_and_every_fold_takes_its_turn(
        generated_run, copy_run):
    from advfilter.pipeline.algorithm1 import holdout_round
    from discriminators import Bank

    run = copy_run(generated_run)
    bank = Bank.of_run(run)
    active = np.arange(len(bank.context_ids))
    folds = bank.corpus.folds
    f = load_config(None, {**FAST_RUN, "filter.holdout": "folds"}).filter
    tested = []
    for r in range(1, 5):  # two folds: each cycle of two rounds tests each once
        test, train = holdout_round(bank, active, f, r, 0, np.random.default_rng(r))
        assert set(folds[test]).isdisjoint(folds[train]) and len(test) and len(train)
        assert len(test) + len(train) == len(active)
        [fold] = set(folds[test])
        tested.append(fold)
    assert sorted(tested[:2]) == sorted(tested[2:]) == [0, 1]
