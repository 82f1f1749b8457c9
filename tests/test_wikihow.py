"""`--source wikihow`: HellaSwag's WikiHow construction from the public CSV layout, and the
generators and AF running on it unchanged."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from advfilter.cli import main
from advfilter.core.errors import InputError
from advfilter.sources import sources
from advfilter.sources.wikihow import clean_title, steps_of

REPO = Path(__file__).resolve().parent.parent
TOPICS = ["Bake Soda Bread", "Repot a Cactus", "Wax a Snowboard", "Clean a Cast Iron Pan",
          "Tune a Ukulele", "Fold a Paper Crane", "Patch a Bike Tube", "Brew Cold Coffee"]


def article(topic: str) -> dict[str, str]:
    """A WikiHow-style row: five step summaries, one per line with a trailing comma."""
    thing = topic.split(" ", 1)[1].lower()
    steps = [f"Gather everything you need to work on the {thing} before you start.",
             f"Set up a clean, flat and well lit space for the {thing}.",
             "Work slowly.",
             f"Check the {thing} carefully for any mistakes and fix them one by one.",
             f"Put the finished {thing} away somewhere safe and dry until you need it again."]
    return {"headline": "\n" + ",\n".join(steps) + ",", "title": f"How to {topic}1",
            "text": " ".join(steps) + " More text follows here."}


@pytest.fixture
def wikihow_csv(tmp_path) -> Path:
    path = tmp_path / "wikihowSep.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["headline", "title", "text"])
        writer.writeheader()
        writer.writerows(article(t) for t in TOPICS * 3)
    return path


def test_steps_are_the_headline_lines_and_titles_lose_their_counter():
    assert steps_of("\nMix the flour.,\n Knead it well.,\n") == ["Mix the flour.", "Knead it well."]
    assert clean_title("How to Be an Organized Artist1") == "How to Be an Organized Artist"
    assert clean_title("How to Use 3D Glasses") == "How to Use 3D Glasses"


def test_a_context_is_the_title_and_up_to_three_steps_and_short_golds_take_the_next_step(wikihow_csv):
    items = list(sources.get("wikihow")(wikihow_csv))
    first = [i for i in items if i.video_id == items[0].video_id]
    assert len(first) == 4 and all(i.ctx_b == "" and i.activity_label == "How to Bake Soda Bread" for i in first)
    assert first[0].ctx_a == "How to Bake Soda Bread. Gather everything you need to work on the soda bread before you start."
    assert first[1].ending == "Work slowly. Check the soda bread carefully for any mistakes and fix them one by one."
    assert first[3].ctx_a.count(".") == 4  # the title and three steps, not four
    assert not first[3].ctx_a.startswith("How to Bake Soda Bread. Gather")


def test_a_csv_without_the_wikihow_columns_is_one_line(write):
    bad = write("w.csv", "url,body\nx,y\n")
    with pytest.raises(InputError, match=r"w.csv: header: missing column\(s\) headline, title"):
        list(sources.get("wikihow")(bad))


@pytest.mark.slow
def test_generate_and_filter_run_unchanged_on_wikihow(runner, wikihow_csv, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, [
        "generate", "--source", "wikihow", "--input", str(wikihow_csv), "--out", str(out),
        "--config", str(REPO / "configs" / "wikihow.yaml"), "--generator", "lstm", "--num-candidates", "6",
        "--folds", "4", "--set", "generate.lstm.max_epochs=1", "--set", "generate.workers=2"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "contexts.parquet")
    assert (table["ctx_b"] == "").all() and table["source"].eq("wikihow").all()
    result = runner.invoke(main, ["filter", "--run", str(out), "--rounds", "1", "--discriminators", "bow"])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "items.jsonl"
    assert runner.invoke(main, ["export", "--run", str(out), "--out", str(exported)]).exit_code == 0
    item = json.loads(exported.read_text().splitlines()[0])
    assert item["ctx_b"] == "" and item["ctx"] == item["ctx_a"] and len(item["endings"]) == 4
