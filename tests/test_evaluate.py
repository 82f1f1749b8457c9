"""`advfilter evaluate`: lm-evaluation-harness's HellaSwag scoring, batched with a shared cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advfilter.cli import main
from advfilter.core.models import load_causal_lm
from advfilter.core.lm import Doc, Scorer, preprocess, to_doc
from advfilter.lm.evaluate import summarize

RECORD = {"activity_label": "Baking cookies", "ctx_a": "A woman cracks two eggs into a bowl.",
          "ctx_b": "she", "endings": ["stirs the eggs with a fork.", "flies [title] away.",
                                      "sings.", "puts the bowl in the oven and waits."],
          "label": 0, "source_id": "activitynet~v_1", "split": "val"}


def test_query_and_choices_follow_the_harness_preprocessing():
    doc = to_doc(RECORD)
    assert doc.query == "Baking cookies: A woman cracks two eggs into a bowl. She"
    assert doc.choices[1] == "flies. away."
    assert preprocess(" Mix [step] it  well [title] Done ") == "Mix it well. Done"


def test_acc_takes_the_sum_and_acc_norm_the_sum_per_character():
    docs = [Doc("q", ("a b c d e f", "ab"), 0, "x", "s"), Doc("q", ("abcd", "ab"), 1, "y", "s")]
    # doc 1: sums -11 vs -4 -> acc picks 1 (wrong); per char -1.0 vs -2.0 -> acc_norm picks 0 (right)
    # doc 2: sums -8 vs -5 -> acc picks 1 (right); per char -2.0 vs -2.5 -> acc_norm picks 0 (wrong)
    results = summarize(docs, [np.array([-11.0, -4.0]), np.array([-8.0, -5.0])])
    assert (results["acc"], results["acc_norm"], results["n"]) == (0.5, 0.5, 2)
    assert results["by"]["activity"]["x"] == {"n": 1, "acc": 0.0, "acc_norm": 1.0}
    assert results["confusion_gold_by_chosen_norm"] == [[1, 0], [1, 0]]


@pytest.fixture(scope="module")
def scorer(tiny_phi):
    model, tok = load_causal_lm(str(tiny_phi))
    return Scorer(model.eval(), tok)


def naive(scorer, doc):
    """One unpadded forward pass per (context, choice): the reference."""
    out = []
    for choice in doc.choices:
        ctx, cont = scorer.encode_pair(doc.query, " " + choice)
        with torch.no_grad():
            logp = torch.log_softmax(scorer.model(torch.tensor([ctx + cont])).logits[0].float(), -1)
        out.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)))
    return np.array(out)


def test_batched_shared_context_scores_equal_one_pass_per_pair(scorer):
    docs = [to_doc(RECORD), to_doc({**RECORD, "ctx_a": "A man.", "endings": ["x.", "runs far away.", "a", "b c"]}),
            to_doc({**RECORD, "activity_label": "Surfing", "ctx_b": "the surfer in a red shirt"})]
    for doc, scores in zip(docs, scorer.loglikelihoods(docs)):
        np.testing.assert_allclose(scores, naive(scorer, doc), atol=1e-4)


def test_evaluate_command_writes_acc_acc_norm_and_n(tiny_phi, tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps({**RECORD, "label": i % 4}) for i in range(6)))
    out = tmp_path / "results.json"
    result = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--data", str(data),
                                  "--batch-size", "4", "--output", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["n"] == 6 and 0 <= results["acc"] <= 1 and 0 <= results["acc_norm"] <= 1
    assert "acc_norm=" in result.stdout


def test_a_malformed_data_line_is_one_line_with_exit_2(tiny_phi, tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps(RECORD) + "\n" + json.dumps({"ctx_a": "x"}) + "\n")
    result = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--data", str(data)])
    assert result.exit_code == 2 and f"{data}: line 2: not a HellaSwag record" in result.stderr


def test_a_model_that_cannot_be_loaded_is_one_line_with_exit_2(tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps(RECORD) + "\n")
    result = runner.invoke(main, ["evaluate", "--model", str(tmp_path / "no-such-model"), "--data", str(data)])
    assert result.exit_code == 2 and result.stderr == f"error: {tmp_path / 'no-such-model'}: no such model folder\n"
    (tmp_path / "empty").mkdir()  # a folder that holds no model
    result = runner.invoke(main, ["evaluate", "--model", str(tmp_path / "empty"), "--data", str(data)])
    assert result.exit_code == 2 and result.stderr.startswith("error: cannot load")
    assert result.stderr.count("\n") == 1
