"""The strong model of the last rounds (``filter.strong``): a fine-tuned cross-encoder that
drives from its round on, trains a bounded number of steps, scores a shortlist, and carries
each held-out fold's weights over to the next round that holds that fold out; and the
ambiguity guard built on the driver's scores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.core.layout import items, read_metrics, read_round
from advfilter.core.scores import ambiguous_ids, latest_margins
from advfilter.core.store import RunStore
from advfilter.pipeline.filter import adversarial_filter
from advfilter.pipeline.strong import shortlist, strong_scores
from conftest import FAST_RUN
from discriminators.base import batches

STRONG = {"discriminator": "bert", "from_round": 2, "steps": 3, "shortlist": 4}


@pytest.fixture
def run_filter(tiny_bert):
    """run_filter(run, **overrides): FAST_RUN's filter, a tiny BERT driving from round 2."""
    def _run(run: RunStore, **overrides) -> None:
        bert = {"model": str(tiny_bert), "max_length": 32, "batch_size": 4}
        adversarial_filter(load_config(None, {**FAST_RUN, "filter.strong": STRONG, "filter.discriminator": {
            **FAST_RUN["filter.discriminator"], "bert": bert}, **overrides}), run)
    return _run


def assignments(run: RunStore, r: int) -> list[list[int]]:
    return read_round(run, r)["negatives"].map(list).tolist()


def folds_tested(run: RunStore, r: int) -> set[int]:
    """The folds of the contexts round ``r`` tested (those with driver scores)."""
    table = read_round(run, r)
    contexts = {i["context_id"]: i["fold"] for i in items(run, 0)}
    return {contexts[c] for c, s in zip(table["context_id"], table["scores"]) if s is not None}


# --- the pieces ----------------------------------------------------------------------------

def test_a_bounded_number_of_steps_takes_exactly_that_many_batches_across_passes():
    rng = np.random.default_rng(0)
    plan = batches(10, 4, epochs=1, rng=rng, steps=7)
    assert [len(b) for b in plan] == [4, 4, 2] * 2 + [4]
    assert sorted(np.concatenate(plan[:3])) == list(range(10))  # each pass sees every example once
    assert len(batches(10, 4, epochs=2, rng=np.random.default_rng(0))) == 6


def test_the_strong_model_scores_its_shortlist_and_nothing_off_it_can_be_swapped_in():
    pools = [np.array([0.1, 0.9, 0.5, 0.3, 0.8]), np.array([0.2, 0.1])]
    picks = shortlist(pools, np.array([[0], [1]]), size=2)
    assert [p.tolist() for p in picks] == [[0, 1, 4], [0, 1]]  # top 2 and the assigned one

    def score_rows(name, model, rows):
        return rows.astype(np.float32)  # a row's score is its bank row

    gold, full = strong_scores("bert", None, score_rows, np.array([0, 10]), pools, np.array([[0], [1]]), 2)
    assert gold.tolist() == [0, 10]
    assert full[0].tolist() == [1, 2, -np.inf, -np.inf, 5] and full[1].tolist() == [11, 12]


# --- in a run --------------------------------------------------------------------------------

def test_the_strong_model_drives_from_its_round_on_and_the_ensemble_before(generated_run, copy_run, run_filter):
    run = copy_run(generated_run)
    run_filter(run)
    metrics = read_metrics(run)
    assert [m["driver"] for m in metrics] == ["ensemble", "bert", "bert"]
    assert "bert" not in metrics[0]["accuracy"] and "bert" in metrics[1]["accuracy"]
    assert {"mlp", "bow", "cnn", "ensemble"} <= set(metrics[2]["accuracy"])  # still reported


def test_each_held_out_fold_keeps_its_own_model_which_never_trains_on_it(generated_run, copy_run, run_filter):
    run = copy_run(generated_run)
    run_filter(run, **{"filter.rounds": 4})
    saved = sorted(p.name for p in run.path("af/strong").iterdir())
    # two folds (two groups) take turns: each round holds one out; older files are pruned
    assert len(saved) == 2 and {name.split(".round-")[1] for name in saved} == {"03.pt", "04.pt"}
    for name in saved:
        r = int(name.split(".round-")[1][:2])
        assert name.split(".round-")[0] == "groups-" + "-".join(str(f % 2) for f in sorted(folds_tested(run, r)))


