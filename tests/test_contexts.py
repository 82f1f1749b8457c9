"""Sentence pairs → contexts: what each context holds, SWAG's filters, and fold assignment."""
from __future__ import annotations

import pytest

from advfilter.core.config import load_config
from advfilter.pipeline.contexts import COLUMNS, contexts_from_records, fold_of
from advfilter.core.errors import InputError
from advfilter.sources import Item, Story

S1 = "A woman is standing in a kitchen next to a stove."
S2 = "The woman in an apron cracks two eggs into a bowl."
S3 = "Then she stirs the eggs with a fork until they are smooth."


def story(*sentences, video_id="v1", input_file="train.json"):
    return Story("activitynet", video_id, "Cooking", tuple(sentences), input_file)


def build(records, nlp, **overrides):
    return contexts_from_records(records, load_config(None, overrides), nlp)


def test_each_consecutive_pair_becomes_one_context(nlp):
    table, summary = build([story(S1, S2, S3)], nlp)
    assert list(table.columns) == COLUMNS
    assert table[["ctx_a", "ctx_b", "ending"]].values.tolist() == [
        [S1, "The woman in an apron", "cracks two eggs into a bowl."],
        [S2, "Then she", "stirs the eggs with a fork until they are smooth."],
    ]
    assert table["id"].tolist() == ["activitynet~train~v1~0", "activitynet~train~v1~1"]
    assert (summary.contexts, summary.pairs, summary.videos) == (2, 2, 1)


def test_a_first_sentence_that_is_no_gold_lends_its_verb_phrase_as_a_free_ending(nlp):
    table, _ = build([story(S1, S2, S3)], nlp)
    # S1 opens the video: its verb phrase is never an answer. S2 is the first context's gold.
    assert table["ctx_a_ending"].tolist() == ["is standing in a kitchen next to a stove.", ""]


@pytest.mark.parametrize("second, reason", [
    ("A bowl of eggs on the table.", "no_subject"),
    ("The woman smiles.", "ending_too_short"),
    ("The woman cracks eggs. She smiles at the camera and laughs.", "s2_not_one_sentence"),
    ("The woman " + "stirs and " * 14 + "stops.", "ending_too_long"),
])
def test_pairs_failing_a_filter_are_counted_by_reason(nlp, second, reason):
    table, summary = build([story(S1, second)], nlp)
    assert table.empty and summary.skipped == {reason: 1}


def test_short_first_sentence_is_skipped(nlp):
    _, summary = build([story("A woman cooks.", S2)], nlp)
    assert summary.skipped == {"ctx_a_too_short": 1}


def test_filter_bounds_come_from_the_config(nlp):
    table, _ = build([story("A woman cooks.", S2)], nlp, **{"contexts.min_ctx_a_tokens": 3})
    assert len(table) == 1


def test_fold_depends_only_on_seed_and_video_id():
    assert fold_of("v_abc", seed=3, folds=5) == fold_of("v_abc", seed=3, folds=5)
    folds = {fold_of(f"v{i}", seed=0, folds=5) for i in range(200)}
    assert folds == {0, 1, 2, 3, 4}
    reseeded = [fold_of(f"v{i}", 1, 5) for i in range(50)]
    assert reseeded != [fold_of(f"v{i}", 0, 5) for i in range(50)]


def test_all_contexts_of_a_video_share_its_fold_whatever_else_is_in_the_corpus(nlp):
    alone, _ = build([story(S1, S2, S3, video_id="v7")], nlp, **{"seed": 4})
    others = [story(S1, S2, video_id=f"o{i}") for i in range(5)]
    mixed, _ = build([*others, story(S1, S2, S3, video_id="v7")], nlp, **{"seed": 4})
    assert set(alone["fold"]) == set(mixed[mixed.video_id == "v7"]["fold"])
    assert len(set(alone["fold"])) == 1


def test_ready_items_are_kept_as_given_without_parsing():
    item = Item("jsonl", "x1", "vid", "Steps", "First.", "The man", "walks away.", "d.jsonl")
    table, _ = contexts_from_records([item], load_config(), nlp=None)
    assert table[["id", "ctx_b", "ending"]].values.tolist() == [["jsonl~d~x1", "The man", "walks away."]]


def test_the_same_video_read_twice_is_an_input_error(nlp):
    with pytest.raises(InputError, match="duplicate context id") as err:
        build([story(S1, S2), story(S1, S2)], nlp)
    assert err.value.record == "video v1"
