"""`advfilter contamination`: n-gram overlap with evaluation sets and across a run's splits,
and `export --decontaminate` leaving the flagged items out."""
from __future__ import annotations

import json

from advfilter.cli import main
from advfilter.gauges.contamination import item_texts, ngrams
from advfilter.core.layout import items
from advfilter.core.store import RunStore


def test_ngrams_are_lowercased_word_windows_and_short_texts_are_one_gram():
    text = "The Man, the man -- runs fast!"
    assert ngrams(text, 3) == {("the", "man", "the"), ("man", "the", "man"), ("the", "man", "runs"),
                               ("man", "runs", "fast")}
    assert ngrams("A short one.", 13) == {("a", "short", "one")}


def test_an_item_found_in_an_evaluation_set_is_flagged_and_export_leaves_it_out(runner, filtered_run, tmp_path):
    run = RunStore(filtered_run)
    target = next(r for r in items(run) if r["split"] == "train")
    eval_set = tmp_path / "hellaswag_val.jsonl"
    eval_set.write_text("\n".join(json.dumps(r) for r in [
        {"ctx": "Someone unrelated " + item_texts(target)[target["label"]] + " and more.", "endings": ["a", "b"]},
        {"ctx": "A cat sleeps on a warm windowsill all afternoon long.", "endings": ["purrs."]}]))
    report = tmp_path / "report.json"
    result = runner.invoke(main, ["contamination", "--run", str(filtered_run), "--against", str(eval_set),
                                  "--out", str(report)])
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert {"items", "flagged", "by_file", "by_split", "flagged_items"} <= set(doc) and doc["n"] == 13
    flagged = {e["context_id"]: e for e in doc["flagged_items"]}
    assert str(eval_set) in flagged[target["context_id"]]["matches"]
    assert doc["by_file"][str(eval_set)] >= 1 and doc["flagged"] == len(flagged)
    assert all(e["split"] in ("validation", "test") for e in flagged.values()
               if any(k.startswith("split:") for k in e["matches"]))
    out = tmp_path / "clean.jsonl"
    result = runner.invoke(main, ["export", "--run", str(filtered_run), "--out", str(out),
                                  "--decontaminate", str(report)])
    assert result.exit_code == 0, result.output
    kept = {json.loads(x)["context_id"] for x in out.read_text().splitlines()}
    assert not kept & set(flagged) and len(kept) == doc["items"] - len(flagged)
    assert f"left out {len(flagged)} flagged items" in result.stdout


def test_a_larger_n_flags_no_more_than_a_smaller_one(runner, filtered_run, tmp_path):
    counts = []
    for n in (8, 13, 30):
        out = tmp_path / f"r{n}.json"
        assert runner.invoke(main, ["contamination", "--run", str(filtered_run), "--ngram", str(n),
                                    "--out", str(out)]).exit_code == 0
        counts.append(json.loads(out.read_text())["flagged"])
    assert counts == sorted(counts, reverse=True)


def test_a_file_that_is_not_a_report_is_one_line_with_exit_2(runner, filtered_run, tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text("[1, 2]")
    result = runner.invoke(main, ["export", "--run", str(filtered_run), "--out", str(tmp_path / "x.jsonl"),
                                  "--decontaminate", str(bad)])
    assert result.exit_code == 2 and "not a contamination report" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "x.jsonl").exists()


def test_context_and_any_ending_count_and_several_sets_follow_one_against(runner, filtered_run, tmp_path):
    run = RunStore(filtered_run)
    target = next(r for r in items(run) if r["split"] == "train")
    wrong = (target["label"] + 1) % len(target["endings"])
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Nothing here resembles any item at all, not one bit of it, truly nothing.\n")
    b.write_text(f"Quoted: {target['ctx_a']} {target['ctx_b']} {target['endings'][wrong]} (a distractor)\n")
    report = tmp_path / "report.json"
    result = runner.invoke(main, ["contamination", "--run", str(filtered_run), "--against", str(a), str(b),
                                  "--output", str(report)])
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert set(doc["by_file"]) == {str(a), str(b)}
    flagged = {e["context_id"]: e for e in doc["flagged_items"]}
    assert str(b) in flagged[target["context_id"]]["matches"]  # found through a distractor