def test_warm_start_changes_only_the_rounds_whose_fold_was_held_out_before(generated_run, copy_run, run_filter):
    warm, cold = copy_run(generated_run, "warm"), copy_run(generated_run, "cold")
    run_filter(warm, **{"filter.rounds": 4})
    run_filter(cold, **{"filter.rounds": 4, "filter.strong": {**STRONG, "warm_start": False}})
    held = [folds_tested(warm, r) for r in (2, 3, 4)]
    again = next(r for r, folds in zip((2, 3, 4), held) if folds in held[:r - 2])  # first repeat
    for r in range(1, again):
        assert assignments(warm, r) == assignments(cold, r)  # each fold's first strong round
    assert assignments(warm, again) != assignments(cold, again)  # continues that fold's model


def test_a_strong_run_killed_after_saving_its_model_resumes_to_the_uninterrupted_assignments(
        generated_run, copy_run, run_filter):
    straight, killed = copy_run(generated_run, "a"), copy_run(generated_run, "b")
    run_filter(straight, **{"filter.rounds": 4})
    run_filter(killed, **{"filter.rounds": 3})
    killed.path("af/round-03.parquet").unlink()  # died after round 3 saved its weights
    run_filter(RunStore(killed.root), **{"filter.rounds": 4})
    assert assignments(RunStore(killed.root), 4) == assignments(straight, 4)


# --- the ambiguity guard -------------------------------------------------------------------

def test_every_round_records_the_drivers_gold_scores_and_its_share_of_likely_ambiguous_items(
        generated_run, copy_run, run_filter):
    run = copy_run(generated_run)
    run_filter(run)
    table = read_round(run, 3)
    tested = table["scores"].notna()
    assert table.loc[tested, "gold"].notna().all() and table.loc[~tested, "gold"].isna().all()
    margins = latest_margins(run, 3)
    active = table.loc[table["negatives"].map(lambda n: n[0] >= 0), "context_id"]
    assert set(margins) == set(active)  # two folds, three rounds: each one tested
    assert all(0 <= m["ambiguous"] <= 1 for m in read_metrics(run))
    threshold = float(np.median(list(margins.values())))
    assert ambiguous_ids(run, 3, threshold) == {c for c, m in margins.items() if m >= threshold}


def test_export_drop_ambiguous_leaves_out_the_ambiguous_items_people_have_not_kept(
        generated_run, copy_run, run_filter, runner, tmp_path):
    run = copy_run(generated_run)
    run_filter(run)
    margins = latest_margins(run, 3)
    threshold = float(np.median(list(margins.values())))
    flagged = sorted(c for c, m in margins.items() if m >= threshold)
    kept = flagged[0]  # people verified this one: it stays
    run.path("decisions.jsonl").write_text(json.dumps({"context_id": kept, "decision": "keep"}) + "\n")
    out = tmp_path / "items.jsonl"
    result = runner.invoke(main, ["export", "--run", str(run.root), "--out", str(out), "--drop-ambiguous",
                                  "--set", f"filter.ambiguous_margin={threshold}"])
    assert result.exit_code == 0, result.output
    exported = {json.loads(line)["context_id"] for line in out.read_text().splitlines()}
    assert exported == (set(margins) - set(flagged)) | {kept}
    assert f"ambiguous: left out {len(flagged) - 1} items" in result.output


def test_an_unknown_preset_is_one_line_and_exit_2(runner, tmp_path):
    result = runner.invoke(main, ["generate", "--source", "activitynet", "--input", str(tmp_path / "x.json"),
                                  "--preset", "fastest"])
    assert result.exit_code == 2
    assert "--preset fastest: no such preset; choose one of: quick" in result.output


def test_the_quick_preset_sits_under_config_files_and_set():
    quick = load_config(None, preset="quick")
    assert quick.filter.rounds == 6 and quick.filter.strong.discriminator is None
    assert quick.generate.num_candidates == 12
    assert load_config(None, {"filter.rounds": 9}, preset="quick").filter.rounds == 9


def test_the_strong_model_cannot_also_be_an_ensemble_member_nor_have_one_group():
    from advfilter.core.errors import ConfigError

    with pytest.raises(ConfigError, match="strong.discriminator 'bert' is also one of the discriminators"):
        load_config(None, {"filter.discriminators": ["bow", "bert"]})
    with pytest.raises(ConfigError, match="groups 1 would leave the strong model no fold to train on"):
        load_config(None, {"filter.strong.groups": 1})
